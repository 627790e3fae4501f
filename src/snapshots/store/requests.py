"""The refresh request queue: API replicas submit, the active worker claims and answers.

Each state change is committed together with its NOTIFY, so the other side wakes exactly
when the row says what it will read.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from snapshots.clock import utcnow
from snapshots.store import channels
from snapshots.store.records import RefreshRequest
from snapshots.store.tables import refresh_requests

_COLUMNS = [c for c in refresh_requests.c if c.name != "updated_at"]


def _request(row: Any) -> RefreshRequest:
    return RefreshRequest(**{c.name: getattr(row, c.name) for c in _COLUMNS})


class RequestQueue:
    """Reads and writes of `refresh_requests`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def submit(
        self,
        dataset: str,
        key: str,
        *,
        forced: bool,
        accept_shrink: bool = False,
        seen_run_id: int | None = None,
    ) -> int:
        """Queue a request and wake the worker; returns the request id."""
        now = utcnow()
        async with self.engine.begin() as conn:
            request_id = (
                await conn.execute(
                    insert(refresh_requests)
                    .values(
                        dataset=dataset,
                        key=key,
                        forced=forced,
                        accept_shrink=accept_shrink,
                        seen_run_id=seen_run_id,
                        requested_at=now,
                        status="pending",
                        updated_at=now,
                    )
                    .returning(refresh_requests.c.id)
                )
            ).scalar_one()
            await conn.execute(select(func.pg_notify(channels.REQUESTS, str(request_id))))
        return int(request_id)

    async def claim(self, expire_after_seconds: float, limit: int = 100) -> list[RefreshRequest]:
        """Take pending requests for this worker (skipping ones another transaction holds);
        requests older than `expire_after_seconds` are marked expired instead (nobody waits)."""
        now = utcnow()
        async with self.engine.begin() as conn:
            await conn.execute(
                update(refresh_requests)
                .where(
                    refresh_requests.c.status == "pending",
                    refresh_requests.c.requested_at < now - timedelta(seconds=expire_after_seconds),
                )
                .values(status="expired", updated_at=now)
            )
            pending = (
                select(refresh_requests.c.id)
                .where(refresh_requests.c.status == "pending")
                .order_by(refresh_requests.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            rows = await conn.execute(
                update(refresh_requests)
                .where(refresh_requests.c.id.in_(pending))
                .values(status="claimed", updated_at=now)
                .returning(*_COLUMNS)
            )
            return sorted((_request(r) for r in rows), key=lambda r: r.id)

    async def started(self, request_id: int, run_id: int, joined: bool) -> None:
        await self._answer(request_id, status="started", run_id=run_id, joined=joined)

    async def refused(
        self, request_id: int, code: str, message: str, retry_after: int | None
    ) -> None:
        await self._answer(
            request_id, status="refused", error_code=code, error=message, retry_after=retry_after
        )

    async def finished(
        self,
        request_id: int,
        run_id: int,
        outcome: str,
        error: str | None,
        not_found: bool,
        error_code: str | None = None,
    ) -> None:
        """`error_code` "interrupted": the worker stepped down before storing (ask again)."""
        await self._answer(
            request_id,
            status="finished",
            run_id=run_id,
            outcome=outcome,
            error=error,
            not_found=not_found,
            error_code=error_code,
        )

    async def close_orphans(self, error: str) -> int:
        """Finish, as interrupted, every request a previous worker claimed and never answered
        (it stepped down or died): called by a new leader before it takes requests."""
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    update(refresh_requests)
                    .where(refresh_requests.c.status.in_(("claimed", "started")))
                    .values(
                        status="finished",
                        outcome="failed",
                        error=error,
                        error_code=INTERRUPTED,
                        updated_at=utcnow(),
                    )
                    .returning(*_COLUMNS)
                )
            ).all()
            for row in rows:
                await _notify_reply(conn, _request(row))
        return len(rows)

    async def _answer(self, request_id: int, **values: Any) -> None:
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    update(refresh_requests)
                    .where(refresh_requests.c.id == request_id)
                    .values(**values, updated_at=utcnow())
                    .returning(*_COLUMNS)
                )
            ).first()
            if row is not None:
                await _notify_reply(conn, _request(row))

    async def get(self, request_id: int) -> RefreshRequest | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(*_COLUMNS).where(refresh_requests.c.id == request_id))
            ).first()
        return None if row is None else _request(row)

    async def running(self, run_id: int) -> tuple[str, str] | None:
        """The (dataset, key) of a run some worker has started and not finished."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(refresh_requests.c.dataset, refresh_requests.c.key)
                    .where(
                        refresh_requests.c.run_id == run_id,
                        refresh_requests.c.status == "started",
                    )
                    .limit(1)
                )
            ).first()
        return None if row is None else (str(row.dataset), str(row.key))

    async def prune(self, before: datetime) -> int:
        """Forget answered requests last touched before `before`."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(refresh_requests).where(refresh_requests.c.updated_at < before)
            )
        return int(result.rowcount or 0)


INTERRUPTED = "interrupted"
"""`error_code` of a request whose refresh the worker never stored (it stepped down)."""


def reply_of(request: RefreshRequest) -> channels.Reply:
    error = request.error[: channels.MAX_ERROR_CHARS] if request.error else None
    return channels.Reply(
        request.id,
        request.status,
        request.run_id,
        request.joined,
        request.outcome,
        error,
        request.error_code,
        request.retry_after,
        request.not_found,
    )


async def _notify_reply(conn: AsyncConnection, request: RefreshRequest) -> None:
    reply = channels.encode(reply_of(request))
    await conn.execute(select(func.pg_notify(channels.REPLIES, reply)))
