"""Set-based writes for the send path: many rows, one statement.

PostgreSQL gets `UPDATE … FROM json_to_recordset(:rows)`: one statement whatever the row count,
with a fixed text so the server can keep it prepared, and one parameter — a JSON document made
by the C encoder, which costs a fraction of adapting arrays element by element. SQLite
(development and tests, one process writing at a time) gets an executemany of the plain
statement, which costs no round trips there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Table, Text, any_, bindparam, insert, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def in_ids(session: Session, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """`column IN ids`; on PostgreSQL as `column = ANY(:array)`, one parameter instead of one per
    id — the statement text stays the same for any batch size, so it can stay prepared."""
    ids = list(ids)
    if is_postgresql(session):
        return column == any_(bindparam(None, ids, type_=postgresql.ARRAY(BigInteger())))
    return column.in_(ids)


def bulk_update(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: str = "id",
    where: Mapping[str, Any] | None = None,
    constants: Mapping[str, Any] | None = None,
    increments: Sequence[str] = (),
) -> int:
    """Set each row's columns on the row whose `key` matches; every row has the same keys.

    `constants` are set to the same value on every row and `increments` are columns increased
    by one (both cost one parameter, not one array element per row). `where` adds equality
    conditions on the target (e.g. `claimed_by=me`) so a row another worker took over is left
    alone. Returns the number of rows changed.
    """
    if not rows:
        return 0
    columns = list(rows[0].keys())
    if key not in columns:
        raise ValueError(f"rows must carry the key column {key!r}")
    where = dict(where or {})
    constants = dict(constants or {})
    if is_postgresql(session):
        return _pg_update(session, table, rows, columns, key, where, constants, increments)
    stmt = update(table).where(table.c[key] == bindparam("_k"))
    for name, value in where.items():
        stmt = stmt.where(table.c[name] == value)
    values: dict[str, Any] = {c: bindparam(f"_v_{c}") for c in columns if c != key}
    values.update({c: bindparam(f"_c_{c}", v, type_=table.c[c].type) for c, v in constants.items()})
    values.update({c: table.c[c] + 1 for c in increments})
    stmt = stmt.values(values)
    params = [{"_k": r[key], **{f"_v_{c}": r[c] for c in columns if c != key}} for r in rows]
    result = session.connection().execute(stmt, params)
    return int(result.rowcount or 0)


def bulk_insert(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    constants: Mapping[str, Any] | None = None,
) -> None:
    """Insert rows that all have the same keys (plus `constants`, the same for every row)."""
    if not rows:
        return
    constants = dict(constants or {})
    if not is_postgresql(session):
        session.connection().execute(insert(table), [{**r, **constants} for r in rows])
        return
    columns = list(rows[0].keys())
    source, binds, params = _recordset(table, rows, columns)
    names = columns + list(constants)
    values = [f"v.{c}" for c in columns]
    for j, (name, value) in enumerate(constants.items()):
        values.append(f":c{j}")
        binds.append(bindparam(f"c{j}", type_=table.c[name].type))
        params[f"c{j}"] = value
    sql = (
        f"INSERT INTO {table.name} ({', '.join(names)}) "  # noqa: S608 - names from the table
        f"SELECT {', '.join(values)} FROM {source}"
    )
    session.connection().execute(text(sql).bindparams(*binds), params)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot send {type(value).__name__} in a bulk write")


def _recordset(
    table: Table, rows: Sequence[Mapping[str, Any]], columns: list[str]
) -> tuple[str, list[Any], dict[str, Any]]:
    """`json_to_recordset(:rows) AS v(col type, …)` with the rows as one JSON parameter."""
    dialect = postgresql.dialect()
    types = ", ".join(f"{c} {table.c[c].type.compile(dialect=dialect)}" for c in columns)
    payload = json.dumps(
        [{c: r[c] for c in columns} for r in rows], default=_json_value, separators=(",", ":")
    )
    source = f"json_to_recordset(CAST(:rows AS json)) AS v({types})"
    return source, [bindparam("rows", type_=Text())], {"rows": payload}


def _pg_update(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    columns: list[str],
    key: str,
    where: Mapping[str, Any],
    constants: Mapping[str, Any],
    increments: Sequence[str],
) -> int:
    source, binds, params = _recordset(table, rows, columns)
    sets = [f"{c} = v.{c}" for c in columns if c != key]
    for j, (name, value) in enumerate(constants.items()):
        sets.append(f"{name} = :c{j}")
        binds.append(bindparam(f"c{j}", type_=table.c[name].type))
        params[f"c{j}"] = value
    sets += [f"{c} = t.{c} + 1" for c in increments]
    conditions = [f"t.{key} = v.{key}"]
    for j, (name, value) in enumerate(where.items()):
        conditions.append(f"t.{name} = :w{j}")
        binds.append(bindparam(f"w{j}", type_=table.c[name].type))
        params[f"w{j}"] = value
    sql = (
        f"UPDATE {table.name} AS t SET {', '.join(sets)} "  # noqa: S608 - names from the table
        f"FROM {source} "
        f"WHERE {' AND '.join(conditions)}"
    )
    result = session.connection().execute(text(sql).bindparams(*binds), params)
    return int(result.rowcount or 0)
