"""Linear probes (full-batch L-BFGS logistic regression) and VOC 11-point mAP.

The probe is the paper's instrument for feature quality (Gontijo-Lopes et al. 2021, Sec. 4.6
Fig. 6 and Sec. 4.7 Fig. 7): multinomial logistic regression on frozen embeddings, following
Kornblith, Shlens & Le (2019) "Do Better ImageNet Models Transfer Better?":

    minimise  (1/N) Σ_i CE(softmax(W x_i + b), y_i)  +  (λ/2) ‖W‖²_F      (b not penalised)

by full-batch L-BFGS with a strong-Wolfe line search, written in torch so it runs on CPU or
CUDA unchanged, float32 by default (``dtype="float64"`` for reference-grade optima). λ is chosen
from a log grid by the validation score (accuracy; ties → lower validation cross-entropy) on a
seeded random split, then the model is refit on train + validation with that λ. scikit-learn's
equivalent is ``LogisticRegression(C=1 / (λ · N_train))`` (docs/design.md sec. 3). The grid is walked
from the largest λ down, each fit warm-started from the previous one (same optimum, fewer
iterations); the start is all zeros, so a fit is deterministic for a seed.

Solver (none of this changes the optimum; the cost unit is an N × D × C matrix product). The
L-BFGS is ours rather than ``torch.optim.LBFGS`` for one reason: scores are affine in the
weights, so along a search direction they are z + s·u and the line search can try steps
without any product. An iteration then costs exactly two products (the direction's scores u
and the new gradient) where torch's optimiser spends two per line-search trial, and a
near-exact line search becomes cheap enough to save iterations (``_lbfgs``). The first step
is the Newton step along −g; a cold start needs no forward product; the loss is accumulated
in float64 so the line search is not fooled by float32 rounding near the optimum; the fit
runs in a centred parametrisation (b′ = b + Wμ, ``_Problem``). A test checks the optimum
against ``torch.optim.LBFGS`` on an autograd objective and against scikit-learn.

Multi-label variant (``multilabel=True``, e.g. VOC-style downstream sets): per-class sigmoid,
loss (1/N) Σ_i Σ_c BCE(σ(w_cᵀx_i + b_c), y_ic) + (λ/2)‖W‖²_F — C independent binary problems,
each sklearn ``LogisticRegression(C=1/(λN))``; scored by the 11-point interpolated mAP.

Features are NOT standardised or normalised here: the caller decides (the study L2-normalises
rows, docs/design.md sec. 3). Pass what you want the probe to see.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zoolens.errors import ZoolensError

__all__ = [
    "DEFAULT_L2_GRID",
    "LinearProbe",
    "fit_linear_probe",
    "probe_objective",
    "average_precision",
    "voc11_average_precision",
    "voc11_map",
    "mean_average_precision",
]

# λ for the mean loss; with L2-normalised embeddings the useful range sits well below 1.
DEFAULT_L2_GRID: tuple[float, ...] = tuple(10.0**e for e in range(-7, 0))


# --------------------------------------------------------------------------- average precision


def _ranked_hits(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Targets reordered by descending score; ties keep example order (stable sort)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return np.asarray(targets)[order] > 0


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Non-interpolated AP of one class: mean of precision@k over the ranks k of the positives.

    AP = (1/P) Σ_{k : y_(k) = 1} TP(k) / k, ranks by descending score with ties in example
    order (stable sort). Equals scikit-learn's ``average_precision_score`` when no scores tie
    (sklearn groups tied scores). NaN when there is no positive.
    """
    hits = _ranked_hits(scores, targets)
    positives = int(hits.sum())
    if positives == 0:
        return float("nan")
    tp = np.cumsum(hits)
    ranks = np.arange(1, hits.size + 1)
    return float(np.sum((tp / ranks)[hits]) / positives)


def voc11_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """PASCAL VOC 2007 11-point interpolated AP of one class.

    AP = (1/11) Σ_{t=0..10} max{ precision(k) : recall(k) ≥ t/10 } (0 when no rank reaches
    that recall), precision(k) = TP(k)/k and recall(k) = TP(k)/P at every rank k (descending
    score, ties in example order). The comparison recall ≥ t/10 is done exactly in integers,
    10 · TP(k) ≥ t · P, so a recall of exactly 0.3 counts for t = 3 (a float ``arange`` gives
    0.30000000000000004 and would miss it). NaN when there is no positive.
    """
    hits = _ranked_hits(scores, targets)
    positives = int(hits.sum())
    if positives == 0:
        return float("nan")
    tp = np.cumsum(hits).astype(np.int64)
    precision = tp / np.arange(1, hits.size + 1)
    # Best precision at recall ≥ r: a suffix maximum over ranks (recall only grows with k).
    suffix_max = np.maximum.accumulate(precision[::-1])[::-1]
    total = 0.0
    for t in range(11):
        reached = np.flatnonzero(10 * tp >= t * positives)
        if reached.size:
            total += float(suffix_max[reached[0]])
    return total / 11.0


def _per_class(
    metric: Callable[[np.ndarray, np.ndarray], float], scores: np.ndarray, targets: np.ndarray
) -> float:
    scores = np.asarray(scores)
    targets = np.asarray(targets)
    if scores.ndim != 2 or scores.shape != targets.shape:
        raise ZoolensError(
            f"scores {scores.shape} and multi-label targets {targets.shape} must "
            "both be (examples, classes)"
        )
    values = [
        metric(scores[:, c], targets[:, c])
        for c in range(scores.shape[1])
        if np.any(targets[:, c] > 0)
    ]  # classes without positives are left out
    return float(np.mean(values)) if values else float("nan")


def voc11_map(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean over classes of :func:`voc11_average_precision`; classes without positives left out."""
    return _per_class(voc11_average_precision, scores, targets)


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean over classes of :func:`average_precision`; classes without positives left out."""
    return _per_class(average_precision, scores, targets)


# --------------------------------------------------------------------------- the probe


def _resolve_dtype(dtype: Any) -> Any:
    import torch

    if dtype in (torch.float32, "float32", np.float32):
        return torch.float32
    if dtype in (torch.float64, "float64", np.float64):
        return torch.float64
    raise ZoolensError(f"probe dtype must be float32 or float64, got {dtype!r}")


def _check_features(x: Any) -> np.ndarray | Any:
    shape = tuple(x.shape) if hasattr(x, "shape") else np.shape(x)
    if len(shape) != 2:
        raise ZoolensError(
            f"probe features must be a 2-d (examples, dims) array, got shape {shape}"
        )
    return x


def _check_targets(y: Any, n: int, multilabel: bool) -> np.ndarray:
    y = np.asarray(y.cpu() if hasattr(y, "cpu") else y)
    if y.shape[0] != n:
        raise ZoolensError(f"features have {n} rows but the labels have {y.shape[0]}")
    if multilabel:
        if y.ndim != 2:
            raise ZoolensError(
                f"the multi-label probe needs an (N, C) 0/1 target, got shape {y.shape}"
            )
        if not np.all((y == 0) | (y == 1)):
            raise ZoolensError("multi-label targets must be 0/1")
        return y.astype(np.float64)
    if y.ndim == 2 and y.shape[1] > 1:
        raise ZoolensError(
            f"labels are a multi-label (N, C) = {y.shape} target: the softmax probe "
            "needs (N,) class ids; use multilabel=True (per-class sigmoid)"
        )
    y = y.reshape(-1)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ZoolensError("class labels must be integers")
    elif y.dtype.kind not in "iub":
        raise ZoolensError(f"class labels must be integers, got dtype {y.dtype}")
    return y.astype(np.int64)


@dataclass
class LinearProbe:
    """A fitted linear probe. ``coef_`` is (C, D), ``intercept_`` (C,), as in scikit-learn.

    ``l2`` is the chosen λ, ``objective`` the penalised mean loss at the final fit (on train +
    validation); ``n_iter`` its L-BFGS iterations, ``n_evals`` the points where it evaluated
    the loss (line-search trials included, which cost no product) and ``n_products`` its
    N × D × C matrix products (the cost: 1 + 2 per iteration from a cold start),
    ``grad_norm`` its final max-abs gradient entry; ``converged`` is true only when that
    entry is at most ``tol`` (a stop at ``max_iter``, or because the loss or the step no
    longer changes at the dtype's resolution, is not convergence); ``validation`` one dict
    per grid point (l2, score, loss) — empty when the grid had a single λ. ``classes_`` maps output columns to class ids (softmax probe).
    """

    coef_: np.ndarray
    intercept_: np.ndarray
    l2: float
    multilabel: bool
    classes_: np.ndarray
    objective: float
    n_iter: int
    converged: bool
    grad_norm: float
    n_train: int
    n_evals: int = 0
    n_products: int = 0
    validation: list[dict[str, float]] = field(default_factory=list)

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Scores W x + b, shape (n, C), float64."""
        x = np.asarray(x.cpu() if hasattr(x, "cpu") else x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.coef_.shape[1]:
            raise ZoolensError(
                f"the probe was fit on {self.coef_.shape[1]} dims, got features of shape {x.shape}"
            )
        return x @ self.coef_.T.astype(np.float64) + self.intercept_.astype(np.float64)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Softmax probabilities (softmax probe) or per-class sigmoids (multi-label)."""
        z = self.decision_function(x)
        if self.multilabel:
            return 0.5 * (1.0 + np.tanh(0.5 * z))  # the stable sigmoid
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class ids by argmax (lowest index on ties), or a 0/1 (n, C) matrix at σ ≥ 0.5."""
        z = self.decision_function(x)
        if self.multilabel:
            return (z >= 0).astype(np.uint8)
        return self.classes_[np.argmax(z, axis=1)]

    def score(self, x: np.ndarray, y: np.ndarray) -> float:
        """Top-1 accuracy (softmax probe) or VOC 11-point mAP (multi-label)."""
        y = _check_targets(y, np.shape(x)[0], self.multilabel)
        if self.multilabel:
            return voc11_map(self.decision_function(x), y)
        return float(np.mean(self.predict(x) == y))


def probe_objective(
    x: np.ndarray,
    y: np.ndarray,
    coef: np.ndarray,
    intercept: np.ndarray,
    l2: float,
    multilabel: bool = False,
    classes: np.ndarray | None = None,
) -> float:
    """The probe's objective in float64 numpy, for any (coef, intercept) — e.g. sklearn's.

    Softmax: mean CE + (λ/2)‖W‖²; multi-label: mean over examples of the summed per-class BCE
    + (λ/2)‖W‖². ``classes`` maps label ids to columns (default: ``np.unique(y)``).
    """
    from scipy.special import log_expit, logsumexp

    x = np.asarray(x, dtype=np.float64)
    z = x @ np.asarray(coef, dtype=np.float64).T + np.asarray(intercept, dtype=np.float64)
    penalty = 0.5 * l2 * float(np.sum(np.asarray(coef, dtype=np.float64) ** 2))
    if multilabel:
        t = np.asarray(y, dtype=np.float64)
        loss = -(t * log_expit(z) + (1 - t) * log_expit(-z)).sum(axis=1).mean()
        return float(loss + penalty)
    classes = np.unique(y) if classes is None else np.asarray(classes)
    cols = np.searchsorted(classes, np.asarray(y))
    loss = np.mean(logsumexp(z, axis=1) - z[np.arange(z.shape[0]), cols])
    return float(loss + penalty)


# Rows per chunk of the line search's elementwise work on the CPU: ~512k scores (2 MB in
# float32), so a chunk's temporaries stay in cache instead of streaming N × C buffers through
# memory (at 50,000 × 1,000 a trial took 350 ms in 16 MB chunks, 240 ms in 1 MB ones).
_CHUNK_SCORES = 1 << 19


class _Problem:
    """The probe objective in a centred parametrisation, evaluated along rays.

    Scores are z = X̃Wᵀ + b′ with X̃ = X − 1μᵀ, i.e. the model's bias is b = b′ − Wμ
    (:func:`_bias`). As b is not penalised this is the same objective and the same optimum (a
    bijection (W, b) ↔ (W, b′) that leaves ‖W‖ alone), but with μ the feature mean the weights
    and the bias no longer fight each other: on real ReLU embeddings (mean norm ~0.8 after L2
    normalisation) L-BFGS needs 10-30 % fewer iterations. Nothing centred is stored:
    X̃Vᵀ + c = XVᵀ + (c − Vμ) for any (V, c).

    The cost unit is an N × D × C product; ``products`` counts them. Everything else here is
    elementwise on N × C scores, done in row chunks.
    """

    def __init__(self, x: Any, t: Any, lam: float, multilabel: bool, mu: Any, classes: int):
        self.x, self.t, self.lam, self.multilabel, self.mu = x, t, lam, multilabel, mu
        self.n = int(x.shape[0])
        step = max(1, _CHUNK_SCORES // max(classes, 1)) if x.device.type == "cpu" else self.n
        self.chunks = [(a, min(self.n, a + step)) for a in range(0, self.n, step)]
        self.picked = None if multilabel else t[:, None]  # column of each row's class
        self.products = 0

    def scores(self, w, b):
        """X̃Wᵀ + b′ — one product, none when W = 0 (every cold start)."""
        if not bool(w.any()):
            return b.expand(self.n, -1).clone()
        self.products += 1
        import torch

        return torch.addmm(_bias(w, b, self.mu), self.x, w.T)

    def along(self, z: Any, u: Any, s: float) -> tuple[float, float, float]:
        """Sums over rows of the data loss ℓ, its derivative and its second derivative along
        the ray z + s·u, in float64: (Σ_i ℓ_i, Σ_i ∂ℓ_i/∂s, Σ_i ∂²ℓ_i/∂s²), divided by N.

        Softmax, with p_i = softmax(z_i + s·u_i): ∂ℓ_i/∂s = Σ_c p_ic u_ic − u_i,y_i and
        ∂²ℓ_i/∂s² = Σ_c p_ic u_ic² − (Σ_c p_ic u_ic)². Sigmoid (per-class BCE):
        ∂ℓ/∂s = Σ_c (σ_ic − t_ic) u_ic and ∂²ℓ/∂s² = Σ_c σ_ic(1 − σ_ic) u_ic². Losses are
        accumulated in float64 even for float32 fits: a float32 total of ~5 moves in steps of
        5e-7, coarser than the decrease near the optimum.
        """
        import torch

        f64 = torch.float64
        loss = slope = curve = torch.zeros((), dtype=f64, device=z.device)
        for a, e in self.chunks:
            uc = u[a:e]
            zc = torch.add(z[a:e], uc, alpha=s)
            if self.multilabel:
                tc = self.t[a:e]
                loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(
                    zc, tc, reduction="none"
                ).sum(dtype=f64)
                p = zc.sigmoid_()
                slope = slope + torch.sub(p, tc).mul_(uc).sum(dtype=f64)
                curve = curve + p.sub_(p * p).mul_(uc).mul_(uc).sum(dtype=f64)
                continue
            assert self.picked is not None  # single-label
            pc = self.picked[a:e]
            own = zc.gather(1, pc)[:, 0]
            top = zc.amax(dim=1, keepdim=True)
            ez = zc.sub_(top).exp_()
            total = ez.sum(dim=1)
            loss = loss + (torch.log(total).add_(top[:, 0]).sub_(own)).sum(dtype=f64)
            eu = ez.mul_(uc)
            q = eu.sum(dim=1).div_(total)  # Σ_c p u per row
            slope = slope + q.sum(dtype=f64) - uc.gather(1, pc).sum(dtype=f64)
            r = eu.mul_(uc).sum(dim=1).div_(total)  # Σ_c p u² per row
            curve = curve + r.sub_(q * q).sum(dtype=f64)
        return float(loss) / self.n, float(slope) / self.n, float(curve) / self.n

    def gradient(self, z, w):
        """(∇W, ∇b′) at scores z: G = (p − onehot(y)) / N (σ − t for sigmoid), ∇b′ = Σ_i G_i and
        ∇W = GᵀX̃ + λW = GᵀX − ∇b′ μᵀ + λW — one product."""
        import torch

        if self.multilabel:
            g = torch.sigmoid(z).sub_(self.t)
        else:
            g = torch.softmax(z, dim=1)
            g.scatter_add_(1, self.picked, torch.full_like(self.picked, -1.0, dtype=g.dtype))
        g.div_(self.n)
        gb = g.sum(dim=0)
        self.products += 1
        gw = torch.addmm(w, g.T, self.x, beta=self.lam).addr_(gb, self.mu, alpha=-1.0)
        return gw, gb


def _bias(w, b_centred, mu):
    """The model's bias b = b′ − Wμ from the centred parametrisation's b′ (see _Problem)."""
    import torch

    return torch.addmv(b_centred, w, mu, alpha=-1.0)


def _dot(a: Any, b: Any) -> float:
    import torch

    return float(torch.dot(a.reshape(-1), b.reshape(-1)))


def _two_loop(gw, gb, history):
    """The L-BFGS direction −H g by Nocedal's two-loop recursion over (s, y, 1/sᵀy) pairs,
    H₀ = γI with γ = sᵀy / yᵀy of the newest pair (Nocedal & Wright 2006, Alg. 7.4)."""
    qw, qb = -gw, -gb
    alphas = []
    for sw, sb, yw, yb, rho in reversed(history):
        a = rho * (_dot(sw, qw) + _dot(sb, qb))
        alphas.append(a)
        qw, qb = qw.add(yw, alpha=-a), qb.add(yb, alpha=-a)
    if history:
        sw, sb, yw, yb, rho = history[-1]
        gamma = 1.0 / (rho * (_dot(yw, yw) + _dot(yb, yb)))
        qw, qb = qw.mul(gamma), qb.mul(gamma)
    for (sw, sb, yw, yb, rho), a in zip(history, reversed(alphas)):
        beta = rho * (_dot(yw, qw) + _dot(yb, qb))
        qw.add_(sw, alpha=a - beta)
        qb.add_(sb, alpha=a - beta)
    return qw, qb


def _line_search(
    phi: Callable[[float], tuple[float, float, float]],
    f0: float,
    slope0: float,
    s: float,
    *,
    c1: float = 1e-4,
    c2: float = 0.1,
    max_trials: int = 25,
) -> tuple[float, float, int]:
    """A step s > 0 meeting the strong Wolfe conditions φ(s) ≤ φ(0) + c1·s·φ′(0) and
    |φ′(s)| ≤ c2·|φ′(0)|, by safeguarded Newton on the convex φ (its exact φ″ is one more sum
    in the same pass), bracketing [lo, hi] and bisecting when Newton leaves the bracket.

    ``phi(s)`` → (φ, φ′, φ″). c2 = 0.1 is a near-exact search: its trials cost no product,
    and exact steps save L-BFGS iterations, which do. Returns (s, φ(s), trials); s = 0 when no
    trial decreased φ (the objective is flat at the working precision).
    """
    lo, hi = 0.0, math.inf
    best = (0.0, f0)
    for trial in range(1, max_trials + 1):
        f, slope, curve = phi(s)
        armijo = f <= f0 + c1 * s * slope0
        if armijo and abs(slope) <= c2 * abs(slope0):
            return s, f, trial
        if armijo and f < best[1]:
            best = (s, f)
        if not armijo or slope > 0:
            hi = s
        else:
            lo = s
        newton = s - slope / curve if curve > 0 else math.nan
        if lo < newton < hi:
            s = newton
        elif math.isfinite(hi):
            s = 0.5 * (lo + hi)
        else:
            s = 4.0 * s
        if math.isfinite(hi) and hi - lo <= 1e-10 * hi:
            break
    return best[0], best[1], max_trials


def _lbfgs(
    x: Any,
    t: Any,
    lam: float,
    w: Any,
    b: Any,
    *,
    multilabel: bool,
    max_iter: int,
    tol: float,
    history_size: int,
    mu: Any,
) -> Any:
    """Minimise the probe objective from (w, b′) in place by L-BFGS with a strong-Wolfe line
    search whose trial points cost no matrix product.

    The scores are affine in the parameters, so along a search direction d = (dW, db′) they
    are z + s·u with u = X̃dWᵀ + db′: one product per iteration gives u, after which every
    trial step of the line search — loss, slope and curvature along the ray — is elementwise
    on N × C numbers; the accepted point's scores are z + s·u (no product) and its gradient is
    the iteration's second and last product. So an iteration costs exactly two N × D × C
    products however many trials its line search takes (torch.optim.LBFGS: two per trial),
    and that makes a near-exact line search (c2 = 0.1) affordable, which in turn saves
    iterations (``benchmarks/bench_probe.py`` counts them). The first iteration (no curvature pairs yet) starts its search at the
    Newton step along −g, the exact minimiser of the local quadratic. A cold start (W = 0)
    needs no product for its scores.

    Stops when the max-abs gradient entry is ≤ ``tol`` (sklearn's lbfgs ``tol`` is the same
    test), after ``max_iter`` iterations, or when the loss or the step no longer changes at the
    dtype's resolution. The scores are carried from step to step (z ← z + s·u) rather than
    recomputed: that adds one rounding per iteration, no more than a fresh D-term product has.

    Returns (objective, iterations, loss evaluations, products, max-abs gradient at the end).
    """
    import collections

    import torch

    problem = _Problem(x, t, lam, multilabel, mu, int(w.shape[0]))
    change = _change_tol(x.dtype)
    with torch.no_grad():
        z = problem.scores(w, b)
        f = problem.along(z, z, 0.0)[0] + 0.5 * lam * _dot(w, w)
        gw, gb = problem.gradient(z, w)
        history: collections.deque = collections.deque(maxlen=history_size)
        iters, evals = 0, 1
        grad_inf = max(float(gw.abs().max()), float(gb.abs().max()))
        while grad_inf > tol and iters < max_iter:
            dw, db = _two_loop(gw, gb, history)
            slope0 = _dot(gw, dw) + _dot(gb, db)
            if not slope0 < 0:  # not a descent direction (rounding): restart from −g
                history.clear()
                dw, db = -gw, -gb
                slope0 = -(_dot(gw, gw) + _dot(gb, gb))
            u = problem.scores(dw, db)
            ww, wd, dd = _dot(w, w), _dot(w, dw), _dot(dw, dw)

            def phi(s, z=z, u=u, ww=ww, wd=wd, dd=dd):
                loss, slope, curve = problem.along(z, u, s)
                return (
                    loss + 0.5 * lam * (ww + 2 * s * wd + s * s * dd),
                    slope + lam * (wd + s * dd),
                    curve + lam * dd,
                )

            s = 1.0
            if not history:
                curve0 = phi(0.0)[2]
                evals += 1
                s = -slope0 / curve0 if curve0 > 0 else 1.0
            s, f_new, trials = _line_search(phi, f, slope0, s)
            evals += trials
            if s == 0.0:
                break
            w.add_(dw, alpha=s)
            b.add_(db, alpha=s)
            z.add_(u, alpha=s)
            del u
            gw_new, gb_new = problem.gradient(z, w)
            iters += 1
            yw, yb = gw_new - gw, gb_new - gb
            sy = s * (_dot(dw, yw) + _dot(db, yb))
            small_step = s * max(float(dw.abs().max()), float(db.abs().max())) <= change
            # keep the pair only with clearly positive curvature (always so when λ > 0, up
            # to rounding): H then stays positive definite
            if sy > 1e-10 * math.sqrt(s * s * (dd + _dot(db, db)) * (_dot(yw, yw) + _dot(yb, yb))):
                history.append((dw.mul_(s), db.mul_(s), yw, yb, 1.0 / sy))
            f_old, f, gw, gb = f, f_new, gw_new, gb_new
            grad_inf = max(float(gw.abs().max()), float(gb.abs().max()))
            if abs(f_old - f) < change or small_step:
                break
    return f, iters, evals, problem.products, grad_inf


@contextlib.contextmanager
def _cpu_threads(threads: int | None, work: float, on_cpu: bool) -> Any:
    """Run with ``threads`` torch CPU threads; by default 1 for small problems.

    Below ~3e7 multiply-adds per evaluation the thread hand-off costs more than it saves (and on
    a busy machine OpenMP spinning made a 2,000 × 64 probe 9× slower), so small CPU fits run
    single-threaded. The previous setting is restored afterwards.
    """
    import torch

    if not on_cpu or (threads is None and work >= 3e7):
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads or 1)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _change_tol(dtype: Any) -> float:
    import torch

    # Stop once the loss (or the step) no longer changes at the dtype's resolution.
    return 1e-12 if dtype == torch.float64 else 1e-9


def _validation_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n_val = int(round(fraction * n))
    if n_val < 1 or n_val >= n:
        raise ZoolensError(
            f"validation_fraction {fraction:g} leaves no validation or no training "
            f"examples out of {n}; pass a single l2 value to skip validation"
        )
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _choose_l2(
    xt: Any,
    tt: Any,
    y: np.ndarray,
    grid: list[float],
    w: Any,
    b: Any,
    validation_fraction: float,
    seed: int,
    fit: dict,
) -> tuple[list[dict[str, float]], float]:
    """Fit each λ (strong → weak, warm-started) on the training part and score it on the
    validation part; leaves (w, b) at the chosen λ's solution. Returns (records, chosen λ).
    A single-λ grid skips validation."""
    import torch
    import torch.nn.functional as F

    if len(grid) == 1:
        return [], grid[0]
    multilabel = fit["multilabel"]
    train_idx, val_idx = _validation_split(xt.shape[0], validation_fraction, seed)
    tr = torch.as_tensor(train_idx, device=xt.device)
    va = torch.as_tensor(val_idx, device=xt.device)
    x_tr, t_tr, x_va, t_va = xt[tr], tt[tr], xt[va], tt[va]
    records: list[dict[str, float]] = []
    best_key, chosen, best_state = None, grid[0], None
    for lam in grid:
        _lbfgs(x_tr, t_tr, lam, w, b, **fit)
        with torch.no_grad():
            z = torch.addmm(_bias(w, b, fit["mu"]), x_va, w.T).double()
            if multilabel:
                loss = float(
                    F.binary_cross_entropy_with_logits(z, t_va.double(), reduction="sum")
                    / len(val_idx)
                )
                score = voc11_map(z.cpu().numpy(), y[val_idx])
            else:
                loss = float(F.cross_entropy(z, t_va))
                score = float((z.argmax(dim=1) == t_va).double().mean())
        records.append({"l2": lam, "score": score, "loss": loss})
        key = (-score if math.isfinite(score) else math.inf, loss)
        if best_key is None or key < best_key:
            best_key, chosen = key, lam
            best_state = (w.detach().clone(), b.detach().clone())
    assert best_state is not None  # the grid is not empty
    with torch.no_grad():  # warm-start the refit from the chosen λ's solution
        w.copy_(best_state[0])
        b.copy_(best_state[1])
    return records, chosen


def fit_linear_probe(
    x: Any,
    y: Any,
    *,
    l2_grid: Sequence[float] | float | None = None,
    validation_fraction: float = 0.2,
    seed: int = 0,
    dtype: Any = "float32",
    device: Any = None,
    multilabel: bool = False,
    max_iter: int = 1000,
    tol: float = 1e-6,
    history_size: int = 20,
    threads: int | None = None,
) -> LinearProbe:
    """Fit a linear probe (softmax, or per-class sigmoid when ``multilabel``) by L-BFGS.

    x: (N, D) numpy array or torch tensor (not standardised here); y: (N,) integer class ids,
    or (N, C) 0/1 when ``multilabel``. ``l2_grid``: candidate λ (default
    :data:`DEFAULT_L2_GRID` = 1e-7 … 1e-1); a single value skips validation and fits on all
    rows. ``validation_fraction`` of the rows (seeded random split) choose λ by accuracy
    (multi-label: 11-point mAP), ties → lower validation loss, then refit on all rows.
    ``tol`` bounds the final gradient's max-abs entry (as sklearn's lbfgs ``tol``);
    ``device`` e.g. "cuda" (default: x's device, else CPU). ``threads``: torch CPU threads
    for this fit (default: 1 for small problems, torch's setting otherwise). Returns a
    :class:`LinearProbe`.
    """
    import torch

    x = _check_features(x)
    n, d = int(x.shape[0]), int(x.shape[1])
    y = _check_targets(y, n, multilabel)
    if n < 2 or d < 1:
        raise ZoolensError(f"a probe needs at least 2 examples and 1 dim, got {n} × {d}")
    tdtype = _resolve_dtype(dtype)
    if device is None:
        device = x.device if isinstance(x, torch.Tensor) else "cpu"
    xt = torch.as_tensor(x, dtype=tdtype, device=device)
    # A finite sum proves every entry finite (NaN and ±inf propagate) at 1/20 of the cost of
    # an elementwise test on 10⁸ entries; only a sum that overflows needs the full test.
    if not (bool(torch.isfinite(xt.sum())) or bool(torch.isfinite(xt).all())):
        raise ZoolensError("probe features contain NaN or infinite values")
    grid = (
        [float(l2_grid)]
        if isinstance(l2_grid, (int, float))
        else list(DEFAULT_L2_GRID if l2_grid is None else l2_grid)
    )
    if not grid or any(not (v >= 0 and math.isfinite(v)) for v in grid):
        raise ZoolensError(f"l2_grid must hold non-negative finite values, got {grid}")
    grid = sorted(set(grid), reverse=True)  # strong to weak: warm starts stay well conditioned

    if multilabel:
        classes = np.arange(y.shape[1])
        tt = torch.as_tensor(y, dtype=tdtype, device=device)
    else:
        classes, cols = np.unique(y, return_inverse=True)
        tt = torch.as_tensor(cols.astype(np.int64), device=device)
    c = len(classes)
    w = torch.zeros((c, d), dtype=tdtype, device=device)
    b = torch.zeros((c,), dtype=tdtype, device=device)
    # one centre for every fit (any fixed μ keeps the optimum; the mean of all rows is near
    # the mean of the training part)
    mu = xt.mean(dim=0)
    fit: dict[str, Any] = dict(
        multilabel=multilabel, max_iter=max_iter, tol=tol, history_size=history_size, mu=mu
    )

    on_cpu = torch.device(device).type == "cpu"
    with _cpu_threads(threads, float(n) * d * c, on_cpu):
        validation, chosen = _choose_l2(xt, tt, y, grid, w, b, validation_fraction, seed, fit)
        objective, iters, evals, products, grad_inf = _lbfgs(xt, tt, chosen, w, b, **fit)
    with torch.no_grad():
        intercept = _bias(w, b, mu)
    return LinearProbe(
        coef_=w.detach().cpu().numpy(),
        intercept_=intercept.cpu().numpy(),
        l2=chosen,
        multilabel=multilabel,
        classes_=classes,
        objective=objective,
        n_iter=iters,
        n_evals=evals,
        n_products=products,
        converged=grad_inf <= tol,
        grad_norm=grad_inf,
        n_train=n,
        validation=validation,
    )
