"""Question types: one class per type, owning its settings, its answers' validation, labels, vote and
aggregation, gold scoring, form parsing, form partial and how an answer reads.

:mod:`~labelwright.questions.base` defines the interface (:class:`QuestionType`);
:mod:`~labelwright.questions.registry` holds the types by tag, built-ins and plugins alike (the entry point
group ``labelwright.question_types``). See docs/question-types.md.
"""

from __future__ import annotations

from labelwright.questions.base import NO_ANSWER, Aggregate, FormValue, ItemView, QuestionType
from labelwright.questions.registry import GROUP, QuestionTypeError, question_types, register, unregister

__all__ = ["GROUP", "NO_ANSWER", "Aggregate", "FormValue", "ItemView", "QuestionType", "QuestionTypeError",
           "question_types", "register", "unregister"]
