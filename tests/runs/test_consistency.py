"""Which input versions belong together (no Kedro): histories from a made-up set of manifests."""

from __future__ import annotations

from dex_bias.runs.consistency import Candidate, Ref, choose_versions, newest_consistent_set

FACES, LANDMARKS, MODEL, PREDICTIONS, ATTRIBUTIONS = (
    "data/02/faces.parquet",
    "data/03/landmarks.parquet",
    "data/06/age_model.keras",
    "data/07/predictions.parquet",
    "data/07/region_attributions.parquet",
)
VENDOR = "data/01_raw/external_predictions.csv"


def made_from(**history: list[Ref]):
    """Provenance from ``{"<key>@<version>": [inputs]}`` written as keyword pairs."""
    table = {tuple(k.split("@")): v for k, v in history.items()}
    return lambda key, version: table.get((key, version))


F1, F2 = Ref("faces", FACES, "F1"), Ref("faces", FACES, "F2")
L1, L2 = Ref("landmarks", LANDMARKS, "L1"), Ref("landmarks", LANDMARKS, "L2")
M1 = Ref("age_model", MODEL, "M1")
P1, P2 = Ref("predictions", PREDICTIONS, "P1"), Ref("predictions", PREDICTIONS, "P2")
PROVENANCE = made_from(
    **{
        f"{LANDMARKS}@L1": [F1],
        f"{LANDMARKS}@L2": [F2],
        f"{MODEL}@M1": [F1, L1],
        f"{PREDICTIONS}@P1": [F1, L1, M1],
        f"{PREDICTIONS}@P2": [F2, L2, M1],
        f"{ATTRIBUTIONS}@R1": [P1, F1, L1, M1],
    }
)


def test_the_newest_versions_are_read_when_they_belong_together():
    choice = choose_versions(
        [Candidate("faces", FACES, ["F2", "F1"]), Candidate("landmarks", LANDMARKS, ["L2", "L1"])], PROVENANCE
    )
    assert choice.consistent and choice.versions == {"faces": "F2", "landmarks": "L2"}


def test_newer_faces_than_the_landmarks_were_made_from_is_a_clash_naming_both_versions():
    choice = choose_versions(
        [Candidate("faces", FACES, ["F2", "F1"]), Candidate("landmarks", LANDMARKS, ["L1"])], PROVENANCE
    )
    assert not choice.consistent
    assert [c.explain() for c in choice.clashes] == ["landmarks L1 was made from faces F1, not from faces F2"]
    older = newest_consistent_set(
        [Candidate("faces", FACES, ["F2", "F1"]), Candidate("landmarks", LANDMARKS, ["L1"])], PROVENANCE
    )
    assert older == {"faces": "F1", "landmarks": "L1"}


def test_a_model_trained_on_other_faces_clashes_through_what_both_were_made_from():
    choice = choose_versions(
        [
            Candidate("faces", FACES, ["F2", "F1"]),
            Candidate("landmarks", LANDMARKS, ["L2", "L1"]),
            Candidate("age_model", MODEL, ["M1"]),
        ],
        PROVENANCE,
    )
    assert [c.explain() for c in choice.clashes] == ["age_model M1 was made from faces F1, not from faces F2"]
    assert choose_versions(
        [
            Candidate("faces", FACES, ["F2", "F1"]),
            Candidate("landmarks", LANDMARKS, ["L2", "L1"]),
            Candidate("age_model", MODEL, ["M1"]),
        ],
        PROVENANCE,
        accept_mismatch=True,
    ).versions == {"faces": "F2", "landmarks": "L2", "age_model": "M1"}


def test_a_pinned_version_pulls_the_others_to_what_it_was_made_from():
    choice = choose_versions(
        [
            Candidate("faces", FACES, ["F2", "F1"]),
            Candidate("landmarks", LANDMARKS, ["L2", "L1"]),
            Candidate("age_model", MODEL, ["M1"], pinned="M1"),
        ],
        PROVENANCE,
    )
    assert choice.consistent and choice.versions == {"age_model": "M1", "faces": "F1", "landmarks": "L1"}
    assert choice.older["faces"][:2] == ("F1", "F2")


def test_pins_that_do_not_belong_together_are_a_clash():
    choice = choose_versions(
        [
            Candidate("faces", FACES, ["F2", "F1"], pinned="F2"),
            Candidate("landmarks", LANDMARKS, ["L2", "L1"], pinned="L1"),
        ],
        PROVENANCE,
    )
    assert [c.explain() for c in choice.clashes] == ["landmarks L1 was made from faces F1, not from faces F2"]


def test_an_optional_input_that_does_not_belong_is_left_out_not_refused():
    choice = choose_versions(
        [
            Candidate("predictions", PREDICTIONS, ["P2", "P1"]),
            Candidate("region_attributions", ATTRIBUTIONS, ["R1"], optional=True),
        ],
        PROVENANCE,
    )
    assert choice.consistent and choice.versions == {"predictions": "P2", "region_attributions": None}
    assert (
        choice.left_out[0].explain() == "region_attributions R1 was made from predictions P1, not from predictions P2"
    )


def test_another_file_under_the_same_name_does_not_belong():
    vendor = Candidate("predictions", VENDOR, ["sha256:abc"], pinned="sha256:abc")
    choice = choose_versions(
        [vendor, Candidate("region_attributions", ATTRIBUTIONS, ["R1"], optional=True)], PROVENANCE
    )
    assert choice.versions["region_attributions"] is None
    assert choice.left_out[0].explain() == (
        f"region_attributions R1 was made from the predictions in {PREDICTIONS}, but this run reads predictions "
        f"from {VENDOR}"
    )


def test_versions_without_a_record_belong_with_anything():
    choice = choose_versions([Candidate("faces", FACES, ["F9"]), Candidate("landmarks", LANDMARKS, ["L9"])], PROVENANCE)
    assert choice.consistent and choice.versions == {"faces": "F9", "landmarks": "L9"}
