"""What a database that is down, frozen or unreachable raises through the store."""

from __future__ import annotations

import psycopg
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

DATABASE_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeout,
    psycopg.OperationalError,
)

STORE_UNANSWERED: tuple[type[Exception], ...] = (*DATABASE_ERRORS, TimeoutError)
"""The database errors, and a bounded wait on it that ran out (snapshots.deadline.within)."""
