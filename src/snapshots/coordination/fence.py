"""Whether this process may still act as the active worker: its leader epoch, and a lease.

The lease is renewed by every successful check of the leader lock and runs on the monotonic
clock, which keeps counting while a process is stopped (SIGSTOP, a long pause): a leader
resumed after its lease ran out refuses upstream calls before it has even looked at the lock.
The epoch goes with every write of a refresh result, which the store refuses when a newer
leader has taken over (see `Store.record_success`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from snapshots.errors import Fenced

__all__ = ["Fence", "Fenced"]


class Fence:
    """The active worker's epoch while its lease lasts (thread-safe: fetch threads check it)."""

    def __init__(self, lease_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._lease = lease_seconds
        self._clock = clock
        self._epoch: int | None = None
        self._valid_until = 0.0
        self._lock = threading.Lock()

    def grant(self, epoch: int) -> None:
        """Leadership won with `epoch`: valid for one lease from now."""
        with self._lock:
            self._epoch = epoch
            self._valid_until = self._clock() + self._lease

    def renew(self, checked_at: float) -> None:
        """The lock was checked (the check began at `checked_at`, monotonic) and is still
        held: one more lease, counted from before the check, never from after it."""
        with self._lock:
            if self._epoch is not None:
                self._valid_until = checked_at + self._lease

    def revoke(self) -> None:
        with self._lock:
            self._epoch = None
            self._valid_until = 0.0

    @property
    def epoch(self) -> int | None:
        """The epoch while the lease lasts, else None."""
        with self._lock:
            return self._epoch if self._clock() < self._valid_until else None

    def check(self) -> int:
        """The epoch, or Fenced when the lease ran out or leadership was lost."""
        epoch = self.epoch
        if epoch is None:
            raise Fenced()
        return epoch
