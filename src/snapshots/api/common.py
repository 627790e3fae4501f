"""What every route needs: the running service parts, from the application state."""

from __future__ import annotations

from litestar.datastructures import State

from snapshots.runtime import Runtime


def runtime_of(state: State) -> Runtime:
    runtime: Runtime = state.runtime
    return runtime
