"""zoolens.measure.features: CKA against published values and independent oracles, rates,
diversity ranking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from zoolens.errors import ZoolensError
from zoolens.measure.features import (
    center_gram,
    cka,
    cka_from_grams,
    cka_matrix,
    combination_sizes,
    combine_at_rate,
    combine_at_rates,
    diversity_ranking,
    gram_linear,
    k_grid,
    l2_normalize_rows,
    linear_cka_matrices,
    mean_abs_correlation,
)


@pytest.fixture(scope="module")
def kornblith_xy():
    # Kornblith et al. (2019) demo notebook's example data.
    np.random.seed(1337)
    x = np.random.randn(100, 10)
    y = np.random.randn(100, 10) + x
    return x, y


# ----------------------------------------------------------------------------- CKA references


def test_published_reference_values(kornblith_xy):
    x, y = kornblith_xy
    assert round(cka(x, y, kernel="linear"), 5) == 0.55761
    assert round(cka(x, y, kernel="rbf", threshold=0.5), 5) == 0.65483
    assert round(cka(x, y, kernel="linear", debiased=True), 5) == 0.51346


def _hsic_biased(k, l):
    n = k.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    return np.trace(k @ h @ l @ h)


def _hsic_unbiased(k, l):
    # Song et al. (2012), eq. (5): the U-statistic HSIC estimator, written out term by term.
    n = k.shape[0]
    k = k.copy()
    l = l.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    one = np.ones(n)
    return (
        np.trace(k @ l)
        + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (one @ k @ l @ one)
    ) / (n * (n - 3))


def _cka_oracle(k, l, hsic):
    return hsic(k, l) / math.sqrt(hsic(k, k) * hsic(l, l))


def _rbf_oracle(x, t):
    d2 = cdist(x, x, "sqeuclidean")  # scipy distances, median over the full matrix with diagonal
    return np.exp(-d2 / (2 * t * t * np.median(d2)))


@pytest.mark.parametrize("debiased", [False, True])
def test_linear_cka_matches_gram_space_oracle(debiased):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 7))
    y = x @ rng.normal(size=(7, 5)) + rng.normal(size=(60, 5))
    hsic = _hsic_unbiased if debiased else _hsic_biased
    expected = _cka_oracle(x @ x.T, y @ y.T, hsic)
    assert cka(x, y, debiased=debiased) == pytest.approx(expected, rel=1e-10)
    assert cka_from_grams(gram_linear(x), gram_linear(y), debiased) == pytest.approx(
        expected, rel=1e-10
    )


@pytest.mark.parametrize("threshold", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("debiased", [False, True])
def test_rbf_cka_matches_oracle(threshold, debiased):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(50, 6))
    y = np.tanh(x[:, :4]) + 0.5 * rng.normal(size=(50, 4))
    hsic = _hsic_unbiased if debiased else _hsic_biased
    expected = _cka_oracle(_rbf_oracle(x, threshold), _rbf_oracle(y, threshold), hsic)
    assert cka(x, y, kernel="rbf", threshold=threshold, debiased=debiased) == pytest.approx(
        expected, rel=1e-9
    )


def test_rbf_subsample_uses_the_same_rows_of_both():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 5))
    y = x + rng.normal(size=(300, 5))
    sub = cka(x, y, kernel="rbf", max_examples=120, seed=7)
    rows = np.sort(np.random.default_rng(7).choice(300, size=120, replace=False))
    assert sub == pytest.approx(cka(x[rows], y[rows], kernel="rbf", max_examples=None), rel=1e-12)
    assert sub != pytest.approx(cka(x, y, kernel="rbf", max_examples=None), rel=1e-6)


def test_center_gram_is_double_centering():
    rng = np.random.default_rng(6)
    k = gram_linear(rng.normal(size=(20, 3)))
    h = np.eye(20) - 1.0 / 20
    np.testing.assert_allclose(center_gram(k), h @ k @ h, atol=1e-12)


@pytest.mark.parametrize(
    "kernel,debiased", [("linear", False), ("linear", True), ("rbf", False), ("rbf", True)]
)
def test_cka_matrix_equals_pairwise(kernel, debiased):
    rng = np.random.default_rng(8)
    base = rng.normal(size=(80, 6))
    embs = {
        "a": base,
        "b": base @ rng.normal(size=(6, 9)) + rng.normal(size=(80, 9)),
        "c": rng.normal(size=(80, 3)),
        "d": np.abs(base[:, :4]),
    }
    m = cka_matrix(embs, kernel=kernel, debiased=debiased)
    names = list(embs)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            assert m[i, j] == pytest.approx(
                cka(embs[a], embs[b], kernel=kernel, debiased=debiased), rel=1e-9, abs=1e-12
            )
    np.testing.assert_allclose(np.diag(m), 1.0, rtol=1e-12)


def test_linear_cka_matrices_equal_both_cka_matrix_calls():
    rng = np.random.default_rng(9)
    base = rng.normal(size=(50, 5))
    embs = [
        base,
        base @ rng.normal(size=(5, 7)) + rng.normal(size=(50, 7)),
        rng.normal(size=(50, 2)),
    ]
    lin, deb = linear_cka_matrices(embs)
    np.testing.assert_array_equal(lin, cka_matrix(embs, kernel="linear"))
    np.testing.assert_array_equal(deb, cka_matrix(embs, kernel="linear", debiased=True))
    assert not np.allclose(lin, deb)
    with pytest.raises(ZoolensError, match="at least 4 examples"):
        linear_cka_matrices([base[:3], base[:3]])


@pytest.mark.parametrize(
    "budget,panels",
    [
        (1 << 30, [(0, 5)]),  # one panel, one chunk
        (16 * 21**2, [(0, 5)]),  # one panel, chunks of 5 rows
        (16 * 12**2, [(0, 1), (1, 4), (4, 5)]),  # panels of one and of several models
        (1, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]),  # one model per panel, one row per chunk
    ],
)
def test_linear_cka_in_bounded_blocks_equals_pairwise(monkeypatch, tmp_path, budget, panels):
    # A tiny working-memory budget cuts the models into panels and the rows into chunks;
    # float32 memory maps as input, the way embeddings come out of a zoo. Oracle: the per-pair
    # feature-space cka().
    import zoolens.measure.features as features

    monkeypatch.setattr(features, "_LINEAR_BLOCK_BYTES", budget)
    rng = np.random.default_rng(10)
    base = np.abs(rng.normal(size=(60, 5))) + 1.0  # off-centre, ReLU-like
    dense = [
        base,
        base @ rng.normal(size=(5, 8)) + rng.normal(size=(60, 8)),
        rng.normal(size=(60, 1)),
        base[:, :3] ** 2,
        rng.normal(size=(60, 4)) + 7.0,
    ]
    embs = []
    for i, e in enumerate(dense):
        mm = np.lib.format.open_memmap(
            tmp_path / f"e{i}.npy", mode="w+", dtype=np.float32, shape=e.shape
        )
        mm[:] = e
        embs.append(mm)
    lin, deb = linear_cka_matrices(embs)
    for i in range(len(embs)):
        for j in range(len(embs)):
            assert lin[i, j] == pytest.approx(cka(embs[i], embs[j]), rel=1e-9, abs=1e-12)
            assert deb[i, j] == pytest.approx(
                cka(embs[i], embs[j], debiased=True), rel=1e-9, abs=1e-12
            )
    np.testing.assert_array_equal(lin, lin.T)
    assert features._panels([e.shape[1] for e in dense], budget) == panels


def _orthogonal(d, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q * np.sign(np.diag(r))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    scale=st.floats(1e-3, 1e3),
    kernel=st.sampled_from(["linear", "rbf"]),
    debiased=st.booleans(),
)
def test_cka_invariant_to_orthogonal_transform_and_isotropic_scaling(seed, scale, kernel, debiased):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(40, 6))
    y = 0.7 * x @ rng.normal(size=(6, 5)) + rng.normal(size=(40, 5))
    ref = cka(x, y, kernel=kernel, debiased=debiased)
    moved = cka(
        scale * x @ _orthogonal(6, seed + 1),
        y @ _orthogonal(5, seed + 2) / scale,
        kernel=kernel,
        debiased=debiased,
    )
    assert moved == pytest.approx(ref, rel=1e-7, abs=1e-9)
    assert cka(x, x, kernel=kernel, debiased=debiased) == pytest.approx(1.0)


def test_cka_bad_input():
    x = np.zeros((10, 3))
    with pytest.raises(ZoolensError, match="rows"):
        cka(x, np.zeros((9, 3)))
    with pytest.raises(ZoolensError, match="kernel"):
        cka(x, x, kernel="poly")
    with pytest.raises(ZoolensError, match="2-d"):
        cka(np.zeros(10), x)


# ----------------------------------------------------------------------------- normalisation


def test_l2_normalize_rows():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1e-3, 0.0]], dtype=np.float32)
    out = l2_normalize_rows(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0, 0], [1, 0]], rtol=1e-6)


# ----------------------------------------------------------------------------- combination


@pytest.mark.parametrize(
    "da,db,f,expected",
    [
        (64, 64, 1.0, (64, 0)),
        (64, 64, 0.0, (0, 64)),
        (64, 64, 0.5, (32, 32)),
        (64, 64, 0.25, (16, 48)),
        (2048, 64, 0.25, (512, 48)),
        (64, 2048, 0.5, (32, 1024)),
        (64, 2048, 0.0, (0, 2048)),
        (100, 100, 0.29, (29, 71)),  # 0.29·100 = 28.999999999999996
        (5, 5, 0.5, (2, 2)),  # round(2.5) = 2 (half to even)
        (7, 3, 0.5, (3, 2)),
    ],
)
def test_combination_sizes(da, db, f, expected):
    assert combination_sizes(da, db, f) == expected


@settings(max_examples=60, deadline=None)
@given(da=st.integers(1, 300), db=st.integers(1, 300), f=st.floats(0, 1))
def test_combination_sizes_never_exceed_the_wider_embedding(da, db, f):
    na, nb = combination_sizes(da, db, f)
    assert 0 <= na <= da and 0 <= nb <= db
    assert na + nb <= max(da, db)
    assert na == math.floor(f * da + 1e-9)


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan")])
def test_rate_outside_unit_interval_is_an_error(rate):
    with pytest.raises(ZoolensError, match="outside"):
        combination_sizes(8, 8, rate)


def test_combine_normalises_full_rows_before_selecting():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 8)) * 5
    b = rng.normal(size=(30, 6))
    comb = combine_at_rate(a, b, 0.5, rng=np.random.default_rng(1))
    assert (comb.dims_a.size, comb.dims_b.size) == (4, 3)
    expected = np.concatenate(
        [l2_normalize_rows(a)[:, comb.dims_a], l2_normalize_rows(b)[:, comb.dims_b]], axis=1
    )
    np.testing.assert_allclose(comb.features, expected)
    # not re-normalised after selection: the rows are not unit length
    assert not np.allclose(np.linalg.norm(comb.features, axis=1), 1.0)


def test_combine_at_rates_draws_are_reproducible_and_distinct():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(10, 20)), rng.normal(size=(10, 20))
    first = list(combine_at_rates(a, b, [0.25, 0.5], draws=3, seed=4))
    second = list(combine_at_rates(a, b, [0.25, 0.5], draws=3, seed=4))
    assert [(r, d) for r, d, _ in first] == [(r, d) for r in (0.25, 0.5) for d in range(3)]
    for (_, _, x), (_, _, y) in zip(first, second):
        np.testing.assert_array_equal(x.features, y.features)
    dims = {tuple(c.dims_a) for r, _, c in first if r == 0.5}
    assert len(dims) == 3


def test_combine_rejects_different_row_counts():
    with pytest.raises(ZoolensError, match="rows"):
        combine_at_rate(np.zeros((5, 3)), np.zeros((6, 3)), 0.5)


# ----------------------------------------------------------------------------- diversity


def test_mean_abs_correlation_matches_corrcoef_loop():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(200, 3))
    x = np.concatenate(
        [z, z[:, :1] + 0.1 * rng.normal(size=(200, 1)), rng.normal(size=(200, 4))], 1
    )
    x[:, 5] = 2.0  # a constant (dead) dimension
    score = mean_abs_correlation(x.astype(np.float32))
    live = [j for j in range(x.shape[1]) if j != 5]
    r = np.corrcoef(x[:, live].T)
    for i, j in enumerate(live):
        # the dead dim counts as 0 correlation in the others' means (its z-scores are 0)
        others = [abs(r[i, k]) for k in range(len(live)) if k != i]
        assert score[j] == pytest.approx(sum(others) / (x.shape[1] - 1), rel=1e-5)
    assert score[5] == np.inf
    order = diversity_ranking(x)
    assert order[-1] == 5
    assert set(order[-3:-1]) == {0, 3}  # the correlated pair is the least diverse of the rest


def test_k_grid():
    assert k_grid(128) == [16, 32, 48, 64, 80, 96, 112, 128]
    assert k_grid(4) == [1, 2, 3, 4]


@pytest.mark.parametrize("debiased", [False, True])
def test_streamed_rbf_blocks_equal_full_gram_centering(debiased):
    from zoolens.measure.features import _normalise_hsic, _rbf_hsic_matrix, gram_rbf

    rng = np.random.default_rng(9)
    mats = [rng.normal(size=(37, 4)), rng.normal(size=(37, 6)), rng.normal(size=(37, 2))]
    # blocks of 2 rows (37 is not a multiple): every block boundary and the ragged last block
    streamed = _normalise_hsic(_rbf_hsic_matrix(mats, 0.7, debiased, block_bytes=8 * 37 * 3 * 2))
    for i in range(3):
        for j in range(3):
            full = cka_from_grams(gram_rbf(mats[i], 0.7), gram_rbf(mats[j], 0.7), debiased)
            assert streamed[i, j] == pytest.approx(full, rel=1e-10)
