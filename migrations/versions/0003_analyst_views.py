"""Analyst views: versions with validity ranges, latest snapshots, and per-dataset item rows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A version is what the upstream said from its fetched_at (first seen) until the next
# version's fetched_at (valid_until, NULL while it is the latest); verified_at is the last
# time a fetch confirmed it.
SNAPSHOT_VERSIONS = """
CREATE VIEW snapshot_versions AS
SELECT s.id, s.dataset, s.key, s.version, s.content_hash, s.item_count,
       s.fetched_at AS valid_from,
       lead(s.fetched_at) OVER (PARTITION BY s.dataset, s.key ORDER BY s.version) AS valid_until,
       s.fetched_at, s.verified_at, s.payload
FROM snapshots s
"""

LATEST_SNAPSHOTS = """
CREATE VIEW latest_snapshots AS
SELECT k.dataset, k.key, k.source, s.version, s.content_hash, s.item_count,
       s.fetched_at, s.verified_at,
       now() - s.verified_at AS age,
       d.ttl_seconds,
       (s.id IS NULL OR extract(epoch FROM now() - s.verified_at) > d.ttl_seconds) AS stale,
       k.next_refresh_at, k.last_refresh_at, k.last_outcome, k.last_error, s.payload
FROM dataset_keys k
JOIN datasets d ON d.name = k.dataset
LEFT JOIN snapshots s ON s.id = k.latest_snapshot_id
"""

PAGERDUTY_SCHEDULE_USERS = """
CREATE VIEW pagerduty_schedule_users AS
SELECT v.key AS schedule_id, u->>'id' AS user_id, u->>'name' AS name, u->>'email' AS email,
       v.version, v.valid_from, v.valid_until, v.fetched_at, v.verified_at
FROM snapshot_versions v, jsonb_array_elements(v.payload) AS u
WHERE v.dataset = 'pagerduty.schedule_users' AND jsonb_typeof(v.payload) = 'array'
"""

GITHUB_REPO_COLLABORATORS = """
CREATE VIEW github_repo_collaborators AS
SELECT v.key AS repo, c->>'login' AS login, (c->>'id')::bigint AS user_id, c->>'role_name' AS role,
       coalesce((c->'permissions'->>'admin')::boolean, false) AS admin,
       coalesce((c->'permissions'->>'maintain')::boolean, false) AS maintain,
       coalesce((c->'permissions'->>'push')::boolean, false) AS push,
       coalesce((c->'permissions'->>'triage')::boolean, false) AS triage,
       coalesce((c->'permissions'->>'pull')::boolean, false) AS pull,
       v.version, v.valid_from, v.valid_until, v.fetched_at, v.verified_at
FROM snapshot_versions v, jsonb_array_elements(v.payload) AS c
WHERE v.dataset = 'github.repo_collaborators' AND jsonb_typeof(v.payload) = 'array'
"""

JIRA_PROJECT_ISSUES = """
CREATE VIEW jira_project_issues AS
SELECT v.key AS project, i->>'key' AS issue_key, i->'fields'->>'summary' AS summary,
       i->'fields'->'status'->>'name' AS status,
       i->'fields'->'assignee'->>'displayName' AS assignee,
       i->'fields'->>'updated' AS updated,
       v.version, v.valid_from, v.valid_until, v.fetched_at, v.verified_at
FROM snapshot_versions v, jsonb_array_elements(v.payload) AS i
WHERE v.dataset = 'jira.project_issues' AND jsonb_typeof(v.payload) = 'array'
"""

VIEWS = (
    ("snapshot_versions", SNAPSHOT_VERSIONS),
    ("latest_snapshots", LATEST_SNAPSHOTS),
    ("pagerduty_schedule_users", PAGERDUTY_SCHEDULE_USERS),
    ("github_repo_collaborators", GITHUB_REPO_COLLABORATORS),
    ("jira_project_issues", JIRA_PROJECT_ISSUES),
)


def upgrade() -> None:
    for _, sql in VIEWS:
        op.execute(sql)
    # Retention prunes refresh runs by age (versions are reached by their unique index).
    op.create_index("refresh_runs_finished_at_idx", "refresh_runs", ["finished_at"])


def downgrade() -> None:
    op.drop_index("refresh_runs_finished_at_idx", "refresh_runs")
    for name, _ in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
