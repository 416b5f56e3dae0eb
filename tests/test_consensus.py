"""Majority vote per question type (pure functions)."""

from labelwright.consensus import majority, vote
from labelwright.schema import parse_schema
from tests.test_schema import FULL

S = parse_schema(FULL)


def test_single_choice_majority_and_tie_rule():
    q = S.question("topic")
    assert vote(q, ["y", "y", "x"]) == {"label": "y", "agreement": 0.6667, "n": 3}
    # tie: the option declared first wins, and the tie is reported
    assert vote(q, ["z", "y"]) == {"label": "y", "agreement": 0.5, "n": 2, "tie": True}
    assert vote(q, []) is None
    assert vote(q, [None, "x"]) == {"label": "x", "agreement": 1.0, "n": 1}


def test_multiple_choice_majority_per_option():
    q = S.question("tags")
    got = vote(q, [["t1"], ["t1", "t2"], []])
    assert got["label"] == ["t1"]
    # t1: 2 of 3 agree with "in"; t2: 2 of 3 agree with "out"; t3: 3 of 3 agree with "out"
    assert got["agreement"] == round((2 / 3 + 2 / 3 + 1) / 3, 4)


def test_rating_and_pairwise():
    assert vote(S.question("stars"), [4, 5, 4, 2]) == {"label": 4, "agreement": 0.5, "n": 4}
    assert vote(S.question("stars"), [5, 3]) == {"label": 3, "agreement": 0.5, "n": 2, "tie": True}
    got = vote(S.question("pref"), [{"choice": "B"}, {"choice": "B", "rationale": "r"}, {"choice": "tie"}])
    assert got == {"label": "B", "agreement": 0.6667, "n": 3}


def test_ranking_borda():
    got = vote(S.question("order"), [["a", "b", "c"], ["b", "a", "c"], ["a", "c", "b"]])
    assert got == {"label": ["a", "b", "c"], "agreement": 0.6667, "n": 3}


def test_free_text_has_no_vote_and_majority_skips_it():
    assert vote(S.question("fix"), ["x", "x"]) is None
    out = majority(S, [{"topic": "x", "fix": "a"}, {"topic": "x"}])
    assert set(out) == {"topic"}
