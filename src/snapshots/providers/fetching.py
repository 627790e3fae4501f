"""What every fetch shares: upstream errors saying what to check, and the check that a paged
list ended where its pagination announced."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from snapshots.errors import IncompletePagination, SnapshotsError, UpstreamError, UpstreamNotFound

MAX_PAGES = 1000


def status_error(provider: str, status: int, what: str) -> SnapshotsError | None:
    """The service's error for an upstream status (None for success), saying what to check."""
    if 200 <= status < 300:
        return None
    if status == 404:
        return UpstreamNotFound(f"{provider} has no {what}")
    if status == 401:
        return UpstreamError(
            f"{provider} answered 401 Unauthorized for {what}: check the {provider} token"
        )
    if status == 403:
        return UpstreamError(
            f"{provider} answered 403 Forbidden for {what}: check the token's permissions (or the rate limit)"
        )
    if status == 429:
        return UpstreamError(
            f"{provider} kept throttling the request for {what} (429); it will be retried later"
        )
    return UpstreamError(f"{provider} answered {status} for {what}")


def raise_for_status(provider: str, status: int, what: str) -> None:
    error = status_error(provider, status, what)
    if error is not None:
        raise error


def library_failure(
    provider: str, what: str, exc: BaseException, status: int | None
) -> SnapshotsError:
    """A client library's exception as the service's error: by the HTTP status it carries when
    that status means something, else by its type (library messages can quote requests)."""
    mapped = status_error(provider, status, what) if status is not None else None
    return mapped if mapped is not None else transport_failure(provider, what, exc)


def transport_failure(provider: str, what: str, exc: BaseException) -> SnapshotsError:
    """A failure with no usable status, named by type only (library messages may quote requests)."""
    if isinstance(exc, SnapshotsError):
        return exc
    if isinstance(exc, ValueError):  # json.JSONDecodeError and friends
        return UpstreamError(f"{provider} sent malformed JSON for {what}")
    cause = exc.__cause__ or exc
    return UpstreamError(f"{provider} request for {what} failed: {type(cause).__name__}")


def incomplete(what: str, detail: str) -> IncompletePagination:
    """The error for a paged list that did not end where its pagination announced."""
    return IncompletePagination(f"{what}: {detail}; the list may be truncated, nothing stored")


def _page_number(url: str) -> int | None:
    values = parse_qs(urlsplit(url).query).get("page", [])
    return int(values[-1]) if values and values[-1].isdigit() else None


@dataclass
class LinkPages:
    """Follows a list paged by `Link` headers (RFC 8288) and checks that it
    ends where the links announced: a page reached through rel="next" must not be empty, the
    list must not stop before the page rel="last" named, and, when `per_page` is known, a page
    that links to a next one must be full."""

    what: str
    per_page: int | None = None
    items: int = 0
    pages: int = 0
    last: int | None = None  # the page number the latest rel="last" named

    def page(self, url: str, count: int, links: Mapping[str, str]) -> str | None:
        """Account for the page at `url` with `count` items and its links (rel -> URL); the
        next page's URL, or None when the list is complete."""
        self.pages += 1
        if self.pages > MAX_PAGES:
            raise UpstreamError(f"{self.what}: more than {MAX_PAGES} pages; narrow the query")
        number = _page_number(url) or self.pages
        if "last" in links:
            self.last = _page_number(links["last"])
        of = f" of {self.last}" if self.last else ""
        if count == 0 and self.pages > 1:
            raise incomplete(
                self.what,
                f"page {number}{of} announced by Link came back empty after {self.items} items",
            )
        if count == 0 and "next" in links:
            raise incomplete(
                self.what, f"page {number}{of} came back empty though Link announces more"
            )
        self.items += count
        if "next" in links:
            if self.per_page is not None and count < self.per_page:
                raise incomplete(
                    self.what,
                    f"page {number}{of} came back with {count} items, fewer than per_page"
                    f" {self.per_page}, though Link announces more",
                )
            return links["next"]
        if self.last is not None and number < self.last:
            raise incomplete(
                self.what,
                f"the list ended at page {number} after {self.items} items though Link"
                f" announced {self.last} pages",
            )
        return None
