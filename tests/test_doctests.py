"""The Examples in zoolens.measure's docstrings run, and print what they say they print.

Run here (not by ``--doctest-modules``) so ``.venv/bin/python -m pytest -q`` stays the one
command and the src layout needs no import-mode setting.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

from zoolens import measure

MODULES = ["zoolens.measure", *(f"zoolens.measure.{m}" for m in measure._SUBMODULES)]
# Public functions whose docstrings carry an Examples section (a test below keeps them there).
WITH_EXAMPLES = [
    "top1",
    "correctness",
    "pair_counts",
    "error_inconsistency",
    "both_right",
    "both_wrong",
    "error_consistency",
    "dominance",
    "pairwise_agreement",
    "pairs_with",
    "listed_pair_agreement",
    "fit_temperature",
    "softmax",
    "expected_calibration_error",
    "pair_ensemble_predictions",
    "majority_vote",
    "ensemble_counts",
    "ensemble_rates",
    "confidence_angle",
    "mcnemar_test",
    "holm_adjusted",
    "bh_q_values",
    "kappa_from_rates",
    "bootstrap_ci",
    "probit_fit",
    "aline_estimates",
    "aline_interval",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False,
        report=False,
    )
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_public_function_documents_parameters_returns_examples(name):
    doc = getattr(measure, name).__doc__
    for section in ("Parameters\n", "Returns\n", "Examples\n", ">>> "):
        assert section in doc, f"{name}: no {section.strip()} section"
