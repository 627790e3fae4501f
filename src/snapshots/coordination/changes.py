"""The change feed: every stored refresh, from whichever process stored it, as NOTIFY on
`snapshots_changes`; hot-path caches subscribe to stay current across replicas."""

from __future__ import annotations

from collections.abc import Callable

from snapshots.coordination.listener import NotificationListener
from snapshots.logs import get_logger
from snapshots.store import channels

log = get_logger(__name__)

ChangeListener = Callable[[channels.Change], None]


class ChangeFeed:
    """Subscribers get each change; `on_gap` runs when notifications may have been missed."""

    def __init__(self, listener: NotificationListener) -> None:
        self._listener = listener
        self._subscribers: list[ChangeListener] = []
        listener.subscribe(channels.CHANGES, self._on_change)

    def subscribe(self, callback: ChangeListener) -> None:
        self._subscribers.append(callback)

    def on_gap(self, callback: Callable[[], None]) -> None:
        self._listener.on_reconnect(callback)

    def _on_change(self, payload: str) -> None:
        change = channels.decode_change(payload)
        if change is None:
            return
        for callback in self._subscribers:
            try:
                callback(change)
            except Exception as exc:  # one subscriber must not starve the others
                log.error(
                    "changes.subscriber_failed",
                    dataset=change.dataset,
                    key=change.key,
                    error_type=type(exc).__name__,
                    exc_info=exc,
                )
