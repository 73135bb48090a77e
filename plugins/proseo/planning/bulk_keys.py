"""Foreign keys of a plan's bulk rows checked per set, not per row (PostgreSQL).

PostgreSQL checks each inserted row's foreign keys with one trigger call per key and row:
about 750,000 index lookups for a year's plan, three quarters of the server's time for
it, and the last of them run after the planner has nothing left to do. Where the role
may set ``session_replication_role`` (a superuser, or since PostgreSQL 15 a role granted
``SET`` on it), :class:`KeyCheck` turns those per-row triggers off for the plan's COPYs
only and checks every key itself when the writer closes:

- a reference to a row the same writer wrote (a step's job, a binding's query) is
  checked against the ids it wrote;
- every other reference (an order, orbit, class, processor, product, another order's
  output) with one ``SELECT ... FOR KEY SHARE`` per referenced table, which takes the
  row locks the triggers would: a concurrent delete of a referenced row still waits
  for the plan's commit.

A reference to nothing raises :class:`~proseo.errors.CatalogError` naming the table,
column and value; the caller rolls the transaction back as it would after a refused
COPY. Where the role may not set it, the triggers stay on and nothing here runs.
The replica role silences ordinary triggers too; the plan tables have none, and a test
(tests/planning/test_bulk_keys.py) keeps it so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.schema import Table

from proseo.errors import CatalogError

#: Referencing column -> (referenced table, referenced column), per table.
KeyMap = dict[str, tuple[str, str]]


def single_column_keys(table: Table) -> KeyMap | None:
    """The table's foreign keys, or None when one spans several columns (not handled here)."""
    keys: KeyMap = {}
    for constraint in table.foreign_key_constraints:
        if len(constraint.elements) != 1:
            return None
        element = constraint.elements[0]
        keys[element.parent.name] = (element.column.table.name, element.column.name)
    return keys


class KeyCheck:
    """Collects the references of rows written with the per-row checks off; checks them at the end."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._written: dict[str, set[Any]] = defaultdict(set)
        #: (table, column) -> the (table, column) it refers to, and the values it holds
        self._refs: dict[tuple[str, str], tuple[tuple[str, str], set[Any]]] = {}

    @staticmethod
    def relax(conn: Connection) -> KeyCheck | None:
        """Per-row key triggers off for this transaction, if the role may; else None."""
        if conn.dialect.name != "postgresql":
            return None
        savepoint = conn.begin_nested()
        try:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        except DBAPIError:  # permission denied: the triggers check every row, as before
            savepoint.rollback()
            return None
        savepoint.commit()
        return KeyCheck(conn)

    def note(self, table: Table, columns: list[str], rows: Sequence[dict[str, Any]]) -> None:
        """Remember the ids written and the values referenced (run by the writer per table)."""
        keys = single_column_keys(table)
        if keys is None:
            raise CatalogError(f"{table.name}: a foreign key over several columns cannot be checked per set")
        if "id" in columns:
            self._written[table.name].update(row["id"] for row in rows)
        for column in columns:
            target = keys.get(column)
            if target is not None:
                held = self._refs.setdefault((table.name, column), (target, set()))
                held[1].update(row[column] for row in rows)

    def restore(self) -> None:
        """The per-row triggers on again for the rest of the transaction."""
        self._conn.execute(text("SET LOCAL session_replication_role = origin"))

    def finish(self) -> None:
        """Triggers back on, then every collected reference checked (and its row locked)."""
        self.restore()
        for (source, source_column), ((table, column), values) in sorted(self._refs.items()):
            wanted = values - self._written[table] if column == "id" else set(values)
            wanted.discard(None)
            if not wanted:
                continue
            found = set(
                self._conn.execute(
                    text(f'SELECT "{column}" FROM "{table}" WHERE "{column}" = ANY(:v) FOR KEY SHARE'),
                    {"v": sorted(wanted)},
                ).scalars()
            )
            missing = sorted(wanted - found)
            if missing:
                shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
                raise CatalogError(
                    f"foreign key violated: {source}.{source_column} refers to {table}.{column} = "
                    f"{shown}, which does not exist ({len(missing)} value(s)); the plan is not written"
                )
