"""The journal on PostgreSQL: the store several machines share (docs/scale-out.md).

Its tables live in a schema of their own (`mlestar_journal`), beside LangGraph's checkpoint tables, so one
database holds a run's whole state. The schema is created on first use and versioned (`schema_version`); two
processes opening a new database at once serialise on an advisory lock. Connections come from a pool, so the
lanes of a run (threads) and the runs of a machine (processes, each with its pool) write at the same time;
every statement commits on its own.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Sequence

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from runtime.journal import (
    COLUMNS,
    INDEXES,
    PRIMARY_KEYS,
    SCHEMA_VERSION,
    Journal,
    JournalError,
    newer_schema_error,
    unreachable_message,
)

#: Not "mlestar": a schema named like the database user comes first in PostgreSQL's default search path
#: ("$user", public), and LangGraph's tables, created unqualified, would land in it.
SCHEMA = "mlestar_journal"
#: Any constant of our own: the advisory lock that serialises creating and upgrading the tables.
SCHEMA_LOCK = 0x6D6C_6573_7461_72
SQL_TYPES = {int: "bigint", float: "double precision", str: "text"}
CONNECT_TIMEOUT_S = 10


def table_ddl(table: str) -> str:
    columns = [f"{name} {'bigserial' if name == 'id' else SQL_TYPES[kind]}" for name, kind in COLUMNS[table].items()]
    return (f"create table if not exists {SCHEMA}.{table} ({', '.join(columns)}, "
            f"primary key ({', '.join(PRIMARY_KEYS[table])}))")


#: The statements that bring a database from one layout version to the next (version 2 is the first one
#: on PostgreSQL: the layout SQLite journals reached in version 2).
MIGRATIONS: dict[int, list[str]] = {
    2: [*(table_ddl(table) for table in COLUMNS),
        *(f"create index if not exists {name} on {SCHEMA}.{table} ({', '.join(columns)})"
          for name, (table, columns) in INDEXES.items())],
}


def plain(value: Any) -> Any:
    """PostgreSQL sums integers as numeric: back to int (or float) as SQLite returns them."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


class PostgresJournal(Journal):
    def __init__(self, url: str, max_connections: int = 4):
        self.location = url
        self.pool = ConnectionPool(
            url, min_size=1, max_size=max_connections, open=False, check=ConnectionPool.check_connection,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S,
                    "options": f"-c search_path={SCHEMA}"})
        try:
            psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S).close()  # fails at once, the pool would retry
            self.pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
            self._ensure_schema()
        except (psycopg.Error, PoolTimeout) as exc:
            self.pool.close()
            raise JournalError(unreachable_message("journal", url, exc) + ", or use a SQLite file as "
                               "journal_path.") from None

    def _ensure_schema(self) -> None:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", [SCHEMA_LOCK])
            conn.execute(f"create schema if not exists {SCHEMA}")
            conn.execute(f"create table if not exists {SCHEMA}.schema_version (version integer not null)")
            row = conn.execute(f"select max(version) from {SCHEMA}.schema_version").fetchone()
            version = (row[0] if row else None) or 0
            if version > SCHEMA_VERSION:
                raise newer_schema_error(self.location, version)
            for step in sorted(v for v in MIGRATIONS if version < v <= SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    conn.execute(statement)
                conn.execute(f"insert into {SCHEMA}.schema_version (version) values (%s)", [step])

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple]]:
        with self.pool.connection() as conn:
            cursor = conn.execute(sql.replace("?", "%s"), list(params))
            columns = [d.name for d in cursor.description or ()]
            return columns, [tuple(plain(v) for v in row) for row in cursor.fetchall()]

    def _write(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self.pool.connection() as conn:
            conn.execute(sql.replace("?", "%s"), list(params))

    def _json_field(self, column: str, key: str) -> str:
        return f"({column}::jsonb ->> '{key}')"

    def close(self) -> None:
        self.pool.close()
