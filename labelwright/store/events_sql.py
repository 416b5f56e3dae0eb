"""The events of a submission on SQLite, hand-written: they run on the driver's own cursor.

:func:`labelwright.services.queue.submit` records its events (``annotation.submitted``, ``item.completed``,
``project.completed``) in the submission's transaction on the cursor of :meth:`labelwright.store.Store.cursor`,
like the rest of the queue's hot statements (:mod:`labelwright.store.queue_sql`, which also holds
PostgreSQL's form: steps of the submission's one statement); compiling Core there would cost every
submission more than the statements themselves. Every other event is written with Core
(:func:`labelwright.services.events.emit`).

``:name`` parameters: ``k`` the kind, ``p`` the project, ``d`` the payload (JSON text), ``now``. Run
:data:`EVENT_SQL`; when it returned an id (a webhook listens), :data:`DELIVERIES_SQL` with it as ``e``.
Which webhooks listen is the rule of :mod:`labelwright.store.listeners`.
"""

from __future__ import annotations

from labelwright.store.listeners import listening

# The active webhooks that want events of kind :k of project :p.
_LISTENERS = "FROM webhooks w WHERE " + listening("CAST(:k AS text)")

# The event, only when a webhook listens (the table is an outbox); returns its id, or no row.
EVENT_SQL = ("INSERT INTO events (at, kind, project_id, payload) SELECT :now, :k, :p, :d "
             "WHERE EXISTS (SELECT 1 " + _LISTENERS + ") RETURNING id")
# One pending delivery of event :e per listening webhook.
DELIVERIES_SQL = ("INSERT INTO deliveries (webhook_id, event_id, status, attempts, next_attempt_at, created_at) "
                  "SELECT w.id, :e, 'pending', 0, :now, :now " + _LISTENERS)
