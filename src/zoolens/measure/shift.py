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
]


def probit(p: np.ndarray) -> np.ndarray:
    """Φ⁻¹(p) elementwise (float64; ±inf at 0 and 1, NaN outside [0, 1])."""
    from scipy.special import ndtri

    return ndtri(np.asarray(p, dtype=np.float64))


def inverse_probit(z: np.ndarray) -> np.ndarray:
    """Φ(z) elementwise (float64)."""
    from scipy.special import ndtr

    return ndtr(np.asarray(z, dtype=np.float64))


@dataclass(frozen=True)
class ProbitFit:
    """``probit(y) ≈ slope · probit(x) + intercept`` over ``n_points`` finite points.

    ``slope``, ``intercept`` and ``r2`` are NaN when fewer than 2 points are usable or the
    reference values are all equal (the line is undefined); ``r2`` is NaN also when the shifted
    values are all equal (R² = 0/0).
    """

    slope: float
    intercept: float
    r2: float
    n_points: int

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The fitted measure on the shifted set for reference measure ``x`` (accuracy units)."""
        return inverse_probit(self.slope * probit(x) + self.intercept)


def probit_fit(x: np.ndarray, y: np.ndarray) -> ProbitFit:
    """Least-squares line through (probit(x), probit(y)) (Miller et al. 2021, Sec. 2).

    Closed form in float64: slope = Sxy / Sxx, intercept = ȳ − slope · x̄,
    R² = Sxy² / (Sxx·Syy); points with a non-finite probit (0, 1, NaN) are left out.

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
    >>> ref = np.array([0.80, 0.90, 0.95])
    >>> fit = probit_fit(ref, ref)                  # no shift: the line y = x
    >>> round(fit.slope, 6), round(fit.intercept, 6), round(fit.r2, 6), fit.n_points
    (1.0, 0.0, 1.0, 3)
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
    r2 = sxy * sxy / (sxx * syy) if syy > 0 else nan
    return ProbitFit(float(slope), intercept, float(r2), n)


def effective_robustness(x: np.ndarray, y: np.ndarray, fit: ProbitFit) -> np.ndarray:
    """``y − fit.predict(x)`` (Taori et al. 2020): accuracy above the line, NaN where undefined."""
    with np.errstate(invalid="ignore"):
        return np.asarray(y, dtype=np.float64) - fit.predict(x)


def prediction_agreement_counts(
    predictions: np.ndarray, a: np.ndarray, b: np.ndarray
) -> np.ndarray:
    """Number of examples on which models ``a[k]`` and ``b[k]`` predict the same class.

    ``predictions``: (M, n) top-1 classes; ``a``, ``b``: (P,) model indices. Returns (P,)
    int64 counts; divide by n for the agreement rate (Baek et al. 2022). One vectorised
    comparison over (P, n), callers chunk n to bound memory.
    """
    predictions = np.asarray(predictions)
    return (predictions[a] == predictions[b]).sum(axis=1, dtype=np.int64)
