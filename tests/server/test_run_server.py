"""run_server and ServerProcess: real uvicorn processes, readable startup failures, shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tideflow.client import AsyncClient, SyncClient
from tideflow.exceptions import TideflowError
from tideflow.schemas import FlowRunCreate, LogCreate, LogFilter, StateType
from tideflow.schemas.states import Pending, Running, Scheduled
from tideflow.server.run import bind_socket, run_server
from tideflow.settings import get_settings
from tideflow.testing import ServerProcess, free_port


def test_port_in_use_is_a_readable_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(TideflowError, match=f"port {port} on 127.0.0.1 is already in use"):
            run_server(get_settings(), host="127.0.0.1", port=port,
                       database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")  # fmt: skip
    assert not (tmp_path / "x.db").exists()


def test_bind_socket_listens_on_ipv4_and_reports_bad_hosts() -> None:
    port = free_port()
    sock = bind_socket("127.0.0.1", port)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
    finally:
        sock.close()
    with pytest.raises(TideflowError, match=r"cannot listen on 203\.0\.113\.1"):
        bind_socket("203.0.113.1", free_port())


def test_unreachable_database_is_a_readable_error() -> None:
    url = f"postgresql+asyncpg://postgres:secret@127.0.0.1:{free_port()}/nope"
    with pytest.raises(TideflowError) as info:
        run_server(get_settings(), host="127.0.0.1", port=free_port(), database_url=url)
    message = str(info.value)
    assert message.startswith(
        "cannot start the server on the database postgresql+asyncpg://postgres:***@"
    )
    assert "secret" not in message and "\n" not in message


def test_server_process_serves_stops_and_restarts(database_url: str) -> None:
    with ServerProcess(database_url) as server:
        with SyncClient(server.api_url) as client:
            assert client.health() == {"status": "ok"}
            assert client.version()["database"] in ("sqlite", "postgresql")
            run = client.create_flow_run(FlowRunCreate(flow_name="proc", state=Scheduled()))
            client.set_flow_run_state(run.id, Pending())
            client.create_logs([LogCreate(flow_run_id=run.id, name="n", level=20, message="hello",
                                          timestamp=run.created)])  # fmt: skip
        assert server.stop() == 0  # SIGTERM: graceful, exit code 0
        server.start()
        with SyncClient(server.api_url) as client:
            again = client.read_flow_run(run.id)
            assert again.state_type is StateType.PENDING
            assert [log.message for log in client.read_logs(LogFilter())] == ["hello"]
        assert server.kill() == -signal.SIGKILL
        server.restart()
        with SyncClient(server.api_url) as client:
            assert client.read_flow_run(run.id).id == run.id


def test_server_process_startup_failure_shows_output(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        server = ServerProcess(home=tmp_path, port=taken.getsockname()[1])
        with pytest.raises(TideflowError, match="already in use"):
            server.start()
        assert server.proc is not None and server.proc.returncode == 1


async def _claim_race(api_url: str) -> list[int]:
    async with AsyncClient(api_url) as client:
        run = await client.create_flow_run(FlowRunCreate(flow_name="race", state=Scheduled()))
        assert run.state is not None
        body = {"state": {"type": "PENDING"}, "expected_state_id": str(run.state.id)}
        responses = await asyncio.gather(
            *(client._http.post(f"/flow_runs/{run.id}/set_state", json=body) for _ in range(12))
        )
        history = await client.read_flow_run_states(run.id)
        assert [s.type for s in history] == [StateType.SCHEDULED, StateType.PENDING]
        started = await client.set_flow_run_state(run.id, Running())
        assert started.run is not None and started.run.run_count == 1
        return sorted(r.status_code for r in responses)


def test_claim_race_against_a_real_server(database_url: str) -> None:
    with ServerProcess(database_url) as server:
        assert asyncio.run(_claim_race(server.api_url)) == [200] + [409] * 11


def test_unknown_run_over_real_http_is_404(tmp_path: Path) -> None:
    with ServerProcess(home=tmp_path) as server, SyncClient(server.api_url) as client:
        response = client._http.get(f"/flow_runs/{uuid.uuid4()}")
        assert (
            response.status_code == 404 and response.headers["content-type"] == "application/json"
        )


def test_bad_log_level_is_a_readable_error(tmp_path: Path) -> None:
    with pytest.raises(TideflowError, match="invalid log level 'loud'"):
        run_server(get_settings(), host="127.0.0.1", port=free_port(), log_level="loud",
                   database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")  # fmt: skip


_UI_PROBE = """
import asyncio, json, sys
import httpx
from tideflow.server.run import create_app  # what `tideflow server start` imports

async def main():
    app = create_app(database_url=sys.argv[1])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            out = {"health": (await c.get("/api/health")).status_code}
            unused = ("tideflow.server.ui.dashboard", "yaml", "watchfiles", "alembic", "pydantic.v1", "jsonschema",
                      "sqlalchemy.dialects.postgresql")
            out["loaded_at_start"] = [m for m in unused if sys.modules.get(m) is not None]
            first = await asyncio.gather(*(c.get(p) for p in sys.argv[2:]))
            out["first"] = [(r.status_code, r.headers.get("content-type", "")) for r in first]
            again = await asyncio.gather(*(c.get(p) for p in sys.argv[2:]))
            out["again"] = [(r.status_code, r.headers.get("content-type", "")) for r in again]
    print(json.dumps(out))

asyncio.run(main())
"""


def test_ui_pages_load_on_first_use(tmp_path: Path) -> None:
    # The API answers without the UI's modules (nor Alembic, uvicorn's file watcher, pydantic.v1);
    # the first request the API does not take loads the pages and is then routed as usual (pages,
    # static files, API 404s, slash redirects), even when several such requests arrive together.
    paths = ["/api/nope", "/", "/runs", "/ui/static/app.css", "/runs/", "/nope"]
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    result = subprocess.run(
        [sys.executable, "-c", _UI_PROBE, url, *paths], capture_output=True, text=True, check=True
    )
    out = json.loads(result.stdout)
    assert out["health"] == 200 and out["loaded_at_start"] == []
    expected = [
        [404, "application/json"],
        [200, "text/html; charset=utf-8"],
        [200, "text/html; charset=utf-8"],
        [200, "text/css; charset=utf-8"],
        [307, ""],
        [404, "application/json"],
    ]
    assert out["first"] == expected
    assert out["again"] == expected


def test_ui_page_is_the_first_request_of_a_real_server(tmp_path: Path) -> None:
    with ServerProcess(home=tmp_path) as server:
        base = server.api_url.removesuffix("/api")
        with httpx.Client(base_url=base) as http:
            page = http.get("/deployments")
            assert page.status_code == 200 and "<html" in page.text.lower()
            assert http.get("/ui/static/app.js").status_code == 200
            assert http.get("/api/health").json() == {"status": "ok"}
            # The server process runs without pydantic.v1 (see server.run): the schema still builds.
            schema = http.get("/api/openapi.json")
            assert schema.status_code == 200 and "/api/flows/filter" in schema.json()["paths"]
            assert http.get("/docs").status_code == 200


def test_every_api_route_is_documented_under_the_api_prefix(tmp_path: Path) -> None:
    # The API routers are included one by one (so FastAPI prepares each on its first request):
    # the OpenAPI document must still list every route of every router, with its methods.
    from fastapi.routing import APIRoute

    from tideflow.server.api import API_PREFIX, api_routers
    from tideflow.server.app import create_app

    declared = {
        (f"{API_PREFIX}{route.path_format}", method.lower())
        for router in api_routers
        for route in router.routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods
    }
    app = create_app(database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    documented = {
        (path, method) for path, item in app.openapi()["paths"].items() for method in item
    }
    assert len(declared) > 40
    assert documented == declared


_GC_PROBE = """
import gc, json, sys
import tideflow.server.run as r
from tideflow.settings import get_settings

async def serve(self, sockets=None):  # stands in for uvicorn: report, then return (shutdown)
    print(json.dumps({"thresholds": gc.get_threshold(), "frozen": gc.get_freeze_count()}))

r._Server.serve = serve
r.run_server(get_settings(), host="127.0.0.1", port=int(sys.argv[1]), database_url=sys.argv[2])
"""


def test_server_collects_cycles_rarely_after_start(tmp_path: Path) -> None:
    # Start-up objects are frozen out of the collector and gen-0 runs far less often than the
    # default 700 allocations (the ingest and trigger hot paths spent 11-17 % in the collector).
    url = f"sqlite+aiosqlite:///{tmp_path / 'gc.db'}"
    out = subprocess.run(
        [sys.executable, "-c", _GC_PROBE, str(free_port()), url],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "TIDEFLOW_HOME": str(tmp_path)},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert tuple(seen["thresholds"]) == (50_000, 20, 100)
    assert seen["frozen"] > 10_000  # modules, models and the app itself


def test_a_browser_asking_for_a_missing_page_gets_the_ui_404_page(tmp_path: Path) -> None:
    html = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    with ServerProcess(home=tmp_path) as server:
        base = server.api_url.removesuffix("/api")
        with httpx.Client(base_url=base, timeout=10) as http:
            page = http.get("/no/such/page", headers=html)
            assert page.status_code == 404
            assert page.headers["content-type"].startswith("text/html")
            assert "page at /no/such/page" in page.text and 'href="/"' in page.text
            # Programs (no HTML in Accept) and the API keep the JSON error naming the route.
            plain = http.get("/no/such/page")
            assert plain.status_code == 404
            assert plain.json() == {"detail": "no such route: GET /no/such/page"}
            api = http.get("/api/nope", headers=html)
            assert api.status_code == 404 and api.json()["detail"] == "no such route: GET /api/nope"
            missing_asset = http.get("/ui/static/nope.css", headers=html)
            assert missing_asset.status_code == 404
            assert not missing_asset.headers["content-type"].startswith("text/html")


def test_a_server_process_that_fails_to_start_leaves_no_temporary_home() -> None:
    server = ServerProcess(args=("--no-such-option",))
    with pytest.raises(TideflowError, match="exited with code 2"):
        with server:
            pass
    assert not server.home.exists()
