"""Table creation for tests and the local runtime (CDK creates the tables in AWS)."""

from __future__ import annotations

from engine.store.tables import TABLES, bind


def create_all_tables() -> list[str]:
    """Create every missing table (GSIs, streams, TTL) under the current names; returns the created ones.

    Idempotent: existing tables are left as they are.
    """
    created: list[str] = []
    for _env, _short, model in TABLES:
        bound = bind(model)
        if bound.exists():
            continue
        bound.create_table(wait=True)
        created.append(bound.Meta.table_name)
    return created


def delete_all_tables() -> None:
    """Delete every table under the current names (missing ones are skipped)."""
    for _env, _short, model in TABLES:
        bound = bind(model)
        if bound.exists():
            bound.delete_table()
