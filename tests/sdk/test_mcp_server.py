"""``tideflow mcp`` as an MCP client sees it: the real command started over stdio by the MCP SDK's
client, against a real server — read tools answer what the API holds, write tools act, bad input is
a tool error naming it, --read-only offers no write tool, and a read-only API key's refusal reaches
the client as the server's reason."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tideflow.client import SyncClient
from tideflow.schemas.actions import LogCreate
from tideflow.schemas.deployments import DeploymentCreate, DeploymentFlowRunCreate
from tideflow.schemas.events import Event
from tideflow.testing import ServerProcess

pytestmark = pytest.mark.anyio
WRITE_TOOLS = {"run_deployment", "pause_deployment", "resume_deployment", "pause_automation",
               "resume_automation"}  # fmt: skip


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def session(api_url: str, *args: str, key: str | None = None) -> AsyncIterator[ClientSession]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["TIDEFLOW_API_URL"] = api_url
    if key:
        env["TIDEFLOW_API_KEY"] = key
    params = StdioServerParameters(command=sys.executable, args=["-m", "tideflow", "mcp", *args],
                                   env=env)  # fmt: skip
    async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
        await s.initialize()
        yield s


async def call(s: ClientSession, tool: str, **arguments: Any) -> Any:
    result = await s.call_tool(tool, arguments)
    assert not result.is_error, result.content
    if result.structured_content is not None:
        content = result.structured_content
        return content.get("result", content)
    return json.loads(result.content[0].text)


async def error(s: ClientSession, tool: str, **arguments: Any) -> str:
    result = await s.call_tool(tool, arguments)
    assert result.is_error, result.content
    return " ".join(getattr(c, "text", "") for c in result.content)


async def test_read_and_write_tools_against_a_real_server(sdk_server: ServerProcess) -> None:
    tag = uuid.uuid4().hex[:8]
    with SyncClient(sdk_server.api_url) as api:
        body = DeploymentCreate(
            flow_name=f"mcp-flow-{tag}", name=f"nightly-{tag}", parameters={"limit": 3}
        )
        dep = api.create_deployment(body)
        first = api.create_flow_run_from_deployment(dep.id, DeploymentFlowRunCreate())
        api.create_logs([LogCreate(flow_run_id=first.id, name="test", level=20,
                                   message=f"hello from {tag}",
                                   timestamp=dt.datetime.now(dt.UTC))])  # fmt: skip
        event = Event(event=f"mcp.test.{tag}", resource={"tideflow.resource.id": f"mcp.{tag}"})
        api.emit_events([event])
        automation = api.create_automation({
            "name": f"mcp-auto-{tag}",
            "trigger": {"type": "event", "expect": [f"mcp.test.{tag}"], "posture": "Reactive",
                        "threshold": 1},
            "actions": [{"type": "do-nothing"}],
        })  # fmt: skip

    async with session(sdk_server.api_url) as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert {"list_deployments", "get_flow_run", "explain_automation"} | WRITE_TOOLS <= names

        listed = await call(s, "list_deployments", name_contains=tag)
        assert [d["name"] for d in listed] == [f"mcp-flow-{tag}/nightly-{tag}"]
        assert (await call(s, "get_deployment", deployment=dep.id.hex))["parameters"] == {
            "limit": 3
        }

        run = await call(s, "run_deployment", deployment=f"mcp-flow-{tag}/nightly-{tag}",
                         parameters={"limit": 7})  # fmt: skip
        assert run["parameters"] == {"limit": 7} and run["state_type"] == "SCHEDULED"
        runs = await call(s, "list_flow_runs", deployment=f"mcp-flow-{tag}/nightly-{tag}")
        assert {r["id"] for r in runs} == {str(first.id), run["id"]}
        detail = await call(s, "get_flow_run", flow_run_id=str(first.id))
        assert detail["states"] and {st["type"] for st in detail["states"]} == {"SCHEDULED"}
        logs = await call(s, "get_flow_run_logs", flow_run_id=str(first.id))
        assert len(logs) == 1 and logs[0].endswith(f"INFO hello from {tag}")

        paused = await call(s, "pause_deployment", deployment=f"mcp-flow-{tag}/nightly-{tag}")
        assert paused["paused"] is True
        assert (await call(s, "resume_deployment", deployment=str(dep.id)))["paused"] is False

        events = await call(s, "list_events", event_prefix=f"mcp.test.{tag}")
        assert events["total"] == 1 and events["events"][0]["id"] == str(event.id)
        verdict = await call(s, "explain_automation", automation=automation.name,
                             event_id=str(event.id))  # fmt: skip
        assert verdict, verdict
        assert (await call(s, "pause_automation", automation=automation.name))["enabled"] is False

        assert "is not a deployment" in await error(s, "get_deployment", deployment="nope")
        assert "state must be one of" in await error(s, "list_flow_runs", state="bogus")
        assert "limit must be between 1 and 200" in await error(s, "list_deployments", limit=5000)
        assert "is not an id" in await error(s, "get_flow_run", flow_run_id="x")
        missing = await error(s, "get_deployment", deployment="no-such/deployment")
        assert "no-such/deployment" in missing

    with SyncClient(sdk_server.api_url) as api:
        assert api.read_automation(automation.id).enabled is False
        assert len(api.read_flow_runs()) >= 2


async def test_read_only_mode_and_a_read_key(tmp_path: Any) -> None:
    admin = "admin-" + uuid.uuid4().hex
    env = {"TIDEFLOW_SERVER_AUTH": "on", "TIDEFLOW_SERVER_ADMIN_KEY": admin}
    with ServerProcess(home=tmp_path, env=env) as server:
        import httpx

        headers = {"Authorization": f"Bearer {admin}"}
        made = httpx.post(f"{server.api_url}/api-keys/", headers=headers, timeout=30,
                          json={"name": "assistant", "scopes": ["read"]})  # fmt: skip
        assert made.status_code == 201, made.text
        key = made.json()["key"]
        body = {"flow_name": "mcp-secured", "name": "d"}
        assert httpx.post(f"{server.api_url}/deployments/", headers=headers, json=body).is_success

        async with session(server.api_url, "--read-only", key=key) as s:
            names = {t.name for t in (await s.list_tools()).tools}
            assert "list_deployments" in names and not names & WRITE_TOOLS
            assert [d["name"] for d in await call(s, "list_deployments")] == ["mcp-secured/d"]

        async with session(server.api_url, key=key) as s:
            refused = await error(s, "run_deployment", deployment="mcp-secured/d")
            assert "write" in refused, refused  # the server's 403 names the scope it needs
