"""Views for the single-object datasets: escalation policy targets, repositories, projects.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAGERDUTY_ESCALATION_TARGETS = """
CREATE VIEW pagerduty_escalation_targets AS
SELECT v.key AS policy_id, v.payload->>'name' AS policy_name,
       r.ordinality AS level, (r.rule->>'escalation_delay_in_minutes')::int AS delay_minutes,
       t->>'id' AS target_id, t->>'type' AS target_type, t->>'summary' AS target_name,
       v.version, v.valid_from, v.valid_until, v.fetched_at, v.verified_at
FROM snapshot_versions v,
     jsonb_array_elements(v.payload->'escalation_rules') WITH ORDINALITY AS r(rule, ordinality),
     jsonb_array_elements(r.rule->'targets') AS t
WHERE v.dataset = 'pagerduty.escalation_policy' AND jsonb_typeof(v.payload->'escalation_rules') = 'array'
"""

GITHUB_REPOS = """
CREATE VIEW github_repos AS
SELECT v.key AS repo, v.payload->>'default_branch' AS default_branch,
       v.payload->>'visibility' AS visibility,
       (v.payload->>'archived')::boolean AS archived,
       (v.payload->>'open_issues_count')::int AS open_issues,
       v.payload->>'pushed_at' AS pushed_at,
       v.version, v.valid_from, v.valid_until, v.fetched_at, v.verified_at
FROM snapshot_versions v
WHERE v.dataset = 'github.repo'
"""

JIRA_PROJECTS = """
CREATE VIEW jira_projects AS
SELECT v.key AS project, v.payload->>'name' AS name,
       v.payload->'lead'->>'displayName' AS lead,
       v.payload->>'projectTypeKey' AS project_type,
       v.version, v.valid_from, v.valid_until, v.fetched_at, v.verified_at
FROM snapshot_versions v
WHERE v.dataset = 'jira.project'
"""

VIEWS = (
    ("pagerduty_escalation_targets", PAGERDUTY_ESCALATION_TARGETS),
    ("github_repos", GITHUB_REPOS),
    ("jira_projects", JIRA_PROJECTS),
)


def upgrade() -> None:
    for _, sql in VIEWS:
        op.execute(sql)


def downgrade() -> None:
    for name, _ in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
