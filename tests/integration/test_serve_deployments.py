"""Flow.to_deployment / Flow.serve / serve() arguments, binding stored parameters, the spawn fallback
(`python -m tideflow.deployments._child`), re-serving (same id, fields updated), async flows."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_helpers import ServeScript, cli_env, run_cli, wait_final

from tideflow import flow, serve
from tideflow.client import SyncClient
from tideflow.deployments import RunnerDeployment
from tideflow.engine.existing import bind_stored_parameters
from tideflow.events import DeploymentEventTrigger
from tideflow.exceptions import ParameterValidationError
from tideflow.parameters import parameter_schema
from tideflow.schemas import StateType
from tideflow.schemas.deployments import DeploymentCreate, DeploymentFlowRunCreate
from tideflow.schemas.schedules import CronSchedule
from tideflow.schemas.states import Pending
from tideflow.testing import ServerProcess


@flow
def etl(source: str = "s3://bucket/raw", limit: int = 100) -> int:
    return limit


@flow
def varargs(first: int, *rest: int, flag: bool = False, **extra: str) -> None:
    pass


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(home=tmp_path_factory.mktemp("server")) as proc:
        yield proc


@pytest.fixture
def client(server: ServerProcess) -> Iterator[SyncClient]:
    with SyncClient(server.api_url) as c:
        yield c


# --- to_deployment -------------------------------------------------------------------------------
def test_to_deployment_builds_the_create_body() -> None:
    d = etl.to_deployment(
        "nightly",
        parameters={"limit": 5},
        tags=["etl"],
        cron="0 2 * * *",
        interval=dt.timedelta(minutes=5),
        rrule="FREQ=WEEKLY;BYDAY=MO",
        schedules=[
            CronSchedule(cron="*/15 * * * *", timezone="Europe/Paris"),
            {"interval": 60, "active": False},
        ],
        concurrency_limit=2,
        triggers=[
            DeploymentEventTrigger(expect={"tideflow.flow-run.Completed"}, parameters={"limit": 1})
        ],
        job_variables={"env": "x"},
    )
    assert isinstance(d, RunnerDeployment) and d.full_name == "etl/nightly" and d.flow is etl
    c = d.create
    kinds = [(s.schedule.type, s.active) for s in c.schedules]
    assert kinds == [
        ("cron", True),
        ("interval", True),
        ("rrule", True),
        ("cron", True),
        ("interval", False),
    ]
    assert c.schedules[1].schedule.interval == dt.timedelta(minutes=5)  # type: ignore[union-attr]
    assert c.parameter_openapi_schema["properties"]["limit"]["type"] == "integer"
    assert c.triggers[0]["type"] == "event" and c.triggers[0]["parameters"] == {"limit": 1}
    json.dumps(c.triggers)  # stored as JSON
    assert c.entrypoint == f"{__file__}:etl"
    assert (c.parameters, c.tags, c.concurrency_limit) == ({"limit": 5}, ["etl"], 2)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"parameters": {"nope": 1}}, "'nope' is not a parameter of flow 'etl'"),
        ({"parameters": {"limit": "many"}}, "parameter 'limit'"),
        ({"cron": "61 * * * *"}, "invalid cron expression"),
        ({"interval": "5 minutes"}, "interval must be seconds or a timedelta"),
        ({"interval": 0}, "interval must be positive"),
        ({"rrule": "FREQ=SOMETIMES"}, "rrule"),
        ({"schedules": [{"every": 5}]}, "invalid schedule"),
        ({"schedules": ["0 2 * * *"]}, "a schedule must be"),
        ({"tags": "etl"}, "tags must be a list"),
        ({"concurrency_limit": 0}, "concurrency_limit"),
        (
            {"triggers": [DeploymentEventTrigger(expect={"x"}, parameters={"rows": 1})]},
            "'rows' is not a parameter",
        ),
        (
            {
                "triggers": [
                    {"type": "event", "expect": ["x"], "parameters": {"limit": "{{ nope }}"}}
                ]
            },
            "unknown variable 'nope'",
        ),
        ({"triggers": [{"type": "nonsense"}]}, "invalid trigger 0"),
        ({"triggers": ["on completed"]}, "a trigger must be"),
    ],
)
def test_to_deployment_errors_name_the_problem(options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        etl.to_deployment("bad", **options)
    assert fragment in str(info.value), str(info.value)
    assert str(info.value).startswith("deployment 'bad'")


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((), {}, "at least one deployment"),
        ((etl,), {}, "flow.to_deployment"),
        ((etl.to_deployment("a"), etl.to_deployment("a")), {}, "given twice"),
        ((etl.to_deployment("a"),), {"limit": 0}, "limit must be"),
    ],
)
def test_serve_argument_errors(args: tuple[Any, ...], kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises((ValueError, TypeError), match=error):
        serve(*args, **kwargs)


# --- stored parameters ---------------------------------------------------------------------------
def test_stored_parameters_bind_in_bound_form() -> None:
    call = bind_stored_parameters(varargs, {"first": "1", "rest": [2, 3], "extra": {"a": "b"}})
    args, kwargs = call.args_kwargs()
    assert args == (1, 2, 3) and kwargs == {"flag": False, "a": "b"}
    defaults = bind_stored_parameters(etl, {})
    assert defaults.args_kwargs() == (("s3://bucket/raw", 100), {})


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"first": 1, "zzz": 2}, "'zzz' is not a parameter"),
        ({}, "'first': missing"),
        ({"first": "one"}, "parameter 'first'"),
    ],
)
def test_stored_parameter_problems(params: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ParameterValidationError, match=fragment):
        bind_stored_parameters(varargs, params)


def test_importing_flow_and_serve_loads_no_server_stack_or_websockets() -> None:
    code = (
        "import sys\nfrom tideflow import flow, serve\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'fastapi', 'sqlalchemy', 'uvicorn', 'websockets', 'jinja2'} or m.startswith('tideflow.server'))\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- against a server ----------------------------------------------------------------------------
def test_the_spawn_fallback_runs_a_claimed_run(
    server: ServerProcess, client: SyncClient, tmp_path: Path
) -> None:
    script = tmp_path / "spawned.py"
    script.write_text(
        textwrap.dedent(
            """
            from tideflow import flow, serve

            @flow
            def spawned(*values: int, scale: int = 1) -> int:
                print("sum", sum(values) * scale)
                return sum(values) * scale

            if __name__ == "__main__":
                raise SystemExit("the child must not run the serve block")
            """
        )
    )
    namespace: dict[str, Any] = {}
    exec(compile(script.read_text(), str(script), "exec"), namespace)
    body = DeploymentCreate(
        flow_name="spawned",
        name="fallback",
        parameter_openapi_schema=parameter_schema(namespace["spawned"].fn),
    )
    deployment = client.create_deployment(body)
    run = client.create_flow_run_from_deployment(
        deployment.id, DeploymentFlowRunCreate(parameters={"values": [1, 2], "scale": 10})
    )
    assert run.state is not None
    client.set_flow_run_state(run.id, Pending(), expected_state_id=run.state.id)
    result = subprocess.run(
        [sys.executable, "-m", "tideflow.deployments._child", f"{script}:spawned", str(run.id)],
        capture_output=True, text=True, timeout=60, env=cli_env(server.api_url),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "sum 30" in result.stdout
    final = wait_final(client, run.id)
    assert final.state is not None and final.state.type is StateType.COMPLETED
    bad = subprocess.run(
        [sys.executable, "-m", "tideflow.deployments._child", f"{script}:missing", str(run.id)],
        capture_output=True, text=True, timeout=60, env=cli_env(server.api_url),
    )  # fmt: skip
    assert bad.returncode == 2 and "has no attribute 'missing'" in bad.stderr


def test_serving_again_keeps_the_deployment_id_and_updates_fields(
    server: ServerProcess, client: SyncClient, tmp_path: Path
) -> None:
    first = "serve(etl.to_deployment(name='again', parameters={'limit': 1}))"
    with ServeScript(tmp_path, server.api_url, first):
        before = client.read_deployment_by_name("etl/again")
    second = "serve(etl.to_deployment(name='again', parameters={'limit': 2}, tags=['v2']))"
    with ServeScript(tmp_path, server.api_url, second) as script:
        after = client.read_deployment_by_name("etl/again")
        assert after.id == before.id
        assert (after.parameters, after.tags) == ({"limit": 2}, ["v2"])
        run = client.create_flow_run_from_deployment(after.id, DeploymentFlowRunCreate())
        assert wait_final(client, run.id).parameters == {"limit": 2}
        assert str(run.id) in script.run_log.starts()


def test_flow_serve_and_async_flows(
    server: ServerProcess, client: SyncClient, tmp_path: Path
) -> None:
    script = tmp_path / "async_serve.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio
            from tideflow import flow

            @flow(log_prints=True)
            async def waiter(n: int = 1) -> int:
                await asyncio.sleep(0.01)
                print(f"waited {n}")
                return n

            if __name__ == "__main__":
                waiter.serve(name="quick", parameters={"n": 3})
            """
        )
    )
    env = cli_env(server.api_url)
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    try:
        assert proc.stdout is not None
        assert "Serving deployment 'waiter/quick'" in proc.stdout.readline().decode()
        result = run_cli(server.api_url, "deployment", "run", "waiter/quick", "--watch")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "waited 3" in result.stdout
    finally:
        proc.terminate()
        code = proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert code == 0
    assert os.environ.get("TIDEFLOW_API_URL") is None  # the test env stays isolated


def test_the_serve_etl_example(server: ServerProcess, client: SyncClient) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "serve_etl.py"
    proc = subprocess.Popen(
        [sys.executable, str(example)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=cli_env(server.api_url),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().decode() for _ in range(2)]
        assert "'etl/nightly' (every day at 02:00 (UTC))" in lines[0]
        assert "tideflow deployment run 'etl/on-demand'" in lines[1]
        result = run_cli(
            server.api_url, "deployment", "run", "etl/on-demand", "--param", "limit=5", "--watch"
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "loading 5 rows from s3://bucket/raw" in result.stdout
        nightly = client.read_deployment_by_name("etl/nightly")
        assert nightly.tags == ["etl"] and nightly.status == "READY"
    finally:
        proc.terminate()
        code = proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert code == 0
