"""The embedded PostgreSQL's optional TCP listener for BI tools (SNAPSHOTS_EMBEDDED_TCP_PORT):
127.0.0.1 only, a password (SCRAM) on TCP, the Unix socket trusted as before. The password is
generated once, kept beside `pgdata` with mode 0600, and never logged."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

import psycopg
from psycopg import sql

from snapshots.logs import get_logger, register_secret

log = get_logger("snapshots.embedded")
LISTEN_ADDRESS = "127.0.0.1"
USER = "postgres"

# Replaces initdb's pg_hba.conf, which trusts every local TCP connection: with a TCP listener
# that would let any local user in without a password.
PG_HBA = """\
# Written by snapshots: the Unix socket (in the data directory) is trusted, as without TCP;
# TCP (127.0.0.1 only, SNAPSHOTS_EMBEDDED_TCP_PORT) needs the password in pgdata.password.
local   all           all                     trust
local   replication   all                     trust
host    all           all     127.0.0.1/32    scram-sha-256
host    all           all     ::1/128         scram-sha-256
"""


def password_path(pgdata: Path) -> Path:
    """`<data dir>/pgdata.password`, beside pgdata's lock files."""
    return pgdata.with_name(f"{pgdata.name}.password")


def password(pgdata: Path, *, create: bool) -> str | None:
    """The TCP password: generated on first use (`create`), else read; None if there is none.
    A file readable by others is made private again (and that is logged, not the password)."""
    path = password_path(pgdata)
    if create:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            value = secrets.token_urlsafe(24)
            with os.fdopen(fd, "w") as file:
                file.write(value + "\n")
            register_secret(value)
            log.info("embedded_postgres.password_created", file=str(path))
            return value
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        value = path.read_text().strip()
    except FileNotFoundError:
        return None
    if mode & 0o077:
        os.chmod(path, 0o600)
        log.warning("embedded_postgres.password_file_opened", file=str(path), mode=oct(mode))
    register_secret(value)
    return value


def server_options(port: int, socket_dir: Path) -> list[str]:
    """pg_ctl arguments starting the server on the socket and on 127.0.0.1:`port`."""
    return ["-o", f"-h {LISTEN_ADDRESS}", "-o", f"-p {port}", "-o", f"-k {socket_dir}"]


def write_pg_hba(pgdata: Path) -> None:
    """Overwrite pg_hba.conf in place (it keeps its owner: the server's user under root)."""
    with (pgdata / "pg_hba.conf").open("w") as file:
        file.write(PG_HBA)


def set_password(socket_uri: str, value: str) -> None:
    """Give the `postgres` role the password, sent as a SCRAM verifier computed here, so the
    plain password reaches neither the server nor its log."""
    with psycopg.connect(socket_uri, autocommit=True) as conn:
        verifier = conn.pgconn.encrypt_password(value.encode(), USER.encode(), b"scram-sha-256")
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(USER), sql.Literal(verifier.decode())
            )
        )
