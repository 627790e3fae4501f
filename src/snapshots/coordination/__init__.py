"""Several processes on one PostgreSQL: leader election of the active worker, refresh requests
from API replicas, and change notifications that keep every replica's hot path current."""
