"""Commands on people: users (roles, tokens, sign-in and reset links) and project members.

Registered on ``labelwright`` by :mod:`labelwright.cli` (loaded when one of its commands runs).
"""

from __future__ import annotations

import click
from rich.table import Table

from labelwright.cli_db import Ctx, out
from labelwright.services import access
from labelwright.services import users as svc
from labelwright.services.access import ORG_ROLES, PROJECT_ROLES
from labelwright.services.projects import get_project
from labelwright.services.users import User
from labelwright.timefmt import utc_time


@click.group()
def users():
    """Create users, set their roles, hand out API tokens, sign-in and password-reset links."""


@users.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ORG_ROLES), default="annotator", show_default=True,
              help="Organisation role: owner (everything), manager (creates and runs projects), reviewer, annotator.")
@click.option("--project", "projects", multiple=True, help="A project (slug) they join; repeat for several.")
@click.option("--project-role", type=click.Choice(PROJECT_ROLES), default="annotator", show_default=True,
              help="Their role in the --project projects.")
@click.option("--password", is_flag=True, help="Prompt for a password now (otherwise they set one after signing in).")
@click.pass_obj
def users_create(obj: Ctx, name, role, projects, project_role, password):
    """Create a user and print an API token and a one-time sign-in link."""
    pw = click.prompt("password", hide_input=True, confirmation_prompt=True) if password else None
    store = obj.store(create=True)
    found = [get_project(store, ref) for ref in projects]
    user = svc.create_user(store, name, role, pw)
    for p in found:
        access.set_member(store, p, name, project_role)
        out.print(f"joined {p.slug} as {project_role}", highlight=False)
    token = svc.create_api_token(store, user, label="created by CLI")
    link = svc.create_signin_link_token(store, user, obj.settings.signin_link_hours)
    out.print(f"created {role} [bold]{name}[/]", highlight=False)
    out.print(f"API token (shown once): {token}", highlight=False, soft_wrap=True)
    out.print(f"sign-in link (one use, {obj.settings.signin_link_hours} h): "
              f"{obj.settings.public_url}/signin/{link}", highlight=False, soft_wrap=True)


@users.command("list")
@click.pass_obj
def users_list(obj: Ctx):
    """List users."""
    table = Table("id", "name", "role", "password set", "disabled")
    for u in svc.list_users(obj.store()):
        table.add_row(str(u["id"]), u["name"], u["role"], "yes" if u["has_password"] else "no",
                      "yes" if u["disabled"] else "no")
    out.print(table)


@users.command("link")
@click.argument("name")
@click.pass_obj
def users_link(obj: Ctx, name):
    """Print a new one-time sign-in link for NAME."""
    store = obj.store()
    link = svc.create_signin_link_token(store, svc.get_user(store, name), obj.settings.signin_link_hours)
    out.print(f"{obj.settings.public_url}/signin/{link}", highlight=False, soft_wrap=True)


@users.command("token")
@click.argument("name")
@click.pass_obj
def users_token(obj: Ctx, name):
    """Print a new API token for NAME."""
    store = obj.store()
    out.print(svc.create_api_token(store, svc.get_user(store, name), label="created by CLI"),
              highlight=False, soft_wrap=True)


@users.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(ORG_ROLES))
@click.pass_obj
def users_role(obj: Ctx, name, role):
    """Change NAME's organisation role (lowering it lowers their project roles to match)."""
    svc.update_user(obj.store(), name, role=role)
    out.print(f"{name} is now {role}", highlight=False)


@users.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="Enable the user again instead.")
@click.pass_obj
def users_disable(obj: Ctx, name, enable):
    """Disable NAME: no sign-in, sessions and API tokens refused from the next request."""
    svc.update_user(obj.store(), name, disabled=not enable)
    out.print(f"{name} is {'enabled' if enable else 'disabled'}", highlight=False)


@users.command("reset-link")
@click.argument("name")
@click.option("--hours", default=24, show_default=True, type=click.IntRange(1, 24 * 30), help="How long it works.")
@click.pass_obj
def users_reset_link(obj: Ctx, name, hours):
    """Print a one-use password-reset link for NAME (using it signs them out everywhere else)."""
    store = obj.store()
    link = svc.create_reset_link_token(store, svc.get_user(store, name), hours)
    out.print(f"{obj.settings.public_url}/reset/{link}", highlight=False, soft_wrap=True)


@users.command("tokens")
@click.argument("name")
@click.pass_obj
def users_tokens(obj: Ctx, name):
    """List NAME's API tokens (never their secrets)."""
    store = obj.store()
    table = Table("id", "label", "created", "state")
    for tk in svc.list_tokens(store, svc.get_user(store, name)):
        table.add_row(str(tk["id"]), tk["label"] or "", utc_time(tk["created_at"], seconds=True, missing=""),
                      "active" if tk["active"] else "revoked")
    out.print(table)


@users.command("revoke")
@click.argument("token_id", type=int)
@click.pass_obj
def users_revoke(obj: Ctx, token_id):
    """Revoke the API token TOKEN_ID (see `users tokens`)."""
    svc.revoke_token(obj.store(), token_id, User(0, "(command line)", "owner"))
    out.print(f"revoked token {token_id}", highlight=False)


@click.group()
def members():
    """A project's members: add, change role, remove, block."""


@members.command("list")
@click.argument("project")
@click.pass_obj
def members_list(obj: Ctx, project):
    """List PROJECT's members."""
    store = obj.store()
    table = Table("user", "organisation role", "project role", "status")
    for m in access.members(store, get_project(store, project)):
        table.add_row(m["user"], m["org_role"], m["role"], m["status"])
    out.print(table)


@members.command("add")
@click.argument("project")
@click.argument("names", nargs=-1, required=True)
@click.option("--role", type=click.Choice(PROJECT_ROLES), default="annotator", show_default=True,
              help="Their role in the project.")
@click.pass_obj
def members_add(obj: Ctx, project, names, role):
    """Add NAMES to PROJECT (or change their role there)."""
    store = obj.store()
    p = get_project(store, project)
    for name in names:
        access.set_member(store, p, name, role)
        out.print(f"{name}: {role} in {p.slug}", highlight=False)


@members.command("remove")
@click.argument("project")
@click.argument("name")
@click.pass_obj
def members_remove(obj: Ctx, project, name):
    """Remove NAME from PROJECT (their answers stay; their leases are released)."""
    store = obj.store()
    gone = access.remove_member(store, get_project(store, project), name)
    out.print(f"removed {name} from {project}" if gone else f"{name} was not a member of {project}", highlight=False)


@members.command("block")
@click.argument("project")
@click.argument("name")
@click.option("--unblock", is_flag=True, help="Lift the block instead.")
@click.pass_obj
def members_block(obj: Ctx, project, name, unblock):
    """Block NAME from PROJECT: they see nothing of it; their leases are released."""
    store = obj.store()
    p = get_project(store, project)
    if unblock:
        out.print(f"unblocked {name}" if access.unblock(store, p, name) else f"{name} was not blocked",
                  highlight=False)
    else:
        released = access.block(store, p, name)
        out.print(f"blocked {name} from {p.slug} ({released} lease{'s' if released != 1 else ''} released)",
                  highlight=False)
