"""Small samples say what they are (issue 27, item 4): a two-member majority vote with
abstentions that scores above both members is explained, with its numbers computed here by
hand; a line through 2-3 points claims no R² (measure tests in test_study_shift.py)."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from zoolens.cli import app
from zoolens.study.headline import majority_vote_note


def _two_observers(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    y = rng.integers(0, 3, n)
    a = np.where(rng.random(n) < 0.8, y, (y + 1) % 3)
    b = np.where(rng.random(n) < 0.8, y, (y + 2) % 3)
    a[:60] = -1  # each observer skips a different fifth of the images
    b[60:120] = -1
    np.save(tmp_path / "y.npy", y)
    for name, d in (("a", a), ("b", b)):
        (tmp_path / f"{name}.json").write_text(json.dumps([None if v < 0 else int(v) for v in d]))
    return y, a, b


def test_two_member_vote_above_both_members_is_explained(tmp_path):
    y, a, b = _two_observers(tmp_path)
    zoo = tmp_path / "z"
    runner = CliRunner()
    for name, extra in (("a", ["--create", "--labels", str(tmp_path / "y.npy")]), ("b", [])):
        done = runner.invoke(
            app,
            ["import", str(zoo), str(tmp_path / f"{name}.json"), "--name", name]
            + extra
            + ["--calibration-fraction", "0"] * bool(extra),
        )
        assert done.exit_code == 0, done.output
    result = runner.invoke(app, ["analyze", str(zoo), "--base", "a", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    # the vote by hand: one member's answer where the other abstains, the lower class id
    # where both answer and disagree
    vote = np.where(a < 0, b, np.where(b < 0, a, np.minimum(a, b)))
    vote = np.where(a == b, a, vote)
    vote_acc = float(np.mean(vote == y))
    best = max(np.mean(a == y), np.mean(b == y))
    assert vote_acc > best
    head = json.loads((tmp_path / "r" / "summary.json").read_text())["headline"]
    assert head["majority_vote_acc"] == vote_acc
    partial = int(np.sum((a < 0) != (b < 0)))
    note = head["majority_vote_note"]
    assert f"({100 * vote_acc:.2f}%) scores above every member (best {100 * best:.2f}%)" in note
    assert f"on the {partial} evaluation examples where some members abstained" in note
    assert "filled with the other's answer" in note
    assert " ".join(note.split()) in " ".join(result.output.split())  # printed too
    # a decision-only base: greedy selection is skipped, and the run says so once (issue 27)
    assert result.output.count("greedy selection skipped: the base 'a' is decision-only") == 1


def test_no_note_without_abstentions_or_when_a_member_is_better():
    pred = np.array([[0, 1, 2, 0], [0, 1, 1, 1]])
    assert majority_vote_note(pred, np.array([0.75, 0.5]), 0.75) is None
    with_abstention = np.array([[0, -1, 2, 0], [0, 1, -1, 1]])
    assert majority_vote_note(with_abstention, np.array([0.75, 0.5]), 0.5) is None
    assert "the 2 evaluation examples" in majority_vote_note(
        with_abstention, np.array([0.5, 0.5]), 0.75
    )


def test_no_shift_files_without_shift_and_the_id_hint_without_zoo_ids(tmp_path):
    """Issue 27, item 9: analyze without --shift writes no (empty) shift_*.csv; a shuffled
    import into a zoo without example ids names the option that gives the zoo ids."""
    y, a, _ = _two_observers(tmp_path)
    runner = CliRunner()
    zoo = tmp_path / "z"
    done = runner.invoke(
        app,
        ["import", str(zoo), str(tmp_path / "a.json"), "--name", "a", "--create"]
        + ["--labels", str(tmp_path / "y.npy"), "--calibration-fraction", "0"],
    )
    assert done.exit_code == 0, done.output
    shuffled = np.random.default_rng(5).permutation(y)  # the labels' rows out of order
    (tmp_path / "s.json").write_text(json.dumps(shuffled.tolist()))
    warned = runner.invoke(app, ["import", str(zoo), str(tmp_path / "s.json"), "--name", "s"])
    assert warned.exit_code == 0
    line = next(x for x in warned.output.splitlines() if x.startswith("warning"))
    assert "at chance level" in line and "this zoo has no example ids" in line
    assert "--labels-id-column" in line
    out = tmp_path / "r"
    result = runner.invoke(app, ["analyze", str(zoo), "--base", "a", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "pairs.csv").is_file()
    assert not list(out.glob("shift_*"))
