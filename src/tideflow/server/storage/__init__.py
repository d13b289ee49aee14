"""Storage: the tables, the Database object (engine, sessions, write discipline), one query module
per resource (``flows``, ``flow_runs``, ``logs``) and the Alembic migrations (``migrate``)."""

from tideflow.server.storage.database import Database, mask_url, parse_database_url
from tideflow.server.storage.errors import Conflict, NotFound, StorageError

__all__ = ["Conflict", "Database", "NotFound", "StorageError", "mask_url", "parse_database_url"]
