"""labelwright.assist: machine help with labelling, as a pure library with no server imports.

Auto-labelling with a guarantee (:mod:`.thresholds`): per-class thresholds whose accuracy meets a target with a
stated Clopper-Pearson bound, the audit of machine labels against reviewers, and the audit sample.
Label errors (:mod:`.label_errors`): confident learning on out-of-sample predictions.
See docs/quality.md.

LLMs as annotators (:mod:`.llm`): the OpenAI-compatible chat-completions protocol; see docs/assist.md.
"""

from labelwright.assist.label_errors import (
    confident_joint,
    find_label_issues,
    out_of_sample_probas,
)
from labelwright.assist.llm import (
    LLMAnnotator,
    LLMAnswer,
    LLMEndpoint,
    LLMError,
    answer_schema,
    build_messages,
    parse_answer,
)
from labelwright.assist.thresholds import (
    AuditResult,
    Thresholds,
    audit,
    audit_sample,
    choose_thresholds,
    clopper_pearson_lower,
    clopper_pearson_upper,
)

__all__ = [
    "AuditResult",
    "LLMAnnotator",
    "LLMAnswer",
    "LLMEndpoint",
    "LLMError",
    "Thresholds",
    "answer_schema",
    "audit",
    "audit_sample",
    "build_messages",
    "choose_thresholds",
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "confident_joint",
    "find_label_issues",
    "out_of_sample_probas",
    "parse_answer",
]
