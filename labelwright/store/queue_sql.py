"""The queue's hot statements (claim the next item, submit an answer), hand-written for each database.

Everything else in labelwright builds its SQL with SQLAlchemy Core; these statements run on the
driver's own cursor (:meth:`labelwright.store.Store.cursor`, :meth:`labelwright.store.Store.sql`) because
they are most of the server's work. They use ``:name`` parameters, and every row they return has a
named type here (``ItemRow._make(cur.fetchone())``), so no caller reads a column by its position.

Statements are composed from named parts (never cut out of a longer string), once, at import: they are
constants.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from labelwright.store import locks
from labelwright.store.listeners import listening
from labelwright.store.lookups import ProjectRow
from labelwright.store.slots import open_flag, want

# ---- rows -----------------------------------------------------------------------------------------


class ItemRow(NamedTuple):
    """An item handed to an annotator (on PostgreSQL ``id`` is None when the picked row was taken by
    another claim meanwhile: a lost race, not an empty queue)."""
    id: Any
    external_id: str
    data: str


class AnnotationRow(NamedTuple):
    """The columns of :data:`ANNOTATION_COLUMNS`."""
    id: int
    item_id: int
    user_id: int
    answers: str
    active_ms: int
    revision: int
    created_at: float
    updated_at: float
    idempotency_key: str | None
    reported_ms: int


class ItemProjectRow(NamedTuple):
    """What a submission needs to know of the item, its project and the caller (:data:`ITEM_PROJECT`)."""
    project_id: int
    slug: str
    name: str
    schema: str
    overlap: int
    lease_seconds: int
    created_at: float
    updated_at: float
    is_gold: int
    paused: bool
    membership: str | None
    data: str  # the item's data (JSON text): answers are checked against it (ProjectSchema.checks_items)
    earlier: bool  # the caller has an annotation of this item or one made with this idempotency key

    @property
    def project(self) -> ProjectRow:
        """The project's columns, by name."""
        return ProjectRow(id=self.project_id, slug=self.slug, name=self.name, schema=self.schema,
                          overlap=self.overlap, lease_seconds=self.lease_seconds, created_at=self.created_at,
                          updated_at=self.updated_at)


class LeaseRow(NamedTuple):
    created_at: float
    expires_at: float


class ExpiredLeaseRow(NamedTuple):
    item_id: int
    user_id: int
    created_at: float
    expires_at: float


class CountedRow(NamedTuple):
    """The item's answers after counting one more, and how many it wants."""
    n_done: int
    want: int


class SubmittedRow(NamedTuple):
    """The row of :data:`SUBMIT_PG`: ``annotation_id`` is None when nothing was saved, ``lease_started``
    None when the item was never handed to the caller."""
    annotation_id: int | None
    n_done: int | None
    want: int | None
    lease_started: float | None
    active_ms: int | None


# ---- picking and taking an item ---------------------------------------------------------------------

# What an annotator may be given: not answered, leased or skipped by them, and they are not paused.
_ELIGIBLE = """
  AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id AND a.user_id = :u)
  AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.item_id = i.id AND l.user_id = :u)
  AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.item_id = i.id AND s.user_id = :u)
  AND NOT EXISTS (SELECT 1 FROM paused_annotators pa WHERE pa.project_id = :p AND pa.user_id = :u)
"""
# An item wants COALESCE(target, overlap) answers: target is set for gold items and by adaptive redundancy.
WANT = want()
# Ordinary items in queue_rank order (0 for all unless the assistant orders the queue), then import order:
# the queue index (project_id, is_open, is_gold, queue_rank, id) gives them in that order, no sort.
# redundancy.second_opinions: an item past its first answers is not for the weaker half (a primary-key probe).
SECOND_OPINION = ("  AND NOT EXISTS (SELECT 1 FROM weaker_half wh WHERE wh.project_id = :p AND wh.user_id = :u "
                  "AND i.n_done >= wh.from_answers)\n")
_ORDINARY_WHERE = ("SELECT i.id FROM items i\nWHERE i.project_id = :p AND i.is_open = 1 AND i.is_gold = 0"
                   "\n  AND i.n_assigned < " + want("i.target") + _ELIGIBLE + SECOND_OPINION)
_ORDINARY_ORDER = "ORDER BY i.queue_rank, i.id\nLIMIT 1\n"
# A gold item (each annotator answers each once; never served once the annotator's real work is done).
# The qualification test's items (the first :qs gold items) are not mixed in again afterwards.
_GOLD_WHERE = ("SELECT i.id FROM items i\nWHERE i.project_id = :p AND i.is_gold = 1\n"
               "  AND i.id NOT IN (SELECT q.id FROM items q WHERE q.project_id = :p AND q.is_gold = 1 "
               "ORDER BY q.id LIMIT :qs)\n"
               "  AND EXISTS (SELECT 1 FROM (" + (_ORDINARY_WHERE + _ORDINARY_ORDER).strip() + ") AS work)"
               + _ELIGIBLE)
_GOLD_ORDER = "ORDER BY i.id\nLIMIT 1\n"
_PICKS = {False: (_ORDINARY_WHERE, _ORDINARY_ORDER), True: (_GOLD_WHERE, _GOLD_ORDER)}

LIVE_LEASE = "SELECT 1 FROM leases WHERE user_id = :u AND project_id = :p AND expires_at > :now"


def _take_sqlite(gold: bool) -> str:
    """SQLite has one writer, so picking the item and taking its slot is one UPDATE."""
    where, order = _PICKS[gold]
    return (f"UPDATE items SET n_assigned = n_assigned + 1, is_open = {open_flag('n_assigned + 1')} "
            f"WHERE id = ({where + order}) AND n_assigned < {WANT} RETURNING id, external_id, data")


def _take_pg(gold: bool, lock: str, unless_held: bool = True) -> str:
    """PostgreSQL locks the picked row (``lock``: skipping rows other claims hold, or waiting for them),
    takes the slot and writes the lease in one statement; its row (an :class:`ItemRow`) says what was
    picked and what was taken, so a lost race (picked but not taken) is told apart from an empty queue.
    ``unless_held``: pick nothing when the caller holds a live lease (the claim renews that one)."""
    where, order = _PICKS[gold]
    guard = "AND NOT EXISTS (" + LIVE_LEASE + ")\n" if unless_held else ""
    return ("WITH pick AS (" + where + guard + order + f" FOR NO KEY UPDATE OF i {lock}), "
            "took AS (UPDATE items SET n_assigned = items.n_assigned + 1, "
            "is_open = " + open_flag("items.n_assigned + 1", "items.target") + " "
            "FROM pick WHERE items.id = pick.id AND items.n_assigned < COALESCE(items.target, :o) "
            "RETURNING items.id, items.external_id, items.data), "
            "leased AS (INSERT INTO leases (item_id, user_id, project_id, created_at, expires_at) "
            "SELECT id, :u, :p, :now, :e FROM took) "
            "SELECT took.id, took.external_id, took.data FROM pick LEFT JOIN took ON took.id = pick.id")


TAKE_SQLITE = {gold: _take_sqlite(gold) for gold in (False, True)}
# First skip rows other transactions hold (claims do not queue behind each other); if that finds
# nothing, the rows left may only be busy for a moment (another annotator's submit is committing), so
# look again waiting for them (``wait``): ``next`` says "nothing left" only when nothing is.
TAKE_PG = {(gold, wait): _take_pg(gold, "" if wait else "SKIP LOCKED") for gold in (False, True)
           for wait in (False, True)}
# A prefetch takes a second item while the caller holds one, skipping rows others hold.
PREFETCH_PG = {gold: _take_pg(gold, "SKIP LOCKED", unless_held=False) for gold in (False, True)}

PAUSED = "SELECT reason FROM paused_annotators WHERE project_id = :p AND user_id = :u"
HELD = ("SELECT item_id FROM leases WHERE user_id = :u AND project_id = :p AND expires_at > :now "
        "ORDER BY created_at LIMIT 1")
RENEW = "UPDATE leases SET expires_at = :e WHERE item_id = :i AND user_id = :u"
ITEM = "SELECT id, external_id, data FROM items WHERE id = :i"
INSERT_LEASE = ("INSERT INTO leases (item_id, user_id, project_id, created_at, expires_at) "
                "VALUES (:i, :u, :p, :now, :e)")

# ---- expired leases -------------------------------------------------------------------------------

_LAPSE_UPSERT = ("ON CONFLICT (item_id, user_id) DO UPDATE SET created_at = excluded.created_at, "
                 "expires_at = excluded.expires_at, lapsed_at = excluded.lapsed_at")


class ClaimStateRow(NamedTuple):
    """What a claim on PostgreSQL reads first (:data:`CLAIM_STATE_PG`), under the caller's lock."""
    held: int | None   # the item of the caller's live lease in the project (the oldest), if any
    expired: bool      # whether any lease of the project has expired (the sweep has work to do)


# PostgreSQL: what a claim reads right after taking the caller's lock, in the same round trip: two index
# probes, so that the claim sends the expiry sweep only when a lease has expired and renews a held lease
# with a statement of its own (not one statement doing both on every claim).
CLAIM_STATE_PG = ("SELECT (" + HELD + "), "
                  "EXISTS (SELECT 1 FROM leases WHERE project_id = :p AND expires_at <= :now)")
# PostgreSQL: reclaim the project's expired leases (their items' slots, and a lapsed lease for each).
RECLAIM_PG = (
    "WITH gone AS (DELETE FROM leases WHERE project_id = :p AND expires_at <= :now "
    "RETURNING item_id, user_id, created_at, expires_at), "
    "per_item AS (SELECT item_id, count(*) AS n FROM gone GROUP BY item_id), "
    "released AS (UPDATE items SET n_assigned = items.n_assigned - per_item.n, "
    "is_open = " + open_flag("items.n_assigned - per_item.n", "items.target") + " "
    "FROM per_item WHERE items.id = per_item.item_id), "
    "lapsed AS (INSERT INTO lapsed_leases (item_id, user_id, project_id, created_at, expires_at, lapsed_at) "
    "SELECT item_id, user_id, :p, created_at, expires_at, :now FROM gone " + _LAPSE_UPSERT + ") "
    "SELECT count(*) FROM gone")
# PostgreSQL: renew the caller's lease on item :i and return the item (an ItemRow).
RENEW_PG = ("WITH renewed AS (" + RENEW + " RETURNING item_id) "
            "SELECT i.id, i.external_id, i.data FROM renewed JOIN items i ON i.id = renewed.item_id")
# SQLite: the sweep in three statements (rows: ExpiredLeaseRow), the last two run per reclaimed lease
# with positional parameters.
EXPIRED_SQLITE = ("DELETE FROM leases WHERE project_id = :p AND expires_at <= :now "
                  "RETURNING item_id, user_id, created_at, expires_at")
LAPSE_SQLITE = ("INSERT INTO lapsed_leases (item_id, user_id, project_id, created_at, expires_at, lapsed_at) "
                "VALUES (?, ?, ?, ?, ?, ?) " + _LAPSE_UPSERT)
RELEASE_EXPIRED_SQLITE = ("UPDATE items SET n_assigned = n_assigned - 1, is_open = "
                          + open_flag("n_assigned - 1", "target", "?") + " WHERE id = ?")

# ---- locks (PostgreSQL) ------------------------------------------------------------------------------

# Claims and submissions by one user are serialised with a transaction-scoped advisory lock. A claim's
# lease is not worth a flush of the WAL: set_config(..., true) is SET LOCAL.
LOCK_CLAIMER = "SELECT set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock(" + locks.USER + ", :u)"
LOCK_USER = "SELECT pg_advisory_xact_lock(" + locks.USER + ", :u)"
# In a batch (labelwright.store.pg_batch) a call only tries its user's lock: one held elsewhere makes the call
# wait for its batch to commit and run on its own, so no batch ever waits for an advisory lock.
TRY_LOCK_USER = "SELECT pg_try_advisory_xact_lock(" + locks.USER + ", :u)"

# ---- submitting --------------------------------------------------------------------------------------

ANNOTATION_COLUMNS = ("id, item_id, user_id, answers, active_ms, revision, created_at, updated_at, idempotency_key, "
                      "reported_ms")
# Whether the caller has an annotation with this idempotency key or of this item: two index probes, read
# with the item (ITEM_PROJECT); only then does a submission read those annotations (SUBMIT_CHECK), to
# replay one or to refuse.
_EARLIER = ("(EXISTS (SELECT 1 FROM annotations ea WHERE ea.user_id = :u AND ea.idempotency_key = :k) "
            "OR EXISTS (SELECT 1 FROM annotations eb WHERE eb.item_id = :i AND eb.user_id = :u))")
# The caller's earlier annotations with this idempotency key or of this item (AnnotationRow).
SUBMIT_CHECK = (
    "SELECT " + ANNOTATION_COLUMNS + " FROM annotations WHERE user_id = :u AND idempotency_key = :k "
    "UNION ALL SELECT " + ANNOTATION_COLUMNS + " FROM annotations WHERE item_id = :i AND user_id = :u")
ITEM_PROJECT = ("SELECT p.id, p.slug, p.name, p.schema, p.overlap, p.lease_seconds, p.created_at, p.updated_at, "
                "i.is_gold, EXISTS (SELECT 1 FROM paused_annotators pa WHERE pa.project_id = p.id "
                "AND pa.user_id = :u), (SELECT m.status FROM memberships m WHERE m.project_id = p.id "
                "AND m.user_id = :u), i.data, " + _EARLIER + " FROM items i JOIN projects p ON p.id = i.project_id "
                "WHERE i.id = :i")
# SQLite: give back the caller's lease (or their lapsed one), rows LeaseRow.
DROP_LEASE = "DELETE FROM leases WHERE item_id = :i AND user_id = :u RETURNING created_at, expires_at"
DROP_LAPSED = "DELETE FROM lapsed_leases WHERE item_id = :i AND user_id = :u RETURNING created_at, expires_at"
UNSKIP = "DELETE FROM skips WHERE item_id = :i AND user_id = :u"
# Count the answer against the item (CountedRow): a submission under the caller's lease uses the slot the
# lease held; one without a lease (it expired and was reclaimed) must find a free slot, or nothing is saved.
COUNT_SQLITE = (
    "UPDATE items SET n_done = n_done + 1, n_assigned = n_assigned + :take, "
    f"is_open = {open_flag('n_assigned + :take')} "
    f"WHERE id = :i AND (:take = 0 OR n_assigned < {WANT}) RETURNING n_done, {WANT}")
# The project is complete when, besides the item just completed, no ordinary item is open or leased.
PROJECT_DONE = ("NOT EXISTS (SELECT 1 FROM items oi WHERE oi.project_id = :p AND oi.is_open = 1 AND oi.is_gold = 0 "
                "AND oi.id <> :i) AND NOT EXISTS (SELECT 1 FROM leases ol JOIN items li ON li.id = ol.item_id "
                "WHERE ol.project_id = :p AND li.is_gold = 0 AND ol.item_id <> :i)")
PROJECT_DONE_QUERY = "SELECT " + PROJECT_DONE  # the same, as a statement of its own (:p, :i)

_ANNOTATION_INSERT_COLUMNS = ("item_id, project_id, user_id, answers, active_ms, idempotency_key, revision, "
                              "created_at, updated_at, reported_ms, bound_ms")
# In a project whose assistant shows suggestions, the annotation also records, in the same INSERT, what its
# author was shown: the item's prediction (NULL when it has none) and the arm (:sa, shown or hidden).
_SUGGESTION_COLUMNS = ", suggestion, suggestion_arm"
_SUGGESTION_VALUES = (", (SELECT pr.label FROM predictions pr WHERE pr.item_id = :i), "
                      "(SELECT CAST(:sa AS text) FROM predictions pr WHERE pr.item_id = :i)")


def _insert_annotation(suggested: bool) -> str:
    return ("INSERT INTO annotations (" + _ANNOTATION_INSERT_COLUMNS
            + (_SUGGESTION_COLUMNS if suggested else "") + ") ")


def _insert_sqlite(suggested: bool) -> str:
    return (_insert_annotation(suggested) + "VALUES (:i, :p, :u, :a, :kept, :k, 1, :now, :now, :ms, :bound"
            + (_SUGGESTION_VALUES if suggested else "") + ") RETURNING id")


INSERT_SQLITE = {suggested: _insert_sqlite(suggested) for suggested in (False, True)}

# PostgreSQL: release the lease, drop a skip, count the answer and store it in one statement. The item
# must have been handed to the caller: their lease (live, or expired but not yet reclaimed), or else their
# lapsed lease while the item has room. The lease's life bounds the active time claimed.
_SUBMIT_PG_STEPS = [
    "gone AS (DELETE FROM leases WHERE item_id = :i AND user_id = :u RETURNING created_at, expires_at)",
    "lapsed AS (DELETE FROM lapsed_leases WHERE item_id = :i AND user_id = :u "
    "AND NOT EXISTS (SELECT 1 FROM gone) RETURNING created_at, expires_at)",
    "lease AS (SELECT 0 AS n, created_at, expires_at FROM gone UNION ALL "
    "SELECT 1, created_at, expires_at FROM lapsed)",
    "take AS (SELECT max(n) AS n, max(created_at) AS started, max(expires_at) AS ends FROM lease)",
    "held AS (SELECT n, LEAST(CAST(:maxms AS bigint), GREATEST(0, floor((LEAST(:now, ends) - started) * 1000)))"
    "::bigint AS bound FROM take WHERE started IS NOT NULL)",
    "counted AS (UPDATE items SET n_done = n_done + 1, n_assigned = n_assigned + held.n, "
    "is_open = " + open_flag("items.n_assigned + held.n", "items.target") + " "
    "FROM held WHERE items.id = :i AND (held.n = 0 OR items.n_assigned < COALESCE(items.target, :o)) "
    "RETURNING items.id, items.n_done, COALESCE(items.target, :o) AS want, held.bound, "
    "LEAST(CAST(:ms AS bigint), held.bound) AS ms)",
    "unskip AS (DELETE FROM skips USING counted WHERE skips.item_id = counted.id AND skips.user_id = :u)",
]


def _insert_pg(suggested: bool) -> str:
    return ("ins AS (" + _insert_annotation(suggested) + "SELECT id, :p, :u, :a, ms, :k, 1, :now, :now, :ms, bound"
            + (_SUGGESTION_VALUES if suggested else "") + " FROM counted RETURNING id)")


def _listening(kind_sql: str) -> str:
    """Whether an active webhook of the project wants events of the kind (an SQL expression)."""
    return "EXISTS (SELECT 1 FROM webhooks w WHERE " + listening(kind_sql) + ")"


# The events of the submission, in its transaction (stored only when a webhook wants them).
_EVENT_STEPS = [
    "ev1 AS (INSERT INTO events (at, kind, project_id, payload) SELECT :now, 'annotation.submitted', :p, "
    "jsonb_set(CAST(:d1 AS jsonb), '{annotation_id}', to_jsonb(ins.id))::text FROM ins "
    "WHERE " + _listening("'annotation.submitted'") + " RETURNING id)",
    "ev2 AS (INSERT INTO events (at, kind, project_id, payload) SELECT :now, 'item.completed', :p, :d2 "
    "FROM counted WHERE :complete_here AND counted.n_done >= counted.want "
    "AND " + _listening("'item.completed'") + " RETURNING id, kind)",
    "ev3 AS (INSERT INTO events (at, kind, project_id, payload) SELECT :now, 'project.completed', :p, :d3 "
    "FROM counted WHERE :complete_here AND counted.n_done >= counted.want AND " + PROJECT_DONE + " "
    "AND " + _listening("'project.completed'") + " RETURNING id, kind)",
    "dl AS (INSERT INTO deliveries (webhook_id, event_id, status, attempts, next_attempt_at, created_at) "
    "SELECT w.id, e.id, 'pending', 0, :now, :now FROM (SELECT id, 'annotation.submitted' AS kind FROM ev1 "
    "UNION ALL SELECT id, kind FROM ev2 UNION ALL SELECT id, kind FROM ev3) e JOIN webhooks w ON "
    + listening("e.kind") + ")",
]
# Its row is a SubmittedRow.
_SUBMITTED = ("SELECT ins.id, counted.n_done, counted.want, take.started, counted.ms "
              "FROM take LEFT JOIN counted ON true LEFT JOIN ins ON true")


def _submit_pg(events: bool, suggested: bool) -> str:
    steps = _SUBMIT_PG_STEPS + [_insert_pg(suggested)] + (_EVENT_STEPS if events else [])
    return "WITH " + ", ".join(steps) + " " + _SUBMITTED


# By (a webhook listens, the project records suggestions). Without listeners (see events.wanted), what
# most submissions run, the statement writes no events.
SUBMIT_PG = {(events, suggested): _submit_pg(events, suggested) for events in (False, True)
             for suggested in (False, True)}


# ---- reading rows -----------------------------------------------------------------------------------


def fetch_one(cur, row_type):
    """The cursor's next row as a ``row_type`` (one of the NamedTuples above), or None."""
    row = cur.fetchone()
    return None if row is None else row_type._make(row)


def fetch_value(cur):
    """The one column of the cursor's next row (a statement that selects a single value: an id, a flag), or
    None when there is no row."""
    row = cur.fetchone()
    if row is None:
        return None
    (value,) = row  # exactly one column: anything else is a statement this was not meant for
    return value


def fetch_all(cur, row_type) -> list:
    """The cursor's remaining rows as ``row_type``."""
    return [row_type._make(row) for row in cur.fetchall()]
