"""Plain words beside each statistic: ``"alpha 0.52: moderate agreement"``.

Pure functions of a number (``None`` reads "not enough data yet"), used by the quality and project pages.
The bands:

* Krippendorff's alpha and Fleiss' kappa: Landis and Koch's bands for kappa (below 0 "worse than
  chance", 0-0.2 "slight", 0.2-0.4 "fair", 0.4-0.6 "moderate", 0.6-0.8 "substantial", 0.8 and up
  "almost perfect"); for alpha, Krippendorff's own advice is added: data below 0.667 should not be relied
  on, 0.8 and up is reliable.
* A confidence (the probability that the consensus label is right): below 0.6 "a toss-up", 0.6-0.8
  "likely", 0.8-0.95 "probable", 0.95-0.99 "very likely", above "near certain". It is never printed as
  1.000 unless it is a gold answer or a reviewer's label: the model's figure is written "> 0.999".
* An accuracy or agreement share, against chance when given.
"""

from __future__ import annotations

_KAPPA_BANDS = ((0.0, "worse than chance"), (0.2, "slight agreement"), (0.4, "fair agreement"),
                (0.6, "moderate agreement"), (0.8, "substantial agreement"), (float("inf"), "almost perfect agreement"))
_CONFIDENCE_BANDS = ((0.6, "a toss-up"), (0.8, "likely"), (0.95, "probable"), (0.99, "very likely"),
                     (float("inf"), "near certain"))


def _band(value: float, bands) -> str:
    return next(words for upper, words in bands if value < upper)


def agreement_words(value: float | None) -> str:
    """What a kappa or alpha value means: ``"moderate agreement"``."""
    if value is None:
        return "not enough overlapping answers yet"
    return _band(value, _KAPPA_BANDS)


def alpha_words(value: float | None) -> str:
    """``"alpha 0.52: moderate agreement, too low to rely on"``."""
    if value is None:
        return "alpha –: not enough overlapping answers yet"
    advice = "reliable" if value >= 0.8 else "usable for tentative conclusions" if value >= 0.667 \
        else "too low to rely on"
    return f"alpha {value:.2f}: {agreement_words(value)}, {advice}"


def kappa_words(value: float | None) -> str:
    """``"kappa 0.71: substantial agreement"``."""
    if value is None:
        return "kappa –: not enough overlapping answers yet"
    return f"kappa {value:.2f}: {agreement_words(value)}"


def confidence_text(value: float | None, exact: bool = False) -> str:
    """A confidence as a number with three decimals; a model's figure above 0.9995 reads ``"> 0.999"``
    (``exact`` for gold answers and reviewers' labels, which are certain by definition)."""
    if value is None:
        return "–"
    if value >= 0.9995 and not exact:
        return "> 0.999"
    return f"{value:.3f}"


def confidence_words(value: float | None) -> str:
    """``"0.652: likely"``: how sure the consensus is that its label is right."""
    if value is None:
        return "–: no consensus yet"
    return f"{confidence_text(value)}: {_band(value, _CONFIDENCE_BANDS)}"


def accuracy_words(value: float | None, chance: float | None = None, n: int | None = None) -> str:
    """``"accuracy 84% of 25: well above chance (50%)"``."""
    if value is None:
        return "accuracy –: no answers to check yet"
    of = f" of {n}" if n else ""
    if chance is None:
        return f"accuracy {value:.0%}{of}"
    if value <= chance + 0.1:
        verdict = "near chance: check this annotator"
    elif value < chance + (1 - chance) / 2:
        verdict = "above chance"
    else:
        verdict = "well above chance"
    return f"accuracy {value:.0%}{of}: {verdict} ({chance:.0%})"


def _plural(n: int | float, word: str) -> str:
    return f"{n:g} {word}" if n == 1 else f"{n:g} {word}s"


def rate_text(rate: float) -> str:
    """Items per day as people read it: ``"12 items/day"``, ``"2.5 items/day"``, ``"0.14 items/day"``."""
    if rate >= 10:
        return f"{rate:.0f} items/day"
    if rate >= 1:
        return f"{rate:.1f}".rstrip("0").rstrip(".") + " items/day"
    return f"{rate:.2f} items/day"


def finish_words(rate: float | None, remaining: int, finish) -> str:
    """``"At 4.3 items/day the remaining 120 items finish around 2026-12-26."``; ``""`` when there is no
    rate to go by (nothing completed lately) and nothing to say."""
    if remaining <= 0:
        return "Every item is done."
    if not rate or finish is None:
        return ""
    return (f"At {rate_text(rate)} the remaining {_plural(remaining, 'item')} finish around "
            f"{finish.isoformat()}.")


def done_words(done: int, total: int) -> str:
    """``"12 of 30 items done (40%)"``."""
    if not total:
        return "no items yet"
    return f"{done} of {_plural(total, 'item')} done ({done / total:.0%})"


def answers_words(made: int, needed: int) -> str:
    """``"64% of the answers needed are in"`` (extra answers beyond the target make it exceed 100%)."""
    if not needed:
        return "no answers are needed yet"
    return f"{made / needed:.0%} of the answers needed are in"


def duration(seconds: float) -> str:
    """A short human duration: ``42.5 s``, ``3 min 05 s``, ``2 h 07 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
