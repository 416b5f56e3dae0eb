"""The API's request bodies (pydantic models): what each route accepts, with the descriptions the OpenAPI
document shows. Handlers pass their fields on to the services; the services never see these classes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

# ---- users, tokens, invites ------------------------------------------------------------------------


class UserIn(BaseModel):
    name: str
    role: str = "annotator"
    password: str | None = None
    projects: list[str] = Field(default_factory=list, description="projects (slugs or ids) they join")
    project_role: str = Field(default="annotator", description="their role in those projects")


class UserPatch(BaseModel):
    role: str | None = Field(default=None, description="owner, manager, reviewer or annotator")
    disabled: bool | None = Field(default=None, description="a disabled user cannot sign in or use tokens")


class TokenIn(BaseModel):
    label: str | None = Field(default=None, max_length=200)


class PasswordIn(BaseModel):
    current: str = Field(description="the caller's password now (wrong ones count toward the sign-in limits)")
    new: str = Field(description="8 characters or more")
    keep_tokens: bool = Field(default=False, description="keep the caller's API tokens; by default a new "
                                                          "password revokes them all, this request's included")


class InviteIn(BaseModel):
    role: str = Field(default="annotator", description="the organisation role of whoever accepts it")
    project: str | None = Field(default=None, description="a project to join (slug or id)")
    project_role: str = Field(default="annotator", description="their role in that project")
    hours: float = Field(default=72, gt=0, le=24 * 90, description="how long the link works")
    max_uses: int = Field(default=1, ge=1, le=10_000, description="how many accounts it can create")


# ---- a project's members and items -----------------------------------------------------------------


class MemberIn(BaseModel):
    role: str = Field(default="annotator", description="annotator, reviewer or manager")


class PauseIn(BaseModel):
    reason: str | None = Field(default=None, max_length=1000, description="kept for the owner's records")


class ItemsIn(BaseModel):
    items: list[dict[str, Any]] = Field(description="item objects with the project's display fields")


class GoldIn(BaseModel):
    answers: dict[str, Any] = Field(description="the item's known answers, keyed by question name (a subset)")


class MoreAnswersIn(BaseModel):
    items: list[str] = Field(description="external ids of the items")
    answers: int = Field(default=1, description="how many more answers each item needs")


class MessageIn(BaseModel):
    body: str
    to: str | None = Field(default=None, description="one member's name; default: every member")


# ---- answers and review ----------------------------------------------------------------------------


class AnnotationIn(BaseModel):
    answers: dict[str, Any] = Field(description="answers keyed by question name")
    active_ms: int = Field(default=0, ge=0, description="time the item was visible and active, in ms")
    idempotency_key: str | None = Field(default=None, max_length=200,
                                        description="a retry with the same key never creates a second annotation")


class AmendIn(BaseModel):
    answers: dict[str, Any]
    active_ms: int = Field(default=0, ge=0, description="extra active time spent amending, in ms")


class AnswersIn(BaseModel):
    answers: dict[str, Any] = Field(description="answers keyed by question name")


class DecisionIn(BaseModel):
    decision: str = Field(description="accepted, fixed or rejected")
    answers: dict[str, Any] | None = Field(default=None, description="the corrected answers (for 'fixed')")
    feedback: str | None = Field(default=None, description="for the annotator; required for 'rejected'")
    revision: int | None = Field(default=None, ge=1, le=2**31 - 1,
                                 description="the revision you reviewed; 409 if the annotator changed it since")


class QuestionIn(BaseModel):
    body: str = Field(description="the question, or the answer to it (at most 2,000 characters)")


class CheckIn(BaseModel):
    label: Any = Field(description="the label the reviewer gives (one of the question's labels)")


# ---- machine annotators and webhooks ---------------------------------------------------------------


class MachineAnnotatorIn(BaseModel):
    name: str = Field(description="its name in the project; its user is llm:<name>")
    base_url: str = Field(description="the API root, ending in /v1, e.g. http://127.0.0.1:8080/v1")
    model: str = Field(description="the model name the server knows")
    api_key_env: str | None = Field(default=None, description="NAME of the server's environment variable holding "
                                                               "the API key (never the key itself)")
    price_input_per_million: str = Field(default="0", description="price per million prompt tokens, e.g. '0.15'")
    price_output_per_million: str = Field(default="0", description="price per million completion tokens")
    send_image_urls: bool = Field(default=False, description="send http(s) image fields as image_url parts")


class EnabledIn(BaseModel):
    enabled: bool = Field(description="false: it takes no more items (its leases are given back); true: it works again")


# ---- rules (labelling functions) -------------------------------------------------------------------


class RuleIn(BaseModel):
    name: str = Field(description="its name in the project (its votes are by user rule:<project id>:<name>)")
    kind: Literal["keyword", "regex", "python"] = Field(description="keyword list, regular expression, or an "
                                                                    "installed Python labelling function")
    pattern: str = Field(description="keywords (one per line or comma-separated), the regular expression, or the "
                                     "entry point's name (kind python)")
    field: str | None = Field(default=None, description="the item field a keyword or regex rule reads")
    label: str | None = Field(default=None, description="the label a keyword or regex rule votes when it matches")
    question: str | None = Field(default=None, description="the question it answers (default: the project's one "
                                                           "single-label categorical question)")
    enabled: bool = Field(default=True, description="false: stored, but it does not vote")


class RuleChangeIn(BaseModel):
    name: str | None = None
    kind: Literal["keyword", "regex", "python"] | None = None
    pattern: str | None = None
    field: str | None = None
    label: str | None = None
    question: str | None = None
    enabled: bool | None = Field(default=None, description="false: its votes are removed; true: it votes again")


class LabelModelIn(BaseModel):
    enabled: bool = Field(description="true: categorical questions rules answer are aggregated by the label model "
                                      "over people and rules; false: rules' votes stay out of the consensus")


class WebhookIn(BaseModel):
    url: str = Field(description="where events are POSTed: an http:// or https:// URL to a public address "
                                 "(private ones only with the setting webhook_allow_private)")
    project: str | None = Field(default=None, description="a project (slug or id); none: every project (owners)")
    kinds: list[str] | str = Field(default="*", description="event kinds to send (a list), or '*' for all")


class WebhookPatch(BaseModel):
    active: bool = Field(description="false: no new deliveries (pending ones wait); true: resume")


DeliveryStatus = Literal["pending", "delivered", "failed"]
