"""snapshots: a gateway that serves fresh, budgeted, versioned snapshots of external API data."""

__version__ = "0.1.0"
