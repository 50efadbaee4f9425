import pandas as pd

from dex_bias.report import figures
from dex_bias.stats.gates import age_gate_metrics
from tests.stats.conftest import synthetic_predictions


def test_each_figure_renders_with_one_panel_per_band_or_measure():
    df = synthetic_predictions(400, seed=3)
    by_race = figures.error_distributions(df, "race")
    assert len(by_race.axes) == 4 * 2  # the article's four bands × (error, accuracy)
    labels = [t.get_text() for t in by_race.axes[0].get_xticklabels()]
    assert labels[0].startswith("White\nn=") and len(labels) == 5
    gates = figures.gate_rates(age_gate_metrics(df, by=("race",)))
    assert len(gates.axes) == 2
    heatmap = figures.attribution_heatmap(pd.DataFrame([[0.1, -0.2]], index=["White"], columns=["nose", "chin"]), "t")
    for figure in (by_race, gates, figures.predicted_vs_true(df), heatmap, figures.message_figure("a", "b")):
        image = figures.figure_to_image(figure)
        assert image.format == "PNG" and min(image.size) > 50
