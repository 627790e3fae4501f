"""The one exception family of the service; the API maps each class to a status and a code."""

from __future__ import annotations

from snapshots_client.http_caching import ERROR_STATUS


class SnapshotsError(Exception):
    """Base of every error the service raises on purpose; `code` and `status` drive the API."""

    code = "internal"
    status = 500  # set from the shared error table for every subclass

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls.status = ERROR_STATUS[cls.code]  # a code missing from the table fails at import

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after  # seconds, sent as Retry-After when set


class ConfigError(SnapshotsError):
    """The configuration file or environment is invalid; the message names the file and key."""

    code = "config_invalid"


class UnknownDataset(SnapshotsError):
    """A dataset name that is not registered in this process."""

    code = "unknown_dataset"


class BadParameter(SnapshotsError):
    """A query parameter that does not parse; the message says what is expected."""

    code = "bad_request"


class MalformedKey(SnapshotsError):
    """A key that does not match the dataset's key format; the message shows the format."""

    code = "malformed_key"


class DatasetDisabled(SnapshotsError):
    """A dataset whose provider lacks a setting (usually its token)."""

    code = "dataset_disabled"


class Unauthorized(SnapshotsError):
    """No bearer token, or one this service does not know."""

    code = "unauthorized"


class Forbidden(SnapshotsError):
    """A valid token whose role is too low for the route."""

    code = "forbidden"


class UnknownRun(SnapshotsError):
    """A refresh run id that was never issued (or was pruned)."""

    code = "unknown_run"


class UpstreamNotFound(SnapshotsError):
    """The upstream confirmed that the key does not exist."""

    code = "not_found"


class UpstreamError(SnapshotsError):
    """A fetch failed (transport error, bad status, malformed payload); the message is safe to show."""

    code = "upstream_error"


class Unavailable(SnapshotsError):
    """No snapshot is stored and none could be obtained within the wait.

    `last_error` is the key's last refresh error; `freshness` (the API's Freshness body) is set
    when an older snapshot exists but was refused because of `max_age`.
    """

    code = "unavailable"

    def __init__(
        self,
        message: str,
        retry_after: int | None = 5,
        *,
        last_error: str | None = None,
        freshness: object | None = None,
    ) -> None:
        super().__init__(message, retry_after)
        self.last_error = last_error
        self.freshness = freshness


class RefreshTooSoon(SnapshotsError):
    """A forced refresh inside the key's minimum interval: no upstream call is made.

    `latest_version` is the key's latest stored version (None before the first)."""

    code = "refresh_too_soon"

    def __init__(
        self, message: str, retry_after: int | None = None, *, latest_version: int | None = None
    ) -> None:
        super().__init__(message, retry_after)
        self.latest_version = latest_version


class Fenced(Unavailable):
    """This worker is no longer the active one: it makes no upstream call and stores nothing."""

    def __init__(
        self, message: str = "this worker stepped down (it is no longer the active one)"
    ) -> None:
        super().__init__(message, retry_after=5)


class KeyLimitReached(SnapshotsError):
    """A read would register one more on-demand key than the dataset's `max_keys` allows."""

    code = "max_keys_reached"


class DatabaseUnavailable(Unavailable):
    """The database does not answer; reads fail fast instead of hanging."""

    code = "database_unavailable"


class IncompletePagination(UpstreamError):
    """A paged fetch did not end where its pagination announced (a page empty or short before
    the announced end, a total not reached, "more" with nothing after it): the list may be
    truncated, so nothing is stored."""
