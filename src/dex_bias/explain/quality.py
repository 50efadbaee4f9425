"""How far to trust a region explanation: deletion curves and seed stability.

Deletion (Petsiuk, Das & Saenko, "RISE", BMVC 2018; Samek et al., IEEE TNNLS 2017, "region
perturbation"): hide the regions one at a time, most positive weight first, and record the
model's expected age after each step; do the same in random orders. If the weights are
faithful, hiding the regions that LIME says push the age up lowers the age sooner than a
random order does, so the area under the attribution-order curve is smaller. Both areas are
in years (the curve averaged over the fraction of regions hidden, trapezoid rule), and
``auc_gap = auc_random - auc_attribution`` (years; > 0 is faithful).

Stability (Alvarez-Melis & Jaakkola, 2018, "On the robustness of interpretability methods"):
the Spearman rank correlation of an image's region weights between LIME runs that differ only
in their seed, averaged over the pairs of K runs.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
from scipy.stats import spearmanr


def deletion_masks(weights: np.ndarray, random_orders: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks that hide features cumulatively: (orders, k + 1, k) 0/1, and the orders (orders, k).

    Order 0 follows ``weights`` from most positive to most negative (ties by feature index);
    orders 1..``random_orders`` are seeded random permutations. Step ``j`` of an order hides its
    first ``j`` features; step 0 hides none.
    """
    weights = np.asarray(weights, dtype=float)
    k = weights.shape[0]
    rng = np.random.default_rng(seed)
    orders = [np.argsort(-weights, kind="stable")] + [rng.permutation(k) for _ in range(random_orders)]
    orders = np.stack(orders)
    # rank[o, f] = step at which order o hides feature f; feature f is hidden at steps > rank.
    rank = np.argsort(orders, axis=1)
    steps = np.arange(k + 1)[None, :, None]
    masks = (steps <= rank[:, None, :]).astype(np.int64)
    return masks, orders


def deletion_summary(curves: np.ndarray) -> dict[str, float]:
    """AUCs (years) of deletion curves (orders, k + 1): order 0 attribution, the rest random."""
    curves = np.asarray(curves, dtype=float)
    k = curves.shape[1] - 1
    x = np.linspace(0.0, 1.0, k + 1) if k > 0 else np.zeros(1)
    areas = np.array([np.trapezoid(c, x) if k > 0 else c[0] for c in curves])
    auc_attribution = float(areas[0])
    auc_random = float(areas[1:].mean()) if len(areas) > 1 else float("nan")
    return {
        "auc_attribution": auc_attribution,
        "auc_random": auc_random,
        "auc_gap": auc_random - auc_attribution,
        "age_unperturbed": float(curves[0, 0]),
        "age_all_hidden": float(curves[0, -1]),
    }


def seed_stability(weight_runs: np.ndarray) -> float:
    """Mean Spearman rho of region weights over all pairs of runs; (runs, regions) in, NaN if undefined.

    A pair whose weights are constant (rank correlation undefined) is left out of the mean.
    """
    weight_runs = np.asarray(weight_runs, dtype=float)
    rhos = []
    for a, b in combinations(range(len(weight_runs)), 2):
        if np.ptp(weight_runs[a]) == 0 or np.ptp(weight_runs[b]) == 0:
            continue
        rhos.append(spearmanr(weight_runs[a], weight_runs[b]).statistic)
    return float(np.mean(rhos)) if rhos else float("nan")
