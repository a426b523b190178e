"""Temperature scaling, negative log-likelihood and calibration error.

A model's "scores" are logits or log-probabilities (both are scores: ``softmax(scores / T)``
is the model's distribution at temperature T). Temperature scaling (Guo et al. 2017) picks
the T that minimises the mean negative log-likelihood on the calibration split; the paper
(Gontijo-Lopes et al. 2021, Sec. 3) calibrates every model this way before ensembling and
reports T between 0.01 and 1.7. Every function here reads its input in row chunks and works
in float64 inside a chunk only, so a 50,000 x 1,000 float16/float32 score matrix is never
copied whole to float64.

Labels are (N,) integer class ids or an (N, C) 0/1 multi-label matrix. With multi-label
truth the likelihood of an example is the probability of its *set* of valid labels,
``sum_{k in S} q[k]`` (the probability that the top-1 is right, in expectation), and rows
with no valid label are left out of NLL and the temperature fit (they carry no likelihood).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import DTypeLike

from zoolens.errors import ZoolensError, optional_torch
from zoolens.measure.agreement import correctness

__all__ = [
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
]

# A bracket this narrow pins T to ~1e-12 relative.
_BRACKET_TOL = 1e-12

# Rows per chunk are chosen so that one float64 chunk is about this many bytes.
_CHUNK_BYTES = 16 * 2**20


def _chunk_rows(num_classes: int, chunk_rows: int | None) -> int:
    if chunk_rows is not None:
        return max(1, int(chunk_rows))
    return max(1, _CHUNK_BYTES // (8 * max(1, num_classes)))


def _check_scores_labels(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(scores)
    y = np.asarray(labels)
    if z.ndim != 2:
        raise ZoolensError(f"scores must be (examples, classes), got shape {z.shape}")
    if z.shape[0] == 0:
        raise ZoolensError("scores have no rows: nothing to calibrate on")
    if y.shape[0] != z.shape[0] or y.ndim not in (1, 2):
        raise ZoolensError(f"labels of shape {y.shape} do not match scores of shape {z.shape}")
    if y.ndim == 2 and y.shape[1] != z.shape[1]:
        raise ZoolensError(f"multi-label truth has {y.shape[1]} classes, scores have {z.shape[1]}")
    if y.ndim == 1:
        if not np.issubdtype(y.dtype, np.integer):
            raise ZoolensError(f"labels must be integer class ids, got dtype {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= z.shape[1]):
            raise ZoolensError(f"a label lies outside the {z.shape[1]} classes of the scores")
    return z, y


# exp of an argument below about -708 gives a subnormal result and runs ~10x slower; terms
# this small cannot change a float64 sum that contains exp(0) = 1, so t is clamped here.
_EXP_FLOOR = -700.0
# Working buffers of the objective pass stay near this size (cache resident).
_PASS_BYTES = 2 * 2**20


def _single_label_terms(z, y, beta, derivatives, t, e):
    """Sums over the rows of ℓ, ℓ', ℓ'' for single labels on numpy's kernels (the light
    install; with torch, :meth:`_Objective._torch_terms` makes the same operations in the same
    order), in the float64 buffers ``t``, ``e``.

    t = β·z − max(β·z) <= 0, so LSE(s) − s_y = log Σ exp(t) − t_y, E_p[s] − s_y = E_p[t] − t_y
    and Var_p(s) = Var_p(t) = E_p[t²] − E_p[t]² (t is shifted so its most probable value is
    0, which keeps that cancellation small; f'' only steers the Newton steps, f' alone fixes
    the optimum). float64 throughout.
    """
    n = z.shape[0]
    np.multiply(z, beta, out=t, dtype=np.float64)
    t -= t.max(axis=1, keepdims=True)
    t_y = t[np.arange(n), np.asarray(y, dtype=np.int64)]  # a copy
    np.maximum(t, _EXP_FLOOR, out=t)
    np.exp(t, out=e)
    zsum = e.sum(axis=1)
    f = float(np.log(zsum).sum() - t_y.sum())
    if not derivatives:
        return f, 0.0, 0.0
    e *= t  # e·t
    mean_t = e.sum(axis=1) / zsum
    e *= t  # e·t²
    var_t = np.maximum(e.sum(axis=1) / zsum - mean_t * mean_t, 0.0)
    g = t_y - mean_t
    return f, float(g.sum()), float((var_t - g).sum())


def _multi_label_terms(z, y, beta, derivatives):
    """Sums of ℓ, ℓ', ℓ'' with the set likelihood: ℓ = LSE(s) − LSE_S(s), S the valid labels."""
    s = z.astype(np.float64) * beta
    valid = y != 0
    m = s.max(axis=1, keepdims=True)
    e = np.exp(np.maximum(s - m, _EXP_FLOOR))
    zsum = e.sum(axis=1)
    s_valid = np.where(valid, s, -np.inf)
    m_s = s_valid.max(axis=1, keepdims=True)  # finite: rows without a valid label are dropped
    e_s = np.where(valid, np.exp(np.maximum(s_valid - m_s, _EXP_FLOOR)), 0.0)
    zs = e_s.sum(axis=1)
    nll = (m[:, 0] + np.log(zsum)) - (m_s[:, 0] + np.log(zs))
    if not derivatives:
        return float(nll.sum()), 0.0, 0.0
    p = e / zsum[:, None]
    ps = e_s / zs[:, None]
    mean_s = np.einsum("ij,ij->i", p, s)
    mean_ss = np.einsum("ij,ij->i", ps, np.where(valid, s, 0.0))
    d = s - mean_s[:, None]
    ds = np.where(valid, s - mean_ss[:, None], 0.0)
    var_s = np.einsum("ij,ij,ij->i", p, d, d)
    var_ss = np.einsum("ij,ij,ij->i", ps, ds, ds)
    g = mean_ss - mean_s
    return float(nll.sum()), float(g.sum()), float((var_s - var_ss - g).sum())


class _Objective:
    """Mean NLL of softmax(z / e^u) and its u-derivatives, one fused chunked pass per call.

    With s = β·z, β = e^{−u} (so ds/du = −s), p = softmax(s) and p_S the renormalised p on
    the valid set S (S = {y} for single labels), per row:
        ℓ   = LSE(s) − LSE_S(s)
        ℓ'  = E_{p_S}[s] − E_p[s]
        ℓ'' = Var_p(s) + E_p[s] − Var_{p_S}(s) − E_{p_S}[s] = Var_p(s) − Var_{p_S}(s) − ℓ'.
    """

    def __init__(self, z: np.ndarray, y: np.ndarray, chunk_rows: int | None):
        self.z, self.y = z, y
        num_classes = z.shape[1]
        if chunk_rows is None:
            chunk_rows = (
                _PASS_BYTES // (8 * num_classes) if y.ndim == 1 else _chunk_rows(num_classes, None)
            )
        self.rows = max(1, int(chunk_rows))
        self.passes = 0
        self._t: np.ndarray | None = None
        self._e: np.ndarray | None = None
        self._half: np.ndarray | None = None
        self._chunks: list | None = None  # torch: each chunk's scores and label column

    def __call__(self, u: float, derivatives: bool = True) -> tuple[float, float, float]:
        z, y = self.z, self.y
        beta = math.exp(-u)
        n, num_classes = z.shape
        rows = min(self.rows, n)
        torch = optional_torch() if y.ndim == 1 else None
        if y.ndim == 1 and self._t is None:
            self._t = np.empty((rows, num_classes))
            self._e = np.empty((rows, num_classes))
            if z.dtype == np.float16 and torch is not None:
                self._half = np.empty((rows, num_classes), dtype=np.float32)
        if torch is not None:
            chunk_terms = self._torch_terms(torch, beta, derivatives)
        else:
            chunk_terms = []
            for lo in range(0, n, rows):
                zc, yc = z[lo : lo + rows], y[lo : lo + rows]
                if y.ndim == 1:
                    k = zc.shape[0]
                    assert self._t is not None and self._e is not None  # allocated above
                    chunk_terms.append(
                        _single_label_terms(zc, yc, beta, derivatives, self._t[:k], self._e[:k])
                    )
                else:
                    chunk_terms.append(_multi_label_terms(zc, yc, beta, derivatives))
        f = g = h = 0.0
        for terms in chunk_terms:  # chunk by chunk, in row order
            f, g, h = f + terms[0], g + terms[1], h + terms[2]
        self.passes += 1
        if not (math.isfinite(f) and math.isfinite(g) and math.isfinite(h)):
            # NaN propagates into the sums, so one check per pass replaces a scan of the input.
            raise ZoolensError(
                "scores contain NaN or +inf (or -inf at a true label): the likelihood is not finite"
            )
        if not derivatives:
            return f / n, math.nan, math.nan
        return f / n, g / n, h / n

    def _torch_terms(self, torch, beta, derivatives):
        """Each chunk's sums of ℓ, ℓ', ℓ'' for single labels on torch's CPU kernels, in place
        in the float64 buffers: t = β·z − max(β·z) <= 0, then the sums of
        :func:`_single_label_terms` with the same operations in the same order (its
        docstring has the algebra). The chunks' views and label columns are made once per
        objective, and the sums come back to Python once per pass: a pass makes ~25 torch
        calls a chunk instead of ~35 and no per-chunk sync, which matters because the
        models' fits run side by side in threads that take turns at the GIL for each call.
        """
        if self._chunks is None:
            # float16 -> float32 -> float64 on torch's vectorised casts (its direct float16
            # -> float64 cast is not vectorised); both steps exact. A strided subsample (the
            # warm start's) is made contiguous once here instead of once a pass.
            src = torch.from_numpy(np.ascontiguousarray(self.z))
            labels = torch.from_numpy(np.asarray(self.y, dtype=np.int64).reshape(-1, 1))
            self._chunks = list(zip(src.split(self.rows), labels.split(self.rows)))
        t_buf, e_buf = torch.from_numpy(self._t), torch.from_numpy(self._e)
        half_buf = None if self._half is None else torch.from_numpy(self._half)
        full = t_buf.shape[0]
        sums = []
        with torch.no_grad():
            for zc, yc in self._chunks:
                k = zc.shape[0]
                t, e = (t_buf, e_buf) if k == full else (t_buf[:k], e_buf[:k])
                if half_buf is None:
                    t.copy_(zc)
                else:
                    t.copy_((half_buf if k == full else half_buf[:k]).copy_(zc))
                t.mul_(beta)
                t.sub_(torch.amax(t, dim=1, keepdim=True))
                t_y = torch.gather(t, 1, yc)  # (k, 1), a copy: the clamp below leaves it
                t.clamp_(min=_EXP_FLOOR)
                torch.exp(t, out=e)
                zsum = e.sum(dim=1)
                f = torch.log(zsum).sum() - t_y.sum()
                if not derivatives:
                    sums.append(f)
                    continue
                e.mul_(t)  # e·t
                mean_t = e.sum(dim=1) / zsum
                var_t = (e.mul_(t).sum(dim=1) / zsum - mean_t * mean_t).clamp_(min=0.0)  # e·t²
                g = t_y[:, 0] - mean_t
                sums.extend((f, g.sum(), (var_t - g).sum()))
            values = torch.stack(sums).tolist() if sums else []
        if not derivatives:
            return [(f, 0.0, 0.0) for f in values]
        return [tuple(values[i : i + 3]) for i in range(0, len(values), 3)]


def _valid_rows(y: np.ndarray) -> np.ndarray | None:
    """Rows that carry a likelihood (multi-label rows with no valid label do not)."""
    if y.ndim == 1:
        return None
    keep = (y != 0).any(axis=1)
    return None if keep.all() else np.flatnonzero(keep)


def _prepare(scores: np.ndarray, labels: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    z, y = _check_scores_labels(scores, labels)
    keep = _valid_rows(y)
    if keep is not None:
        if keep.size == 0:
            raise ZoolensError(f"no example has a valid label: cannot {what}")
        z, y = z[keep], y[keep]
    return z, y


def nll_and_derivatives(
    scores: np.ndarray,
    labels: np.ndarray,
    log_temperature: float,
    *,
    derivatives: bool = True,
    chunk_rows: int | None = None,
) -> tuple[float, float, float]:
    """Mean NLL of ``softmax(scores / T)`` and its first two derivatives w.r.t. ``u = log T``.

    One fused pass over ``scores`` in row chunks (float64 inside a chunk). Returns
    ``(f, f', f'')``; the derivatives are NaN when ``derivatives=False``. Multi-label rows
    without a valid label are skipped (see module doc). This is the objective that
    :func:`fit_temperature` minimises; tests check it against finite differences.
    """
    z, y = _prepare(scores, labels, "compute a likelihood")
    return _Objective(z, y, chunk_rows)(log_temperature, derivatives)


@dataclass(frozen=True)
class TemperatureFit:
    """Result of :func:`fit_temperature`.

    temperature: the fitted T (always finite, within the bounds); nll: mean NLL at T on the
    fitting rows; converged: the optimality test passed (or the objective is flat, or the
    optimum is a bound); at_bound: T sits on a bound of the search interval because the
    minimum lies at or beyond it; iterations: full passes over the scores (the warm start on
    a subsample not counted); message: one line saying what happened.
    """

    temperature: float
    nll: float
    converged: bool
    at_bound: bool
    iterations: int
    message: str


@dataclass
class _NewtonState:
    u: float
    f: float
    g: float
    h: float
    converged: bool = False
    at_bound: bool = False
    message: str = ""


def _newton_log_t(
    objective: _Objective, lo: float, hi: float, u: float, *, max_iter: int, tol: float
) -> _NewtonState:
    """Safeguarded Newton on u = log T in [lo, hi] (see :func:`fit_temperature`)."""
    edge_lo, edge_hi = lo, hi
    edges_visited: set[float] = set()
    f, g, h = objective(u)
    evaluations = 1
    # Safeguards as in Numerical Recipes' rtsafe: bisect when Newton would leave the bracket
    # or when its step is not at least halving every two iterations (slow, e.g. NLL -> 0
    # doubly exponentially as T -> 0 on a separable model).
    step_last = step_before = hi - lo
    while True:
        if (u == edge_lo and g >= 0) or (u == edge_hi and g <= 0):
            # On a bound with the gradient pointing outward (or flat): the minimum within the
            # interval is the bound; the unconstrained one lies at or beyond it.
            return _NewtonState(
                u,
                f,
                g,
                h,
                True,
                True,
                f"minimum at or beyond the bound T = {math.exp(u):g} (dNLL/dlogT = {g:.3g} there)",
            )
        if g == 0.0:
            return _NewtonState(u, f, g, h, True, False, "gradient exactly zero")
        newton_step = -g / h if h > 0 else math.nan
        if abs(newton_step) <= math.sqrt(tol):
            # Quadratic convergence: after this step the error in u is ~step² <= tol. Take it
            # without another pass; the NLL there follows from the Taylor expansion (error
            # ~|step|³).
            u_new = min(max(u + newton_step, lo), hi)
            step = u_new - u
            return _NewtonState(
                u_new,
                f + g * step + 0.5 * h * step * step,
                g,
                h,
                True,
                False,
                "Newton step below tolerance in log T",
            )
        # The sign of f' is non-decreasing in u: it tells on which side the minimiser lies.
        if g > 0:
            hi = u
        else:
            lo = u
        if hi - lo <= _BRACKET_TOL:
            return _NewtonState(u, f, g, h, True, False, "bracket below tolerance in log T")
        if evaluations >= max_iter:
            return _NewtonState(
                u,
                f,
                g,
                h,
                False,
                False,
                f"no convergence after {max_iter} passes (|dNLL/dlogT| = {abs(g):.3g})",
            )
        target = u + newton_step
        newton = lo < target < hi and abs(newton_step) <= 0.5 * abs(step_before)
        if not newton:
            # If the bracket still ends on an unvisited bound on the side the gradient points
            # to, look at that bound first: a fit that wants T -> 0 or T -> inf is then
            # settled in one pass instead of ~40 bisections.
            edge = edge_lo if g > 0 else edge_hi
            if (lo == edge or hi == edge) and edge not in edges_visited:
                edges_visited.add(edge)
                target = edge
            else:
                target = 0.5 * (lo + hi)
        step_before, step_last = step_last, target - u
        u = target
        f, g, h = objective(u)
        evaluations += 1


def fit_temperature(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    bounds: tuple[float, float] = (1e-3, 1e3),
    max_iter: int = 100,
    tol: float = 1e-8,
    chunk_rows: int | None = None,
    warm_start_rows: int = 4096,
) -> TemperatureFit:
    """Temperature T minimising the mean NLL of ``softmax(scores / T)`` (docs/design.md sec. 3).

    Optimises over ``u = log T`` within ``[log bounds[0], log bounds[1]]`` by a safeguarded
    Newton method. Each iteration is one fused chunked pass over ``scores`` giving the mean NLL
    f(u) and its derivatives f'(u), f''(u) (:func:`nll_and_derivatives`). The NLL is convex in
    β = 1/T, so the sign of f'(u) = −β·dF/dβ is non-decreasing in u: a bracket [lo, hi] of the
    minimiser is kept from the signs seen so far (f' > 0 → minimiser below u, f' < 0 → above),
    a Newton step ``u − f'/f''`` is taken when f'' > 0, it lands strictly inside the bracket
    and it is at most half the step before last (Numerical Recipes' ``rtsafe`` rule), and the
    bracket is bisected otherwise. So the method cannot diverge, and it never returns T ≤ 0,
    NaN or inf.

    Warm start: with more than 2·``warm_start_rows`` rows, the same method first runs on an
    evenly strided subsample of about that many rows (cheap), and the full-data Newton starts
    from its answer; the result is the full-data optimum either way (typically 2-4 full passes
    instead of 5-12).

    Stopping: once the Newton step is at most ``sqrt(tol)`` in u, the step is taken without
    another pass (quadratic convergence: the error in log T is then ~tol) and the NLL there is
    extrapolated by Taylor (error ~|step|³); or the bracket is below 1e-12 (converged); or
    ``max_iter`` passes (converged=False, the message says so). When Newton would leave the
    bracket toward a bound not yet visited, the bound itself is evaluated next; if the
    gradient there points outward, the constrained minimum is the bound: ``at_bound=True``
    (and converged=True: the bound is optimal within the interval). E.g. a model right with a
    unique top score on every example wants T → 0; uninformative scores want T → ∞. Exactly
    constant rows (all classes equal) make the objective flat: T = 1 is kept, converged, and
    the message says so.

    Paper: Gontijo-Lopes et al. (2021) Sec. 3 calibrate every model by temperature scaling
    (Guo et al. 2017) before ensembling.

    Parameters
    ----------
    scores : (N, C) array
        Logits or log-probabilities.
    labels : (N,) integer array or (N, C) 0/1 array
        True classes (or the set of valid classes of each example).
    bounds, max_iter, tol, chunk_rows, warm_start_rows
        Search interval for T, Newton passes, tolerance in log T, rows per pass chunk,
        subsample size of the warm start.

    Returns
    -------
    TemperatureFit
        ``temperature``, ``nll`` at it, ``converged``, ``at_bound``, ``iterations``, a
        one-line ``message``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = rng.integers(0, 3, 2000)
    >>> logits = 2.0 * (np.eye(3)[labels] + rng.normal(size=(2000, 3)))  # over-confident
    >>> fit = fit_temperature(logits, labels)
    >>> fit.converged, fit.temperature > 1.0
    (True, True)
    >>> fit.nll < negative_log_likelihood(logits, labels, 1.0)
    True
    """
    lo_t, hi_t = float(bounds[0]), float(bounds[1])
    if not (0 < lo_t <= 1.0 <= hi_t < math.inf):
        raise ZoolensError(
            f"temperature bounds must satisfy 0 < low <= 1 <= high < inf, got {bounds}"
        )
    z, y = _prepare(scores, labels, "fit a temperature")
    lo, hi = math.log(lo_t), math.log(hi_t)
    n = z.shape[0]
    u0 = 0.0
    if warm_start_rows and n > 2 * warm_start_rows:
        stride = n // warm_start_rows
        sub = _Objective(z[::stride], y[::stride], chunk_rows)
        u0 = _newton_log_t(sub, lo, hi, 0.0, max_iter=max_iter, tol=1e-6).u
    objective = _Objective(z, y, chunk_rows)
    state = _newton_log_t(objective, lo, hi, u0, max_iter=max_iter, tol=tol)
    if state.g == 0.0 and state.h == 0.0 and bool((z.max(axis=1) == z.min(axis=1)).all()):
        # Every row constant: softmax is uniform at any T, the objective is flat.
        f1, _, _ = objective(0.0, derivatives=False)
        return TemperatureFit(
            1.0,
            f1,
            True,
            False,
            objective.passes,
            "objective is flat (every row of scores is constant): T = 1 kept",
        )
    if state.u == lo or state.u == hi:
        temperature = lo_t if state.u == lo else hi_t  # exactly the bound, no exp/log round trip
    else:
        temperature = min(max(math.exp(state.u), lo_t), hi_t)
    return TemperatureFit(
        temperature, state.f, state.converged, state.at_bound, objective.passes, state.message
    )


def softmax(
    scores: np.ndarray,
    temperature: float = 1.0,
    *,
    dtype: DTypeLike = np.float32,
    chunk_rows: int | None = None,
) -> np.ndarray:
    """Stable softmax of ``scores / T`` over the last axis: ``exp(s − max s) / Σ exp(s − max s)``.

    Computed in float64 cache-sized row chunks and returned in ``dtype`` (float32 by default,
    float64 for precise work). ``scores`` may be (N, C) or (C,). Shifted scores below −700 are
    raised to −700 before ``exp`` (avoiding slow subnormal arithmetic): such a probability is
    then ~1e-304 instead of smaller, invisible in float32 and irrelevant in float64.

    Parameters
    ----------
    scores : (N, C) or (C,) array
    temperature : float > 0
    dtype : numpy dtype of the result
    chunk_rows : rows per float64 chunk (default: about 8 MiB)

    Returns
    -------
    Probabilities shaped like ``scores``, rows summing to 1.

    Examples
    --------
    >>> softmax(np.array([0.0, np.log(3.0)]), dtype=np.float64).tolist()
    [0.25, 0.75]
    >>> softmax(np.array([0.0, np.log(3.0)]), temperature=np.inf)
    Traceback (most recent call last):
    ...
    zoolens.errors.ZoolensError: temperature must be positive and finite, got inf
    """
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ZoolensError(f"temperature must be positive and finite, got {temperature}")
    z = np.asarray(scores)
    if z.ndim == 1:
        return softmax(z[None, :], temperature, dtype=dtype)[0]
    out = np.empty(z.shape, dtype=dtype)
    step = chunk_rows or max(1, _PASS_BYTES // (8 * max(1, z.shape[-1])))
    buf = np.empty((min(step, z.shape[0]), z.shape[-1]))
    inv_t = 1.0 / temperature
    for start in range(0, z.shape[0], step):
        s = buf[: min(step, z.shape[0] - start)]
        np.multiply(z[start : start + step], inv_t, out=s, dtype=np.float64)
        s -= s.max(axis=-1, keepdims=True)
        np.maximum(s, _EXP_FLOOR, out=s)  # no subnormal exp (slow); changes nothing visible
        np.exp(s, out=s)
        s /= s.sum(axis=-1, keepdims=True)
        out[start : start + step] = s
    return out


def negative_log_likelihood(
    scores: np.ndarray,
    labels: np.ndarray,
    temperature: float = 1.0,
    *,
    chunk_rows: int | None = None,
) -> float:
    """Mean negative log-likelihood of the truth under ``softmax(scores / T)``.

    ``mean_n [LSE(z_n / T) − z_n[y_n] / T]``; with multi-label truth the set likelihood
    ``−log Σ_{k∈S_n} q_n[k]`` over rows with at least one valid label (module doc).
    """
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ZoolensError(f"temperature must be positive and finite, got {temperature}")
    f, _, _ = nll_and_derivatives(
        scores, labels, math.log(temperature), derivatives=False, chunk_rows=chunk_rows
    )
    return f


def top1_confidence(
    scores: np.ndarray, temperature: float = 1.0, *, chunk_rows: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(confidence, prediction)`` of ``softmax(scores / T)``: max probability and argmax.

    Chunked float64; confidence is float64 (N,), prediction int64 (N,) with the lowest index on
    ties (the argmax does not depend on T > 0). Feed these to :func:`reliability_bins`.
    """
    z = np.asarray(scores)
    if z.ndim != 2:
        raise ZoolensError(f"scores must be (examples, classes), got shape {z.shape}")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ZoolensError(f"temperature must be positive and finite, got {temperature}")
    conf = np.empty(z.shape[0], dtype=np.float64)
    pred = np.empty(z.shape[0], dtype=np.int64)
    step = chunk_rows or max(1, _PASS_BYTES // (8 * max(1, z.shape[1])))
    buf = np.empty((min(step, z.shape[0]), z.shape[1]))
    inv_t = 1.0 / temperature
    for start in range(0, z.shape[0], step):
        s = buf[: min(step, z.shape[0] - start)]
        np.multiply(z[start : start + step], inv_t, out=s, dtype=np.float64)
        pred[start : start + step] = s.argmax(axis=1)
        s -= s.max(axis=1, keepdims=True)
        np.maximum(s, _EXP_FLOOR, out=s)
        np.exp(s, out=s)
        # max prob = exp(0) / Σ exp(s − max) = 1 / Σ exp(s − max)
        conf[start : start + step] = 1.0 / s.sum(axis=1)
    return conf, pred


def reliability_bins(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int = 15
) -> dict[str, np.ndarray]:
    """Equal-width confidence bins: the numbers behind a reliability diagram and ECE.

    Bin b covers ``[b/n_bins, (b+1)/n_bins)``; a confidence of exactly 1.0 falls in the last
    bin and 0 in the first (bin = searchsorted(edges, conf, 'right') − 1, clipped to
    0..n_bins−1, edges = linspace(0, 1, n_bins + 1)). Returns float64/int64 arrays of length
    n_bins: ``bin_lo``, ``bin_hi``, ``bin_count``, ``bin_confidence`` (mean confidence),
    ``bin_accuracy`` (mean correctness) — the last two NaN for empty bins.
    """
    conf = np.asarray(confidence, dtype=np.float64).ravel()
    ok = np.asarray(correct).astype(np.float64).ravel()
    if conf.shape != ok.shape:
        raise ZoolensError(
            f"confidence ({conf.shape}) and correctness ({ok.shape}) differ in length"
        )
    if n_bins < 1:
        raise ZoolensError(f"n_bins must be at least 1, got {n_bins}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins)
    acc_sum = np.bincount(idx, weights=ok, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(count > 0, conf_sum / count, np.nan)
        mean_acc = np.where(count > 0, acc_sum / count, np.nan)
    return {
        "bin_lo": edges[:-1],
        "bin_hi": edges[1:],
        "bin_count": count.astype(np.int64),
        "bin_confidence": mean_conf,
        "bin_accuracy": mean_acc,
    }


def ece_from_bins(bins: dict[str, np.ndarray]) -> float:
    """Expected calibration error from :func:`reliability_bins` (Guo et al. 2017, eq. 3):
    ``ECE = Σ_b (n_b / N) · |acc_b − conf_b|`` over the non-empty bins. Lets a caller that
    keeps the bins (a reliability diagram) get the ECE without binning twice; the number is
    the one :func:`expected_calibration_error_from_confidence` gives."""
    count = bins["bin_count"]
    total = count.sum()
    if total == 0:
        raise ZoolensError("no examples: calibration error is undefined")
    filled = count > 0
    gaps = np.abs(bins["bin_accuracy"][filled] - bins["bin_confidence"][filled])
    return float(np.sum(count[filled] / total * gaps))


def reliability_diagram(
    probs: np.ndarray, labels: np.ndarray, n_bins: int = 15
) -> dict[str, np.ndarray]:
    """:func:`reliability_bins` of a probability matrix: confidence = max prob, right = top-1
    (lowest index on ties) is the label or one of the valid labels."""
    p = np.asarray(probs)
    if p.ndim != 2:
        raise ZoolensError(f"probabilities must be (examples, classes), got shape {p.shape}")
    pred = p.argmax(axis=1)
    return reliability_bins(p.max(axis=1), correctness(pred, labels), n_bins)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error with ``n_bins`` equal-width bins (Guo et al. 2017).

    ``ECE = Σ_b (n_b / N) · |acc_b − conf_b|`` over non-empty bins, confidence = max prob,
    bins as in :func:`reliability_bins` (1.0 in the last bin). Equals torchmetrics'
    ``MulticlassCalibrationError(n_bins, norm="l1")`` except that torchmetrics puts
    confidence exactly 1.0 in an extra bin of its own. Used by docs/design.md sec. 5
    (``ece_before`` / ``ece_after``).

    Parameters
    ----------
    probs : (N, C) probabilities
    labels : (N,) integer classes or (N, C) 0/1 valid labels
    n_bins : number of equal-width confidence bins on [0, 1]

    Returns
    -------
    float in [0, 1].

    Examples
    --------
    >>> probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    >>> # bin of 0.9: accuracy 0.5; bin of 0.6: accuracy 1.0; each holds half the examples
    >>> round(expected_calibration_error(probs, np.array([0, 1, 0, 0]), n_bins=10), 6)
    0.4
    """
    return ece_from_bins(reliability_diagram(probs, labels, n_bins))


def expected_calibration_error_from_confidence(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int = 15
) -> float:
    """ECE from per-example confidence and correctness (see :func:`expected_calibration_error`);
    use with :func:`top1_confidence` to stay chunked on large score matrices."""
    return ece_from_bins(reliability_bins(confidence, correct, n_bins))
