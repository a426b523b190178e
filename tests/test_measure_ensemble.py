"""Ensembles vs straightforward references: per-pair loops, a plain Caruana loop, hand fixtures."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoolens.errors import ZoolensError
from zoolens.measure.agreement import correctness
from zoolens.measure.ensemble import (
    EnsembleCounts,
    all_pair_ensemble_correct,
    class_aware_mask,
    class_weights,
    combine_scores,
    ensemble_counts,
    ensemble_inputs,
    ensemble_rates,
    greedy_forward_selection,
    interpolation_curve,
    majority_vote,
    pair_ensemble_correct,
    pair_ensemble_predictions,
    pair_index,
    weighted_pair_predictions,
)


def random_probs(rng, m, n, c, ties=False):
    z = rng.normal(size=(m, n, c)) * rng.uniform(0.5, 3, size=(m, 1, 1))
    if ties:
        z = np.round(z)  # many exactly equal scores
    p = np.exp(z)
    return (p / p.sum(axis=2, keepdims=True)).astype(np.float32)


# ---------------------------------------------------------------- pairs


def test_pair_ensemble_hand_fixture_and_tie_rule():
    qa = np.array([[0.6, 0.4, 0.0], [0.2, 0.3, 0.5], [0.5, 0.5, 0.0]], np.float32)
    qb = np.array([[0.0, 0.5, 0.5], [0.5, 0.3, 0.2], [0.5, 0.5, 0.0]], np.float32)
    # sums: [.6,.9,.5] -> 1; [.7,.6,.7] -> tie 0 and 2 -> 0; [1,1,0] -> 0
    np.testing.assert_array_equal(pair_ensemble_predictions(qa, qb), [1, 0, 0])
    np.testing.assert_array_equal(pair_ensemble_predictions(qa, qb, 1.0), [0, 2, 0])
    np.testing.assert_array_equal(pair_ensemble_predictions(qa, qb, 0.0), [1, 0, 0])
    np.testing.assert_array_equal(
        pair_ensemble_correct(qa, qb, np.array([1, 2, 1])), [True, False, False]
    )


def test_half_weight_is_plain_average_bit_for_bit():
    rng = np.random.default_rng(0)
    q = random_probs(rng, 2, 500, 7)
    np.testing.assert_array_equal(combine_scores(q[0], q[1], 0.5), (q[0] + q[1]) * np.float32(0.5))
    np.testing.assert_array_equal(pair_ensemble_predictions(q[0], q[1]), (q[0] + q[1]).argmax(1))


def test_logits_combine_is_average_of_scaled_logits():
    rng = np.random.default_rng(1)
    za, zb = rng.normal(size=(2, 300, 6)) * 3
    ta, tb = 1.7, 0.6
    xa, xb = (
        ensemble_inputs(za, ta, "logits", dtype=np.float64),
        ensemble_inputs(zb, tb, "logits", dtype=np.float64),
    )
    np.testing.assert_array_equal(
        pair_ensemble_predictions(xa, xb, 0.3), (0.3 * za / ta + 0.7 * zb / tb).argmax(1)
    )
    q = ensemble_inputs(za, ta, "probs", dtype=np.float64)
    np.testing.assert_allclose(
        q, np.exp(za / ta) / np.exp(za / ta).sum(1, keepdims=True), rtol=1e-12
    )
    with pytest.raises(ZoolensError, match="combine"):
        ensemble_inputs(za, 1.0, "median")
    with pytest.raises(ZoolensError, match="weight"):
        combine_scores(xa, xb, 1.5)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 6),
    st.integers(1, 40),
    st.integers(1, 12),
    st.booleans(),
    st.sampled_from([0.5, 0.25, 0.9]),
    st.integers(0, 10**6),
)
def test_all_pairs_equal_per_pair_loop(m, n, c, ties, weight, seed):
    rng = np.random.default_rng(seed)
    q = random_probs(rng, m, n, c, ties)
    y = rng.integers(0, c, n)
    got = all_pair_ensemble_correct(q, y, weight)
    preds = all_pair_ensemble_correct(q, y, weight, return_predictions=True)
    a_idx, b_idx = pair_index(m)
    assert got.shape == (m * (m - 1) // 2, n)
    for p, (a, b) in enumerate(zip(a_idx, b_idx)):
        w = np.float32(weight)
        ref = (w * q[a] + np.float32(1 - weight) * q[b]).argmax(axis=1)
        np.testing.assert_array_equal(preds[p], ref)
        np.testing.assert_array_equal(got[p], ref == y)


def test_all_pairs_small_blocks_and_multilabel(monkeypatch):
    import zoolens.measure.ensemble as ens

    rng = np.random.default_rng(2)
    q = random_probs(rng, 5, 60, 4)
    multi = (rng.uniform(size=(60, 4)) < 0.4).astype(np.uint8)
    whole = all_pair_ensemble_correct(q, multi)
    monkeypatch.setattr(ens, "_BLOCK_BYTES", 1)  # one pair per block
    np.testing.assert_array_equal(all_pair_ensemble_correct(q, multi), whole)
    a, b = pair_index(5)
    ref = np.stack([multi[np.arange(60), (q[i] + q[j]).argmax(1)] != 0 for i, j in zip(a, b)])
    np.testing.assert_array_equal(whole, ref)


def test_full_rows_are_the_definition_argmax_of_the_weighted_sum_with_ties():
    """Every pair's prediction is argmax_c w·x_a[c] + (1−w)·x_b[c] in the inputs' dtype,
    lowest class on ties (docs/design.md sec. 3), written out per pair here."""
    rng = np.random.default_rng(3)
    q = random_probs(rng, 4, 200, 30, ties=True)
    a_idx, b_idx = pair_index(4)
    for weight in (0.5, 0.3):
        w, v = np.float32(weight), np.float32(1 - weight)
        expected = np.stack(
            [
                [int(np.flatnonzero(row == row.max())[0]) for row in w * q[a] + v * q[b]]
                for a, b in zip(a_idx, b_idx)
            ]
        )
        np.testing.assert_array_equal(
            all_pair_ensemble_correct(q, np.zeros(200, int), weight, return_predictions=True),
            expected,
        )


def test_counts_and_rates_hand_fixture():
    ra = np.array([1, 1, 0, 0, 1, 0], bool)
    rb = np.array([1, 0, 1, 0, 0, 0], bool)
    re = np.array([1, 1, 0, 1, 0, 0], bool)
    counts = ensemble_counts(ra, rb, re)
    rates = ensemble_rates(counts)
    assert rates["ensemble_acc"][0] == pytest.approx(3 / 6)
    assert rates["ensemble_gain"][0] == pytest.approx(3 / 6 - (3 / 6 + 2 / 6) / 2)
    # exactly one right: examples 1, 2, 4 -> ensemble right on 1 of them
    assert rates["conversion_rate"][0] == pytest.approx(1 / 3)
    # both wrong: examples 3, 5 -> ensemble right on 3
    assert rates["neither_conversion"][0] == pytest.approx(1 / 2)
    # adding chunks equals counting the whole
    halves = ensemble_counts(ra[:3], rb[:3], re[:3]) + ensemble_counts(ra[3:], rb[3:], re[3:])
    for key, value in ensemble_rates(halves).items():
        np.testing.assert_array_equal(value, rates[key])
    assert isinstance(halves, EnsembleCounts)


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("shape_a", [(40, 301), (1, 301), (301,)])
def test_counts_equal_their_definitions(shape_a, transposed):
    """ensemble_counts against each count written out from its definition, member a of
    the same shape as the others or broadcast (one row, or 1-D); the (P, n) arrays C-ordered
    or transposed views of (n, P) ones (what study.pairblocks passes)."""
    rng = np.random.default_rng(len(shape_a))

    def draw(shape, p):
        if transposed and len(shape) == 2 and shape[0] > 1:
            return (rng.random(shape[::-1]) < p).T
        return rng.random(shape) < p

    ra = draw(shape_a, 0.7)
    rb, re = draw((40, 301), 0.6), draw((40, 301), 0.8)
    counts = ensemble_counts(ra, rb, re)
    a = np.broadcast_to(np.atleast_2d(ra), rb.shape)
    want = {
        "n": np.full(40, 301),
        "ensemble_right": re.sum(axis=1),
        "exactly_one": (a != rb).sum(axis=1),
        "converted": ((a != rb) & re).sum(axis=1),
        "both_wrong": (~a & ~rb).sum(axis=1),
        "neither_converted": (~a & ~rb & re).sum(axis=1),
        "right_b": rb.sum(axis=1),
    }
    for name, value in want.items():
        np.testing.assert_array_equal(getattr(counts, name), value, err_msg=name)
    np.testing.assert_array_equal(counts.right_a, np.atleast_2d(ra).sum(axis=1))


def test_rates_nan_when_condition_never_occurs():
    r = np.array([[1, 0, 1]], bool)
    rates = ensemble_rates(ensemble_counts(r, r, r))  # identical models: EI = 0
    assert np.isnan(rates["conversion_rate"][0])
    assert rates["neither_conversion"][0] == 0.0  # condition occurs, never converted: 0, not NaN
    ones = np.ones((1, 3), bool)
    assert np.isnan(ensemble_rates(ensemble_counts(ones, ones, ones))["neither_conversion"][0])


# ---------------------------------------------------------------- interpolation


def test_interpolation_curve_endpoints_and_midpoint():
    rng = np.random.default_rng(4)
    q = random_probs(rng, 2, 400, 5)
    y = rng.integers(0, 5, 400)
    curve = interpolation_curve(q[0], q[1], y, weights=[0.0, 0.5, 1.0])
    assert curve[0] == pytest.approx(np.mean(q[1].argmax(1) == y))
    assert curve[1] == pytest.approx(np.mean((q[0] + q[1]).argmax(1) == y))
    assert curve[2] == pytest.approx(np.mean(q[0].argmax(1) == y))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,c", [(1, 3), (257, 5), (3001, 130)])
def test_weighted_predictions_equal_one_weight_at_a_time(monkeypatch, dtype, n, c):
    """The blocked kernel against its definition, pair_ensemble_predictions weight by weight
    (the oracle): scalar and per-class weights, rounded scores (many ties), blocks of a few
    rows (the block edges fall inside the rows) and one block."""
    import zoolens.measure.ensemble as ensemble

    rng = np.random.default_rng(n + c)
    q = np.round(random_probs(rng, 2, n, c), 2).astype(dtype)
    mask = rng.random(c) < 0.5
    weights = [0.0, 0.1, 0.5, 0.7, 1.0, class_weights(0.3, mask), class_weights(1.0, mask)]
    want = np.stack([pair_ensemble_predictions(q[0], q[1], w) for w in weights])
    for block_bytes in (7 * c * np.dtype(dtype).itemsize, 2**20):
        monkeypatch.setattr(ensemble, "_WEIGHTED_BLOCK_BYTES", block_bytes)
        got = weighted_pair_predictions(q[0], q[1], weights)
        assert got.dtype == np.int64 and got.shape == (len(weights), n)
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ZoolensError, match="two \\(n, C\\) arrays"):
        weighted_pair_predictions(q[0], q[1][:-1], [0.5])
    with pytest.raises(ZoolensError, match="weight must lie in"):
        weighted_pair_predictions(q[0], q[1], [1.5])


def test_class_aware_interpolation_hand_fixture():
    # 3 classes; a is perfect on class 0, b on class 1; class 2 has no calibration example.
    y_cal = np.array([0, 0, 1, 1])
    ra = np.array([1, 1, 0, 1], bool)  # recall a: class0 1.0, class1 0.5
    rb = np.array([0, 1, 1, 1], bool)  # recall b: class0 0.5, class1 1.0
    mask = class_aware_mask(ra, rb, y_cal, 3)
    np.testing.assert_array_equal(mask, [True, False, True])
    np.testing.assert_allclose(class_weights(0.8, mask), [0.8, 0.2, 0.8])
    qa = np.array([[0.5, 0.4, 0.1]], np.float32)
    qb = np.array([[0.1, 0.6, 0.3]], np.float32)
    # w = 1: class scores [qa0, qb1, qa2] = [.5, .6, .1] -> 1; plain 0.5 -> [.3,.5,.2] -> 1
    np.testing.assert_array_equal(pair_ensemble_predictions(qa, qb, class_weights(1.0, mask)), [1])
    # w = 0: [qb0, qa1, qb2] = [.1, .4, .3] -> 1
    np.testing.assert_array_equal(pair_ensemble_predictions(qa, qb, class_weights(0.0, mask)), [1])
    acc = interpolation_curve(qa, qb, np.array([1]), [0.0, 0.5, 1.0], mask=mask)
    np.testing.assert_array_equal(acc, [1.0, 1.0, 1.0])
    # per-class weight equals the scalar curve at w = 0.5
    rng = np.random.default_rng(5)
    q = random_probs(rng, 2, 300, 3)
    y = rng.integers(0, 3, 300)
    assert (
        interpolation_curve(q[0], q[1], y, [0.5], mask=mask)[0]
        == interpolation_curve(q[0], q[1], y, [0.5])[0]
    )
    # a reference: per-example loop with per-class weights
    w = class_weights(0.9, mask)
    ref = np.array(
        [
            np.argmax([w[c] * q[0, i, c] + (1 - w[c]) * q[1, i, c] for c in range(3)])
            for i in range(300)
        ]
    )
    assert interpolation_curve(q[0], q[1], y, [0.9], mask=mask)[0] == pytest.approx(
        np.mean(ref == y)
    )


def test_class_aware_mask_multilabel():
    multi = np.array([[1, 1], [0, 1]], np.uint8)
    ra = np.array([1, 0], bool)
    rb = np.array([0, 1], bool)
    # class 0: examples {0}: a 1, b 0; class 1: examples {0, 1}: a .5, b .5 -> tie -> a
    np.testing.assert_array_equal(class_aware_mask(ra, rb, multi, 2), [True, True])


# ---------------------------------------------------------------- majority vote


def test_majority_vote_against_loop_with_ties():
    rng = np.random.default_rng(6)
    pred = rng.integers(0, 4, size=(4, 500))
    got = majority_vote(pred, 4)
    for i in range(500):
        counts = np.bincount(pred[:, i], minlength=4)
        assert got[i] == int(np.flatnonzero(counts == counts.max())[0])
    np.testing.assert_array_equal(majority_vote(np.array([[2], [1]]), 3), [1])
    with pytest.raises(ZoolensError, match="outside"):
        majority_vote(np.array([[3]]), 3)


# ---------------------------------------------------------------- greedy


def caruana_reference(probs, labels, start, pool, max_steps):
    """A plain Caruana loop: recompute the member sum from scratch for every candidate."""
    members = [start]
    cal = []

    def acc(ms):
        total = np.zeros(probs.shape[1:], np.float64)
        for m in ms:
            total = total + probs[m]
        return int(np.sum(total.argmax(1) == labels))

    cal.append(acc(members))
    for _ in range(max_steps):
        best = None
        for k in sorted(set(pool)):
            score = (acc(members + [k]), members.count(k), -k)
            if best is None or score > best[0]:
                best = (score, k)
        members.append(best[1])
        cal.append(best[0][0])
    return members, cal


@settings(max_examples=25, deadline=None)
@given(
    st.integers(2, 6),
    st.integers(1, 30),
    st.integers(2, 6),
    st.integers(0, 6),
    st.booleans(),
    st.integers(0, 10**6),
)
def test_greedy_equals_plain_caruana_loop(m, n, c, steps, ties, seed):
    rng = np.random.default_rng(seed)
    probs = random_probs(rng, m, n, c, ties)
    if ties:
        probs[1] = probs[0]  # an exact duplicate: its picks tie with model 0 every time
    y = rng.integers(0, c, n)
    pool = list(rng.choice(m, size=rng.integers(1, m + 1), replace=False))
    start = int(rng.integers(0, m))
    res = greedy_forward_selection(probs, y, start=start, pool=pool, max_steps=steps)
    members, cal = caruana_reference(probs, y, start, pool, steps)
    assert res.members == members
    np.testing.assert_array_equal(res.calibration_correct, cal)
    assert res.best_step == int(np.argmax(cal)) and res.kept == res.best_step + 1
    # Candidates scored in groups on threads: the same picks and counts.
    with ThreadPoolExecutor(2) as threads:
        grouped = greedy_forward_selection(
            probs, y, start=start, pool=pool, max_steps=steps, groups=3, parallel_map=threads.map
        )
    assert grouped.members == members
    np.testing.assert_array_equal(grouped.calibration_correct, cal)


def test_grouped_greedy_on_threads_equals_one_scorer():
    """Groups of candidates scored side by side read the running sum S at the same time:
    each sees S unchanged (the first bound masks S's top class on a copy of the block)."""
    rng = np.random.default_rng(5)
    probs = random_probs(rng, 10, 6000, 40, False)
    y = rng.integers(0, 40, 6000)
    one = greedy_forward_selection(probs, y, start=0, pool=range(1, 10), max_steps=6)
    with ThreadPoolExecutor(2) as threads:
        for _ in range(3):
            grouped = greedy_forward_selection(
                probs,
                y,
                start=0,
                pool=range(1, 10),
                max_steps=6,
                groups=2,
                parallel_map=threads.map,
            )
            assert grouped.members == one.members
            np.testing.assert_array_equal(grouped.calibration_correct, one.calibration_correct)


def test_greedy_constructed_ties():
    # Two classes, every example of class 0. Model 0 (start) is wrong everywhere; models 1, 2, 3
    # are identical and right everywhere: all three tie at every step.
    wrong = np.tile([[0.2, 0.8]], (4, 1))
    right = np.tile([[0.9, 0.1]], (4, 1))
    probs = np.stack([wrong, right, right, right]).astype(np.float32)
    y = np.zeros(4, int)
    res = greedy_forward_selection(probs, y, start=0, pool=[3, 2, 1], max_steps=3)
    # step 1: all tie at 4 right, none chosen yet -> lowest index 1; then 1 is chosen most.
    assert res.members == [0, 1, 1, 1]
    np.testing.assert_array_equal(res.calibration_correct, [0, 4, 4, 4])
    assert res.best_step == 1 and res.kept == 2  # earliest best prefix
    # with the start in the pool, the start (chosen once already) wins a tie among equals
    res = greedy_forward_selection(
        np.stack([right, right]).astype(np.float32), y, start=1, pool=[0, 1], max_steps=2
    )
    assert res.members == [1, 1, 1]


def test_greedy_reports_evaluation_without_choosing_by_it():
    rng = np.random.default_rng(7)
    probs = random_probs(rng, 5, 300, 6)
    y = rng.integers(0, 6, 300)
    cal, ev = np.arange(0, 300, 2), np.arange(1, 300, 2)
    res = greedy_forward_selection(
        probs, y, start=2, pool=range(5), max_steps=4, calibration_index=cal, evaluation_index=ev
    )
    members, cal_ref = caruana_reference(probs[:, cal], y[cal], 2, range(5), 4)
    assert res.members == members
    for s in range(5):
        total = probs[res.members[: s + 1]][:, ev].astype(np.float64).sum(0)
        assert res.evaluation_accuracy[s] == pytest.approx(np.mean(total.argmax(1) == y[ev]))
        # the per-example correctness behind it (study.greedy's paired bootstrap uses it)
        np.testing.assert_array_equal(res.evaluation_correct[s], total.argmax(1) == y[ev])
    assert res.evaluation_correct.shape == (5, len(ev))
    # the sequence form (a list of per-model arrays) gives the same answer
    seq = greedy_forward_selection(
        list(probs),
        y,
        start=2,
        pool=range(5),
        max_steps=4,
        calibration_index=cal,
        evaluation_index=ev,
    )
    assert seq.members == res.members


def test_greedy_bad_input():
    probs = np.ones((2, 3, 2), np.float32)
    with pytest.raises(ZoolensError, match="empty"):
        greedy_forward_selection(probs, np.zeros(3, int), start=0, pool=[])
    with pytest.raises(ZoolensError, match="indices"):
        greedy_forward_selection(probs, np.zeros(3, int), start=5, pool=[0])


def test_real_cifar10_three_models():
    from conftest import shared_path

    lenet = np.load(shared_path("cifar10-probs", "lenet-5-cifar-10.npz"))
    wrn = np.load(shared_path("cifar10-probs", "wideresnet-16-4-cifar-10.npz"))
    vgg = np.load(shared_path("cifar10-probs", "vgg16-keras-cifar-10.npz"))
    y = lenet["ground_truth"].astype(np.int64)
    q = np.stack([lenet["predictions"], wrn["predictions"], vgg["probs"]]).astype(np.float32)
    correct = all_pair_ensemble_correct(q, y)
    # pair (1, 2) = WRN + VGG, recomputed by hand
    np.testing.assert_array_equal(correct[2], (q[1] + q[2]).argmax(1) == y)
    acc = correct.mean(axis=1)
    assert acc[2] > 0.9359  # the two strong models ensemble above the better one
    res = greedy_forward_selection(q, y, start=0, pool=[1, 2], max_steps=3)
    members, _ = caruana_reference(q, y, 0, [1, 2], 3)
    assert res.members == members


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 40),
    st.integers(3, 30),
    st.sampled_from(["random", "rounded", "coarse", "nan", "duplicate", "flat"]),
    st.integers(0, 10**6),
)
def test_pruned_candidate_scores_equal_full_rows(k_models, n, c, kind, seed):
    """The pruned greedy step counts what the full computation counts, ties and near-ties
    included."""
    from zoolens.measure import ensemble
    from zoolens.measure.ensemble import _CandidateScorer

    rng = np.random.default_rng(seed)
    x = random_probs(rng, k_models, n, c, ties=kind != "random")
    total = random_probs(rng, 3, n, c, ties=kind != "random").astype(np.float64).sum(axis=0)
    if kind == "coarse":  # values on a grid of 1/4: exact ties with the bound everywhere
        x = (np.round(x * 4) / 4).astype(np.float32)
        total = np.round(total * 4) / 4
    if kind == "nan":
        x[0, 0, 0] = np.nan
    if kind == "duplicate":  # S proportional to a candidate: a == b and exact ties in S
        total = 2.0 * x[0].astype(np.float64)
    if kind == "flat":  # every score ties: both bounds are met with equality, full rows decide
        x[:] = np.float32(1 / c)
        total = np.full((n, c), 0.5)
    if k_models > 1:
        x[-1] = x[0]  # duplicate candidate
    ref = (x.astype(np.float64) + total[None]).argmax(axis=2)
    # the right answers of every candidate, for class labels and multi-label truth
    y = rng.integers(0, c, n)
    multi = rng.random((n, c)) < 0.3
    full = _CandidateScorer(x, prune=False)
    pruned = _CandidateScorer(x, prune=True)
    # every class as the label of every row: each candidate's histogram of predictions,
    # which a count that swapped answers between rows or candidates would not keep
    truths = [y, multi] + [np.full(n, cls) for cls in range(c)]
    for labels in truths:
        want = correctness(ref, labels).sum(axis=1)
        np.testing.assert_array_equal(full.right_counts(total, labels), want)
        np.testing.assert_array_equal(pruned.right_counts(total, labels), want)
    # in row blocks, the open entries settled after every block or once per step
    pruned.chunk = max(1, n // 2)
    for open_entries in (1, 1 << 19):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(ensemble, "_OPEN_ENTRIES", open_entries)
            for labels in (y, multi):
                want = correctness(ref, labels).sum(axis=1)
                np.testing.assert_array_equal(pruned.right_counts(total, labels), want)
    runs = len(truths) + 4
    assert pruned.entries == runs * k_models * n  # the pruned path really ran, every time
    if kind == "flat":
        assert pruned.fallbacks == runs * k_models * n and (ref == 0).all()


@settings(max_examples=15, deadline=None)
@given(
    st.integers(2, 6), st.integers(5, 60), st.integers(0, 5), st.booleans(), st.integers(0, 10**6)
)
def test_pruned_greedy_equals_caruana_loop(m, n, steps, ties, seed):
    rng = np.random.default_rng(seed)
    probs = random_probs(rng, m, n, 24, ties)
    y = rng.integers(0, 24, n)
    res = greedy_forward_selection(probs, y, start=0, pool=range(m), max_steps=steps)
    members, cal = caruana_reference(probs, y, 0, range(m), steps)
    assert res.members == members
    np.testing.assert_array_equal(res.calibration_correct, cal)


def test_greedy_reads_a_lazy_source_a_bounded_number_of_times():
    class Lazy:
        reads = 0

        def __init__(self, array):
            self.array = array

        def __getitem__(self, rows):
            Lazy.reads += 1
            return self.array[rows]

    rng = np.random.default_rng(8)
    probs = random_probs(rng, 4, 200, 12)
    probs[3] = probs[2]
    y = rng.integers(0, 12, 200)
    cal, ev = np.arange(0, 200, 3), np.setdiff1d(np.arange(200), np.arange(0, 200, 3))
    eager = greedy_forward_selection(
        probs, y, start=0, pool=[1, 2, 3], max_steps=6, calibration_index=cal, evaluation_index=ev
    )
    lazy = greedy_forward_selection(
        [Lazy(p) for p in probs],
        y,
        start=0,
        pool=[1, 2, 3],
        max_steps=6,
        calibration_index=cal,
        evaluation_index=ev,
    )
    assert lazy.members == eager.members
    np.testing.assert_array_equal(lazy.evaluation_accuracy, eager.evaluation_accuracy)
    runs = 1 + sum(1 for s in range(2, 7) if eager.members[s] != eager.members[s - 1])
    # start on both splits, each candidate once on calibration rows, one evaluation read per
    # run of identical picks
    assert Lazy.reads == 2 + 3 + runs
