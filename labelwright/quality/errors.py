"""The one error the quality library raises for bad input."""

from __future__ import annotations


class QualityInputError(ValueError):
    """The annotations given to a quality method cannot be used; the message says what to change."""
