"""Provider instances: each dataset records its provider kind and its definition's name, and the
per-kind analyst views cover every instance of the kind (a `provider` column says which).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# view name -> (kind, definition): the earlier views filtered on the dataset name of the
# instance named like the kind; these filter on the kind and keep the earlier columns first.
KINDS = {
    "pagerduty_schedule_users": ("pagerduty", "schedule_users"),
    "github_repo_collaborators": ("github", "repo_collaborators"),
    "jira_project_issues": ("jira", "project_issues"),
    "pagerduty_escalation_targets": ("pagerduty", "escalation_policy"),
    "github_repos": ("github", "repo"),
    "jira_projects": ("jira", "project"),
}


def _earlier() -> dict[str, str]:
    """The views' SQL as revisions 0003 and 0004 created them."""
    sql: dict[str, str] = {}
    for module in ("0003_analyst_views", "0004_object_dataset_views"):
        spec = importlib.util.spec_from_file_location(
            module, Path(__file__).with_name(f"{module}.py")
        )
        assert spec is not None
        assert spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        sql.update(dict(loaded.VIEWS))
    return sql


def _by_kind(name: str, sql: str) -> str:
    kind, definition = KINDS[name]
    old_filter = f"v.dataset = '{kind}.{definition}'"
    assert old_filter in sql, name
    select_end = sql.index("\nFROM snapshot_versions v")
    columns = sql[:select_end] + ",\n       d.provider"
    rest = sql[select_end:].replace(
        "\nFROM snapshot_versions v",
        "\nFROM snapshot_versions v JOIN datasets d ON d.name = v.dataset",
        1,
    )
    rest = rest.replace(old_filter, f"d.kind = '{kind}' AND d.definition = '{definition}'")
    return (columns + rest).replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1)


def upgrade() -> None:
    op.add_column("datasets", sa.Column("kind", sa.Text()))
    op.add_column("datasets", sa.Column("definition", sa.Text()))
    # Datasets recorded before instances existed: the instance was named like its kind.
    op.execute(
        "UPDATE datasets SET kind = provider, definition = split_part(name, '.', 2)"
        " WHERE provider IN ('pagerduty', 'github', 'jira')"
    )
    earlier = _earlier()
    for name in KINDS:
        op.execute(_by_kind(name, earlier[name]))


def downgrade() -> None:
    earlier = _earlier()
    for name in KINDS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
        op.execute(earlier[name])
    op.drop_column("datasets", "definition")
    op.drop_column("datasets", "kind")
