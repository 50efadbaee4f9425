"""The article's tables: each column pinned to scipy applied the way the article applied it (on
synthetic data), and our region-weight correlations checked on their own."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from dex_bias.stats.paper import (
    INNER_REGIONS,
    OUTER_FEATURES,
    article_features,
    dispersion_chi_square,
    paper_correlation_table,
    paper_normality_table,
    region_weight_correlations,
    round_like_python,
)
from tests.stats.conftest import synthetic_predictions


def test_normality_columns_are_scipy_on_the_list_of_rounded_predictions():
    df = synthetic_predictions(2000, seed=2)
    table = paper_normality_table(df)
    assert len(table) == 5 * 2 * 4
    cell = df[(df.race == 3) & (df.gender == 0) & df.age.between(26, 100)]  # bands are inclusive
    listed = [round(value) for value in cell.predicted_age]  # Python's round, as the article called it
    row = table[(table.race == "Indian") & (table.gender == "male") & (table.age_band == "26-100")].iloc[0]
    assert row.n == len(listed)
    assert row.mean_predicted_age == pytest.approx(np.mean(listed))
    assert row.sd_predicted_age == pytest.approx(np.std(listed))
    k2 = st.normaltest(listed)
    assert (row.k2, row.k2_p) == pytest.approx((k2.statistic, k2.pvalue), rel=1e-12)
    # The article's chi-square: scipy.stats.chisquare on the list itself, each value a "count".
    chi2 = st.chisquare(listed)
    assert (row.dispersion_chi2, row.dispersion_p) == pytest.approx((chi2.statistic, chi2.pvalue), rel=1e-12)
    x = np.asarray(listed, float)
    assert row.dispersion_chi2 == pytest.approx(((x - x.mean()) ** 2).sum() / x.mean())  # an index of dispersion
    assert row.dispersion_dof == len(x) - 1
    assert row.dispersion_p == pytest.approx(st.chi2.sf(row.dispersion_chi2, len(x) - 1))
    assert table.n.sum() == df.age.between(0, 100).sum()


def test_rounding_is_pythons_and_tiny_or_empty_cells_say_why():
    values = [0.5, 1.5, 2.5, 2.4999, 3.5000001]
    assert round_like_python(values).tolist() == [round(v) for v in values] == [0, 2, 2, 2, 4]
    df = synthetic_predictions(100, seed=1)  # cells of every kind: empty, one face, a few, eight or more
    table = paper_normality_table(df)
    tiny = table[(table.n > 0) & (table.n < 8)]
    assert len(tiny) and tiny.status.str.contains("k2 not computed").all()
    assert tiny[tiny.n >= 2].dispersion_chi2.notna().all()
    single = table[table.n == 1]
    assert len(single) and single.status.str.contains("dispersion chi-square not computed").all()
    computed = table[table.n >= 8]
    assert len(computed) and (computed.status == "ok").all() and computed.k2.notna().all()
    empty = table[table.n == 0]
    assert len(empty) and (empty.status == "no cases").all() and empty.mean_predicted_age.isna().all()
    assert np.isnan(dispersion_chi_square([0, 0, 0])[0]) and np.isnan(dispersion_chi_square([7])[0])


def _quickshift_rows(ids, rng) -> pd.DataFrame:
    regions = [*INNER_REGIONS, *OUTER_FEATURES.values(), "background"]
    return pd.DataFrame(
        [(image_id, "quickshift", region, rng.uniform(0, 1)) for image_id in ids for region in regions],
        columns=["image_id", "method", "region", "weight"],
    )


def test_article_features_renormalise_as_the_article_code_did():
    rng = np.random.default_rng(3)
    rows = _quickshift_rows([f"img{i}" for i in range(6)], rng)
    activations = rows.pivot(index="image_id", columns="region", values="weight")
    sequential = article_features(activations)
    for image_id, shares in activations.iterrows():
        # The article's loop, step by step: each feature divided by the sum as it stands.
        fields = {
            "face": sum(shares[r] for r in INNER_REGIONS) / len(INNER_REGIONS),
            **{feature: shares[region] for feature, region in OUTER_FEATURES.items()},
        }
        for key in fields:
            fields[key] /= sum(fields.values())
        assert sequential.loc[image_id].to_dict() == pytest.approx(fields)
    assert not np.allclose(sequential.sum(axis=1), 1.0)  # the published loop does not sum to 1
    assert np.allclose(article_features(activations, "sum_to_one").sum(axis=1), 1.0)


def test_appendix_b_is_pearson_per_race_band_subset_on_article_features():
    df = synthetic_predictions(1500, seed=4)
    rng = np.random.default_rng(0)
    rows = _quickshift_rows(df.image_id, rng)
    error = (df.predicted_age - df.age).abs().to_numpy()
    nose = rows.region == "nose"
    rows.loc[nose, "weight"] = np.clip(rows.loc[nose, "weight"].to_numpy() - 0.01 * error, 0, 1)
    regions_method = rows.assign(method="regions", weight=9.0)  # another method: not used
    repeated = pd.concat([rows, rows.head(300), regions_method])  # the article's repetition, counted once
    table = paper_correlation_table(df, repeated)
    features = article_features(rows.pivot(index="image_id", columns="region", values="weight"))
    accuracy = (100 - error) / 100
    cell = (df.race == 0).to_numpy() & df.age.between(26, 100).to_numpy() & (accuracy > 0.9)
    x = features.loc[df.image_id[cell], "face"].to_numpy()
    reference = st.pearsonr(x, accuracy[cell])
    row = table[
        (table.race == "White")
        & (table.age_band == "26-100")
        & (table.subset == "accurate")
        & (table.feature == "face")
    ].iloc[0]
    assert row.n == cell.sum()
    assert (row.pearson_r, row.p) == pytest.approx((reference.statistic, reference.pvalue))
    assert set(table.feature) == {"face", *OUTER_FEATURES}
    ok = table[table.status == "ok"]
    assert ok.p_fdr.to_numpy() == pytest.approx(st.false_discovery_control(ok.p.to_numpy(), method="bh"))
    assert (
        table[table.feature == "face"].groupby(["race", "age_band", "subset"], observed=True).n.first().sum()
        == df.age.between(0, 100).sum()
    )
    assert paper_correlation_table(df, rows.iloc[:0]).empty
    assert paper_correlation_table(df, regions_method).empty  # no quickshift explanations: no Appendix B


def test_region_weight_correlations_are_ours_per_region_each_image_once():
    df = synthetic_predictions(1500, seed=4)
    rng = np.random.default_rng(0)
    error = (df.predicted_age - df.age).abs().to_numpy()
    rows = []
    for image_id, e in zip(df.image_id, error):
        rows.append((image_id, "regions", "nose", rng.normal() - 0.05 * e))
        rows.append((image_id, "regions", "mouth", rng.normal()))
        rows.append((image_id, "quickshift", "nose", 9.0))  # another method: not used
    attributions = pd.DataFrame(rows, columns=["image_id", "method", "region", "weight"])
    repeated = pd.concat([attributions, attributions.head(300)])
    table = region_weight_correlations(df, repeated)
    accuracy = (100 - error) / 100
    cell = (df.race == 0).to_numpy() & df.age.between(26, 100).to_numpy() & (error < 10)
    nose = attributions[(attributions.method == "regions") & (attributions.region == "nose")].set_index("image_id")
    reference = st.pearsonr(nose.loc[df.image_id[cell], "weight"].to_numpy(), accuracy[cell])
    row = table[
        (table.race == "White") & (table.age_band == "26-100") & (table.subset == "accurate") & (table.region == "nose")
    ].iloc[0]
    assert row.n == cell.sum()
    assert (row.pearson_r, row.p) == pytest.approx((reference.statistic, reference.pvalue))
    ok = table[table.status == "ok"]
    assert ok.p_fdr.to_numpy() == pytest.approx(st.false_discovery_control(ok.p.to_numpy(), method="bh"))
    assert region_weight_correlations(df, attributions.iloc[:0]).empty
