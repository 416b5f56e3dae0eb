"""Python models for tests/assist/test_assist_models.py, loaded as ``python:tests.assist_model_fixture:NAME``."""

from __future__ import annotations

import numpy as np

SPAM_WORDS = {"free", "win", "click", "subscribe"}


def _spam_score(item: dict) -> float:
    words = str(item["data"].get("text", "")).lower().split()
    return 0.1 + 0.8 * min(1.0, sum(w.strip(",.!") in SPAM_WORDS for w in words) / 2)


class KeywordModel:
    """A class with ``predict_proba`` and a ``version``: returns an unnormalised array, columns in label order."""

    version = "keyword-fixture-2"

    def __init__(self):
        self.calls: list[tuple[int, list]] = []

    def predict_proba(self, items, labels):
        self.calls.append((len(items), list(labels)))
        p = np.array([_spam_score(item) for item in items])
        spam = np.array([label == "spam" for label in labels], dtype=float)
        return 2 * (np.outer(p, spam) + np.outer(1 - p, 1 - spam))  # rows sum to 2: normalised by the adapter


def predict(items, labels):
    """A function returning dicts keyed by label; ``ham`` is left out for items without a spam word."""
    out = []
    for item in items:
        p = _spam_score(item)
        out.append({"spam": p} if p == 0.1 else {"spam": p, "ham": 1 - p})
    return out


def rating(items, labels):
    """Dicts keyed by rating labels as strings and ints alike."""
    return [{"1": 1, 5: 3} for _ in items]


instance = KeywordModel()
instance.version = 7  # not a string: the spec is the version


def wrong_shape(items, labels):
    return np.ones((len(items), len(labels) + 1))


def with_nan(items, labels):
    return [[0.5, 0.5]] * (len(items) - 1) + [[float("nan"), 1.0]]


def negative(items, labels):
    return [{"spam": 0.5, "ham": 0.5}, {"spam": -0.1, "ham": 1.1}]


def unknown_label(items, labels):
    return [{"spam": 0.5, "maybe": 0.5} for _ in items]


def twice(items, labels):
    """Rating 1 given as the int and as the string."""
    return [{1: 0.5, "1": 0.2, 2: 0.3} for _ in items]


def too_few(items, labels):
    return [{"spam": 1.0}] * (len(items) - 1)


def not_numbers(items, labels):
    return [["a lot", "a little"] for _ in items]


def all_zero(items, labels):
    return np.zeros((len(items), len(labels)))


def raises(items, labels):
    raise RuntimeError("the GPU is on fire")


class NeedsArguments:
    def __init__(self, path):
        self.path = path


not_a_model = 42
