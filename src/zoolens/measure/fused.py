"""One fused pass over a model's scores: everything the evaluation tables need per example.

From one (n, C) block of scores z (logits or log-probabilities, any float dtype) and a
temperature T, with the shifted scores s = z − max z computed once per row:

- prediction: argmax z (lowest index on ties, as ``numpy.argmax``);
- before scaling (T = 1): top-1 confidence ``1 / Σ exp(s)`` and the NLL term
  ``log Σ exp(s) − s_y``;
- after scaling: ``t = s / T`` (= z/T − max z/T), top-1 confidence ``1 / Σ exp(t)``, NLL
  term ``log Σ exp(t) − t_y`` and the ensemble input: the calibrated probabilities
  ``exp(t) / Σ exp(t)`` ("probs") or the calibrated logits z / T ("logits").

Each row is read, converted and exponentiated once per temperature, instead of once per
quantity (``measure.calibration.top1_confidence``, ``negative_log_likelihood`` twice and
``measure.ensemble.ensemble_inputs``, which it replaces in the evaluation pass). Computed in
float64 (the precision of the functions it replaces), in cache-sized row blocks with
in-place operations, on torch's CPU kernels when torch is installed (its exp and row sums are
vectorised on every x86 CPU) and on numpy's otherwise (the light install,
``pip install zoolens``): the same operations in the same order, so the two agree to a few
float64 ulps (the exp implementations differ in the last bit); the ensemble input is float32. Against those functions
(tested): confidences and NLL terms agree to ~1e-15 relative, the ensemble input to one
float32 unit in the last place on rare entries (summation order of the softmax denominator).
Shifted scores below −700 are raised to −700 before ``exp`` as in ``measure.calibration``
(no subnormal arithmetic; invisible in the results).

Single-label truth only: multi-label NLL (the set likelihood) stays with
``measure.calibration.negative_log_likelihood``.

Paper: Gontijo-Lopes et al. (2021) Sec. 3 (temperature scaling before ensembling); Guo et
al. (2017) for NLL and ECE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from zoolens.errors import ZoolensError, optional_torch

_EXP_FLOOR = -700.0
# Rows per block: two float64 (rows, C) buffers of about this many bytes stay in cache.
_BLOCK_BYTES = 2 * 2**20


def _widen(torch: Any, s: Any, rows: Any, half: Any) -> Any:
    """``s.copy_(rows)`` (float64 ``s``), float16 ``rows`` through the float32 buffer
    ``half``: torch's float16 -> float32 and float32 -> float64 casts are vectorised, its
    direct float16 -> float64 cast is not (about 2.5x slower). Every step is exact, so the
    float64 values are the same."""
    if rows.dtype != torch.float16:
        return s.copy_(rows)
    return s.copy_(half[: rows.shape[0]].copy_(rows))


@dataclass
class FusedRows:
    """Per-example results of :func:`fused_rows` for n rows."""

    prediction: np.ndarray | None  # (n,) int64; None when not asked for (predict=False)
    confidence_before: np.ndarray  # (n,) float64, T = 1
    confidence_after: np.ndarray  # (n,) float64, at T
    nll_before: np.ndarray  # (n,) float64 per-row NLL at T = 1 (NaN without labels)
    nll_after: np.ndarray  # (n,) float64 at T
    ensemble_input: np.ndarray  # (n, C) float32: softmax(z/T) or z/T


def fused_rows(
    scores: np.ndarray,
    labels: np.ndarray | None,
    temperature: float,
    combine: str = "probs",
    *,
    out: np.ndarray | None = None,
    predict: bool = True,
) -> FusedRows:
    """The fused pass of the module doc on one block of rows.

    Parameters:
        scores: (n, C) logits or log-probabilities (float16, float32 or float64).
        labels: (n,) integer class ids, or None (NLL terms are then NaN).
        temperature: T > 0.
        combine: "probs" (ensemble input softmax(z/T)) or "logits" (z/T).
        out: optional (n, C) C-contiguous float32 array that receives the ensemble input.
        predict: False leaves the prediction out (None): the row maxima alone are cheaper
            than maxima with their positions (the evaluation pass has every prediction).

    Returns:
        :class:`FusedRows`.

    Examples:
        >>> import numpy as np
        >>> r = fused_rows(np.log(np.array([[0.7, 0.2, 0.1]])), np.array([0]), 1.0)
        >>> int(r.prediction[0]), round(float(r.confidence_before[0]), 6)
        (0, 0.7)
        >>> bool(np.isclose(r.nll_before[0], -np.log(0.7)))
        True
    """
    _check_temperature_combine(temperature, combine)
    z, out = _rows_and_out(scores, out)
    n, c = z.shape
    inv_t = 1.0 / temperature
    prediction = np.empty(n, dtype=np.int64) if predict else None
    conf = np.empty((2, n))
    nll = np.full((2, n), np.nan)
    y_all = None if labels is None else np.asarray(labels, dtype=np.int64)
    step = min(max(1, n), block_rows(c))
    torch = optional_torch()
    if torch is None:
        _fused_blocks_numpy(z, y_all, inv_t, combine, step, out, prediction, conf, nll)
    else:
        _fused_blocks_torch(torch, z, y_all, inv_t, combine, step, out, prediction, conf, nll)
    return FusedRows(
        prediction=prediction,
        confidence_before=conf[0],
        confidence_after=conf[1],
        nll_before=nll[0],
        nll_after=nll[1],
        ensemble_input=out,
    )


def _fused_blocks_torch(torch, z, y_all, inv_t, combine, step, out, prediction, conf, nll):
    """:func:`fused_rows`'s blocks on torch's CPU kernels (in place on the numpy buffers).

    Each block's row results (maxima, the two sums of exponentials, the predictions) are
    written with ``out=`` into per-call arrays, and what follows from them row by row
    (confidences, NLL terms) is computed once for all the call's rows after the blocks:
    fewer torch calls per block (each costs microseconds of Python and, with models in
    threads, a turn at the GIL), the same operations on the same values, so the same bits.
    """
    n, c = z.shape
    with torch.no_grad():
        src = torch.from_numpy(np.ascontiguousarray(z))
        dst = torch.from_numpy(out)
        s_buf = torch.empty((step, c), dtype=torch.float64)
        e_buf = torch.empty((step, c), dtype=torch.float64)
        half = torch.empty((step, c), dtype=torch.float32) if src.dtype == torch.float16 else None
        tops = np.empty((n, 1))  # each row's maximum
        sums = np.empty((2, n, 1))  # each row's Σ exp before and after scaling
        tops_t, sums_t = torch.from_numpy(tops), torch.from_numpy(sums)
        pred_t = None if prediction is None else torch.from_numpy(prediction.reshape(n, 1))
        for start in range(0, n, step):
            stop = min(n, start + step)
            rows = stop - start
            s, e = (s_buf, e_buf) if rows == step else (s_buf[:rows], e_buf[:rows])
            _widen(torch, s, src[start:stop], half)
            top = tops_t[start:stop]
            if pred_t is None:
                torch.amax(s, dim=1, keepdim=True, out=top)
            else:
                torch.max(s, dim=1, keepdim=True, out=(top, pred_t[start:stop]))
            s.sub_(top)
            # s itself stays unclamped: the calibrated values below are then those of
            # calibrated_inputs, (z − max)·(1/T) clamped once, bit for bit. Clamping is
            # skipped where it changes nothing (_clamp_needed).
            lowest = float(s.amin())
            if _clamp_needed(lowest, 1.0):
                torch.clamp(s, min=_EXP_FLOOR, out=e).exp_()
            else:
                torch.exp(s, out=e)
            torch.sum(e, dim=1, keepdim=True, out=sums_t[0, start:stop])
            s.mul_(inv_t)
            if _clamp_needed(lowest, inv_t):
                s.clamp_(min=_EXP_FLOOR)
            torch.exp(s, out=e)
            total = sums_t[1, start:stop]
            torch.sum(e, dim=1, keepdim=True, out=total)
            if combine == "probs":  # the float64 quotient rounded to float32 as it is stored
                torch.div(e, total, out=dst[start:stop])
            else:
                dst[start:stop] = _widen(torch, s, src[start:stop], half).mul_(inv_t)
        # Row by row, for all the call's rows at once: 1/Σ, and log Σ − s_y with s_y the
        # shifted score at the label, fl(z_y − max) (the subtraction the block made).
        totals = torch.from_numpy(sums[:, :, 0])
        torch.reciprocal(totals, out=torch.from_numpy(conf))
        if y_all is not None:
            s_y = torch.from_numpy(z[np.arange(n), y_all].astype(np.float64) - tops[:, 0])
            nll_t = torch.from_numpy(nll)
            torch.sub(torch.log(totals[0]), s_y, out=nll_t[0])
            torch.sub(torch.log(totals[1]), s_y * inv_t, out=nll_t[1])


def _fused_blocks_numpy(z, y_all, inv_t, combine, step, out, prediction, conf, nll):
    """:func:`fused_rows`'s blocks on numpy's kernels: the torch version's operations, in its
    order (max, shift, clamp, exp, row sum, reciprocal / log; then · 1/T)."""
    n, c = z.shape
    s_buf = np.empty((step, c))
    e_buf = np.empty((step, c))
    index = np.arange(step)
    for start in range(0, n, step):
        stop = min(n, start + step)
        rows = stop - start
        s, e = s_buf[:rows], e_buf[:rows]
        s[...] = z[start:stop]
        if prediction is None:
            s -= s.max(axis=1, keepdims=True)
        else:
            arg = s.argmax(axis=1)
            prediction[start:stop] = arg
            s -= s[index[:rows], arg][:, None]
        s_y = None if y_all is None else s[index[:rows], y_all[start:stop]]  # a copy
        lowest = float(s.min())
        if _clamp_needed(lowest, 1.0):
            np.maximum(s, _EXP_FLOOR, out=e)  # s stays unclamped, as in the torch version
            np.exp(e, out=e)
        else:
            np.exp(s, out=e)
        total = e.sum(axis=1)
        np.reciprocal(total, out=conf[0, start:stop])
        if s_y is not None:
            np.subtract(np.log(total), s_y, out=nll[0, start:stop])
        s *= inv_t
        if _clamp_needed(lowest, inv_t):
            np.maximum(s, _EXP_FLOOR, out=s)
        np.exp(s, out=e)
        total = e.sum(axis=1)
        np.reciprocal(total, out=conf[1, start:stop])
        if s_y is not None:
            np.subtract(np.log(total), s_y * inv_t, out=nll[1, start:stop])
        if combine == "probs":
            e /= total[:, None]
            out[start:stop] = e
        else:
            np.multiply(z[start:stop], inv_t, out=s, dtype=np.float64)
            out[start:stop] = s


def _clamp_needed(lowest: float, scale: float) -> bool:
    """Whether raising the block's shifted scores times ``scale`` to −700 changes any: its
    smallest entry ``lowest`` times ``scale`` is below −700 (float64 products keep the order
    of their factors, so the smallest product is ``lowest · scale``), or NaN."""
    return not lowest * scale >= _EXP_FLOOR


def block_rows(num_classes: int) -> int:
    """Rows per block of :func:`fused_rows` and :func:`calibrated_inputs`: two float64
    (rows, C) buffers of about ``_BLOCK_BYTES`` each. Callers that calibrate a long run of
    rows piece by piece cut it at multiples of this, so each piece is computed in the same
    blocks as the whole run (``study.greedy``)."""
    return max(1, _BLOCK_BYTES // (8 * max(1, num_classes)))


def calibrated_inputs(
    scores: np.ndarray,
    temperature: float,
    combine: str = "probs",
    *,
    out: np.ndarray | None = None,
    row_stats: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """The ensemble input alone: ``softmax(z/T)`` ("probs") or ``z/T`` ("logits") as (n, C)
    float32, with :func:`fused_rows`'s arithmetic (one exp per entry, torch's CPU kernels
    when installed, numpy's otherwise);
    equals ``measure.ensemble.ensemble_inputs`` up to one float32 ulp on rare entries.

    Entry by entry, "probs" is ``fl32(exp(max(((z − m) · (1/T)), −700)) / s)`` in float64,
    with m the row's maximum and s the row's sum of those exponentials; ``row_stats`` (two
    (n,) float64 arrays) receives (m, s), from which :func:`calibrated_entries` recomputes
    any entry bit for bit. ``out``: an optional (n, C) C-contiguous float32 array to fill.

    Examples:
        >>> import numpy as np
        >>> calibrated_inputs(np.log(np.array([[0.5, 0.25, 0.25]])), 1.0).round(6).tolist()
        [[0.5, 0.25, 0.25]]
    """
    _check_temperature_combine(temperature, combine)
    z, out = _rows_and_out(scores, out)
    n, c = z.shape
    if combine == "logits":
        out[...] = np.asarray(z, dtype=np.float64) / temperature
        return out
    inv_t = 1.0 / temperature
    step = min(max(1, n), block_rows(c))
    torch = optional_torch()
    if torch is None:
        _calibrated_blocks_numpy(z, inv_t, step, out, row_stats)
        return out
    with torch.no_grad():
        src, dst = torch.from_numpy(np.ascontiguousarray(z)), torch.from_numpy(out)
        s_buf = torch.empty((step, c), dtype=torch.float64)
        half = torch.empty((step, c), dtype=torch.float32)
        # each row's maximum and sum, written with out= (as in _fused_blocks_torch): into
        # the caller's row_stats when given
        if row_stats is None:
            tops = torch.empty((n, 1), dtype=torch.float64)
            totals = torch.empty_like(tops)
        else:
            tops, totals = (torch.from_numpy(a).unsqueeze(1) for a in row_stats)
        for start in range(0, n, step):
            stop = min(n, start + step)
            s = _widen(
                torch,
                s_buf if stop - start == step else s_buf[: stop - start],
                src[start:stop],
                half,
            )
            top = tops[start:stop]
            torch.amax(s, dim=1, keepdim=True, out=top)
            s.sub_(top).mul_(inv_t).clamp_(min=_EXP_FLOOR).exp_()
            total = totals[start:stop]
            torch.sum(s, dim=1, keepdim=True, out=total)
            torch.div(s, total, out=dst[start:stop])  # the float64 quotient, stored as float32
    return out


def _calibrated_blocks_numpy(z, inv_t, step, out, row_stats):
    """:func:`calibrated_inputs`' "probs" blocks on numpy's kernels (the torch version's
    operations, in its order)."""
    n, c = z.shape
    buffer = np.empty((step, c))
    for start in range(0, n, step):
        stop = min(n, start + step)
        s = buffer[: stop - start]
        s[...] = z[start:stop]
        top = s.max(axis=1, keepdims=True)
        s -= top
        s *= inv_t
        np.maximum(s, _EXP_FLOOR, out=s)
        np.exp(s, out=s)
        total = s.sum(axis=1, keepdims=True)
        if row_stats is not None:
            row_stats[0][start:stop] = top[:, 0]
            row_stats[1][start:stop] = total[:, 0]
        s /= total
        out[start:stop] = s


def calibrated_entries(
    values: np.ndarray,
    row_max: np.ndarray,
    row_total: np.ndarray,
    temperature: float,
    combine: str = "probs",
) -> np.ndarray:
    """Entries of :func:`calibrated_inputs` recomputed from the scores ``values`` at those
    entries and their rows' ``row_stats`` (``row_max``, ``row_total``, broadcast against
    ``values``): the same float64 operations entry by entry, so the float32 results are
    bit for bit those of the whole block (torch's exp, and numpy's on contiguous float64,
    give an entry the same bits wherever it sits in an array; ``tests/test_measure_fused.py`` checks both facts). "logits"
    needs no row statistics (``row_stats`` is left untouched then).

    Lets a caller keep two float64 numbers per row instead of a model's whole calibrated
    rows, and read back only the entries it needs (``study.greedy``'s pools larger than
    the memory budget).
    """
    _check_temperature_combine(temperature, combine)
    z = np.asarray(values)
    if combine == "logits":
        return (np.asarray(z, dtype=np.float64) / temperature).astype(np.float32)
    shape = np.broadcast_shapes(z.shape, np.shape(row_max), np.shape(row_total))
    torch = optional_torch()
    if torch is None:  # numpy's exp, like torch's, gives an entry the same bits anywhere
        s = np.array(np.broadcast_to(z, shape), dtype=np.float64)
        s -= np.broadcast_to(row_max, shape)
        s *= 1.0 / temperature
        np.maximum(s, _EXP_FLOOR, out=s)
        np.exp(s, out=s)
        s /= np.broadcast_to(row_total, shape)
        return s.astype(np.float32)
    with torch.no_grad():
        # np.array copies: the in-place operations below never touch the caller's arrays
        s = torch.from_numpy(np.array(np.broadcast_to(z, shape), dtype=np.float64))
        top = torch.from_numpy(np.array(np.broadcast_to(row_max, shape), dtype=np.float64))
        total = torch.from_numpy(np.array(np.broadcast_to(row_total, shape), dtype=np.float64))
        s.sub_(top).mul_(1.0 / temperature).clamp_(min=_EXP_FLOOR).exp_()
        return s.div_(total).to(torch.float32).numpy()


def _rows_and_out(scores: Any, out: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The (examples, classes) scores as an array, and ``out`` (a new float32 block when
    None) for the calibrated rows."""
    z = np.asarray(scores)
    if z.ndim != 2:
        raise ZoolensError(f"scores must be (examples, classes), got shape {z.shape}")
    return z, np.empty(z.shape, dtype=np.float32) if out is None else out


def _check_temperature_combine(temperature: float, combine: str) -> None:
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ZoolensError(f"temperature must be positive and finite, got {temperature}")
    if combine not in ("probs", "logits"):
        raise ZoolensError(f"combine must be 'probs' or 'logits', got {combine!r}")


def fused_rows_tensor(
    scores: Any, labels: Any, temperature: float, combine: str = "probs"
) -> dict[str, Any]:
    """:func:`fused_rows`'s arithmetic on whole torch tensors on any device (a GPU holds a
    model's evaluation rows at once): ``scores`` (n, C) tensor, ``labels`` (n,) int64 tensor.
    Returns a dict of tensors with :class:`FusedRows`' field names (float64; the ensemble
    input float32). ``benchmarks/cuda_check.py`` times it on CUDA against :func:`fused_rows`.
    """
    import torch

    if not (temperature > 0 and math.isfinite(temperature)):
        raise ZoolensError(f"temperature must be positive and finite, got {temperature}")
    inv_t = 1.0 / temperature
    with torch.no_grad():
        s = scores.to(torch.float64)
        top, prediction = s.max(dim=1, keepdim=True)
        s = s - top
        s_y = s.gather(1, labels[:, None])[:, 0]
        total = s.clamp(min=_EXP_FLOOR).exp().sum(dim=1)  # s stays unclamped (fused_rows)
        before = (total.reciprocal(), total.log() - s_y)
        t = s.mul_(inv_t).clamp_(min=_EXP_FLOOR)
        e = t.exp()
        total = e.sum(dim=1)
        ensemble_input = (
            e.div_(total[:, None]) if combine == "probs" else scores.to(torch.float64) * inv_t
        ).to(torch.float32)
        return {
            "prediction": prediction[:, 0],
            "confidence_before": before[0],
            "confidence_after": total.reciprocal(),
            "nll_before": before[1],
            "nll_after": total.log() - s_y * inv_t,
            "ensemble_input": ensemble_input,
        }
