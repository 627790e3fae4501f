"""Waiting on a coroutine for at most a few seconds, even when cancelling it would hang.

`asyncio.wait_for` waits for the cancelled coroutine to finish; a query to a frozen database
does not finish (cancelling it asks the server, which does not answer), so a 2 s check took
12 s. `within` gives up on time and lets the cancellation complete in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark the abandoned task's outcome as seen (no 'exception never retrieved' warning)."""
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.exception()


async def within(coroutine: Coroutine[Any, Any, T], seconds: float) -> T:
    """The coroutine's result, or TimeoutError after `seconds` (the coroutine is cancelled,
    but not waited for)."""
    task = asyncio.ensure_future(coroutine)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        task.add_done_callback(_retrieve)
        raise
    if not done:
        task.cancel()
        task.add_done_callback(_retrieve)
        raise TimeoutError(f"no answer within {seconds:g}s")
    return task.result()
