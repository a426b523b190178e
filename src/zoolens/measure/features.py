"""Feature overlap: normalisation, combination at inverse rates, diversity ranking, CKA.

The representation side of Gontijo-Lopes, Dauphin & Cubuk (2021): Sec. 4.6 / Fig. 6
(combining two models' embeddings at inverse rates, ranking dimensions by how little they
correlate with the rest) and Appendix Fig. 13 (CKA between representations against error
consistency). Definitions follow docs/design.md sec. 3; CKA follows Kornblith, Norouzi, Lee &
Hinton (2019), "Similarity of Neural Network Representations Revisited", and their public demo
notebook (its bandwidth and centring conventions are reproduced to the letter, so its
published numbers come out).

Pure functions on numpy arrays; nothing here reads a zoo or a file.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from zoolens.errors import ZoolensError

__all__ = [
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
]

# Guards floor() against products such as 0.29 * 100 = 28.999999999999996.
_FLOOR_SLACK = 1e-9


def _as_2d(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise ZoolensError(f"{name}: expected a 2-d (examples, dims) array, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ZoolensError(f"{name}: expected real numbers, got dtype {x.dtype}")
    return x


def _same_rows(x: np.ndarray, y: np.ndarray, name_x: str = "X", name_y: str = "Y") -> None:
    if x.shape[0] != y.shape[0]:
        raise ZoolensError(
            f"{name_x} has {x.shape[0]} rows but {name_y} has {y.shape[0]}: embeddings must "
            "cover the same examples in the same order"
        )


# --------------------------------------------------------------------------- normalisation


def l2_normalize_rows(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Scale every example (row) to unit Euclidean norm: x_i / max(‖x_i‖₂, eps).

    docs/design.md sec. 3 (feature combination, paper Sec. 4.6): each example's *full* embedding is
    normalised once, before any dimensions are selected, and never again after. An all-zero row
    stays zero (``eps`` avoids 0/0). Keeps float32/float64; integers become float64.
    """
    x = _as_2d(x, "embeddings")
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
    return (x / np.maximum(norms, eps)[:, None]).astype(x.dtype, copy=False)


# --------------------------------------------------------------------------- combination


def _check_rate(rate: float) -> float:
    rate = float(rate)
    if not (0.0 <= rate <= 1.0) or math.isnan(rate):
        raise ZoolensError(f"rate {rate:g} is outside [0, 1] (the fraction of model A's dims kept)")
    return rate


def combination_sizes(dims_a: int, dims_b: int, rate: float) -> tuple[int, int]:
    """How many dimensions of A and of B to keep at rate f (docs/design.md sec. 3, paper Sec. 4.6).

    n_A = floor(f · D_A) and n_B = min(round((1 − f) · D_B), max(D_A, D_B) − n_A), so the
    combined embedding is never wider than the wider of the two (f = 1: A alone, f = 0: B
    alone). ``round`` is Python's (half to even); floor gets a 1e-9 slack against products such
    as 0.29 · 100 = 28.999999999999996.
    """
    rate = _check_rate(rate)
    if dims_a < 0 or dims_b < 0:
        raise ZoolensError(f"dimension counts must be non-negative, got {dims_a} and {dims_b}")
    n_a = int(math.floor(rate * dims_a + _FLOOR_SLACK))
    n_a = min(n_a, dims_a)
    n_b = min(int(round((1.0 - rate) * dims_b)), max(dims_a, dims_b) - n_a)
    return n_a, max(n_b, 0)


@dataclass(frozen=True)
class CombinedFeatures:
    """A combined embedding and which columns of A and B it holds (sorted indices)."""

    features: np.ndarray
    dims_a: np.ndarray
    dims_b: np.ndarray
    rate: float


def combine_at_rate(
    emb_a: np.ndarray,
    emb_b: np.ndarray,
    rate: float,
    *,
    rng: np.random.Generator | int | None = 0,
    normalize: bool = True,
) -> CombinedFeatures:
    """Concatenate a random n_A of A's dimensions with a random n_B of B's (Sec. 4.6, Fig. 6).

    Sizes from :func:`combination_sizes`. Rows are L2-normalised over the full embeddings
    first (``normalize=True``, docs/design.md sec. 3); the selected columns are drawn without
    replacement from ``rng`` (a Generator or a seed), A's before B's, and kept in their original
    order. Returns the (N, n_A + n_B) features with the chosen indices.
    """
    emb_a = _as_2d(emb_a, "model A embeddings")
    emb_b = _as_2d(emb_b, "model B embeddings")
    _same_rows(emb_a, emb_b, "model A embeddings", "model B embeddings")
    n_a, n_b = combination_sizes(emb_a.shape[1], emb_b.shape[1], rate)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    dims_a = np.sort(rng.choice(emb_a.shape[1], size=n_a, replace=False)).astype(np.int64)
    dims_b = np.sort(rng.choice(emb_b.shape[1], size=n_b, replace=False)).astype(np.int64)
    if normalize:
        emb_a, emb_b = l2_normalize_rows(emb_a), l2_normalize_rows(emb_b)
    dtype = np.result_type(emb_a.dtype, emb_b.dtype)
    features = np.concatenate(
        [emb_a[:, dims_a].astype(dtype, copy=False), emb_b[:, dims_b].astype(dtype, copy=False)],
        axis=1,
    )
    return CombinedFeatures(features=features, dims_a=dims_a, dims_b=dims_b, rate=float(rate))


def combine_at_rates(
    emb_a: np.ndarray,
    emb_b: np.ndarray,
    rates: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    *,
    draws: int = 3,
    seed: int = 0,
    normalize: bool = True,
) -> Iterator[tuple[float, int, CombinedFeatures]]:
    """Yield ``(rate, draw, CombinedFeatures)`` for every rate and random draw (Fig. 6 left).

    Draw ``d`` of rate ``f`` uses ``np.random.default_rng([seed, d, round(f·1e6)])``, so one
    draw is reproducible on its own and independent of the others. Rows are normalised once.
    """
    rates = [_check_rate(r) for r in rates]
    if draws < 1:
        raise ZoolensError(f"draws must be at least 1, got {draws}")
    emb_a = _as_2d(emb_a, "model A embeddings")
    emb_b = _as_2d(emb_b, "model B embeddings")
    _same_rows(emb_a, emb_b, "model A embeddings", "model B embeddings")
    if normalize:
        emb_a, emb_b = l2_normalize_rows(emb_a), l2_normalize_rows(emb_b)
    for rate in rates:
        for draw in range(draws):
            rng = np.random.default_rng([seed, draw, int(round(rate * 1e6))])
            yield rate, draw, combine_at_rate(emb_a, emb_b, rate, rng=rng, normalize=False)


# --------------------------------------------------------------------------- diversity


def mean_abs_correlation(x: np.ndarray) -> np.ndarray:
    """Each dimension's mean |Pearson correlation| with all *other* dimensions.

    ``x`` is (N, D) (the concatenated embedding on the training split, paper Sec. 4.6,
    Fig. 6 right). With Z the column-standardised x, R = ZᵀZ / N (one matrix product, float64)
    and the score of dim j is (Σ_k |R_jk| − |R_jj|) / (D − 1). A constant dimension has no
    defined correlation; it gets +inf so that the ranking puts it last (it carries nothing).
    """
    x = _as_2d(x, "features").astype(np.float64)
    n, d = x.shape
    if d < 2:
        return np.zeros(d)
    centred = x - x.mean(axis=0, keepdims=True)
    std = np.sqrt(np.einsum("ij,ij->j", centred, centred) / n)
    constant = std <= 1e-12 * max(1.0, float(np.abs(x).max(initial=0.0)))
    z = np.divide(centred, std, out=np.zeros_like(centred), where=~constant)
    corr = np.abs(z.T @ z) / n
    score = (corr.sum(axis=1) - np.diag(corr)) / (d - 1)
    score[constant] = np.inf
    return score


def diversity_ranking(x_train: np.ndarray) -> np.ndarray:
    """Dimension indices from most diverse (lowest mean |corr|) to least; ties by index.

    The "covariance-ranked" selection of paper Sec. 4.6 / Fig. 6 right, on the training split
    only (ranking on test data would leak).
    """
    return np.argsort(mean_abs_correlation(x_train), kind="stable").astype(np.int64)


def k_grid(total_dims: int, steps: int = 8) -> list[int]:
    """The grid D/8, 2D/8, …, D of dimension counts (rounded, at least 1, unique, sorted)."""
    if total_dims < 1:
        raise ZoolensError("the combined embedding has no dimensions")
    ks = {max(1, int(round(j * total_dims / steps))) for j in range(1, steps + 1)}
    return sorted(ks)


# --------------------------------------------------------------------------- CKA


def gram_linear(x: np.ndarray) -> np.ndarray:
    """Linear Gram matrix K = X Xᵀ (float64)."""
    x = np.asarray(x, dtype=np.float64)
    return x @ x.T


def gram_rbf(x: np.ndarray, threshold: float = 1.0) -> np.ndarray:
    """RBF Gram K_ij = exp(−d²_ij / (2 · t² · m)), m = median of all N² squared distances.

    Kornblith et al. (2019) demo convention: the median runs over the full N × N matrix of
    squared distances, its zero diagonal included; ``threshold`` t is the bandwidth as a
    fraction of the median distance.
    """
    if not threshold > 0:
        raise ZoolensError(f"RBF threshold must be positive, got {threshold}")
    x = np.asarray(x, dtype=np.float64)
    dots = x @ x.T
    sq_norms = np.diag(dots).copy()
    sq = dots  # reuse the buffer: sq = ‖x_i‖² + ‖x_j‖² − 2 x_i·x_j
    sq *= -2.0
    sq += sq_norms[:, None]
    sq += sq_norms[None, :]
    median = float(np.median(sq))
    if median <= 0:
        # All examples identical: every distance 0, kernel constant (CKA then undefined/NaN).
        median = 1.0
    sq *= -1.0 / (2.0 * threshold**2 * median)
    return np.exp(sq, out=sq)


def center_gram(gram: np.ndarray, unbiased: bool = False) -> np.ndarray:
    """Double-centre a Gram matrix (H K H); ``unbiased`` gives the U-statistic centring.

    The unbiased form (Song et al. 2012, used by Kornblith et al.'s debiased CKA) zeroes the
    diagonal, subtracts column sums / (n − 2) corrected by their total / (2(n − 1)), and zeroes
    the diagonal again. Needs n > 3 for the unbiased form. Returns a new float64 array.
    """
    gram = np.array(gram, dtype=np.float64, copy=True)
    if gram.ndim != 2 or gram.shape[0] != gram.shape[1]:
        raise ZoolensError(f"a Gram matrix must be square, got shape {gram.shape}")
    n = gram.shape[0]
    if unbiased:
        if n < 4:
            raise ZoolensError(f"debiased CKA needs at least 4 examples, got {n}")
        np.fill_diagonal(gram, 0.0)
        means = gram.sum(axis=0) / (n - 2)
        means -= means.sum() / (2 * (n - 1))
        gram -= means[:, None]
        gram -= means[None, :]
        np.fill_diagonal(gram, 0.0)
    else:
        means = gram.mean(axis=0)
        means -= means.mean() / 2
        gram -= means[:, None]
        gram -= means[None, :]
    return gram


def cka_from_grams(gram_x: np.ndarray, gram_y: np.ndarray, debiased: bool = False) -> float:
    """CKA = ⟨K̃, L̃⟩_F / (‖K̃‖_F ‖L̃‖_F) with K̃, L̃ the (un)biased-centred Grams."""
    kx = center_gram(gram_x, unbiased=debiased)
    ky = center_gram(gram_y, unbiased=debiased)
    hsic = float(np.vdot(kx, ky))
    return hsic / (float(np.linalg.norm(kx)) * float(np.linalg.norm(ky)))


def _debiased_dot(
    xty: np.ndarray | float,
    rows_x: np.ndarray,
    rows_y: np.ndarray,
    sq_x: np.ndarray | float,
    sq_y: np.ndarray | float,
    n: int,
) -> Any:
    """Unbiased HSIC in feature space (Kornblith et al. demo, `_debiased_dot_product_…`).

    xty = ‖XᵀY‖²_F, rows_* = per-example squared norms (N,) or (N, M), sq_* = ‖X‖²_F.
    Works elementwise for all pairs when given (N, M) row-norm matrices and (M,) norms.
    """
    if np.ndim(rows_x) == 2:
        cross = rows_x.T @ rows_y
        outer = np.multiply.outer(sq_x, sq_y)
    else:
        cross = float(rows_x @ rows_y)
        outer = sq_x * sq_y
    return xty - n / (n - 2.0) * cross + outer / ((n - 1.0) * (n - 2.0))


def _sq_distance_rows(x: np.ndarray, sq_norms: np.ndarray, rows: slice) -> np.ndarray:
    """Squared distances of examples ``rows`` to all examples: ‖x_i‖² + ‖x_j‖² − 2 x_i·x_j."""
    d = x[rows] @ x.T
    d *= -2.0
    d += sq_norms[rows, None]
    d += sq_norms[None, :]
    return d


def _rbf_block(
    x: np.ndarray, sq_norms: np.ndarray, rows: slice, scale: float, unbiased: bool
) -> np.ndarray:
    block = _sq_distance_rows(x, sq_norms, rows)
    block *= scale
    np.exp(block, out=block)
    if unbiased:  # U-centring works on the Gram with a zero diagonal
        i = np.arange(rows.stop - rows.start)
        block[i, rows.start + i] = 0.0
    return block


def _rbf_hsic_matrix(
    mats: Sequence[np.ndarray], threshold: float, unbiased: bool, block_bytes: int = 2**28
) -> np.ndarray:
    """⟨K̃_a, K̃_b⟩_F for every pair of RBF Grams, streamed over row blocks.

    Per model: the median m of all n² squared distances (one n × n float64 array, the only
    full one held, freed before the next model), then the centring vector from row blocks.
    Then the centred Grams are rebuilt block by block for all models at once and their
    inner products accumulated by one (M, rows·n) product per block. Peak memory ≈ n² · 8
    bytes + ``block_bytes``; the result equals centring full Grams (:func:`center_gram`).
    """
    if not threshold > 0:
        raise ZoolensError(f"RBF threshold must be positive, got {threshold}")
    xs = [np.asarray(m, dtype=np.float64) for m in mats]
    norms = [np.einsum("ij,ij->i", x, x) for x in xs]
    n, m_count = xs[0].shape[0], len(xs)
    if unbiased and n < 4:
        raise ZoolensError(f"debiased CKA needs at least 4 examples, got {n}")
    single_rows = max(1, block_bytes // (8 * n))
    scales, centres = [], []
    for x, sq in zip(xs, norms):
        full = _sq_distance_rows(x, sq, slice(0, n))
        median = float(np.median(full, overwrite_input=True))  # diagonal zeros included
        del full
        # All examples identical: every distance 0 and the kernel constant (CKA is then NaN).
        scale = -1.0 / (2.0 * threshold**2 * (median if median > 0 else 1.0))
        colsum = np.zeros(n)
        for r0 in range(0, n, single_rows):
            colsum += _rbf_block(x, sq, slice(r0, min(n, r0 + single_rows)), scale, unbiased).sum(
                axis=0
            )
        if unbiased:
            centre = colsum / (n - 2)
            centre -= centre.sum() / (2 * (n - 1))
        else:
            centre = colsum / n
            centre -= centre.mean() / 2
        scales.append(scale)
        centres.append(centre)
    rows_per_block = max(1, block_bytes // (8 * n * m_count))
    hsic = np.zeros((m_count, m_count))
    for r0 in range(0, n, rows_per_block):
        rows = slice(r0, min(n, r0 + rows_per_block))
        stacked = np.empty((m_count, rows.stop - rows.start, n))
        for k, (x, sq) in enumerate(zip(xs, norms)):
            block = _rbf_block(x, sq, rows, scales[k], unbiased)
            block -= centres[k][rows, None]
            block -= centres[k][None, :]
            if unbiased:
                i = np.arange(rows.stop - rows.start)
                block[i, rows.start + i] = 0.0
            stacked[k] = block
        flat = stacked.reshape(m_count, -1)
        hsic += flat @ flat.T
    return hsic


def _normalise_hsic(hsic: np.ndarray) -> np.ndarray:
    diag = np.sqrt(np.clip(np.diag(hsic), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        return hsic / np.outer(diag, diag)


def _subsample(n: int, max_examples: int | None, seed: int) -> np.ndarray | None:
    if max_examples is None or n <= max_examples:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=max_examples, replace=False))


def cka(
    x: np.ndarray,
    y: np.ndarray,
    kernel: str = "linear",
    threshold: float = 0.5,
    debiased: bool = False,
    *,
    max_examples: int | None = 10_000,
    seed: int = 0,
) -> float:
    """Centered kernel alignment between two representations of the same N examples.

    Kornblith et al. (2019); used in the paper's Appendix Fig. 13 against error consistency.
    - ``kernel="linear"``: feature-space formula, never an N × N Gram:
      CKA = ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) on column-centred X, Y (float64). With
      ``debiased=True`` each ‖·‖² term is replaced by the unbiased HSIC estimator
      ‖YᵀX‖²_F − n/(n−2) · Σ_i ‖x_i‖²‖y_i‖² + ‖X‖²_F ‖Y‖²_F / ((n−1)(n−2)).
    - ``kernel="rbf"``: Grams exp(−d² / (2 t² m)) (t = ``threshold``, m the median of all N²
      squared distances including the zero diagonal; :func:`gram_rbf`), double-centred
      (U-centred when ``debiased``). Computed on a random subsample (seeded) of at most
      ``max_examples`` examples (the same rows of X and Y), streamed over row blocks: memory
      ≈ n² · 8 bytes (800 MB at n = 10,000) for the median, plus 256 MB of blocks.
    Invariant to orthogonal transforms and isotropic scaling of either argument.
    """
    x = _as_2d(x, "X")
    y = _as_2d(y, "Y")
    _same_rows(x, y)
    n = x.shape[0]
    if n < 2 or (debiased and n < 4):
        raise ZoolensError(f"CKA needs at least {4 if debiased else 2} examples, got {n}")
    if kernel == "linear":
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        x = x - x.mean(axis=0, keepdims=True)
        y = y - y.mean(axis=0, keepdims=True)
        xty = float(np.linalg.norm(x.T @ y) ** 2)
        xtx = float(np.linalg.norm(x.T @ x) ** 2)
        yty = float(np.linalg.norm(y.T @ y) ** 2)
        if debiased:
            rows_x = np.einsum("ij,ij->i", x, x)
            rows_y = np.einsum("ij,ij->i", y, y)
            sx, sy = float(rows_x.sum()), float(rows_y.sum())
            xty = _debiased_dot(xty, rows_x, rows_y, sx, sy, n)
            xtx = _debiased_dot(xtx, rows_x, rows_x, sx, sx, n)
            yty = _debiased_dot(yty, rows_y, rows_y, sy, sy, n)
        return float(xty / math.sqrt(xtx * yty)) if xtx > 0 and yty > 0 else float("nan")
    if kernel == "rbf":
        rows = _subsample(n, max_examples, seed)
        if rows is not None:
            x, y = x[rows], y[rows]
        return float(_normalise_hsic(_rbf_hsic_matrix([x, y], threshold, debiased))[0, 1])
    raise ZoolensError(f"unknown CKA kernel {kernel!r}: use 'linear' or 'rbf'")


def _check_same_examples(
    embeddings: Sequence[np.ndarray] | Mapping[str, np.ndarray], debiased: bool
) -> list[np.ndarray]:
    mats = list(embeddings.values()) if isinstance(embeddings, Mapping) else list(embeddings)
    if not mats:
        return mats
    mats = [_as_2d(m, f"embeddings #{i}") for i, m in enumerate(mats)]
    for i, m in enumerate(mats[1:], start=1):
        _same_rows(mats[0], m, "embeddings #0", f"embeddings #{i}")
    n = mats[0].shape[0]
    if n < 2 or (debiased and n < 4):
        raise ZoolensError(f"CKA needs at least {4 if debiased else 2} examples, got {n}")
    return mats


# Working memory of the linear all-pairs HSIC: a float64 cross-product block between two panels
# of models, matmul's temporary of the same size, and one chunk of centred rows.
_LINEAR_BLOCK_BYTES = 512 << 20


def _panels(sizes: list[int], budget: int) -> list[tuple[int, int]]:
    """Consecutive model ranges [p0, p1) of at most W = √(budget / 16) dims each (a W × W
    float64 block plus its temporary fit ``budget``); a wider model is a panel of its own."""
    limit = max(1, int(math.isqrt(max(budget, 16) // 16)))
    panels, p0 = [], 0
    while p0 < len(sizes):
        p1, width = p0 + 1, sizes[p0]
        while p1 < len(sizes) and width + sizes[p1] <= limit:
            width += sizes[p1]
            p1 += 1
        panels.append((p0, p1))
        p0 = p1
    return panels


def _centred_rows(
    mats: Sequence[np.ndarray], means: Sequence[np.ndarray], models: range, r0: int, r1: int
) -> np.ndarray:
    return np.concatenate(
        [np.asarray(mats[a][r0:r1], dtype=np.float64) - means[a] for a in models], axis=1
    )


def _linear_hsic(mats: list[np.ndarray], debiased: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(M, M) linear HSIC ‖X̃_bᵀX̃_a‖²_F of every pair, and its debiased form (None unless
    ``debiased``), from the column-centred cross products X̃_aᵀX̃_b in float64.

    Memory is bounded whatever M, D and N (``_LINEAR_BLOCK_BYTES``, 512 MB): the models are cut
    into panels of at most ~5,800 dims, and for each pair of panels P ≤ Q the block X̃_PᵀX̃_Q
    is accumulated over row chunks (the inputs may be memory maps) and reduced to its
    Frobenius norms at once. A zoo that fits one panel takes one pass (a BLAS syrk); 20
    models of 2,048 dims take 55 panel-pair passes where the single (ΣD)² Gram and float64
    concatenation this replaces needed 13 + 16 GB. Measured on 6 memory-mapped float32
    embeddings of 20,000 × 2,048 (3 panels, 6 passes): peak RSS 1.4 GB, 1 GB of it the mapped
    files, against 5.9 GB for the single Gram; 31 s against 29 s.
    """
    n = mats[0].shape[0]
    sizes = [m.shape[1] for m in mats]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
    means = [_chunked_mean(m) for m in mats]  # no float64 copy of a whole embedding
    hsic = np.zeros((len(mats), len(mats)))
    rows = np.zeros((n, len(mats))) if debiased else None
    panels = _panels(sizes, _LINEAR_BLOCK_BYTES)
    for i, (p0, p1) in enumerate(panels):
        for q0, q1 in panels[i:]:
            diagonal = p0 == q0
            wp, wq = int(starts[p1] - starts[p0]), int(starts[q1] - starts[q0])
            block = np.zeros((wp, wq))
            chunk = max(1, _LINEAR_BLOCK_BYTES // (32 * (wp + wq)))
            for r0 in range(0, n, chunk):
                r1 = min(n, r0 + chunk)
                zp = _centred_rows(mats, means, range(p0, p1), r0, r1)
                if diagonal:
                    block += zp.T @ zp  # BLAS syrk
                    if debiased:  # per-example squared norms of this panel's models
                        assert rows is not None  # allocated when debiased
                        for a in range(p0, p1):
                            za = zp[:, starts[a] - starts[p0] : starts[a + 1] - starts[p0]]
                            rows[r0:r1, a] = np.einsum("ij,ij->i", za, za)
                else:
                    block += zp.T @ _centred_rows(mats, means, range(q0, q1), r0, r1)
            block *= block
            # Σ over each (a, b) sub-block: column sums by b, then row sums by a
            by_b = np.add.reduceat(block, starts[q0:q1] - starts[q0], axis=1)
            by_ab = np.add.reduceat(by_b, starts[p0:p1] - starts[p0], axis=0)
            if diagonal:  # equal halves up to rounding: keep the matrix exactly symmetric
                by_ab = 0.5 * (by_ab + by_ab.T)
            hsic[p0:p1, q0:q1] = by_ab
            hsic[q0:q1, p0:p1] = by_ab.T
    if not debiased:
        return hsic, None
    assert rows is not None  # allocated when debiased
    sq = rows.sum(axis=0)
    return hsic, _debiased_dot(hsic, rows, rows, sq, sq, n)


def _chunked_mean(m: np.ndarray, chunk: int = 8192) -> np.ndarray:
    total = np.zeros(m.shape[1])
    for r0 in range(0, m.shape[0], chunk):
        total += np.asarray(m[r0 : r0 + chunk], dtype=np.float64).sum(axis=0)
    return total / m.shape[0]


def linear_cka_matrices(
    embeddings: Sequence[np.ndarray] | Mapping[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """``(cka_matrix(…, "linear"), cka_matrix(…, "linear", debiased=True))`` from one Gram
    product instead of two (the costly N·(ΣD)² step is shared)."""
    mats = _check_same_examples(embeddings, True)
    if not mats:
        return np.zeros((0, 0)), np.zeros((0, 0))
    biased, unbiased = _linear_hsic(mats, True)
    assert unbiased is not None  # asked for
    return _normalise_hsic(biased), _normalise_hsic(unbiased)


def cka_matrix(
    embeddings: Sequence[np.ndarray] | Mapping[str, np.ndarray],
    kernel: str = "linear",
    threshold: float = 0.5,
    debiased: bool = False,
    *,
    max_examples: int | None = 10_000,
    seed: int = 0,
) -> np.ndarray:
    """CKA for every pair of M representations of the same examples, as an (M, M) matrix.

    No loop over pairs. Linear: with Z = [X̃_1 … X̃_M] (column-centred, float64) and
    G = ZᵀZ, HSIC(a, b) = ‖G_ab‖²_F, formed panel block by panel block (upper blocks only)
    over row chunks and reduced block-wise at once, so memory stays bounded (~0.6 GB) however
    many models (see ``_linear_hsic``); the debiased correction is vectorised over pairs. RBF (subsample shared by all models): the centred
    Grams of all models are streamed in row blocks and each block's pairwise inner products
    come from one matrix product (memory n² · 8 bytes + 256 MB, whatever M).
    Entry [a, b] equals ``cka(X_a, X_b, …)``.
    """
    mats = _check_same_examples(embeddings, debiased)
    if not mats:
        return np.zeros((0, 0))
    n = mats[0].shape[0]
    if kernel == "linear":
        biased, unbiased = _linear_hsic(mats, debiased)
        hsic = biased if unbiased is None else unbiased  # unbiased: None unless debiased
    elif kernel == "rbf":
        sub = _subsample(n, max_examples, seed)
        hsic = _rbf_hsic_matrix([m if sub is None else m[sub] for m in mats], threshold, debiased)
    else:
        raise ZoolensError(f"unknown CKA kernel {kernel!r}: use 'linear' or 'rbf'")
    return _normalise_hsic(hsic)
