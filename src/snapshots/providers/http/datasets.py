"""The generic http kind's datasets: any JSON list at a URL, with Link-header, page or offset
pagination checked against what the pages announce."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from snapshots.errors import UpstreamError
from snapshots.providers.fetching import (
    MAX_PAGES,
    LinkPages,
    incomplete,
    raise_for_status,
    transport_failure,
)
from snapshots.providers.http.settings import HttpDatasetOptions
from snapshots.providers.kind import DatasetDefinition, FetchContext, JSONValue, KeyFormat

GENERIC_KEY = KeyFormat(
    pattern=r"[A-Za-z0-9][A-Za-z0-9._/:-]{0,199}",
    description="letters, digits and . _ / : - (set key_pattern to be stricter)",
    example="acme/repo-01",
)


def _get(client: httpx.Client, url: str, params: dict[str, str], what: str) -> httpx.Response:
    try:
        # An empty mapping would make httpx drop the query the next-page link carries.
        response = client.get(url, params=params or None)
    except httpx.HTTPError as exc:
        raise transport_failure(client.base_url.host, what, exc) from None
    raise_for_status(client.base_url.host, response.status_code, what)
    return response


def _json(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise UpstreamError(f"{what}: the upstream sent malformed JSON") from None


def _items(body: Any, path: str | None, what: str) -> list[Any]:
    """The list at dotted `path` in `body` (the body itself when no path is set)."""
    value = body
    for part in path.split(".") if path else ():
        value = value.get(part) if isinstance(value, dict) else None
    if not isinstance(value, list):
        where = f"at '{path}'" if path else "as the body"
        raise UpstreamError(f"{what}: expected a JSON list {where}")
    return value


def _announced(body: Any) -> tuple[bool | None, int | None]:
    """The `more` flag and `total` count a page carries (PagerDuty's classic pagination and
    many others), None for each it does not."""
    if not isinstance(body, dict):
        return None, None
    more, total = body.get("more"), body.get("total")
    return (
        more if isinstance(more, bool) else None,
        total if isinstance(total, int) and not isinstance(total, bool) else None,
    )


def _follow_links(
    client: httpx.Client, url: str, params: dict[str, str], path: str | None, what: str
) -> list[Any]:
    """Every page by rel="next", checked by `LinkPages` (no per-page size: it is the API's)."""
    pages = LinkPages(what)
    collected: list[Any] = []
    next_url: str | None = url
    while next_url is not None:
        response = _get(client, next_url, params, what)
        items = _items(_json(response, what), path, what)
        collected.extend(items)
        links = {
            str(rel): str(link["url"]) for rel, link in response.links.items() if "url" in link
        }
        next_url = pages.page(str(response.url), len(items), links)
        params = {}  # the next link carries its own query
    return collected


def fetch(client: Any, key: str, ctx: FetchContext) -> JSONValue:
    """GET the dataset's URL for `key`, following its pagination to the end.

    With `page` and `offset`, a page's `more` and `total` (when it has them) decide: `more:
    true` goes on even after a short page (the upstream may cap the page size), an empty page
    under `more: true` or a list that ends short of `total` fails the fetch; without them a
    short page is the last. `offset` advances by the items received, so a capped page skips
    nothing.
    """
    options: HttpDatasetOptions = ctx.options
    url = options.url.replace("{key}", quote(key, safe="/"))
    what = f"GET {url}"
    params = dict(options.params)
    paginate = options.paginate
    path = options.items
    if paginate == "none":
        body = _json(_get(client, url, params, what), what)
        return _items(body, path, what) if path else body
    if paginate == "link":
        return _follow_links(client, url, params, path, what)
    size = options.page_size
    collected: list[Any] = []
    total: int | None = None
    for page in range(MAX_PAGES):
        if paginate == "page":
            params.update(page=str(page + 1), per_page=str(size))
            where = f"page {page + 1}"
        else:
            params.update(offset=str(len(collected)), limit=str(size))
            where = f"page at offset {len(collected)}"
        body = _json(_get(client, url, params, what), what)
        items = _items(body, path, what)
        collected.extend(items)
        more, total = _announced(body)
        if not items:
            if more is True:
                raise incomplete(
                    what, f"{where} came back empty though more: true, after {len(collected)} items"
                )
            break
        if more is not None:
            if more:
                continue
            break
        if total is not None:
            if len(collected) >= total:
                break
            continue
        if len(items) < size:
            break
    else:
        raise UpstreamError(f"{what}: more than {MAX_PAGES} pages; narrow the query")
    if total is not None and len(collected) < total:
        raise incomplete(
            what, f"the list ended after {len(collected)} items though total is {total}"
        )
    return collected


def url_dataset(name: str) -> DatasetDefinition:
    """A user-defined dataset read from its `url` setting (with `{key}` in it)."""
    return DatasetDefinition(
        name=name,
        key_format=GENERIC_KEY,
        default_ttl_seconds=None,
        fetch=fetch,
        description="GET the dataset's url (user-defined)",
        options=HttpDatasetOptions,
    )
