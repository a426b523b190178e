"""Measures across evaluation sets: accuracy and agreement "on the line" (pure array functions).

- probit(p) = Φ⁻¹(p), the inverse of the standard normal CDF (``scipy.stats.norm.ppf``).
- The probit-scale linear fit of a shifted-set measure y on the reference-set measure x, over
  models (accuracy) or pairs (agreement): ordinary least squares of probit(y) on probit(x),
  ``probit(y) ≈ slope · probit(x) + intercept``, with R² the squared Pearson correlation of
  the probit values. Miller et al. (2021), "Accuracy on the line", Sec. 2 and Fig. 1;
  Baek et al. (2022), "Agreement-on-the-line", Sec. 3. Points whose probit is infinite
  (a measure of exactly 0 or 1) are left out of the fit, never clipped.
- Effective robustness of a model (Taori et al. 2020, Sec. 3.1): its shifted accuracy minus
  the accuracy the fit predicts from its reference accuracy,
  ``y − Φ(slope · Φ⁻¹(x) + intercept)``, in accuracy (fraction) units; positive = above the
  line.
- Prediction agreement of two models (Baek et al. 2022, Sec. 2): the fraction of examples on
  which their top-1 predictions are equal (whether right or not), for all pairs at once.
  It differs from 1 − error inconsistency, which compares correctness: two wrong models
  agree in correctness but agree in prediction only when they make the same mistake.
- Label-free accuracy on a shifted set (Baek et al. 2022, Sec. 4, "ALine-S" and "ALine-D"):
  where accuracy is on the line, agreement follows a line of the same slope a and bias b,
  and agreement needs no labels. Fit (â, b̂) on the pairs' agreement, then
  ALine-S: acc_shift(i) ≈ Φ(â · Φ⁻¹(acc_ref(i)) + b̂);
  ALine-D: for every pair (i, j),
  ½(x_i + x_j) = Φ⁻¹(agr_shift(i, j)) + â · [½(Φ⁻¹(acc_ref(i)) + Φ⁻¹(acc_ref(j)))
  − Φ⁻¹(agr_ref(i, j))], the bias cancelling, solved for x = Φ⁻¹(acc_shift) by least
  squares over all pairs (:func:`aline_estimates`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "probit",
    "inverse_probit",
    "ProbitFit",
    "probit_fit",
    "effective_robustness",
    "prediction_agreement_counts",
    "ALineEstimates",
    "aline_estimates",
    "aline_interval",
]


def probit(p: np.ndarray) -> np.ndarray:
    """Φ⁻¹(p) elementwise (float64; ±inf at 0 and 1, NaN outside [0, 1])."""
    from scipy.special import ndtri

    return ndtri(np.asarray(p, dtype=np.float64))


def inverse_probit(z: np.ndarray) -> np.ndarray:
    """Φ(z) elementwise (float64)."""
    from scipy.special import ndtr

    return ndtr(np.asarray(z, dtype=np.float64))


MIN_R2_POINTS = 4
"""Fewest points a probit line's R² is reported for (see :class:`ProbitFit`)."""


@dataclass(frozen=True)
class ProbitFit:
    """``probit(y) ≈ slope · probit(x) + intercept`` over ``n_points`` finite points.

    ``slope``, ``intercept`` and ``r2`` are NaN when fewer than 2 points are usable or the
    reference values are all equal (the line is undefined); ``r2`` is NaN also when the shifted
    values are all equal (R² = 0/0), and below :data:`MIN_R2_POINTS` points: a line through
    2 points fits them exactly (R² = 1 whatever the data) and through 3 it has one residual
    degree of freedom, so no R² is claimed (``small_sample`` says so).
    """

    slope: float
    intercept: float
    r2: float
    n_points: int

    @property
    def small_sample(self) -> bool:
        """A line through 2 or 3 points: drawn, but with no R² claimed."""
        return 2 <= self.n_points < MIN_R2_POINTS

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The fitted measure on the shifted set for reference measure ``x`` (accuracy units)."""
        return inverse_probit(self.slope * probit(x) + self.intercept)


def probit_fit(x: np.ndarray, y: np.ndarray) -> ProbitFit:
    """Least-squares line through (probit(x), probit(y)) (Miller et al. 2021, Sec. 2).

    Closed form in float64: slope = Sxy / Sxx, intercept = ȳ − slope · x̄,
    R² = Sxy² / (Sxx·Syy) (NaN below ``MIN_R2_POINTS`` = 4 points: through 2 or 3 points
    the line is drawn but claims no R²); points with a non-finite probit (0, 1, NaN) are left
    out.

    Parameters
    ----------
    x, y : (K,) measures in [0, 1] on the reference and the shifted set (accuracies of K
        models, or agreements of K pairs).

    Returns
    -------
    ProbitFit
        slope, intercept, r2 and n_points (NaN line when fewer than 2 usable points or all
        reference values equal).

    Examples
    --------
    >>> import numpy as np
    >>> from zoolens.measure import probit_fit, effective_robustness
    >>> ref = np.array([0.80, 0.85, 0.90, 0.95])
    >>> fit = probit_fit(ref, ref)                  # no shift: the line y = x
    >>> round(fit.slope, 6), round(fit.intercept, 6), round(fit.r2, 6), fit.n_points
    (1.0, 0.0, 1.0, 4)
    >>> probit_fit(ref[:3], ref[:3]).r2             # 3 points: no R² claimed
    nan
    >>> effective_robustness(np.array([0.9]), np.array([0.92]), fit).round(4)  # 2 points above
    array([0.02])
    """
    px, py = probit(x), probit(y)
    keep = np.isfinite(px) & np.isfinite(py)
    px, py = px[keep], py[keep]
    n = int(keep.sum())
    nan = float("nan")
    if n < 2:
        return ProbitFit(nan, nan, nan, n)
    dx, dy = px - px.mean(), py - py.mean()
    sxx, syy, sxy = float(dx @ dx), float(dy @ dy), float(dx @ dy)
    if sxx <= 0:
        return ProbitFit(nan, nan, nan, n)
    slope = sxy / sxx
    intercept = float(py.mean() - slope * px.mean())
    r2 = sxy * sxy / (sxx * syy) if syy > 0 and n >= MIN_R2_POINTS else nan
    return ProbitFit(float(slope), intercept, float(r2), n)


def effective_robustness(x: np.ndarray, y: np.ndarray, fit: ProbitFit) -> np.ndarray:
    """``y − fit.predict(x)`` (Taori et al. 2020): accuracy above the line, NaN where undefined."""
    with np.errstate(invalid="ignore"):
        return np.asarray(y, dtype=np.float64) - fit.predict(x)


def prediction_agreement_counts(
    predictions: np.ndarray, a: np.ndarray, b: np.ndarray
) -> np.ndarray:
    """Number of examples on which models ``a[k]`` and ``b[k]`` predict the same class.

    ``predictions``: (M, n) top-1 classes, -1 an abstention (which agrees with nothing,
    another abstention included); ``a``, ``b``: (P,) model indices. Returns (P,) int64
    counts; divide by n for the agreement rate (Baek et al. 2022). One vectorised comparison
    over (P, n), callers chunk n to bound memory.
    """
    predictions = np.asarray(predictions)
    return ((predictions[a] == predictions[b]) & (predictions[a] >= 0)).sum(axis=1, dtype=np.int64)


@dataclass(frozen=True)
class ALineEstimates:
    """Label-free accuracy estimates on a shifted set (Baek et al. 2022, Sec. 4).

    ``aline_d``, ``aline_s``: (m,) estimated accuracies (NaN where undefined: a model with a
    reference accuracy of 0 or 1, or with no usable pair); ``probit_d``, ``probit_s``: the
    same on the probit scale; ``fit``: the agreement line (:func:`probit_fit`) they rest on;
    ``residual_sd``: the standard deviation of the pairs' probit agreement about that line
    (n_points − 2 degrees of freedom; NaN below 3 points).
    """

    aline_d: np.ndarray
    aline_s: np.ndarray
    probit_d: np.ndarray
    probit_s: np.ndarray
    fit: ProbitFit
    residual_sd: float


def aline_estimates(
    reference_accuracy: np.ndarray,
    reference_agreement: np.ndarray,
    shifted_agreement: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    *,
    _normal_cache: dict[bytes, np.ndarray] | None = None,
) -> ALineEstimates:
    """ALine-S and ALine-D estimates of every model's accuracy on a shifted set, no labels.

    Baek et al. (2022), "Agreement-on-the-line", Sec. 4. The agreement line
    ``Φ⁻¹(agr_shift) ≈ â · Φ⁻¹(agr_ref) + b̂`` is :func:`probit_fit` over the pairs.
    ALine-S: ``Φ(â · Φ⁻¹(acc_ref(i)) + b̂)``. ALine-D: the least-squares solution x of, for
    every pair k = (a[k], b[k]) with finite terms,
    ``½(x_a + x_b) = Φ⁻¹(agr_shift_k) + â·[½(Φ⁻¹(acc_ref_a) + Φ⁻¹(acc_ref_b)) − Φ⁻¹(agr_ref_k)]``,
    then ``Φ(x)``; it uses the slope only (the bias cancels) and each model's own pairs, so a
    model off the accuracy line is followed when its agreements are. Solved through the
    normal equations (MᵀM is m × m; its pseudo-inverse, so a model in no usable pair is NaN).

    Parameters
    ----------
    reference_accuracy : (m,) accuracies on the labelled reference set.
    reference_agreement, shifted_agreement : (P,) prediction agreement of each pair on the
        reference and the shifted set (:func:`prediction_agreement_counts` / n).
    a, b : (P,) model indices of each pair.

    Returns
    -------
    ALineEstimates
        aline_d, aline_s (accuracy units), their probits, the agreement fit, residual_sd.

    Examples
    --------
    >>> import numpy as np
    >>> from zoolens.measure import aline_estimates, inverse_probit, probit
    >>> acc_ref = np.array([0.70, 0.80, 0.90])
    >>> a, b = np.array([0, 0, 1]), np.array([1, 2, 2])
    >>> agr_ref = np.array([0.75, 0.72, 0.83])
    >>> shift = lambda p: inverse_probit(0.9 * probit(p) - 0.3)   # one line for everything
    >>> est = aline_estimates(acc_ref, agr_ref, shift(agr_ref), a, b)
    >>> np.round(est.aline_d, 6).tolist() == np.round(shift(acc_ref), 6).tolist()
    True
    >>> round(est.fit.slope, 6), round(est.fit.intercept, 6)
    (0.9, -0.3)
    """
    acc = np.asarray(reference_accuracy, dtype=np.float64)
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    agr_ref = np.asarray(reference_agreement, dtype=np.float64)
    agr_shift = np.asarray(shifted_agreement, dtype=np.float64)
    m = len(acc)
    fit = probit_fit(agr_ref, agr_shift)
    nan = np.full(m, np.nan)
    if not np.isfinite(fit.slope):
        return ALineEstimates(nan, nan.copy(), nan.copy(), nan.copy(), fit, float("nan"))
    p_acc, p_ref, p_shift = probit(acc), probit(agr_ref), probit(agr_shift)
    with np.errstate(invalid="ignore"):
        probit_s = fit.slope * p_acc + fit.intercept
        rhs = p_shift + fit.slope * ((p_acc[a] + p_acc[b]) / 2 - p_ref)
        on_line = np.isfinite(p_ref) & np.isfinite(p_shift)
        resid = p_shift[on_line] - (fit.slope * p_ref[on_line] + fit.intercept)
    residual_sd = (
        float(np.sqrt(resid @ resid / (len(resid) - 2))) if len(resid) > 2 else float("nan")
    )
    use = np.isfinite(rhs)
    ua, ub, r = a[use], b[use], rhs[use]
    key = use.tobytes() + a.tobytes() + b.tobytes()
    inverse = None if _normal_cache is None else _normal_cache.get(key)
    if inverse is None:
        normal = np.zeros((m, m))
        np.add.at(normal, (ua, ua), 0.25)
        np.add.at(normal, (ub, ub), 0.25)
        np.add.at(normal, (ua, ub), 0.25)
        np.add.at(normal, (ub, ua), 0.25)
        inverse = np.linalg.pinv(normal)
        if _normal_cache is not None:
            _normal_cache[key] = inverse
    moment = np.bincount(ua, weights=r / 2, minlength=m) + np.bincount(
        ub, weights=r / 2, minlength=m
    )
    probit_d = inverse @ moment
    in_pairs = np.bincount(np.concatenate([ua, ub]), minlength=m) > 0
    probit_d = np.where(in_pairs, probit_d, np.nan)
    probit_s = np.where(np.isfinite(probit_s), probit_s, np.nan)
    return ALineEstimates(
        inverse_probit(probit_d),
        inverse_probit(probit_s),
        probit_d,
        probit_s,
        fit,
        residual_sd,
    )


def aline_interval(
    point: np.ndarray, resampled: np.ndarray, residual_sd: float, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Interval of a label-free accuracy estimate, on the probit scale then in accuracy units.

    ``Φ(x̂ ± z · s)`` with ``s² = var_b(x_b) + σ²``: ``x̂`` the estimate's probit (m,);
    ``x_b`` its probits over B example resamples that re-measure both sets and refit the
    agreement line (``resampled``, (B, m); non-finite resamples left out; the sample
    variance, ddof 1); ``σ`` the agreement line's residual standard deviation, the scatter a
    model's accuracy may show about the line when agreement and accuracy share it (the
    premise of Baek et al. 2022, Sec. 3); ``z`` the normal quantile of ``level``.
    NaN where ``x̂`` is undefined or fewer than 2 resamples are finite.

    Parameters
    ----------
    point : (m,) probit of each estimate.
    resampled : (B, m) probits of the estimate over resamples.
    residual_sd : σ of the agreement line (probit units); NaN counts as 0.
    level : coverage of the interval, in (0, 1).

    Returns
    -------
    (lo, hi)
        (m,) each, in accuracy units.

    Examples
    --------
    >>> import numpy as np
    >>> from zoolens.measure import aline_interval
    >>> lo, hi = aline_interval(np.array([0.0]), np.array([[-0.1], [0.1]]), 0.0)
    >>> np.round([lo[0], hi[0]], 4).tolist()   # Φ(± 1.96 · 0.1414)
    [0.3908, 0.6092]
    """
    from scipy.special import ndtri

    point = np.asarray(point, dtype=np.float64)
    res = np.asarray(resampled, dtype=np.float64)
    finite = np.isfinite(res)
    count = finite.sum(axis=0)
    filled = np.where(finite, res, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=0) / count
        var = np.where(finite, (res - mean) ** 2, 0.0).sum(axis=0) / (count - 1)
    sigma = float(residual_sd) if np.isfinite(residual_sd) else 0.0
    half = float(ndtri(0.5 + level / 2)) * np.sqrt(var + sigma**2)
    half = np.where((count >= 2) & np.isfinite(point), half, np.nan)
    return inverse_probit(point - half), inverse_probit(point + half)
