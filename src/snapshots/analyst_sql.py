"""`snapshots sql`: run analysts' statements against the service's database, read-only unless
`--write` is given, and print what they return.

Read-only mode is enforced by PostgreSQL, not by guessing at the SQL: every statement goes alone
(extended protocol, which refuses a second statement hidden behind a `;`) into a transaction
begun READ ONLY whose first snapshot is already taken, so `SET TRANSACTION READ WRITE` is
refused too, and a `COMMIT` inside the text only ends that statement's transaction."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import psycopg
from psycopg import pq
from rich.console import Console

from snapshots.database import libpq_url
from snapshots.sql_output import Format, ResultSet, print_result
from snapshots.sql_split import split_statements

WRITE_HINT = "snapshots sql is read-only; add --write to run statements that change data"
_READ_ONLY_REFUSALS = {"25006", "25001"}  # read_only_sql_transaction, active_sql_transaction
PROMPT, CONTINUATION = "snapshots=> ", "snapshots-> "


class SqlError(Exception):
    """PostgreSQL refused a statement or could not be reached; the message is one line."""


def connect(url: str) -> psycopg.Connection[Any]:
    """An autocommit connection (transactions are begun explicitly) whose notices (warnings
    such as `there is no transaction in progress`) go to stderr."""
    try:
        conn = psycopg.connect(
            libpq_url(url), autocommit=True, application_name="snapshots sql", connect_timeout=10
        )
    except psycopg.Error as exc:
        raise SqlError(f"cannot connect to the database: {_one_line(str(exc))}") from None
    conn.add_notice_handler(
        lambda diag: print(f"{diag.severity}: {diag.message_primary}", file=sys.stderr)
    )
    return conn


def run(conn: psycopg.Connection[Any], text: str, write: bool) -> Iterator[ResultSet]:
    """The result of each statement in `text`, in order; the first refusal raises SqlError.

    With `write`, the text goes as one simple query, as `psql -c` sends it: its statements
    form one transaction unless they say otherwise, and VACUUM or CREATE INDEX CONCURRENTLY
    work."""
    try:
        if write:
            yield from _run_as_written(conn, text)
            return
        statements, rest = split_statements(text)
        if rest.strip():
            statements.append(rest.strip())
        for statement in statements:
            yield _run_read_only(conn, statement)
    except psycopg.Error as exc:
        raise SqlError(_message(exc)) from None


def _run_as_written(conn: psycopg.Connection[Any], text: str) -> Iterator[ResultSet]:
    with conn.cursor() as cursor:
        cursor.execute(text.encode(conn.info.encoding))  # no parameters: the simple protocol
        while True:
            if cursor.pgresult is not None:
                yield _result_set(cursor.pgresult, conn.info.encoding)
            if not cursor.nextset():
                return


def _run_read_only(conn: psycopg.Connection[Any], statement: str) -> ResultSet:
    pgconn, encoding = conn.pgconn, conn.info.encoding
    _exec(pgconn, "BEGIN TRANSACTION READ ONLY", encoding)
    _exec(pgconn, "SELECT 1", encoding)  # takes the first snapshot; the mode is now fixed
    try:
        return _exec(pgconn, statement, encoding)
    finally:
        if pgconn.transaction_status in (
            pq.TransactionStatus.INTRANS,
            pq.TransactionStatus.INERROR,
        ):
            # COMMIT keeps a SET the analyst made; there is nothing else to keep
            _exec(pgconn, "COMMIT", encoding)


def _exec(pgconn: pq.abc.PGconn, statement: str, encoding: str) -> ResultSet:
    """One statement, by itself, over the extended protocol (PQexecParams with no parameters)."""
    result = pgconn.exec_params(statement.encode(encoding), [])
    if result.status == pq.ExecStatus.FATAL_ERROR:
        raise psycopg.errors.error_from_result(result, encoding=encoding)
    return _result_set(result, encoding)


def _result_set(result: pq.abc.PGresult, encoding: str) -> ResultSet:
    def text(value: bytes | None) -> str | None:
        return None if value is None else value.decode(encoding)

    fields = range(result.nfields)
    return ResultSet(
        columns=[text(result.fname(i)) or "?column?" for i in fields],
        types=[result.ftype(i) for i in fields],
        rows=[[text(result.get_value(r, c)) for c in fields] for r in range(result.ntuples)],
        status=text(result.command_status) or "",
    )


def _message(exc: psycopg.Error) -> str:
    """PostgreSQL's own words on one line, its SQLSTATE, and for a write refused by
    read-only mode what to do about it."""
    primary = exc.diag.message_primary or str(exc)
    message = _one_line(primary)
    if exc.sqlstate:
        message += f" (SQLSTATE {exc.sqlstate})"
    if exc.diag.message_hint:
        message += f"; hint: {_one_line(exc.diag.message_hint)}"
    if exc.sqlstate in _READ_ONLY_REFUSALS:
        message += f"; {WRITE_HINT}"
    return message


def _one_line(text: str) -> str:
    return " ".join(text.split())


def run_and_print(url: str, text: str, write: bool, fmt: Format) -> None:
    """`snapshots sql QUERY`: run it and print each statement's result."""
    console = _console()
    with connect(url) as conn:
        for result in run(conn, text, write):
            print_result(result, fmt, sys.stdout, console)


def prompt_loop(
    url: str,
    write: bool,
    fmt: Format,
    read_line: Callable[[str], str] = input,
    out: TextIO | None = None,
) -> int:
    """The interactive session when there is no psql: read lines until a statement ends with
    `;`, run it, print the result or the error, and go on; `\\q` or end of input leaves.
    Returns 1 if a statement failed and input was not a terminal (a script), else 0."""
    out = out or sys.stdout
    console = _console(out)
    interactive = sys.stdin.isatty()  # a script piped in gets no prompts in its output
    failed = False
    buffer = ""
    with connect(url) as conn:
        while True:
            prompt = CONTINUATION if buffer.strip() else PROMPT
            try:
                line = read_line(prompt if interactive else "")
            except EOFError:
                break
            except KeyboardInterrupt:  # Ctrl-C drops the statement being typed
                buffer = ""
                print(file=out)
                continue
            if not buffer.strip() and line.strip() in ("\\q", "quit", "exit"):
                break
            statements, buffer = split_statements(buffer + line + "\n")
            for statement in statements:
                failed = not _run_one(conn, statement, write, fmt, out, console) or failed
        if buffer.strip():
            failed = not _run_one(conn, buffer, write, fmt, out, console) or failed
    return 1 if failed and not interactive else 0


def _run_one(
    conn: psycopg.Connection[Any],
    statement: str,
    write: bool,
    fmt: Format,
    out: TextIO,
    console: Console,
) -> bool:
    try:
        for result in run(conn, statement, write):
            print_result(result, fmt, out, console)
    except SqlError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return False
    return True


def _console(out: TextIO | None = None) -> Console:
    """A console for result tables: as wide as the terminal, or unbounded when piped, so a
    table written to a file is never folded to 80 columns."""
    out = out or sys.stdout
    return Console(file=out, width=None if out.isatty() else 1_000_000, highlight=False)
