"""zoolens.measure.probe: same optimum as scikit-learn on real CIFAR-10 ResNet embeddings,
11-point mAP against a hand-computed fixture and the classic VOC code, bad input."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score

from _cifar_embeddings import cifar_session_embeddings
from zoolens.errors import ZoolensError
from zoolens.measure.features import l2_normalize_rows
from zoolens.measure.probe import (
    average_precision,
    fit_linear_probe,
    mean_average_precision,
    probe_objective,
    voc11_average_precision,
    voc11_map,
)


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    """Real 64-d pre-logit embeddings (resnet20, resnet32) of 2,000 CIFAR-10 JPEGs, split."""
    data = cifar_session_embeddings(tmp_path_factory)
    perm = np.random.default_rng(0).permutation(data["labels"].size)
    return {
        "x": l2_normalize_rows(data["resnet20"]),
        "y": data["labels"],
        "train": perm[:1400],
        "test": perm[1400:],
    }


# ----------------------------------------------------------------------------- sklearn optimum


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("lam", [1e-3, 1e-4])
def test_same_optimum_as_sklearn_on_real_embeddings(cifar, dtype, lam):
    x, y, tr, te = cifar["x"], cifar["y"], cifar["train"], cifar["test"]
    ours = fit_linear_probe(x[tr], y[tr], l2_grid=[lam], dtype=dtype, tol=1e-8)
    ref = LogisticRegression(
        solver="lbfgs", tol=1e-8, C=1.0 / (lam * tr.size), max_iter=20_000
    ).fit(x[tr], y[tr])
    obj_ours = probe_objective(x[tr], y[tr], ours.coef_, ours.intercept_, lam)
    obj_ref = probe_objective(x[tr], y[tr], ref.coef_, ref.intercept_, lam)
    assert abs(obj_ours - obj_ref) <= 1e-4 * abs(obj_ref)
    assert ours.objective == pytest.approx(obj_ours, rel=1e-5)  # its own record agrees
    assert abs(ours.score(x[te], y[te]) - ref.score(x[te], y[te])) <= 0.002
    assert ours.l2 == lam and ours.validation == []
    assert 0.75 < ours.score(x[te], y[te]) < 0.9  # resnet20 on JPEGs: ~0.81 top-1


def test_feature_offset_moves_only_the_bias(cifar):
    # The probe fits in a centred parametrisation (b′ = b + Wμ); the optimum must not depend on
    # it: shifting every row by v leaves W* alone and moves the bias to b* − W*v, exactly.
    x, y, tr = cifar["x"], cifar["y"], cifar["train"]
    v = np.linspace(-3.0, 5.0, x.shape[1])
    a = fit_linear_probe(x[tr], y[tr], l2_grid=1e-3, dtype="float64", tol=1e-9)
    b = fit_linear_probe(x[tr] + v, y[tr], l2_grid=1e-3, dtype="float64", tol=1e-9)
    np.testing.assert_allclose(b.coef_, a.coef_, atol=2e-5 * np.abs(a.coef_).max())
    np.testing.assert_allclose(b.intercept_, a.intercept_ - a.coef_ @ v, atol=1e-3)
    assert b.objective == pytest.approx(
        probe_objective(x[tr] + v, y[tr], b.coef_, b.intercept_, 1e-3), rel=1e-9
    )
    assert b.objective == pytest.approx(a.objective, rel=1e-8)


@pytest.mark.parametrize("multilabel", [False, True])
def test_two_products_per_iteration_and_strong_wolfe_steps(monkeypatch, multilabel):
    # The solver's promise: an iteration costs two N × D × C products however many trials its
    # line search takes (the trials run on the ray z + s·u), a cold start needs no forward
    # product, and every accepted step meets the strong Wolfe conditions it claims.
    import zoolens.measure.probe as probe_module

    search, steps = probe_module._line_search, []

    def recorded(phi, f0, slope0, s, **kwargs):
        out = search(phi, f0, slope0, s, **kwargs)
        # re-evaluated now: the solver then moves the scores the ray starts from
        steps.append((phi(out[0]), f0, slope0, out, kwargs.get("c2", 0.1)))
        return out

    monkeypatch.setattr(probe_module, "_line_search", recorded)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 100, 2000)
    x = rng.normal(size=(100, 128))[y] + 4 * rng.normal(size=(2000, 128))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    t = np.eye(100, dtype=np.uint8)[y] if multilabel else y
    probe = fit_linear_probe(x, t, l2_grid=1e-3, multilabel=multilabel, tol=1e-6, dtype="float64")
    assert probe.converged and probe.grad_norm <= 1e-6
    assert probe.n_products == 1 + 2 * probe.n_iter  # first gradient, then u and ∇ per step
    assert len(steps) == probe.n_iter and probe.n_evals > probe.n_iter
    for (f_s, slope_s, _), f0, slope0, (s, f, _), c2 in steps:
        assert s > 0 and slope0 < 0
        assert f_s == f <= f0 + 1e-4 * s * slope0
        assert abs(slope_s) <= c2 * abs(slope0)


def test_same_optimum_as_torch_lbfgs_with_autograd():
    # An independent solver on an independent objective: torch.optim.LBFGS (strong Wolfe) on
    # the plain, uncentred objective written with autograd, in float64.
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(4)
    n, d, c, lam = 600, 12, 6, 1e-2
    y = rng.integers(0, c, n)
    x = rng.normal(size=(c, d))[y] + 1.5 * rng.normal(size=(n, d)) + 3.0  # off-centre
    ours = fit_linear_probe(x, y, l2_grid=lam, dtype="float64", tol=1e-10)
    xt, yt = torch.tensor(x), torch.tensor(y)
    w = torch.zeros((c, d), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(c, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b],
        max_iter=5000,
        tolerance_grad=1e-12,
        tolerance_change=1e-15,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xt @ w.T + b, yt) + 0.5 * lam * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    # both stop once the loss no longer moves in float64 (max-abs gradients ~1e-7 and ~1e-8)
    np.testing.assert_allclose(ours.coef_, w.detach().numpy(), atol=2e-6)
    np.testing.assert_allclose(ours.intercept_, b.detach().numpy(), atol=2e-5)
    assert ours.objective == pytest.approx(closure().item(), rel=1e-12)


@pytest.mark.parametrize("lam", [0.0, 1e-2])
def test_separable_data_stops_cleanly(lam):
    # Two separable clusters: without a penalty the optimum is at infinity; the fit must stop
    # at max_iter or a flat objective with finite weights, not loop or overflow.
    x = np.array([[-2.0, 0.1], [-1.5, -0.2], [1.5, 0.3], [2.0, -0.1]])
    probe = fit_linear_probe(x, np.array([0, 0, 1, 1]), l2_grid=lam, max_iter=200)
    assert np.all(np.isfinite(probe.coef_)) and probe.score(x, [0, 0, 1, 1]) == 1.0
    assert probe.n_iter <= 200


def test_multilabel_probe_matches_independent_sklearn_binaries(cifar):
    x, y, tr = cifar["x"], cifar["y"], cifar["train"]
    # 12 real labels: the 10 classes plus "vehicle" (0, 1, 8, 9) and "mammal" (3, 4, 5, 7)
    t = np.concatenate(
        [
            np.eye(10, dtype=np.uint8)[y],
            np.isin(y, [0, 1, 8, 9])[:, None],
            np.isin(y, [3, 4, 5, 7])[:, None],
        ],
        axis=1,
    ).astype(np.uint8)
    lam = 1e-4
    ours = fit_linear_probe(x[tr], t[tr], l2_grid=lam, multilabel=True, dtype="float64", tol=1e-8)
    coef, icpt = [], []
    for c in range(t.shape[1]):
        ref = LogisticRegression(
            solver="lbfgs", tol=1e-8, C=1.0 / (lam * tr.size), max_iter=20_000
        ).fit(x[tr], t[tr, c])
        coef.append(ref.coef_[0])
        icpt.append(ref.intercept_[0])
    obj_ref = probe_objective(x[tr], t[tr], np.array(coef), np.array(icpt), lam, multilabel=True)
    obj_ours = probe_objective(x[tr], t[tr], ours.coef_, ours.intercept_, lam, multilabel=True)
    assert abs(obj_ours - obj_ref) <= 1e-4 * abs(obj_ref)
    te = cifar["test"]
    ref_scores = x[te] @ np.array(coef).T + np.array(icpt)
    assert ours.score(x[te], t[te]) == pytest.approx(voc11_map(ref_scores, t[te]), abs=0.002)
    assert ours.predict(x[te]).shape == t[te].shape
    proba = ours.predict_proba(x[te])
    assert np.all((proba > 0) & (proba < 1))


def test_l2_chosen_on_validation_then_refit_on_all(cifar):
    x, y, tr = cifar["x"], cifar["y"], cifar["train"]
    grid = [1e-2, 1e-3, 1e-4]
    probe = fit_linear_probe(x[tr], y[tr], l2_grid=grid, seed=3, dtype="float64")
    assert [r["l2"] for r in probe.validation] == sorted(grid, reverse=True)
    best = max(probe.validation, key=lambda r: (r["score"], -r["loss"]))
    assert probe.l2 == best["l2"]
    # validation really is a held-out part: refitting the chosen λ on the seed's training part
    # reproduces the recorded validation accuracy
    perm = np.random.default_rng(3).permutation(tr.size)
    n_val = round(0.2 * tr.size)
    fit_part, val_part = np.sort(perm[n_val:]), np.sort(perm[:n_val])
    part = fit_linear_probe(x[tr][fit_part], y[tr][fit_part], l2_grid=probe.l2, dtype="float64")
    assert part.score(x[tr][val_part], y[tr][val_part]) == pytest.approx(
        best["score"], abs=1.5 / n_val
    )
    # the final model is the optimum on all the rows it was given
    direct = fit_linear_probe(x[tr], y[tr], l2_grid=probe.l2, dtype="float64")
    assert probe.objective == pytest.approx(direct.objective, rel=1e-6)


def test_deterministic_for_a_seed(cifar):
    x, y = cifar["x"][:600], cifar["y"][:600]
    a = fit_linear_probe(x, y, l2_grid=[1e-2, 1e-4], seed=1)
    b = fit_linear_probe(x, y, l2_grid=[1e-2, 1e-4], seed=1)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.intercept_, b.intercept_)
    assert a.validation == b.validation


def test_class_ids_are_kept_and_probabilities_sum_to_one():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 4)) * 4
    y = np.repeat([3, 7, 9], 40)
    x = centers[np.repeat([0, 1, 2], 40)] + rng.normal(size=(120, 4))
    probe = fit_linear_probe(x, y, l2_grid=1e-3)
    assert set(np.unique(probe.predict(x))) <= {3, 7, 9}
    assert probe.score(x, y) > 0.9
    np.testing.assert_allclose(probe.predict_proba(x).sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(probe.classes_, [3, 7, 9])


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="no CUDA device here")
def test_cuda_gives_the_cpu_optimum(cifar):
    x, y = cifar["x"][:800], cifar["y"][:800]
    cpu = fit_linear_probe(x, y, l2_grid=1e-3, dtype="float64", tol=1e-9)
    gpu = fit_linear_probe(x, y, l2_grid=1e-3, dtype="float64", tol=1e-9, device="cuda")
    assert gpu.objective == pytest.approx(cpu.objective, rel=1e-7)


# ----------------------------------------------------------------------------- bad input


def test_multilabel_target_to_softmax_probe_is_an_error():
    with pytest.raises(ZoolensError, match="multi-label"):
        fit_linear_probe(np.zeros((6, 2)), np.eye(3)[[0, 1, 2, 0, 1, 2]], l2_grid=1e-3)


@pytest.mark.parametrize(
    "x,y,match",
    [
        (np.zeros((5, 2)), np.zeros(4, int), "rows"),
        (np.full((4, 2), np.nan), np.zeros(4, int), "NaN"),
        (np.array([[1.0, np.inf], [0, 0], [0, 0], [0, 0]]), np.zeros(4, int), "infinite"),
        (np.array([[np.inf, -np.inf], [0, 0], [0, 0], [0, 0]]), np.zeros(4, int), "infinite"),
        (np.zeros(4), np.zeros(4, int), "2-d"),
        (np.zeros((4, 2)), np.array([0.5, 1, 0, 1]), "integers"),
    ],
)
def test_bad_input(x, y, match):
    with pytest.raises(ZoolensError, match=match):
        fit_linear_probe(x, y, l2_grid=1e-3)


def test_bad_multilabel_target_and_grid():
    with pytest.raises(ZoolensError, match="0/1"):
        fit_linear_probe(np.zeros((4, 2)), np.full((4, 3), 2), multilabel=True, l2_grid=1.0)
    with pytest.raises(ZoolensError, match="l2_grid"):
        fit_linear_probe(np.zeros((4, 2)), np.arange(4), l2_grid=[-1.0])


# ----------------------------------------------------------------------------- average precision

# Hand-made ranking: 10 positives, 5 negatives; rank 4 reaches a recall of exactly 3/10.
HAND_HITS = [1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1]


def test_voc11_hand_computed_fixture_with_recall_exactly_point_three():
    # Interpolated precision at t = 0..10 (by hand, see the table in the test's comment):
    # t=0,1: 1; t=2,3: 3/4 (rank 4 has recall 0.3 exactly); t=4..9: 9/13; t=10: 10/15.
    expected = (Fraction(1) * 2 + Fraction(3, 4) * 2 + Fraction(9, 13) * 6 + Fraction(10, 15)) / 11
    assert expected == Fraction(59, 78)
    scores = -np.arange(len(HAND_HITS), dtype=float)  # descending in list order
    assert voc11_average_precision(scores, np.array(HAND_HITS)) == pytest.approx(59 / 78, abs=1e-15)
    # a float arange threshold (0.30000000000000004) would drop rank 4 at t = 3:
    wrong = (Fraction(1) * 2 + Fraction(3, 4) + Fraction(9, 13) * 7 + Fraction(10, 15)) / 11
    assert abs(voc11_average_precision(scores, np.array(HAND_HITS)) - float(wrong)) > 1e-3


def _voc_devkit_ap(scores, targets):
    """The classic py-faster-rcnn / VOC devkit 11-point AP (float thresholds)."""
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(targets[order] > 0)
    rec = tp / max(1, (targets > 0).sum())
    prec = tp / np.arange(1, len(tp) + 1)
    ap = 0.0
    for t in np.arange(0.0, 1.1, 0.1):
        ap += (np.max(prec[rec >= t]) if np.sum(rec >= t) else 0.0) / 11.0
    return ap


def test_voc11_matches_devkit_away_from_exact_boundaries():
    rng = np.random.default_rng(0)
    for _ in range(20):
        targets = (rng.random(57) < 0.3).astype(int)
        targets[0] = 1
        positives = targets.sum()
        if any((t * positives) % 10 == 0 for t in range(1, 10)):
            continue  # recall t/10 reachable exactly: the float devkit is the one that is off
        scores = rng.normal(size=57)
        assert voc11_average_precision(scores, targets) == pytest.approx(
            _voc_devkit_ap(scores, targets), abs=1e-12
        )


def test_average_precision_matches_sklearn_without_ties():
    rng = np.random.default_rng(1)
    scores = -np.arange(len(HAND_HITS), dtype=float)
    assert average_precision(scores, np.array(HAND_HITS)) == pytest.approx(
        average_precision_score(HAND_HITS, scores), abs=1e-12
    )
    s = rng.normal(size=(200, 4))
    t = (rng.random((200, 4)) < 0.2).astype(int)
    assert mean_average_precision(s, t) == pytest.approx(
        np.mean([average_precision_score(t[:, c], s[:, c]) for c in range(4)]), abs=1e-12
    )


def test_ties_keep_example_order_and_classes_without_positives_are_left_out():
    assert voc11_average_precision(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(0.5)
    assert voc11_average_precision(np.array([0.5, 0.5]), np.array([1, 0])) == pytest.approx(1.0)
    assert average_precision(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(0.5)
    scores = np.array([[0.9, 0.1], [0.2, 0.3]])
    targets = np.array([[1, 0], [0, 0]])
    assert voc11_map(scores, targets) == pytest.approx(1.0)  # column 2 has no positive
    assert np.isnan(voc11_map(scores, np.zeros((2, 2))))


# ----------------------------------------------------------------------------- internals


@pytest.mark.parametrize("multilabel", [False, True])
@pytest.mark.parametrize("chunk", [1 << 19, 64])
def test_ray_derivatives_and_gradient_match_autograd(monkeypatch, multilabel, chunk):
    # φ(s), φ′(s), φ″(s) along a ray and the gradient, against torch autograd on the plain
    # (uncentred) objective in float64; chunk = 64 scores splits the rows into many chunks.
    import torch
    import torch.nn.functional as F

    import zoolens.measure.probe as probe_module

    monkeypatch.setattr(probe_module, "_CHUNK_SCORES", chunk)
    rng = np.random.default_rng(2)
    n, d, c, lam = 300, 7, 5, 1e-2
    x = torch.tensor(rng.normal(size=(n, d)) + 2.0)  # off-centre features: μ matters
    y = rng.integers(0, c, n)
    t = torch.tensor(np.eye(c)[y]) if multilabel else torch.tensor(y)
    w, b = torch.tensor(rng.normal(size=(c, d)) * 0.3), torch.tensor(rng.normal(size=c) * 0.3)
    dw, db = torch.tensor(rng.normal(size=(c, d))), torch.tensor(rng.normal(size=c))
    mu = x.mean(dim=0)

    def plain(wv, bv):  # the probe objective with the model's bias b = b′ − Wμ
        z = x @ wv.T + (bv - wv @ mu)
        loss = (
            F.binary_cross_entropy_with_logits(z, t, reduction="sum") / n
            if multilabel
            else F.cross_entropy(z, t)
        )
        return loss + 0.5 * lam * (wv**2).sum()

    problem = probe_module._Problem(x, t, lam, multilabel, mu, c)
    z, u = problem.scores(w, b), problem.scores(dw, db)
    for s in (0.0, 0.37, -1.2):
        loss, slope, curve = problem.along(z, u, s)
        penalty = 0.5 * lam * float(((w + s * dw) ** 2).sum())
        phi = lambda r: plain(w + r * dw, b + r * db)  # noqa: E731
        r = torch.tensor(s, dtype=torch.float64, requires_grad=True)
        (d1,) = torch.autograd.grad(phi(r), r, create_graph=True)
        (d2,) = torch.autograd.grad(d1, r)
        assert loss + penalty == pytest.approx(float(phi(r.detach())), rel=1e-12)
        assert slope + lam * float(((w + s * dw) * dw).sum()) == pytest.approx(d1.item(), rel=1e-10)
        assert curve + lam * float((dw * dw).sum()) == pytest.approx(float(d2), rel=1e-10)
    wr, br = w.clone().requires_grad_(), b.clone().requires_grad_()
    gw, gb = torch.autograd.grad(plain(wr, br), (wr, br))
    ow, ob = problem.gradient(z, w)
    np.testing.assert_allclose(ow.numpy(), gw.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(ob.numpy(), gb.numpy(), rtol=1e-10, atol=1e-14)
    assert problem.products == 3
    assert problem.scores(torch.zeros_like(w), b).equal(b.expand(n, c))  # W = 0: no product
    assert problem.products == 3


def test_line_search_on_a_known_function():
    # φ(s) = (s − 3)² − 9: the Newton step from s = 1 lands on the minimiser at once; from a
    # far overshoot the bracket is bisected back; a flat φ returns s = 0.
    from zoolens.measure.probe import _line_search

    quad = lambda s: ((s - 3) ** 2 - 9, 2 * (s - 3), 2.0)  # noqa: E731
    s, f, trials = _line_search(quad, 0.0, -6.0, 1.0)
    assert (s, f) == (3.0, -9.0) and trials == 2
    s, f, _ = _line_search(quad, 0.0, -6.0, 1e6)
    assert abs(s - 3.0) <= 0.6 and f <= 1e-4 * s * -6.0
    flat = lambda s: (0.0, -1e-30 if s == 0 else 0.0, 0.0)  # noqa: E731
    assert _line_search(flat, 0.0, -1e-30, 1.0, max_trials=5) == (0.0, 0.0, 5)


def test_converged_only_when_the_gradient_tolerance_is_met(monkeypatch):
    """``converged`` is the gradient test, grad_norm <= tol: a fit stopped by max_iter, or by
    a line search that no longer decreases the loss (a stall), is not converged."""
    import zoolens.measure.probe as probe_module

    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 400)
    x = rng.normal(size=(5, 16))[y] + rng.normal(size=(400, 16))
    done = fit_linear_probe(x, y, l2_grid=1e-2, tol=1e-6, dtype="float64")
    assert done.converged and done.grad_norm <= 1e-6
    # tol below what float64 resolves here: the loss stops changing first -> not converged
    fine = fit_linear_probe(x, y, l2_grid=1e-2, tol=1e-12, dtype="float64")
    assert fine.grad_norm > 1e-12 and not fine.converged
    capped = fit_linear_probe(x, y, l2_grid=1e-2, tol=1e-12, max_iter=2, dtype="float64")
    assert capped.n_iter == 2 and capped.grad_norm > 1e-12 and not capped.converged
    # the line search stalls at once (no trial decreases the loss): stopped, not converged
    monkeypatch.setattr(probe_module, "_line_search", lambda phi, f0, slope0, s, **kw: (0.0, f0, 1))
    stalled = fit_linear_probe(x, y, l2_grid=1e-2, tol=1e-6, dtype="float64")
    assert stalled.n_iter == 0 and stalled.grad_norm > 1e-6 and not stalled.converged
