"""Numbered migrations: apply cleanly, are idempotent, and match the table objects, on both databases."""

import pytest
from sqlalchemy import inspect, text

from labelwright.store import Store, migrate
from labelwright.store import tables as t


def test_migrations_are_numbered_without_gaps():
    versions = [v for v, _, _ in migrate.available()]
    assert versions == list(range(1, len(versions) + 1))


def test_migrate_fresh_then_again(db_url):
    store = Store(db_url, pool_size=2)
    try:
        assert store.schema_version() == 0
        applied = store.migrate()
        assert applied == [v for v, _, _ in migrate.available()]
        assert store.migrate() == []  # idempotent
        store.check_ready()
        insp = inspect(store.engine)
        for table in t.metadata.sorted_tables:
            cols = {c["name"] for c in insp.get_columns(table.name)}
            assert cols == {c.name for c in table.columns}, table.name
    finally:
        store.close()


def test_unmigrated_database_is_refused(db_url):
    store = Store(db_url, pool_size=2)
    try:
        with pytest.raises(RuntimeError, match="labelwright migrate"):
            store.check_ready()
    finally:
        store.close()


def test_0002_upgrades_a_database_with_items(db_url):
    """Items made under 0001 come through 0002 as ordinary items: not gold, wanting the project's overlap."""
    store = Store(db_url, pool_size=2)
    try:
        assert store.migrate(target=1) == [1]
        with store.write() as conn:
            conn.execute(text("INSERT INTO projects (slug, name, schema, overlap, lease_seconds, created_at, "
                              "updated_at) VALUES ('p', 'P', '{}', 3, 60, 0, 0)"))
            pid = conn.execute(text("SELECT id FROM projects")).scalar_one()
            conn.execute(text("INSERT INTO items (project_id, external_id, data, created_at) "
                              "VALUES (:p, 'a', '{}', 0)"), {"p": pid})
        assert store.migrate() == [v for v, _, _ in migrate.available() if v > 1]
        with store.read() as conn:
            row = conn.execute(text("SELECT target, is_gold, is_open FROM items")).one()
        assert tuple(row) == (None, 0, 1)
    finally:
        store.close()


def test_0011_adds_rules_to_a_database_with_projects(db_url):
    """A project made under 0010 gets rules under 0011: one name per project, one user per rule."""
    store = Store(db_url, pool_size=2)
    try:
        assert store.migrate(target=10)[-1] == 10
        with store.write() as conn:
            conn.execute(text("INSERT INTO projects (slug, name, schema, overlap, lease_seconds, created_at, "
                              "updated_at) VALUES ('p', 'P', '{}', 1, 60, 0, 0)"))
            conn.execute(text("INSERT INTO users (name, role, created_at) VALUES ('rule:1:link', 'annotator', 0)"))
        assert store.migrate() == [v for v, _, _ in migrate.available() if v > 10]
        insert = ("INSERT INTO rules (project_id, user_id, name, kind, question, field, pattern, label, "
                  "created_at, updated_at) VALUES (1, 1, 'link', 'regex', 'spam', 'text', 'http', 'spam', 0, 0)")
        with store.write() as conn:
            conn.execute(text(insert))
            conn.execute(text("INSERT INTO rule_settings (project_id, updated_at) VALUES (1, 0)"))
        with store.read() as conn:
            row = conn.execute(text("SELECT enabled, applied_through, votes, errors FROM rules")).one()
            assert tuple(row) == (1, 0, 0, 0)
            assert conn.execute(text("SELECT label_model FROM rule_settings")).scalar_one() == 0
        with pytest.raises(Exception, match="(?i)unique"):
            with store.write() as conn:
                conn.execute(text(insert))
    finally:
        store.close()
