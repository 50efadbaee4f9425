"""Label parsing and age bands of dex_bias.utkface, including every malformed UTKFace name."""

import pandas as pd
import pytest

from dex_bias.utkface import (
    DEFAULT_AGE_BANDS,
    PAPER_AGE_BANDS,
    LabelError,
    age_bands,
    band_label,
    parse_utkface_name,
)


@pytest.mark.parametrize(
    "name, age, gender, race, stamp, kind",
    [
        ("26_1_2_20170116174525125.jpg.chip.jpg", 26, 1, 2, "20170116174525125", "chip"),
        ("1_0_0_20161219140623097.jpg.chip.jpg", 1, 0, 0, "20161219140623097", "chip"),
        ("116_1_4_20170120134921760.jpg", 116, 1, 4, "20170120134921760", "wild"),
        ("0_0_3_20170110.jpg", 0, 0, 3, "20170110", "wild"),
    ],
)
def test_well_formed_names_are_coded(name, age, gender, race, stamp, kind):
    labels = parse_utkface_name(name)
    assert (labels.age, labels.gender, labels.race, labels.stamp, labels.kind) == (age, gender, race, stamp, kind)


@pytest.mark.parametrize(
    "name, reason",
    [
        # the five malformed names known in UTKFace (shared/data/README.md)
        ("61_1_20170109142408075.jpg.chip.jpg", "missing_field"),
        ("61_3_20170109150557335.jpg.chip.jpg", "missing_field"),
        ("39_1_20170116174525125.jpg.chip.jpg", "missing_field"),
        ("24_0_1_20170116220224657 .jpg.chip.jpg", "stray_whitespace"),
        ("55_0_0_20170116232725357jpg.chip.jpg", "missing_dot"),
        # and the other ways a name can go wrong
        (" 24_0_1_20170116220224657.jpg.chip.jpg", "stray_whitespace"),
        ("24_0_1 _20170116220224657.jpg", "stray_whitespace"),
        ("24_0_20170116220224657.jpg", "missing_field"),
        ("24.jpg", "missing_field"),
        ("24_0_1_2017011622022465x.jpg.chip.jpg", "malformed_name"),
        ("a_0_1_20170116220224657.jpg", "malformed_name"),
        ("24_0_1_20170116220224657_extra.jpg", "malformed_name"),
        ("24_-1_1_20170116220224657.jpg", "malformed_name"),
        ("24_0_1_20170116220224657.png", "not_utkface_name"),
        ("24_0_1_20170116220224657.JPG", "not_utkface_name"),
        ("demo_manifest.json", "not_utkface_name"),
        # well-formed names whose labels are out of range
        ("117_0_0_20170116220224657.jpg.chip.jpg", "age_out_of_range"),
        ("999_1_2_20170116220224657.jpg", "age_out_of_range"),
        ("30_2_0_20170116220224657.jpg.chip.jpg", "gender_out_of_range"),
        ("30_9_0_20170116220224657.jpg", "gender_out_of_range"),
        ("30_1_5_20170116220224657.jpg.chip.jpg", "race_out_of_range"),
        ("30_0_7_20170116220224657.jpg", "race_out_of_range"),
    ],
)
def test_malformed_names_and_labels_out_of_range_are_refused_with_their_reason(name, reason):
    with pytest.raises(LabelError) as caught:
        parse_utkface_name(name)
    assert caught.value.reason == reason
    assert name.strip() in caught.value.detail or repr(name) in caught.value.detail


def test_edge_labels_are_in_range():
    assert parse_utkface_name("0_1_4_20170116220224657.jpg").age == 0
    assert parse_utkface_name("116_0_0_20170116220224657.jpg").age == 116


def test_age_bands_are_inclusive_ordered_and_cover_every_utkface_age():
    # Each band's first and last age, with the band it must fall in.
    expected = {0: "0-12", 12: "0-12", 13: "13-17", 17: "13-17", 18: "18-24", 24: "18-24"}
    expected |= {25: "25-39", 39: "25-39", 40: "40-59", 59: "40-59", 60: "60+", 116: "60+"}
    bands = age_bands(pd.Series(list(expected)))
    assert list(bands.astype(str)) == list(expected.values())
    assert list(bands.cat.categories) == [band_label(lo, hi) for lo, hi in DEFAULT_AGE_BANDS]
    assert bands.cat.ordered
    assert age_bands(pd.Series(range(0, 117))).notna().all()


def test_paper_bands_leave_ages_past_100_unbanded():
    bands = age_bands([12, 13, 18, 19, 25, 26, 100, 101], PAPER_AGE_BANDS)
    assert list(bands.astype(object).where(bands.notna(), None)) == [
        "0-12",
        "13-18",
        "13-18",
        "19-25",
        "19-25",
        "26-100",
        "26-100",
        None,
    ]


def test_band_label_marks_the_open_top_band():
    assert band_label(13, 17) == "13-17"
    assert band_label(60, 116) == "60+"
