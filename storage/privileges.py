"""What each component may do in the database: the grants of its PostgreSQL group role.

Each entry follows from the storage functions the component calls (docs/SECURITY.md lists
them per worker and command); anything not named here is refused to that role. The
migrations' owner keeps every right and runs nothing but migrations and role management.

- ``ingest`` (``storage.ingest_state``): sessions, memories, thumbnails, partition offsets,
  dead letters; and, when a session ends, its first reconciliation questions (the product
  SKUs and ``queries``). Never ``answers``, ``scans`` or ``reconciliations``.
- ``answer`` (``storage.query_queue``, ``storage.answering``, ``app.reconcile``): reads
  memories and the catalog, claims queries, writes answers, reconciliations and webhook
  deliveries; reads scans. Never writes sessions, memories or scans.
- ``checkout`` (docs/QUERIES.md): asks (``queries``) and records the till's lines
  (``scans``); reads answers and reconciliations, and which session ids exist. Nothing else.
- ``staff`` (the admin commands): reads every table and writes what those commands write
  (catalog, questions, scans, reconciliations and reviews, dead letters' replay marks,
  purge and erasure); never rewrites a staff verdict or an erasure record, never deletes
  an erasure record, never moves ingest's Kafka offsets.
"""

from __future__ import annotations

import re

#: the group roles, one per component; people and services log in as members of one
COMPONENTS = ("ingest", "answer", "checkout", "staff")
ROLE_PREFIX = "cartmem_"

_ALL = ("SELECT", "INSERT", "UPDATE", "DELETE")

#: component -> table -> privilege clauses as GRANT spells them (``"UPDATE (store_id)"``
#: grants that column only)
GRANTS: dict[str, dict[str, tuple[str, ...]]] = {
    "ingest": {
        "sessions": ("SELECT", "INSERT", "UPDATE"),
        "session_memories": ("SELECT", "INSERT", "UPDATE"),
        "memory_arrays": _ALL,  # commits write and delete a session's arrays by name
        "evidence_thumbnails": ("SELECT", "INSERT", "DELETE"),  # thinning deletes
        "partition_offsets": ("SELECT", "INSERT", "UPDATE"),
        "dead_letters": ("SELECT", "INSERT"),
        # a session that ended gets its first reconciliation questions (app.reconcile)
        "products": ("SELECT (sku)",),
        "queries": ("SELECT", "INSERT"),
    },
    "answer": {
        # SELECT ... FOR UPDATE (the reconciliation's session lock) needs an UPDATE right
        # on one column: store_id is the one nothing decides on (ingest rewrites it anyway)
        "sessions": ("SELECT", "UPDATE (store_id)"),
        "session_memories": ("SELECT",),
        "memory_arrays": ("SELECT",),
        "products": ("SELECT",),
        "queries": ("SELECT", "INSERT", "UPDATE"),  # claim, finish, next reconcile round
        "answers": ("SELECT", "INSERT"),
        "scans": ("SELECT",),
        "reconciliations": ("SELECT", "INSERT"),
        "webhook_deliveries": ("SELECT", "INSERT", "UPDATE"),  # the outbox and its sender
    },
    "checkout": {
        "sessions": ("SELECT (id)",),  # `cartmem scans add` refuses an unknown session
        "queries": ("SELECT", "INSERT"),
        "answers": ("SELECT",),
        "scans": ("SELECT", "INSERT"),
        "reconciliations": ("SELECT",),
    },
    "staff": {
        # the session lock of `cartmem reconcile` (SELECT ... FOR UPDATE) and erasure
        "sessions": _ALL,
        "session_memories": ("SELECT", "DELETE"),  # purge and erasure delete
        "memory_arrays": ("SELECT", "DELETE"),
        "evidence_thumbnails": ("SELECT", "DELETE"),
        "partition_offsets": ("SELECT",),  # never moves ingest's Kafka offsets
        "products": ("SELECT", "INSERT", "UPDATE"),  # `catalog add [--replace]`
        "queries": _ALL,  # ask, requeue, `ask --inline` answers like the worker
        "answers": ("SELECT", "INSERT", "DELETE"),
        "scans": ("SELECT", "INSERT", "DELETE"),
        "reconciliations": _ALL,  # `reconcile --recompute` replaces the row
        "dead_letters": ("SELECT", "UPDATE", "DELETE"),  # replay marks the row
        "flag_reviews": ("SELECT", "INSERT", "DELETE"),  # verdicts are appended, never changed
        "webhook_deliveries": ("SELECT", "INSERT", "DELETE"),
        "erasures": ("SELECT", "INSERT"),  # the audit trail of erasures is append-only
        "alembic_version": ("SELECT",),  # `cartmem db current`
    },
}

_CLAUSE = re.compile(r"(SELECT|INSERT|UPDATE|DELETE)(?: \((\w+(?:, \w+)*)\))?")


def role_name(component: str) -> str:
    """The group role of ``component`` (``cartmem_ingest``, ...)."""
    if component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r}; one of {', '.join(COMPONENTS)}")
    return ROLE_PREFIX + component


def clause_parts(clause: str) -> tuple[str, tuple[str, ...]]:
    """``"UPDATE (store_id)"`` -> ``("UPDATE", ("store_id",))``; no columns: the whole table."""
    match = _CLAUSE.fullmatch(clause)
    if match is None:
        raise ValueError(f"not a privilege clause: {clause!r}")
    columns = tuple(c.strip() for c in match.group(2).split(",")) if match.group(2) else ()
    return match.group(1), columns


def inserts_into(component: str) -> list[str]:
    """Tables ``component`` inserts rows into: those whose id sequences it must use."""
    return sorted(
        table
        for table, clauses in GRANTS[component].items()
        if any(clause_parts(c)[0] == "INSERT" for c in clauses)
    )
