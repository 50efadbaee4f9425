import numpy as np
import pytest

from dex_bias.explain.quality import deletion_masks, deletion_summary, seed_stability


def test_deletion_masks_hide_features_cumulatively_in_each_order():
    weights = np.array([0.1, 3.0, -2.0, 1.0])
    masks, orders = deletion_masks(weights, random_orders=2, seed=0)
    assert masks.shape == (3, 5, 4)
    np.testing.assert_array_equal(orders[0], [1, 3, 0, 2])
    assert masks[:, 0].all() and not masks[:, -1].any()
    for o in range(3):
        for j in range(1, 5):
            assert masks[o, j, orders[o, j - 1]] == 0
            assert masks[o, j].sum() == 4 - j


def test_faithful_weights_give_a_positive_gap_on_an_additive_model():
    weights = np.array([4.0, -1.0, 2.5, 0.5, -3.0, 1.0])
    masks, _ = deletion_masks(weights, random_orders=5, seed=1)
    curves = 30.0 + masks @ weights  # the model adds each visible feature's weight
    summary = deletion_summary(curves)
    assert summary["auc_gap"] > 0
    reversed_masks, _ = deletion_masks(-weights, random_orders=5, seed=1)
    assert deletion_summary(30.0 + reversed_masks @ weights)["auc_gap"] < 0
    assert summary["age_unperturbed"] == pytest.approx(30.0 + weights.sum())


def test_seed_stability():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    assert seed_stability(np.stack([a, a * 2, a + 1])) == pytest.approx(1.0)
    assert seed_stability(np.stack([a, -a])) == pytest.approx(-1.0)
    assert np.isnan(seed_stability(np.stack([a, np.zeros(4)])))
