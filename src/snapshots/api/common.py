"""What every route needs: the running service parts, from the application state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.datastructures import State

from snapshots.runtime import Runtime

if TYPE_CHECKING:
    from snapshots.api.metrics import Metrics
    from snapshots.api.serving import SnapshotReader


def runtime_of(state: State) -> Runtime:
    runtime: Runtime = state.runtime
    return runtime


def reader_of(state: State) -> SnapshotReader:
    reader: SnapshotReader = state.reader
    return reader


def metrics_of(state: State) -> Metrics:
    metrics: Metrics = state.metrics
    return metrics
