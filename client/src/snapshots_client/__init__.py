"""The Python client of the snapshots gateway, for integrations that used to call upstreams.

from snapshots_client import SnapshotsClient

with SnapshotsClient() as snapshots:  # SNAPSHOTS_URL, SNAPSHOTS_TOKEN
    users = snapshots.pagerduty_schedule_users("PSCH001")
"""

from snapshots_client.aio import AsyncSnapshotsClient
from snapshots_client.errors import (
    BadRequest,
    ClientConfigError,
    Conflict,
    DatasetDisabled,
    Forbidden,
    NotFound,
    RefreshFailed,
    RefreshTooSoon,
    SnapshotsClientError,
    Unauthorized,
    Unavailable,
)
from snapshots_client.models import (
    EscalationPolicy,
    EscalationRule,
    GitHubAccount,
    GitHubCollaborator,
    GitHubPermissions,
    GitHubRepo,
    JiraIssue,
    JiraIssueFields,
    JiraNamed,
    JiraProject,
    JiraUser,
    PagerDutyReference,
    PagerDutyUser,
)
from snapshots_client.sync import SnapshotsClient
from snapshots_client.wire import (
    Freshness,
    History,
    KeyRefresh,
    RefreshStarted,
    Run,
    Snapshot,
    Version,
)

__all__ = [
    "AsyncSnapshotsClient",
    "BadRequest",
    "ClientConfigError",
    "Conflict",
    "DatasetDisabled",
    "EscalationPolicy",
    "EscalationRule",
    "Forbidden",
    "Freshness",
    "GitHubAccount",
    "GitHubCollaborator",
    "GitHubPermissions",
    "GitHubRepo",
    "History",
    "JiraIssue",
    "JiraIssueFields",
    "JiraNamed",
    "JiraProject",
    "JiraUser",
    "KeyRefresh",
    "NotFound",
    "PagerDutyReference",
    "PagerDutyUser",
    "RefreshFailed",
    "RefreshStarted",
    "RefreshTooSoon",
    "Run",
    "Snapshot",
    "SnapshotsClient",
    "SnapshotsClientError",
    "Unauthorized",
    "Unavailable",
    "Version",
]
