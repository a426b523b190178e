"""measure.fused: the one-pass per-example quantities against float64 oracles (scipy's
logsumexp and softmax) and against the functions it replaces in the evaluation pass."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp, softmax

from zoolens.errors import ZoolensError
from zoolens.measure.calibration import negative_log_likelihood, top1_confidence
from zoolens.measure.ensemble import ensemble_inputs
from zoolens.measure.fused import fused_rows, fused_rows_tensor


@pytest.fixture(autouse=True)
def _both_kernels(kernels):
    """Every test here runs on torch's kernels and on numpy's (the light install)."""


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("temperature", [0.37, 1.0, 1.8])
def test_fused_rows_equal_the_float64_oracle(dtype, temperature):
    rng = np.random.default_rng(int(temperature * 100))
    n, c = 700, 37  # several row blocks are not needed for correctness; see below
    z = (rng.normal(size=(n, c)) * 4).astype(dtype)
    z[5, 3] = z[5, 9] = z[5].max() + 1  # a tie: lowest index wins
    y = rng.integers(0, c, n)
    got = fused_rows(z, y, temperature)
    x = z.astype(np.float64)
    np.testing.assert_array_equal(got.prediction, np.argmax(x, axis=1))
    assert got.prediction[5] == 3
    np.testing.assert_allclose(got.confidence_before, softmax(x, axis=1).max(axis=1), rtol=1e-13)
    q = softmax(x / temperature, axis=1)
    np.testing.assert_allclose(got.confidence_after, q.max(axis=1), rtol=1e-13)
    np.testing.assert_allclose(
        got.nll_before, logsumexp(x, axis=1) - x[np.arange(n), y], rtol=1e-12, atol=1e-13
    )
    t = x / temperature
    np.testing.assert_allclose(
        got.nll_after, logsumexp(t, axis=1) - t[np.arange(n), y], rtol=1e-12, atol=1e-13
    )
    assert got.ensemble_input.dtype == np.float32
    np.testing.assert_allclose(got.ensemble_input, q.astype(np.float32), rtol=2e-7, atol=1e-30)
    logits = fused_rows(z, None, temperature, "logits")
    np.testing.assert_array_equal(logits.ensemble_input, (x / temperature).astype(np.float32))
    assert np.isnan(logits.nll_before).all()


def test_fused_rows_match_the_functions_they_replace_across_row_blocks():
    """Many row blocks (4,000 x 1,000): same confidences and mean NLL as top1_confidence and
    negative_log_likelihood to 1e-15, and the ensemble input equal to ensemble_inputs except
    at most one float32 ulp on rare entries (softmax denominators summed in another order)."""
    rng = np.random.default_rng(0)
    z = (rng.normal(size=(4000, 1000)) * 3).astype(np.float16).astype(np.float32)
    y = rng.integers(0, 1000, 4000)
    out = np.empty(z.shape, dtype=np.float32)
    got = fused_rows(z, y, 1.3, out=out)
    assert got.ensemble_input is out
    np.testing.assert_allclose(got.confidence_before, top1_confidence(z, 1.0)[0], rtol=1e-14)
    np.testing.assert_allclose(got.confidence_after, top1_confidence(z, 1.3)[0], rtol=1e-14)
    assert got.nll_before.mean() == pytest.approx(negative_log_likelihood(z, y, 1.0), rel=1e-14)
    assert got.nll_after.mean() == pytest.approx(negative_log_likelihood(z, y, 1.3), rel=1e-14)
    ref = ensemble_inputs(z, 1.3, "probs")
    ulps = np.abs(out.view(np.int32).astype(np.int64) - ref.view(np.int32))
    assert ulps.max() <= 1 and (ulps > 0).mean() < 1e-4


def test_fused_rows_reject_bad_input():
    z = np.zeros((2, 3))
    for t in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ZoolensError, match="temperature"):
            fused_rows(z, None, t)
    with pytest.raises(ZoolensError, match="combine"):
        fused_rows(z, None, 1.0, "mean")
    with pytest.raises(ZoolensError, match="shape"):
        fused_rows(np.zeros(3), None, 1.0)


def test_fused_rows_tensor_equals_fused_rows_on_cpu():
    """The whole-tensor variant (what benchmarks/cuda_check.py runs on a GPU) gives the
    row-block version's results on the CPU."""
    import torch

    rng = np.random.default_rng(4)
    z = (rng.normal(size=(300, 50)) * 3).astype(np.float16)
    y = rng.integers(0, 50, 300)
    want = fused_rows(z, y, 0.8)
    got = fused_rows_tensor(torch.from_numpy(z), torch.from_numpy(y), 0.8)
    np.testing.assert_array_equal(got["prediction"].numpy(), want.prediction)
    for key in ("confidence_before", "confidence_after", "nll_before", "nll_after"):
        np.testing.assert_allclose(
            got[key].numpy(), getattr(want, key), rtol=1e-13, atol=1e-15, err_msg=key
        )
    np.testing.assert_allclose(got["ensemble_input"].numpy(), want.ensemble_input, rtol=2e-7)


@pytest.mark.parametrize("combine", ["probs", "logits"])
@pytest.mark.parametrize(
    "dtype,num_classes", [(np.float16, 1000), (np.float32, 13), (np.float64, 7)]
)
def test_calibrated_entries_recompute_every_entry_bit_for_bit(combine, dtype, num_classes):
    """calibrated_entries from row_stats against calibrated_inputs' whole block: single
    entries (arrays of length 1 upward, so torch's exp sees every position in a vector),
    scattered entries and whole rows give the same bits."""
    from zoolens.measure.fused import calibrated_entries, calibrated_inputs

    rng = np.random.default_rng(num_classes)
    z = (rng.normal(size=(600, num_classes)) * 9).astype(dtype)
    stats = (np.empty(600), np.empty(600))
    whole = calibrated_inputs(z, 1.37, combine, row_stats=stats)
    np.testing.assert_array_equal(
        calibrated_inputs(z, 1.37, combine, out=np.empty_like(whole)), whole
    )
    for length in (1, 2, 3, 5, 8, 17, 4000):
        i = rng.integers(0, 600, length)
        j = rng.integers(0, num_classes, length)
        got = calibrated_entries(z[i, j], stats[0][i], stats[1][i], 1.37, combine)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, whole[i, j])
    rows = rng.integers(0, 600, 9)
    got = calibrated_entries(z[rows], stats[0][rows, None], stats[1][rows, None], 1.37, combine)
    np.testing.assert_array_equal(got, whole[rows])
    if combine == "probs":
        np.testing.assert_allclose(whole.sum(axis=1), 1.0, rtol=1e-5)
        np.testing.assert_array_equal(stats[0], z.astype(np.float64).max(axis=1))


@pytest.mark.parametrize("torch_kernels", [True, False])
@pytest.mark.parametrize("temperature", [0.05, 1.0, 8.0, 50.0, 1000.0])
def test_fused_ensemble_input_is_calibrated_inputs_bit_for_bit(
    monkeypatch, torch_kernels, temperature
):
    """The evaluation pass's calibrated rows (fused_rows) are the greedy selection's
    (calibrated_inputs) bit for bit, so analyze may report greedy prefixes from the pass.
    Logit gaps beyond 700 at T > 6.7 once differed: fused_rows clamped the shifted scores at
    −700 before scaling them by 1/T, calibrated_inputs after (11,092 of 15,000 entries at
    T = 8 below)."""
    import zoolens.measure.fused as fused

    if torch_kernels:
        pytest.importorskip("torch")
    else:
        monkeypatch.setattr(fused, "optional_torch", lambda: None)
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((300, 50)) * 300).astype(np.float32)
    z[:, 0] = 900.0
    z[:5, 1] = -2000.0
    y = rng.integers(0, 50, 300)
    got = fused.fused_rows(z, y, temperature).ensemble_input
    want = fused.calibrated_inputs(z, temperature)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("torch_kernels", [True, False])
def test_skipping_the_clamp_and_the_prediction_changes_no_bit(monkeypatch, torch_kernels):
    """fused_rows raises shifted scores to -700 only when some entry is below it (or NaN),
    and the evaluation pass asks for no prediction: every output equals the always-clamping,
    always-predicting computation bit for bit, extreme and NaN rows included."""
    import zoolens.measure.fused as fused

    if torch_kernels:
        pytest.importorskip("torch")
    else:
        monkeypatch.setattr(fused, "optional_torch", lambda: None)
    rng = np.random.default_rng(3)
    fields = ("confidence_before", "confidence_after", "nll_before", "nll_after", "ensemble_input")
    for scale in (0.5, 30.0, 400.0, 3000.0):
        z = (rng.standard_normal((200, 30)) * scale).astype(np.float32)
        z[7, 3] = np.nan
        y = rng.integers(0, 30, 200)
        for temperature in (0.3, 1.0, 9.0):
            fast = fused.fused_rows(z, y, temperature, predict=False)
            with monkeypatch.context() as always:
                always.setattr(fused, "_clamp_needed", lambda lowest, scale: True)
                slow = fused.fused_rows(z, y, temperature)
            assert fast.prediction is None
            for name in fields:
                got, want = getattr(fast, name), getattr(slow, name)
                assert np.array_equal(got.view(np.uint8), want.view(np.uint8)), name


@pytest.mark.parametrize("block_bytes", [1, 8 * 37 * 5 + 3, 8 * 37 * 64, 2**30])
def test_every_row_result_is_independent_of_the_row_blocks(monkeypatch, block_bytes):
    """A row's outputs are those of the row alone, bit for bit, whatever blocks the rows are
    cut into (one row a block, a few, the defaults, all rows in one): the per-row results
    are written block by block and the confidences and NLL terms are then taken for all
    rows at once, so no row may depend on where its block starts or how long it is."""
    import zoolens.measure.fused as fused

    rng = np.random.default_rng(8)
    z = (rng.normal(size=(301, 37)) * 6).astype(np.float16)
    z[4, :] = -np.inf
    z[4, 2] = 0.0
    y = rng.integers(0, 37, 301)
    reference = [fused.fused_rows(z[i : i + 1], y[i : i + 1], 1.7) for i in range(len(z))]
    monkeypatch.setattr(fused, "_BLOCK_BYTES", block_bytes)
    fields = ("prediction", "confidence_before", "confidence_after", "nll_before", "nll_after")
    for combine in ("probs", "logits"):
        got = fused.fused_rows(z, y, 1.7, combine)
        alone = (
            reference
            if combine == "probs"
            else [fused.fused_rows(z[i : i + 1], y[i : i + 1], 1.7, combine) for i in range(len(z))]
        )
        for name in fields:
            want = np.concatenate([getattr(r, name) for r in alone])
            assert np.array_equal(getattr(got, name).view(np.uint8), want.view(np.uint8)), name
        want = np.concatenate([r.ensemble_input for r in alone])
        assert np.array_equal(got.ensemble_input.view(np.uint32), want.view(np.uint32))
