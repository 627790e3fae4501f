"""`mirror = "any"`: a provider instance whose mirror caches any GET path, as app-sre's
github-mirror does, in one dataset `<instance>.mirror_any` keyed by the path and its sorted
query. Each kind that offers it says how its client GETs a path (`ProviderKind.raw_get`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

import msgspec

from snapshots.providers.kind import DatasetDefinition, FetchContext, JSONValue, KeyFormat

NAME = "mirror_any"
DEFAULT_TTL_SECONDS = 300.0

ANY_PATH = KeyFormat(
    # A path below the base URL: no `//` (a client could read `//host/...` as another host)
    # and no `:` before the query (no scheme, no `host:port`), so a key never leaves the base URL.
    pattern=r"(?:/[A-Za-z0-9._~%!$'()*+,;=@-]+)+/?(\?[A-Za-z0-9._~%!$'()*+,;=:@/?&-]*)?|/",
    description="an upstream path with its query, like /repos/acme/repo-01/pulls?state=open",
    example="/repos/acme/repo-01/pulls?state=open",
)

RawGet = Callable[[Any, str], tuple[JSONValue, Mapping[str, str]]]
"""`raw_get(client, path_and_query)`: the JSON body and the headers to keep (like `link`)."""


class AnyAnswer(msgspec.Struct):
    """What is stored for a path: the body as sent and the headers the mirror repeats."""

    body: Any
    headers: dict[str, str] = {}


def key_of(path: str, query: Iterable[tuple[str, str]]) -> str:
    """The dataset key of a request: the path and its query sorted by name. Every value of a
    repeated parameter is kept, in the order sent (PagerDuty's `statuses[]=a&statuses[]=b` is not
    `statuses[]=b`)."""
    pairs = sorted(query, key=lambda pair: pair[0])  # stable: a name's values keep their order
    return path + ("?" + urlencode(pairs) if pairs else "")


def definition(raw_get: RawGet) -> DatasetDefinition:
    """The `mirror_any` dataset of a kind whose client GETs paths with `raw_get`."""

    def fetch(client: Any, key: str, ctx: FetchContext) -> JSONValue:
        body, headers = raw_get(client, key)
        return {"body": body, "headers": dict(headers)}

    return DatasetDefinition(
        name=NAME,
        key_format=ANY_PATH,
        default_ttl_seconds=DEFAULT_TTL_SECONDS,
        fetch=fetch,
        description='any GET path of the upstream, for the mirror (`mirror = "any"`)',
        schema=AnyAnswer,
    )
