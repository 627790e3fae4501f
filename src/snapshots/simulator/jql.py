"""The sliver of JQL the simulator understands: one project, an optional status filter, an order.

    project = KEY [AND status = "Name" | AND status != "Name"] [ORDER BY field [ASC|DESC]]

The status clause may be in parentheses, as the project_issues dataset writes its `jql` filter.

Keywords are case-insensitive and values may be quoted; anything else is a JQL error (Jira's 400).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ORDER_FIELDS = ("key", "id", "created", "updated")
_VALUE = r"""(?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)"""
_QUERY = re.compile(
    rf"""^\s*project\s*=\s*(?P<project>{_VALUE})
    (?:\s+AND\s+(?P<paren>\(\s*)?status\s*(?P<op>!=|=)\s*(?P<status>{_VALUE})(?(paren)\s*\)))?
    (?:\s+ORDER\s+BY\s+(?P<order>\w+)(?:\s+(?P<direction>ASC|DESC))?)?\s*$""",
    re.IGNORECASE | re.VERBOSE,
)


class JqlError(ValueError):
    """A query the simulator cannot parse; the message is what Jira's 400 carries."""


@dataclass(frozen=True)
class Jql:
    project: str
    status: str | None = None
    negate_status: bool = False
    order_by: str = "key"
    descending: bool = False


def _unquote(value: str) -> str:
    return value[1:-1] if value[:1] in "\"'" and value[-1:] == value[:1] else value


def parse(jql: str) -> Jql:
    match = _QUERY.match(jql)
    if match is None:
        raise JqlError(
            f"Error in the JQL Query: the simulator understands only "
            f"'project = KEY [AND status = \"Name\"] [ORDER BY field [ASC|DESC]]', not {jql!r}."
        )
    order = (match["order"] or "key").lower()
    if order not in ORDER_FIELDS:
        raise JqlError(f"Not able to sort using field '{match['order']}'.")
    status = match["status"]
    return Jql(
        project=_unquote(match["project"]),
        status=_unquote(status) if status is not None else None,
        negate_status=match["op"] == "!=",
        order_by=order,
        descending=(match["direction"] or "ASC").upper() == "DESC",
    )
