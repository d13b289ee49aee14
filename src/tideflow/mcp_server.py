"""``tideflow mcp``: a Model Context Protocol server over stdio that lets an assistant read
deployments, runs, logs, events and automations (with "explain"), and — unless started read-only —
run, pause and resume deployments and automations. It talks to the API as the CLI does
(``TIDEFLOW_API_URL``, ``TIDEFLOW_API_KEY``), so the key's scopes bound what it can do: a write tool
called with a read-only key answers the server's refusal. Needs the ``mcp`` extra."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from tideflow.client import AsyncClient
    from tideflow.schemas import FlowRun
    from tideflow.schemas.automations import Automation
    from tideflow.schemas.deployments import Deployment

__all__ = ["MAX_ITEMS", "build_server", "run_stdio"]

MAX_ITEMS = 200  # per list answer: what an assistant's context can use, and bounded work
_LOG_LINES = 500


def _error(message: str) -> Exception:
    from mcp.server.mcpserver.exceptions import ToolError

    return ToolError(message)


def _limit(value: int) -> int:
    if value < 1 or value > MAX_ITEMS:
        raise _error(f"limit must be between 1 and {MAX_ITEMS}, got {value}")
    return value


async def _call(coro: Any) -> Any:
    """Await an API call; a refusal or a missing object becomes a tool error with the reason."""
    from tideflow.exceptions import TideflowError

    try:
        return await coro
    except TideflowError as exc:
        raise _error(str(exc)) from None


async def _deployment(client: AsyncClient, ref: str) -> Deployment:
    try:
        return await _call(client.read_deployment(UUID(ref)))
    except ValueError:
        pass
    if ref.count("/") != 1:
        raise _error(f"{ref!r} is not a deployment: give 'flow-name/deployment-name' or an id")
    return await _call(client.read_deployment_by_name(ref))


async def _automation(client: AsyncClient, ref: str) -> Automation:
    try:
        return await _call(client.read_automation(UUID(ref)))
    except ValueError:
        return await _call(client.read_automation_by_name(ref))


def _uuid(value: str, what: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise _error(f"{what} {value!r} is not an id") from None


def _run_summary(run: FlowRun) -> dict[str, Any]:
    state = run.state
    return {
        "id": str(run.id),
        "name": run.name,
        "flow_id": str(run.flow_id),
        "deployment_id": str(run.deployment_id) if run.deployment_id else None,
        "state": state.name if state else None,
        "state_type": state.type.value if state else None,
        "message": state.message if state else None,
        "created": run.created.isoformat() if run.created else None,
        "start_time": run.start_time.isoformat() if run.start_time else None,
        "end_time": run.end_time.isoformat() if run.end_time else None,
        "parameters": run.parameters,
        "tags": run.tags,
    }


def _deployment_summary(d: Deployment) -> dict[str, Any]:
    return {
        "id": str(d.id),
        "name": d.full_name,
        "paused": d.paused,
        "status": d.status.value if d.status else None,
        "parameters": d.parameters,
        "tags": d.tags,
        "work_pool": d.work_pool_name,
        "schedules": [s.model_dump(mode="json")["schedule"] for s in d.schedules],
        "description": d.description,
    }


def build_server(*, read_only: bool = False) -> MCPServer:
    """The MCP server with tideflow's tools; write tools only when not ``read_only``."""
    from mcp.server.mcpserver import MCPServer

    from tideflow import __version__
    from tideflow.client import get_async_client
    from tideflow.schemas import FlowRunFilter, LogFilter
    from tideflow.schemas.deployments import DeploymentFilter, DeploymentFlowRunCreate
    from tideflow.schemas.events import EventFilter

    server: MCPServer = MCPServer(
        name="tideflow",
        version=__version__,
        instructions=(
            "Read and operate a tideflow workflow server: deployments (named flow/deployment), "
            "flow runs with their states and logs, events, and automations with 'explain' (why an "
            "automation fired or not on an event)."
        ),
    )

    @server.tool()
    async def list_deployments(name_contains: str | None = None, limit: int = 50) -> list[dict]:
        """Deployments, by name; optionally only those whose name contains a text."""
        flt = DeploymentFilter(name_like=name_contains or None, limit=_limit(limit))
        async with get_async_client() as client:
            found = await _call(client.read_deployments(flt))
        return [_deployment_summary(d) for d in found]

    @server.tool()
    async def get_deployment(deployment: str) -> dict:
        """One deployment by 'flow-name/deployment-name' or id, with its schedules and defaults."""
        async with get_async_client() as client:
            return _deployment_summary(await _deployment(client, deployment))

    @server.tool()
    async def list_flow_runs(
        deployment: str | None = None,
        state: str | None = None,
        flow_name: str | None = None,
        limit: int = 20,
    ) -> list[dict]:
        """Flow runs, newest first; filter by deployment (name or id), state type (e.g. FAILED,
        COMPLETED, RUNNING) or flow name."""
        from tideflow.schemas import StateType

        async with get_async_client() as client:
            kwargs: dict[str, Any] = {"limit": _limit(limit)}
            if deployment:
                kwargs["deployment_id"] = [(await _deployment(client, deployment)).id]
            if state:
                try:
                    kwargs["state_type"] = [StateType(state.upper())]
                except ValueError:
                    names = ", ".join(t.value for t in StateType)
                    raise _error(f"state must be one of {names}, got {state!r}") from None
            if flow_name:
                kwargs["flow_name"] = [flow_name]
            runs = await _call(client.read_flow_runs(FlowRunFilter(**kwargs)))
        return [_run_summary(r) for r in runs]

    @server.tool()
    async def get_flow_run(flow_run_id: str) -> dict:
        """One flow run with its whole state history (oldest first)."""
        run_id = _uuid(flow_run_id, "flow run")
        async with get_async_client() as client:
            run = await _call(client.read_flow_run(run_id))
            states = await _call(client.read_flow_run_states(run_id))
        summary = _run_summary(run)
        summary["states"] = [
            {"name": s.name, "type": s.type.value, "timestamp": s.timestamp.isoformat(),
             "message": s.message}
            for s in states
        ]  # fmt: skip
        return summary

    @server.tool()
    async def get_flow_run_logs(flow_run_id: str, limit: int = 200) -> list[str]:
        """A flow run's log lines, oldest first: 'time LEVEL message'."""
        import logging

        run_id = _uuid(flow_run_id, "flow run")
        if limit < 1 or limit > _LOG_LINES:
            raise _error(f"limit must be between 1 and {_LOG_LINES}, got {limit}")
        async with get_async_client() as client:
            logs = await _call(client.read_logs(LogFilter(flow_run_id=[run_id], limit=limit)))
        return [
            f"{log.timestamp.isoformat()} {logging.getLevelName(log.level)} {log.message}"
            for log in logs
        ]

    @server.tool()
    async def list_events(
        event_prefix: str | None = None,
        resource_id: str | None = None,
        since_minutes: int = 60,
        limit: int = 50,
    ) -> dict:
        """Stored events, newest first: optionally by name prefix (e.g. 'tideflow.flow-run.') and
        resource id, within the last N minutes (at most a week)."""
        if since_minutes < 1 or since_minutes > 7 * 24 * 60:
            raise _error(f"since_minutes must be between 1 and {7 * 24 * 60}, got {since_minutes}")
        flt = EventFilter(
            occurred_after=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=since_minutes),
            event_prefixes=[event_prefix] if event_prefix else None,
            resource_ids=[resource_id] if resource_id else None,
            limit=_limit(limit),
        )
        async with get_async_client() as client:
            page = await _call(client.read_events(flt))
        return {
            "total": page.total,
            "events": [e.model_dump(mode="json", exclude={"received"}) for e in page.events],
        }

    @server.tool()
    async def list_automations(limit: int = 100) -> list[dict]:
        """Automations: name, id, enabled, trigger and actions."""
        from tideflow.schemas.automations import AutomationFilter

        async with get_async_client() as client:
            found = await _call(client.read_automations(AutomationFilter(limit=_limit(limit))))
        return [
            {"id": str(a.id), "name": a.name, "enabled": a.enabled,
             "trigger": a.trigger.model_dump(mode="json"),
             "actions": [x.model_dump(mode="json") for x in a.actions]}
            for a in found
        ]  # fmt: skip

    @server.tool()
    async def explain_automation(automation: str, event_id: str) -> dict:
        """Why an automation (name or id) fired or did not fire on a stored event: each condition
        of its trigger, the values compared, and the verdict."""
        event = _uuid(event_id, "event")
        async with get_async_client() as client:
            found = await _automation(client, automation)
            return await _call(client.explain_automation(found.id, event))

    if read_only:
        return server

    @server.tool()
    async def run_deployment(deployment: str, parameters: dict | None = None) -> dict:
        """Start a run of a deployment now, with parameters over its defaults; answers the run."""
        async with get_async_client() as client:
            found = await _deployment(client, deployment)
            body = DeploymentFlowRunCreate(parameters=parameters or {})
            run = await _call(client.create_flow_run_from_deployment(found.id, body))
        return _run_summary(run)

    @server.tool()
    async def pause_deployment(deployment: str) -> dict:
        """Pause a deployment: its schedules and triggers create no runs until resumed."""
        async with get_async_client() as client:
            found = await _deployment(client, deployment)
            await _call(client.pause_deployment(found.id))
            return _deployment_summary(await _call(client.read_deployment(found.id)))

    @server.tool()
    async def resume_deployment(deployment: str) -> dict:
        """Resume a paused deployment."""
        async with get_async_client() as client:
            found = await _deployment(client, deployment)
            await _call(client.resume_deployment(found.id))
            return _deployment_summary(await _call(client.read_deployment(found.id)))

    @server.tool()
    async def pause_automation(automation: str) -> dict:
        """Disable an automation (name or id): it evaluates no events until resumed."""
        async with get_async_client() as client:
            found = await _automation(client, automation)
            await _call(client.pause_automation(found.id))
        return {"id": str(found.id), "name": found.name, "enabled": False}

    @server.tool()
    async def resume_automation(automation: str) -> dict:
        """Enable an automation again."""
        async with get_async_client() as client:
            found = await _automation(client, automation)
            await _call(client.resume_automation(found.id))
        return {"id": str(found.id), "name": found.name, "enabled": True}

    return server


def run_stdio(*, read_only: bool = False) -> None:
    """Serve the tools over stdin/stdout until the client closes them."""
    build_server(read_only=read_only).run("stdio")
