"""The pages assembled: the template environment and one router with every page module's routes.

Each page module has ``add_routes(r)``; the order below matters where paths overlap: the managers'
pages (:mod:`labelwright.web.project_setup`'s ``/projects/new`` among them) come before the project page
(``/projects/{slug}``, :mod:`labelwright.web.progress`), so that ``/projects/new`` is not a project.

* :mod:`~labelwright.web.account`: sign-in, sign-in/invite/reset links, sign-out, the account page;
* :mod:`~labelwright.web.home`: the project list and an annotator's work (``/``);
* :mod:`~labelwright.web.project_setup`: ``/projects/new``, a project from a schema with a live preview;
* :mod:`~labelwright.web.settings_page`: ``/projects/{slug}/settings``, a running project's settings;
* :mod:`~labelwright.web.members`: ``/projects/{slug}/members``, members and invite links;
* :mod:`~labelwright.web.messages_page`: ``/projects/{slug}/messages``;
* :mod:`~labelwright.web.annotator`: the briefing, the annotator's history, questions about decisions;
* :mod:`~labelwright.web.label_pages`: the labelling page (claim, submit, skip, amend, instant items);
* :mod:`~labelwright.web.progress`: the project's progress and quality pages;
* :mod:`~labelwright.web.media`: media files;
* :mod:`~labelwright.web.doubt`: items in doubt, one item with every answer, gold, more answers;
* :mod:`~labelwright.web.pauses`: pausing and resuming an annotator;
* :mod:`~labelwright.web.work`: the qualification test's answers, the review queue, pay, the audit log;
* :mod:`~labelwright.web.webhooks`: webhooks and their deliveries;
* :mod:`~labelwright.web.assist`: the assistant's page and the reviewers' check queue;
* :mod:`~labelwright.web.rules_page`: rules (labelling functions) as annotators.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from labelwright import __version__
from labelwright.web import (
    account,
    annotator,
    assist,
    doubt,
    home,
    label_pages,
    media,
    members,
    messages_page,
    pauses,
    progress,
    project_setup,
    rules_page,
    settings_page,
    type_assets,
    webhooks,
    work,
)
from labelwright.web.assets import static_url
from labelwright.web.markdown import render_markdown
from labelwright.web.views import QuestionTemplates

TEMPLATES = Path(__file__).parent / "templates"
PAGES = (account, home, project_setup, settings_page, members, messages_page, annotator, label_pages, progress,
         media, doubt, pauses, work, webhooks, assist, rules_page, type_assets)


def make_env() -> Environment:
    """The pages' Jinja2 environment (autoescaping on): the version, versioned static URLs, Markdown, and the
    annotator's times, earnings chart and the reviewers' open questions."""
    loader = ChoiceLoader([FileSystemLoader(TEMPLATES), QuestionTemplates()])  # question/<type>.html: the types'
    env = Environment(loader=loader, autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.globals["version"] = __version__
    env.globals["static_url"] = static_url  # versioned, cached for good
    env.globals["type_asset_url"] = type_assets.type_asset_url  # a question type's own files (plugins)
    env.filters["markdown"] = render_markdown  # the one filter whose output is not escaped again
    env.filters["hours_minutes"] = annotator.hours_minutes
    env.globals.update(earnings_chart=annotator.earnings_chart, open_review_questions=annotator.open_review_questions)
    return env


def build_router() -> APIRouter:
    r = APIRouter(include_in_schema=False)
    for module in PAGES:
        module.add_routes(r)
    return r
