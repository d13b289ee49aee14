"""Running several API replicas on one PostgreSQL (ADR 0014): leader leases for the singleton
services, LISTEN/NOTIFY fan-out of committed changes, and the one-server rule for SQLite files."""

from tideflow.server.replicas.fanout import PgFanout
from tideflow.server.replicas.lease import Lease, LeasedService, asyncpg_dsn
from tideflow.server.replicas.sqlite_lock import SqliteServerLock

__all__ = ["Lease", "LeasedService", "PgFanout", "SqliteServerLock", "asyncpg_dsn"]
