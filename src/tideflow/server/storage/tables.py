"""The table definitions (SQLAlchemy Core). The migrations build the schema (the server creates an
empty database from these, see ``migrate``); tests check both give the same schema."""

from __future__ import annotations

import sqlalchemy as sa

from tideflow.server.storage.types import BigIntId, JSONType, UTCDateTime, UuidType

__all__ = [
    "api_keys",
    "artifacts",
    "asset_dependencies",
    "assets",
    "automation_actions",
    "automation_buckets",
    "automation_checkpoints",
    "automation_firings",
    "automations",
    "browser_sessions",
    "concurrency_limits",
    "concurrency_slots",
    "deployment_schedules",
    "deployments",
    "event_resources",
    "events",
    "flow_run_input",
    "flow_run_states",
    "flow_runs",
    "flows",
    "global_concurrency_leases",
    "global_concurrency_limits",
    "logs",
    "metadata",
    "notification_destinations",
    "runners",
    "secrets",
    "task_runs",
    "users",
    "variables",
    "webhooks",
    "work_pools",
    "work_queues",
    "workers",
]

# Deterministic constraint names, so migrations can refer to them on every backend.
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

flows = sa.Table(
    "flows",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("tags", JSONType, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
)

flow_runs = sa.Table(
    "flow_runs",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("flow_id", UuidType, sa.ForeignKey("flows.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "deployment_id",
        UuidType,
        sa.ForeignKey("deployments.id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("parameters", JSONType, nullable=False),
    sa.Column("tags", JSONType, nullable=False),
    sa.Column("state_id", UuidType, nullable=True),
    sa.Column("state_type", sa.String(20), nullable=True),
    sa.Column("state_name", sa.String(100), nullable=True),
    sa.Column("state_timestamp", UTCDateTime, nullable=True),
    sa.Column("state", JSONType, nullable=True),
    sa.Column("expected_start_time", UTCDateTime, nullable=True),
    sa.Column("next_scheduled_start_time", UTCDateTime, nullable=True),
    sa.Column("start_time", UTCDateTime, nullable=True),
    sa.Column("end_time", UTCDateTime, nullable=True),
    sa.Column("total_run_time", sa.Float, nullable=False),
    sa.Column("run_count", sa.Integer, nullable=False),
    sa.Column("parent_flow_run_id", UuidType, nullable=True),
    sa.Column("parent_task_run_id", UuidType, nullable=True),
    sa.Column("idempotency_key", sa.String(500), nullable=True),
    sa.Column("created_by", JSONType, nullable=True),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    # The runner that claimed the run (its Pending state's details.runner_id), for liveness.
    sa.Column("runner_id", UuidType, nullable=True),
    # The event that made an automation create this run, if any.
    sa.Column("triggering_event_id", UuidType, nullable=True),
    # The work queue a run of a work-pool deployment waits in, and the job variables the run set
    # (migration 0011; no foreign key: added to an existing table, SQLite cannot add one).
    sa.Column("work_queue_id", UuidType, nullable=True),
    sa.Column("job_variables", JSONType, nullable=True),
    sa.UniqueConstraint("flow_id", "idempotency_key"),
    sa.Index(None, "flow_id", "created"),
    sa.Index(None, "deployment_id"),
    sa.Index(None, "state_type"),
    sa.Index(None, "state_name"),
    sa.Index(None, "created"),
    sa.Index(None, "start_time"),
    sa.Index(None, "end_time"),  # metric triggers: runs that ended in a range (migration 0016)
    sa.Index(None, "expected_start_time"),
    sa.Index(None, "next_scheduled_start_time"),
    sa.Index(None, "parent_flow_run_id"),
    sa.Index(None, "deployment_id", "state_type"),
    sa.Index(None, "state_type", "next_scheduled_start_time"),
    sa.Index(None, "runner_id"),
    sa.Index(None, "work_queue_id", "state_type"),
    sa.Index(None, "triggering_event_id"),  # what an event triggered (migration 0018)
)

flow_run_states = sa.Table(
    "flow_run_states",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column(
        "flow_run_id", UuidType, sa.ForeignKey("flow_runs.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("type", sa.String(20), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("timestamp", UTCDateTime, nullable=False),
    sa.Column("details", JSONType, nullable=False),
    sa.Column("data", JSONType, nullable=True),
    sa.Index(None, "flow_run_id", "timestamp"),
)

# A task run, reported by its flow's process in batches (docs/adr/0002): the row holds its current
# state and its whole (short) state history, so a report is one upsert per run.
task_runs = sa.Table(
    "task_runs",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column(
        "flow_run_id", UuidType, sa.ForeignKey("flow_runs.id", ondelete="CASCADE"), nullable=True
    ),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("task_name", sa.String(200), nullable=False),
    sa.Column("tags", JSONType, nullable=False),
    sa.Column("parameters", JSONType, nullable=False),
    sa.Column("task_inputs", JSONType, nullable=False),
    sa.Column("state_type", sa.String(20), nullable=True),
    sa.Column("state_name", sa.String(100), nullable=True),
    sa.Column("state", JSONType, nullable=True),
    sa.Column("history", JSONType, nullable=False),
    sa.Column("run_count", sa.Integer, nullable=False),
    sa.Column("start_time", UTCDateTime, nullable=True),
    sa.Column("end_time", UTCDateTime, nullable=True),
    sa.Column("result_location", sa.String(2000), nullable=True),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    # Background task runs (Task.delay, ADR 0005): the task worker holding the claim, when it last
    # said it still runs it, and how many times the run was handed to a worker.
    sa.Column("worker_id", UuidType, nullable=True),
    sa.Column("worker_heartbeat", UTCDateTime, nullable=True),
    sa.Column("deliveries", sa.Integer, nullable=False, server_default="0"),
    sa.Index(None, "flow_run_id", "created"),
    sa.Index(None, "state_type"),
    sa.Index(None, "task_name"),
    sa.Index(None, "created"),
    sa.Index(None, "worker_id"),
)

# Tag-based task concurrency: a tag's limit, and the slots task runs hold as leases (a holder that
# dies without releasing frees its slot when the lease expires).
concurrency_limits = sa.Table(
    "concurrency_limits",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column("tag", sa.String(200), nullable=False, unique=True),
    sa.Column("concurrency_limit", sa.Integer, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
)

concurrency_slots = sa.Table(
    "concurrency_slots",
    metadata,
    sa.Column(
        "limit_id",
        UuidType,
        sa.ForeignKey("concurrency_limits.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("holder", UuidType, primary_key=True),
    sa.Column("expires", UTCDateTime, nullable=False),
    sa.Index(None, "holder"),
)

logs = sa.Table(
    "logs",
    metadata,
    sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
    # NULL for a background task run's record (migration 0010b)
    sa.Column(
        "flow_run_id", UuidType, sa.ForeignKey("flow_runs.id", ondelete="CASCADE"), nullable=True
    ),
    sa.Column("task_run_id", UuidType, nullable=True),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("timestamp", UTCDateTime, nullable=False),
    sa.Index(None, "flow_run_id", "timestamp"),
    sa.Index(None, "timestamp"),
    sa.Index(None, "task_run_id"),
)

# --- deployments (migration 0002) -----------------------------------------------------------------

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("flow_id", UuidType, sa.ForeignKey("flows.id", ondelete="CASCADE"), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("version", sa.String(200), nullable=True),
    sa.Column("tags", JSONType, nullable=False),
    sa.Column("parameters", JSONType, nullable=False),
    sa.Column("parameter_openapi_schema", JSONType, nullable=False),
    sa.Column("enforce_parameter_schema", sa.Boolean, nullable=False),
    sa.Column("paused", sa.Boolean, nullable=False),
    sa.Column("concurrency_limit", sa.Integer, nullable=True),
    sa.Column("triggers", JSONType, nullable=False),
    sa.Column("job_variables", JSONType, nullable=False),
    sa.Column("entrypoint", sa.Text, nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("last_polled", UTCDateTime, nullable=True),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    # migration 0011: the work queue (of a work pool) its runs go to; None: served by serve()
    sa.Column("work_queue_id", UuidType, nullable=True),
    sa.Column("pull_steps", JSONType, nullable=True),
    # migration 0017: {"collision_strategy": "ENQUEUE" | "CANCEL_NEW"}; NULL: ENQUEUE
    sa.Column("concurrency_options", JSONType, nullable=True),
    sa.UniqueConstraint("flow_id", "name"),
    sa.Index(None, "name"),
)

deployment_schedules = sa.Table(
    "deployment_schedules",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column(
        "deployment_id",
        UuidType,
        sa.ForeignKey("deployments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("schedule", JSONType, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.Index(None, "deployment_id"),
)

runners = sa.Table(
    "runners",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("deployment_ids", JSONType, nullable=False),
    sa.Column("limit", sa.Integer, nullable=True),
    sa.Column("last_heartbeat", UTCDateTime, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Index(None, "last_heartbeat"),
)

# --- events (migration 0003) -----------------------------------------------------------------------

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column("occurred", UTCDateTime, nullable=False),
    sa.Column("event", sa.String(1024), nullable=False),
    sa.Column("resource_id", sa.String(1024), nullable=False),
    sa.Column("resource", JSONType, nullable=False),
    sa.Column("related", JSONType, nullable=False),
    sa.Column("payload", JSONType, nullable=False),
    sa.Column("follows", UuidType, nullable=True),
    sa.Column("received", UTCDateTime, nullable=False),
    sa.Index(None, "occurred", "id"),
    sa.Index(None, "event", "occurred"),
    sa.Index(None, "resource_id", "occurred"),
    sa.Index(None, "received"),
)

# One row per related resource of an event, positions 1.. in its ``related`` order (migration 0012:
# the primary resource is not repeated here; ``events.resource_id`` is indexed already).
event_resources = sa.Table(
    "event_resources",
    metadata,
    sa.Column(
        "event_id",
        UuidType,
        sa.ForeignKey("events.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("resource_id", sa.String(1024), nullable=False),
    sa.Column("role", sa.String(1024), nullable=False),
    sa.Column("occurred", UTCDateTime, nullable=False),
    # Migration 0005: a related-id page is read in (occurred, event_id) order from this index.
    sa.Index(None, "resource_id", "occurred", "event_id", "position"),
    sa.Index(None, "role", "resource_id"),
)

# --- automations (migration 0004) -----------------------------------------------------------------

automations = sa.Table(
    "automations",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("trigger", JSONType, nullable=False),
    sa.Column("actions", JSONType, nullable=False),
    sa.Column("actions_on_trigger", JSONType, nullable=False),
    sa.Column("actions_on_resolve", JSONType, nullable=False),
    # The resource owning it (a deployment) and its identity there; NULLs never collide.
    sa.Column("owner_resource", sa.String(300), nullable=True),
    sa.Column("owner_key", sa.String(300), nullable=True),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.UniqueConstraint("owner_resource", "owner_key"),
    sa.Index(None, "name"),
)

automation_buckets = sa.Table(
    "automation_buckets",
    metadata,
    sa.Column(
        "automation_id",
        UuidType,
        sa.ForeignKey("automations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("trigger_id", UuidType, primary_key=True),
    sa.Column("bucket_key", sa.String(2000), primary_key=True),
    sa.Column("state", JSONType, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
)

automation_firings = sa.Table(
    "automation_firings",
    metadata,
    sa.Column(
        "automation_id",
        UuidType,
        sa.ForeignKey("automations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("id", UuidType, primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("trigger_id", UuidType, nullable=False),
    sa.Column("bucket_key", sa.String(2000), nullable=False),
    sa.Column("occurred", UTCDateTime, nullable=False),
    sa.Column("fired_at", UTCDateTime, nullable=False),
    sa.Column("triggering_event_id", UuidType, nullable=True),
    sa.Column("event_ids", JSONType, nullable=False),
    sa.Column("labels", JSONType, nullable=False),
    sa.Column("firing", JSONType, nullable=False),
    sa.Index(None, "automation_id", "fired_at"),
)

automation_actions = sa.Table(
    "automation_actions",
    metadata,
    sa.Column(
        "automation_id",
        UuidType,
        sa.ForeignKey("automations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("firing_id", UuidType, primary_key=True),
    sa.Column("action_index", sa.Integer, primary_key=True),
    sa.Column("action_type", sa.String(40), nullable=False),
    sa.Column("action", JSONType, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("flow_run_id", UuidType, nullable=True),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.Index(None, "status"),
)

automation_checkpoints = sa.Table(
    "automation_checkpoints",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("received", UTCDateTime, nullable=False),
    sa.Column("event_id", UuidType, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
)

# API keys (ADR 0006): ``key_id`` is the non-secret part of the key, so a request costs one lookup and
# one argon2 verification; only the argon2 hash of the whole key is stored.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column("key_id", sa.String(40), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("key_hash", sa.String(400), nullable=False),
    sa.Column("scopes", JSONType, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("revoked", UTCDateTime, nullable=True),
)

# UI users (ADR 0007): a name and the argon2 hash of a password, with scopes like an API key.
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(400), nullable=False),
    sa.Column("scopes", JSONType, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("password_changed", UTCDateTime, nullable=False),
)

# UI logins (ADR 0007): ``id`` is a hash of the cookie's token, never the token. The session acts
# as its principal (an API key by key id, a user by id, or the TIDEFLOW_SERVER_ADMIN_KEY by a hash of
# it), whose row is checked on use: revoking the key or deleting the user ends its sessions.
browser_sessions = sa.Table(
    "browser_sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("principal_kind", sa.String(20), nullable=False),
    sa.Column("principal_id", sa.String(80), nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("expires", UTCDateTime, nullable=False),
    sa.Index(None, "principal_kind", "principal_id"),
    sa.Index(None, "expires"),
)

# --- work pools (migration 0011) -------------------------------------------------------------------

work_pools = sa.Table(
    "work_pools",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("base_job_template", JSONType, nullable=False),
    sa.Column("concurrency_limit", sa.Integer, nullable=True),
    sa.Column("is_paused", sa.Boolean, nullable=False),
    sa.Column("default_queue_id", UuidType, nullable=True),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
)

work_queues = sa.Table(
    "work_queues",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column(
        "work_pool_id", UuidType, sa.ForeignKey("work_pools.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("concurrency_limit", sa.Integer, nullable=True),
    sa.Column("is_paused", sa.Boolean, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.UniqueConstraint("work_pool_id", "name"),
)

workers = sa.Table(
    "workers",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column(
        "work_pool_id", UuidType, sa.ForeignKey("work_pools.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("last_heartbeat", UTCDateTime, nullable=False),
    sa.Column("online", sa.Boolean, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Index(None, "work_pool_id"),
)

# Variables (issue 12): named JSON values; the value is NULL for JSON null.
variables = sa.Table(
    "variables",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("value", JSONType, nullable=True),
    sa.Column("tags", JSONType, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
)

# Secrets (issue 12): only the Fernet token of the value is stored (server/secret_box.py).
secrets = sa.Table(
    "secrets",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("token", sa.Text, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
)

# Artifacts (issue 12). No foreign keys to runs: a task run is reported in batches and may reach the
# server after the artifacts it created.
artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column("key", sa.String(255), nullable=True),
    sa.Column("type", sa.String(20), nullable=False),
    sa.Column("data", JSONType, nullable=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("flow_run_id", UuidType, nullable=True),
    sa.Column("task_run_id", UuidType, nullable=True),
    sa.Column("is_latest", sa.Boolean, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.Index(None, "key", "created"),
    sa.Index(None, "flow_run_id"),
    sa.Index(None, "task_run_id"),
    sa.Index(None, "created"),
)

# Global concurrency and rate limits (issue 12). A lease (one id, a row per limit it holds) expires
# unless renewed, so a dead holder's slots come back; rate slots drain at slot_decay_per_second
# from ``rate_slots`` as of ``rate_updated``.
global_concurrency_limits = sa.Table(
    "global_concurrency_limits",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("limit", sa.Integer, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("slot_decay_per_second", sa.Float, nullable=False),
    sa.Column("rate_slots", sa.Float, nullable=False),
    sa.Column("rate_updated", UTCDateTime, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
)

global_concurrency_leases = sa.Table(
    "global_concurrency_leases",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column(
        "limit_id",
        UuidType,
        sa.ForeignKey("global_concurrency_limits.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("slots", sa.Integer, nullable=False),
    sa.Column("expires", UTCDateTime, nullable=False),
    sa.Index(None, "limit_id", "expires"),
)

# Assets (issue 21): the catalogue kept from materialization events as they are stored (see
# storage/assets.py); ``last_*`` describe the newest materialization by event time. No foreign
# keys to runs: a flow run may be deleted while its assets stay.
assets = sa.Table(
    "assets",
    metadata,
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("properties", JSONType, nullable=True),
    sa.Column("last_materialized", UTCDateTime, nullable=True),
    sa.Column("last_status", sa.String(20), nullable=True),
    sa.Column("last_event_id", UuidType, nullable=True),
    sa.Column("last_flow_run_id", UuidType, nullable=True),
    sa.Column("last_task_run_id", UuidType, nullable=True),
    sa.Column("last_metadata", JSONType, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("materializations", sa.Integer, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.Index(None, "last_flow_run_id"),
    sa.Index(None, "last_materialized"),
)

# One row per edge ``upstream`` -> ``downstream`` seen in a materialization.
asset_dependencies = sa.Table(
    "asset_dependencies",
    metadata,
    sa.Column("upstream", sa.String(512), primary_key=True),
    sa.Column("downstream", sa.String(512), primary_key=True),
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.Index(None, "downstream"),
)

# Inbound webhooks (issue 16): ``/api/hooks/{slug}`` turns a request into an event with ``template``
# (JSON: an object of templates or one template string). Only the Fernet token of the secret is
# stored (server/secret_box.py).
webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("slug", sa.String(64), nullable=False, unique=True),
    sa.Column("template", JSONType, nullable=False),
    sa.Column("verification", sa.String(20), nullable=False),
    sa.Column("signature_header", sa.String(200), nullable=True),
    sa.Column("secret_token", sa.Text, nullable=True),
    sa.Column("max_body_bytes", sa.Integer, nullable=False),
    sa.Column("rate_limit", sa.Integer, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
)

# Inputs sent to a flow run (issue 21): ``send_input`` values, a resume's ``run_input`` and the JSON
# schema a pause waits for, by key; ``acked`` is when a ``receive_input(with_ack=True)`` took it.
flow_run_input = sa.Table(
    "flow_run_input",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column(
        "flow_run_id", UuidType, sa.ForeignKey("flow_runs.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("value", JSONType, nullable=True),
    sa.Column("sender", sa.String(200), nullable=True),
    sa.Column("acked", UTCDateTime, nullable=True),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.UniqueConstraint("flow_run_id", "key"),
    sa.Index(None, "flow_run_id", "created"),
)

# Notification destinations (issue 12): a typed configuration that names secrets, never holds them.
notification_destinations = sa.Table(
    "notification_destinations",
    metadata,
    sa.Column("id", UuidType, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("type", sa.String(20), nullable=False),
    sa.Column("config", JSONType, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
)
