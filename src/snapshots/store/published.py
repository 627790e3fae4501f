"""What the active worker publishes for every replica to show: per provider its budget, plan
and upstream answers, with who published it and when (database time)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from snapshots.errors import Fenced
from snapshots.store.tables import provider_states, worker_leader


@dataclass(frozen=True)
class PublishedState:
    """One provider's state as the active worker last published it."""

    provider: str
    instance: str
    epoch: int
    published_at: datetime
    age_seconds: float  # database time since publication
    state: Mapping[str, Any]  # budget, plan and upstream answers, as the API shows them


class ProviderStates:
    """Reads and writes of `provider_states`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def publish(
        self, states: Mapping[str, Mapping[str, Any]], instance: str, epoch: int
    ) -> None:
        """Replace every provider's published state, in one transaction, if `epoch` is still
        the leader's (Fenced otherwise: a deposed worker publishes nothing)."""
        async with self.engine.begin() as conn:
            current = (
                await conn.execute(
                    select(worker_leader.c.epoch)
                    .where(worker_leader.c.id == 1)
                    .with_for_update(read=True)
                )
            ).scalar_one_or_none()
            if current != epoch:
                raise Fenced(f"epoch {epoch} is no longer the leader's ({current})")
            for provider, state in states.items():
                values = {
                    "provider": provider,
                    "instance": instance,
                    "epoch": epoch,
                    "published_at": func.now(),
                    "state": dict(state),
                }
                await conn.execute(
                    insert(provider_states)
                    .values(values)
                    .on_conflict_do_update(index_elements=[provider_states.c.provider], set_=values)
                )

    async def read(self) -> dict[str, PublishedState]:
        age = func.extract("epoch", func.now() - provider_states.c.published_at)
        query = select(provider_states, age.label("age_seconds"))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {
            str(r.provider): PublishedState(
                str(r.provider),
                str(r.instance),
                int(r.epoch),
                r.published_at,
                float(r.age_seconds),
                r.state,
            )
            for r in rows
        }
