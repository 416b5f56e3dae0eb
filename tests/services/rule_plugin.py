"""Labelling functions a plugin package would install under the ``labelwright.labelling_functions`` entry point
group (tests/services/test_rules.py declares them in a dist-info on sys.path)."""


def short_ham(item: dict) -> str | None:
    """Very short comments are ham (nobody advertises in 3 words)."""
    return "ham" if len(item.get("text", "")) < 30 else None


def broken(item: dict) -> str:
    """Returns a label the question does not have: every item is an error, no vote is stored."""
    return "eggs"
