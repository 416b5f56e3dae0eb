"""Running a project from the browser: the owner's and managers' pages, registered together.

* :mod:`labelwright.web.project_setup`: ``/projects/new``, a project from a schema with a live preview;
* :mod:`labelwright.web.settings_page`: ``/projects/{slug}/settings``, the settings of a running project
  and expiring it;
* :mod:`labelwright.web.members`: ``/projects/{slug}/members``, members and invite links;
* :mod:`labelwright.web.messages_page`: ``/projects/{slug}/messages``;
* the webhooks page, :mod:`labelwright.web.webhooks`, is registered on its own.

Registered before the project page (``/projects/{slug}``), so that ``/projects/new`` is this page.
"""

from __future__ import annotations


def add_routes(r):
    from labelwright.web import members, messages_page, project_setup, settings_page

    for module in (project_setup, settings_page, members, messages_page):
        module.add_routes(r)
    return r
