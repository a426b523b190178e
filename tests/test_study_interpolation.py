"""The interpolation stage's two-model pass (``study.assemble.interpolation_curves``): its
example chunks run side by side and each counts its own right answers, so the counts are
whole numbers that must not depend on how the evaluation split is cut. The oracle: the
right answers of w·x_a + (1 − w)·x_b computed on the whole split at once from
``measure.fused.calibrated_inputs`` (the pass's own arithmetic for the ensemble inputs)."""

from __future__ import annotations

import pytest

import _analyze_reference as ref
from zoolens.measure.agreement import correctness
from zoolens.measure.ensemble import combine_scores
from zoolens.measure.fused import calibrated_inputs
from zoolens.study.assemble import interpolation_curves, interpolation_specs
from zoolens.study.inputs import calibrate, load_inputs, with_base
from zoolens.study.threads import default_threads

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    zoo = ref.build_synthetic(tmp_path_factory.mktemp("interp") / "zoo", n=301, seed=3)
    inputs = with_base(load_inputs(zoo), "base")
    return inputs, calibrate(inputs, threads=1)


def _oracle(inputs, calibration, a: int, b: int) -> list[int]:
    rows = inputs.ev
    x = [
        calibrated_inputs(
            inputs.zoo.stored_scores(inputs.names[m], rows=rows),
            float(calibration.temperatures[m]),
            "probs",
        )
        for m in (a, b)
    ]
    y = inputs.labels[rows]
    return [int(correctness(combine_scores(*x, w).argmax(axis=-1), y).sum()) for w in WEIGHTS]


# bytes per chunk row: 8 bytes x classes (5) x 2 models x threads; budgets giving one-row
# chunks, 7-row chunks that do not divide the split, and one chunk per thread
@pytest.mark.parametrize("rows", [1, 7, None])
def test_curves_count_the_same_in_any_chunking(setting, rows):
    inputs, calibration = setting
    budget = 2**40 if rows is None else 8 * 5 * 2 * default_threads() * rows
    a, b = inputs.names.index("base"), inputs.names.index("vit")
    specs = interpolation_specs([(a, b)], inputs, WEIGHTS)
    interpolation_curves(inputs, calibration, specs, "probs", budget)
    weight_curve = next(spec for spec in specs if spec.mode == "weight")
    assert weight_curve.correct.tolist() == _oracle(inputs, calibration, a, b)
    # the class-aware curve too, against the one-chunk run
    whole = interpolation_specs([(a, b)], inputs, WEIGHTS)
    interpolation_curves(inputs, calibration, whole, "probs", 2**40)
    for got, want in zip(specs, whole):
        assert got.mode == want.mode and got.correct.tolist() == want.correct.tolist()
