"""Pure measurements on numpy arrays: no I/O, no CLI, no zoo, no global state.

Every public function is reachable from here, as in ``sklearn.metrics``::

    >>> import numpy as np
    >>> from zoolens import measure
    >>> correct = np.array([[1, 1, 0, 0], [1, 0, 1, 0]], dtype=bool)  # 2 models x 4 examples
    >>> measure.error_inconsistency(correct)[0, 1]                      # exactly one right
    np.float64(0.5)

The submodules load on first use (``import zoolens`` and ``zoolens --help`` stay fast):

- :mod:`zoolens.measure.agreement`: correctness matrix, error inconsistency, both right / both
  wrong, error consistency (kappa), dominance — all pairs from one matrix product.
- :mod:`zoolens.measure.calibration`: temperature scaling (safeguarded Newton on log T), NLL,
  softmax, ECE and reliability bins.
- :mod:`zoolens.measure.ensemble`: pair ensembles (probabilities or scaled logits), streaming
  all-pairs ensemble correctness, gain / conversion rates, weight and class-aware
  interpolation, majority vote, greedy forward selection.
- :mod:`zoolens.measure.topk`: the exact pruned argmax of averaged score rows that pair
  ensembles and the greedy step share.
- :mod:`zoolens.measure.specialization`: confidence angle theta, outcome histograms, per-group
  summaries.
- :mod:`zoolens.measure.stats`: bootstrap intervals, McNemar and paired bootstrap tests,
  accuracy-adjusted category means.
- :mod:`zoolens.measure.features`: feature combination at rates, diversity ranking, CKA.
- :mod:`zoolens.measure.probe`: the L2-regularised linear probe and average precision.
- :mod:`zoolens.measure.soup`: uniform and greedy weight soups.
- :mod:`zoolens.measure.shift`: probit-scale lines across evaluation sets (accuracy and
  agreement on the line), effective robustness, prediction agreement.

Definitions follow DESIGN.md section 3 and Gontijo-Lopes, Dauphin & Cubuk (2021).
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> the submodule defining it (each submodule's ``__all__``; a test keeps the
# two equal).
_EXPORTS: dict[str, tuple[str, ...]] = {
    "agreement": (
        "top1",
        "correctness",
        "pair_counts",
        "error_inconsistency",
        "both_right",
        "both_wrong",
        "error_consistency",
        "kappa_from_rates",
        "dominance",
        "pairwise_agreement",
        "pair_index",
    ),
    "calibration": (
        "TemperatureFit",
        "fit_temperature",
        "nll_and_derivatives",
        "softmax",
        "negative_log_likelihood",
        "top1_confidence",
        "reliability_bins",
        "reliability_diagram",
        "expected_calibration_error",
        "expected_calibration_error_from_confidence",
        "ece_from_bins",
    ),
    "ensemble": (
        "COMBINE_MODES",
        "check_combine",
        "ensemble_inputs",
        "combine_scores",
        "pair_ensemble_predictions",
        "pair_ensemble_correct",
        "all_pair_ensemble_correct",
        "EnsembleCounts",
        "ensemble_counts",
        "ensemble_rates",
        "class_aware_mask",
        "class_weights",
        "interpolation_curve",
        "majority_vote",
        "GreedyResult",
        "greedy_forward_selection",
    ),
    "features": (
        "l2_normalize_rows",
        "combination_sizes",
        "CombinedFeatures",
        "combine_at_rate",
        "combine_at_rates",
        "mean_abs_correlation",
        "diversity_ranking",
        "k_grid",
        "cka",
        "cka_matrix",
        "linear_cka_matrices",
        "gram_linear",
        "gram_rbf",
        "center_gram",
        "cka_from_grams",
    ),
    "probe": (
        "DEFAULT_L2_GRID",
        "LinearProbe",
        "fit_linear_probe",
        "probe_objective",
        "average_precision",
        "voc11_average_precision",
        "voc11_map",
        "mean_average_precision",
    ),
    "shift": (
        "probit",
        "inverse_probit",
        "ProbitFit",
        "probit_fit",
        "effective_robustness",
        "prediction_agreement_counts",
        "ALineEstimates",
        "aline_estimates",
        "aline_interval",
    ),
    "soup": ("uniform_soup", "greedy_soup", "GreedySoup", "check_compatible"),
    "specialization": (
        "OUTCOMES",
        "THETA_BIN_EDGES",
        "confidence",
        "confidence_angle",
        "outcome_codes",
        "theta_histogram",
        "specialization_by_group",
    ),
    "stats": (
        "bootstrap_weights",
        "bootstrap_means",
        "bootstrap_ci",
        "bootstrap_ratio_ci",
        "percentile_interval",
        "McNemarResult",
        "mcnemar_test",
        "mcnemar_p_values",
        "holm_adjusted",
        "bh_q_values",
        "PairedBootstrapResult",
        "paired_bootstrap_test",
        "AdjustedMeans",
        "accuracy_adjusted_means",
    ),
    "topk": (
        "DEFAULT_K",
        "PruneStats",
        "decide_from_lists",
        "top1_and_second",
        "all_pair_ensemble_predictions_topk",
        "all_pair_ensemble_correct_topk",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)  # noqa: PLE0605 (tests/test_public_api.py checks it)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'zoolens.measure' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"zoolens.measure.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_EXPORTS))
