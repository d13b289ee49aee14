"""Dependency arrows, checked in fresh interpreters and on the source.

``import tideflow``, the SDK, client, schemas and the CLI entry point load none of the server stack;
``tideflow.schemas`` imports nothing else of tideflow; only the server itself, ``tideflow.testing``
and the ``tideflow server`` commands import ``tideflow.server``.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tideflow

SRC = Path(tideflow.__file__).resolve().parent
SERVER_STACK = ("fastapi", "starlette", "sqlalchemy", "uvicorn", "alembic", "asyncpg", "aiosqlite")
# Allowed to import tideflow.server: the server package, the test helpers, the `tideflow server` commands.
SERVER_IMPORTERS = ("server", "testing", "cli/server.py")

_PROBE = """
import json, sys
{code}
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({stack!r}))
ours = sorted(m for m in sys.modules if m == "tideflow.server" or m.startswith("tideflow.server."))
print(json.dumps(heavy + ours))
"""


def _loaded_after(code: str, env: dict[str, str] | None = None) -> list[str]:
    probe = _PROBE.format(code=code, stack=SERVER_STACK)
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or os.environ.copy(),
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "code",
    [
        "import tideflow",
        "from tideflow import flow",
        "import tideflow.flows",
        "import tideflow.client",
        "import tideflow.schemas",
        "import tideflow.settings",
        "import tideflow.exceptions",
        "import tideflow.cli.main",
        "import tideflow.variables",
        "import tideflow.secrets",
        "import tideflow.artifacts",
        "import tideflow.assets",
        "import tideflow.concurrency",
        "import tideflow; tideflow.State, tideflow.get_client, tideflow.get_run_logger",
    ],
)
def test_import_loads_no_server_stack(code: str) -> None:
    assert _loaded_after(code) == [], f"`{code}` loaded server modules"


@pytest.mark.parametrize(
    "argv",
    [
        ["flow-run", "ls"],
        ["flow", "ls"],
        ["flow-run", "inspect", "0123456789ab"],
        ["config", "view"],
    ],
)
def test_cli_commands_load_no_server_stack(argv: list[str]) -> None:
    """A command body's lazy imports count too: run it (against a dead port) in the probe interpreter."""
    code = (
        "import sys\n"
        "from tideflow.cli.main import app\n"
        f"sys.argv = ['tideflow', *{argv!r}]\n"
        "try:\n    app()\nexcept BaseException:\n    pass"
    )
    env = {**os.environ, "TIDEFLOW_API_URL": "http://127.0.0.1:9/api"}
    assert _loaded_after(code, env) == []


_LOADED = """
import json, sys
{code}
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after(code: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", _LOADED.format(code=code)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


# What the seed's imports must not load (issue 6: ≤ 150 ms): the HTTP client, the schedule maths,
# pydantic-settings, asyncio, the engine's runners, serve()'s runner and launchers, the event
# sender, and every schema module a flow definition does not need. They load on first use.
SEED_LAZY = (
    "httpx",
    "croniter",
    "dateutil",
    "pydantic_settings",
    "asyncio",
    "jinja2",
    "tideflow.client",
    "tideflow.settings",
    "tideflow.engine.sync_runner",
    "tideflow.engine.async_runner",
    "tideflow.engine.parameters",
    "tideflow.engine.task_runs",
    "tideflow.task_runners",
    "cloudpickle",
    "tideflow.deployments._deployment",
    "tideflow.deployments._serve",
    "tideflow.deployments._runner",
    "tideflow.deployments._launchers",
    "tideflow.events._emit",
    "tideflow.schemas.deployments",
    "tideflow.schemas.schedules",
    "tideflow.schemas.objects",
    "tideflow.schemas.actions",
    "tideflow.schemas.automations",
    "tideflow.schemas.events",
    "tideflow.schemas.states",
    "tideflow.cli",
)


@pytest.mark.parametrize(
    "code",
    [
        "import tideflow",
        "from tideflow import flow, serve",
        "from tideflow import flow, serve; from tideflow.events import DeploymentEventTrigger",
        "from tideflow import flow\n@flow\ndef f(x: int) -> int:\n    return x",
        "from tideflow import flow, task, unmapped\n@task(retries=2)\ndef t(x: int) -> int:\n"
        "    return x\n@flow\ndef f() -> int:\n    return t(1)",
    ],
)
def test_seed_imports_load_nothing_until_used(code: str) -> None:
    loaded = _modules_after(code)
    eager = sorted(
        name
        for name in SEED_LAZY
        if name in loaded or any(m.startswith(name + ".") for m in loaded)
    )
    assert eager == [], f"`{code}` loaded {eager}"


def test_lazy_names_still_resolve_to_the_real_objects() -> None:
    """The lazy packages hand out the defining modules' objects (no copies, no stale wrappers)."""
    code = (
        "import tideflow, tideflow.events as ev, tideflow.schemas as sc, tideflow.deployments as dp\n"
        "from tideflow.events._deployment_triggers import DeploymentEventTrigger\n"
        "from tideflow.schemas.objects import FlowRun\n"
        "from tideflow.deployments._deployment import RunnerDeployment\n"
        "assert ev.DeploymentEventTrigger is DeploymentEventTrigger\n"
        "assert sc.FlowRun is FlowRun and dp.RunnerDeployment is RunnerDeployment\n"
        "assert tideflow.serve is dp.serve and callable(dp.serve)\n"
        "for mod in (tideflow, ev, sc, dp):\n"
        "    for name in mod.__all__:\n"
        "        getattr(mod, name)\n"
    )
    _modules_after(code)


# A CLI command imports its own command group only, and the client loads the schema modules of
# the calls it makes (issue 6: a command ≤ 300 ms).
CLI_LAZY = (
    "tideflow.cli.automation",
    "tideflow.cli.config",
    "tideflow.cli.event",
    "tideflow.cli.events",
    "tideflow.cli.flow",
    "tideflow.cli.flow_run",
    "tideflow.cli.server",
    "tideflow.schemas.automations",
    "tideflow.schemas.events",
    "pydantic_settings",
    "croniter",
    "dateutil",
    "rich",
)


def test_a_cli_command_loads_only_its_group() -> None:
    """``tideflow deployment run`` (against a dead port) imports no other group and no schemas or
    libraries it does not use; help still lists every group."""
    code = (
        "import os, sys\n"
        "os.environ['TIDEFLOW_API_URL'] = 'http://127.0.0.1:9/api'\n"
        "from tideflow.cli.main import app\n"
        "sys.argv = ['tideflow', 'deployment', 'run', 'some-flow/some-deployment']\n"
        "try:\n    app()\nexcept BaseException:\n    pass"
    )
    loaded = _modules_after(code)
    assert "tideflow.cli.deployment" in loaded
    eager = sorted(
        name for name in CLI_LAZY if name in loaded or any(m.startswith(name + ".") for m in loaded)
    )
    assert eager == [], f"`tideflow deployment run` loaded {eager}"


def _modules_imported(path: Path) -> list[str]:
    """Absolute names of the tideflow modules ``path`` imports (relative imports resolved)."""
    package = ".".join(("tideflow", *path.relative_to(SRC).with_suffix("").parts))
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.append(module)
            names.extend(f"{module}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.append(node.args[0].value)
    return [n for n in names if n == "tideflow" or n.startswith("tideflow.")]


def _sources(under: Path) -> list[Path]:
    return sorted(p for p in under.rglob("*.py") if "__pycache__" not in p.parts)


def test_schemas_import_no_other_tideflow_package() -> None:
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in _sources(SRC / "schemas")
        for name in _modules_imported(path)
        if not (name == "tideflow.schemas" or name.startswith("tideflow.schemas."))
    ]
    assert not offenders, offenders


def test_only_server_testing_and_server_cli_import_the_server() -> None:
    offenders = []
    for path in _sources(SRC):
        rel = path.relative_to(SRC).as_posix()
        if any(rel == allowed or rel.startswith(allowed + "/") for allowed in SERVER_IMPORTERS):
            continue
        for name in _modules_imported(path):
            if name == "tideflow.server" or name.startswith("tideflow.server."):
                offenders.append(f"{rel} imports {name}")
    assert not offenders, offenders


def test_the_source_walk_sees_imports() -> None:
    """Guard against a walker that silently finds nothing: known imports are found and resolved."""
    assert "tideflow.schemas.states" in _modules_imported(SRC / "schemas" / "objects.py")
    assert "tideflow.client._calls" in _modules_imported(SRC / "client" / "_sync.py")
    assert any(
        n.startswith("tideflow.server")
        for n in _modules_imported(SRC / "testing" / "_in_process.py")
    )


def test_flow_and_server_processes_skip_what_they_never_use() -> None:
    # httpx's own command-line tool (rich, click, pygments: ~6 MiB) is never loaded by tideflow's
    # client, and the server starts without httpx (outgoing requests load it) or jsonschema (a
    # resume with input loads it).
    probe = (
        "import sys, tideflow.client, httpx\n"
        "client = sorted(m for m in ('rich', 'pygments', 'httpx._main') if sys.modules.get(m))\n"
        "import tideflow.server.run\n"
        "print(client)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60, check=True)  # fmt: skip
    assert result.stdout.strip() == "[]"
    server = subprocess.run(
        [sys.executable, "-c", "import sys, tideflow.server.run\n"
         "print(sorted(m for m in ('httpx', 'jsonschema', 'rich') if m in sys.modules))"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert server.stdout.strip() == "[]"
