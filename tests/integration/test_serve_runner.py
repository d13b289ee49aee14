"""The runner behind serve(), for real: a server process, serve() scripts as subprocesses, the CLI.

Covers schedules firing, crash of a run process, cancellation, `limit`, concurrency limits,
graceful shutdown, two runners racing, kill -9 of a runner, reconnect after a server restart, and
the measured start latency and idle memory.
"""

from __future__ import annotations

import signal
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from serve_helpers import ServeScript, run_cli, state_of, unique, wait_final, wait_for

from tideflow.client import SyncClient
from tideflow.schemas import FlowRun, FlowRunFilter, LogFilter, StateType
from tideflow.schemas.deployments import DeploymentFlowRunCreate
from tideflow.schemas.events import EventFilter
from tideflow.schemas.states import Cancelling
from tideflow.testing import ServerProcess

FAST = {"TIDEFLOW_RUNNER_POLL_INTERVAL": "1", "TIDEFLOW_RUNNER_CANCEL_GRACE": "2"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(home=tmp_path_factory.mktemp("server")) as proc:
        yield proc


@pytest.fixture
def client(server: ServerProcess) -> Iterator[SyncClient]:
    with SyncClient(server.api_url) as c:
        yield c


def _run(client: SyncClient, full_name: str, **params: object) -> FlowRun:
    deployment = client.read_deployment_by_name(full_name)
    return client.create_flow_run_from_deployment(
        deployment.id, DeploymentFlowRunCreate(parameters=params)
    )


def _completed(client: SyncClient, run: FlowRun) -> bool:
    final = wait_final(client, run.id)
    return final.state is not None and final.state.type is StateType.COMPLETED


def test_schedule_fires_on_time(server: ServerProcess, client: SyncClient, tmp_path: Path) -> None:
    call = "serve(record.to_deployment(name='every-2s', interval=2))"
    with ServeScript(tmp_path, server.api_url, call, env=FAST):
        deployment = client.read_deployment_by_name("record/every-2s")

        def completed() -> list[FlowRun]:
            flt = FlowRunFilter(deployment_id=[deployment.id], state_type=[StateType.COMPLETED])
            return client.read_flow_runs(flt)

        runs = wait_for(lambda: len(completed()) >= 2 and completed(), timeout=20)
    for run in runs:
        assert run.start_time is not None and run.expected_start_time is not None
        assert run.expected_start_time.second % 2 == 0  # on the interval's grid
        late = (run.start_time - run.expected_start_time).total_seconds()
        assert -0.01 < late < 1.0, late  # pushed when due, not found by a poll


def test_killed_run_process_is_crashed_with_the_signal(
    server: ServerProcess, client: SyncClient, tmp_path: Path
) -> None:
    with ServeScript(tmp_path, server.api_url, "serve(sleeper.to_deployment(name='crash'))") as s:
        run = _run(client, "sleeper/crash", seconds=60)
        wait_for(lambda: state_of(client, run.id).type is StateType.RUNNING)
        child = wait_for(s.children)  # the run's process, forked by the runner itself
        assert len(child) == 1
        child[0].kill()
        final = wait_final(client, run.id)
        assert final.state is not None and final.state.type is StateType.CRASHED
        assert "SIGKILL" in (final.state.message or "") and "signal 9" in (
            final.state.message or ""
        )
        # the runner survived and still takes runs
        again = _run(client, "sleeper/crash", seconds=0)
        assert _completed(client, again)


def test_cancel_stops_the_run_within_a_second(
    server: ServerProcess, client: SyncClient, tmp_path: Path
) -> None:
    with ServeScript(
        tmp_path, server.api_url, "serve(sleeper.to_deployment(name='cancel'))", env=FAST
    ) as s:
        run = _run(client, "sleeper/cancel", seconds=60)
        wait_for(lambda: state_of(client, run.id).type is StateType.RUNNING)
        result = run_cli(server.api_url, "flow-run", "cancel", str(run.id))
        assert result.returncode == 0, result.stderr
        final = wait_final(client, run.id, timeout=10)
        history = client.read_flow_run_states(run.id)
        assert final.state is not None and final.state.type is StateType.CANCELLED
        asked = next(h for h in history if h.type is StateType.CANCELLING).timestamp
        took = (final.state.timestamp - asked).total_seconds()
        assert took < 1.0, f"cancellation took {took:.3f} s"
        assert "end" not in {e for e, _, _ in s.run_log.entries()}


def test_cancel_of_a_run_not_started_yet(
    server: ServerProcess, client: SyncClient, tmp_path: Path
) -> None:
    call = "serve(sleeper.to_deployment(name='cancel-early'), limit=1)"
    with ServeScript(tmp_path, server.api_url, call, env=FAST):
        busy = _run(client, "sleeper/cancel-early", seconds=60)
        wait_for(lambda: state_of(client, busy.id).type is StateType.RUNNING)
        queued = _run(client, "sleeper/cancel-early", seconds=0)
        client.set_flow_run_state(queued.id, Cancelling("not needed"))
        final = wait_final(client, queued.id, timeout=10)
        assert final.state is not None and final.state.type is StateType.CANCELLED
        assert final.start_time is None


def test_limit_caps_runs_at_once(server: ServerProcess, client: SyncClient, tmp_path: Path) -> None:
    call = "serve(sleeper.to_deployment(name='limited'), limit=2)"
    with ServeScript(tmp_path, server.api_url, call, env=FAST) as s:
        runs = [_run(client, "sleeper/limited", seconds=0.6) for _ in range(6)]
        for run in runs:
            assert _completed(client, run)
        assert s.run_log.max_overlap() == 2
        names = {h.name for run in runs for h in client.read_flow_run_states(run.id)}
        assert "AwaitingConcurrencySlot" not in names  # the runner kept them Scheduled, unclaimed


def test_deployment_concurrency_limit(
    server: ServerProcess, client: SyncClient, tmp_path: Path
) -> None:
    call = "serve(sleeper.to_deployment(name='one-at-a-time', concurrency_limit=1))"
    with ServeScript(tmp_path, server.api_url, call, env=FAST) as s:
        runs = [_run(client, "sleeper/one-at-a-time", seconds=0.5) for _ in range(3)]
        for run in runs:
            assert _completed(client, run)
        assert s.run_log.max_overlap() == 1
        names = {h.name for run in runs for h in client.read_flow_run_states(run.id)}
        assert "AwaitingConcurrencySlot" in names


def test_deployment_concurrency_limit_cancel_new(
    server: ServerProcess, client: SyncClient, tmp_path: Path
) -> None:
    config = "ConcurrencyLimitConfig(limit=1, collision_strategy='CANCEL_NEW')"
    call = f"serve(sleeper.to_deployment(name='cancel-new', concurrency_limit={config}))"
    with ServeScript(tmp_path, server.api_url, call, env=FAST) as s:
        first = _run(client, "sleeper/cancel-new", seconds=3)
        wait_for(lambda: state_of(client, first.id).type is StateType.RUNNING)
        second = _run(client, "sleeper/cancel-new", seconds=0.1)
        final = wait_final(client, second.id)
        assert final.state is not None and final.state.type is StateType.CANCELLED
        assert final.state.message == (
            "cancelled: the deployment is at its concurrency limit and its collision strategy "
            "is CANCEL_NEW"
        )
        assert _completed(client, first)
        assert s.run_log.max_overlap() == 1
        assert len(s.run_log.starts()) == 1  # the second run never started
    deployment = client.read_deployment_by_name("sleeper/cancel-new")
    assert deployment.concurrency_limit == 1
    assert deployment.concurrency_options is not None
    assert deployment.concurrency_options.collision_strategy == "CANCEL_NEW"
    shown = run_cli(server.api_url, "deployment", "inspect", "sleeper/cancel-new")
    assert "1 (collision strategy CANCEL_NEW)" in shown.stdout


@pytest.mark.slow
def test_paused_deployment_schedules_stop_and_resume(
    server: ServerProcess, client: SyncClient, tmp_path: Path
) -> None:
    call = "serve(record.to_deployment(name='pausable', interval=1, paused=True))"
    with ServeScript(tmp_path, server.api_url, call, env=FAST) as s:
        deployment = client.read_deployment_by_name("record/pausable")
        time.sleep(1.5)
        assert s.run_log.starts() == []
        assert client.read_flow_runs(FlowRunFilter(deployment_id=[deployment.id])) == []
        assert run_cli(server.api_url, "deployment", "resume", "record/pausable").returncode == 0
        wait_for(lambda: len(s.run_log.starts()) >= 2, timeout=15)
        assert run_cli(server.api_url, "deployment", "pause", "record/pausable").returncode == 0
        time.sleep(0.5)
        count = len(s.run_log.starts())
        time.sleep(2.0)
        assert len(s.run_log.starts()) == count


def test_ctrl_c_lets_short_runs_finish_and_cancels_the_rest(
    server: ServerProcess, client: SyncClient, tmp_path: Path
) -> None:
    call = "serve(sleeper.to_deployment(name='shutdown'))"
    script = ServeScript(tmp_path, server.api_url, call, env=FAST)
    with script:
        short = _run(client, "sleeper/shutdown", seconds=1.0)
        long = _run(client, "sleeper/shutdown", seconds=60)
        for run in (short, long):
            wait_for(lambda r=run: state_of(client, r.id).type is StateType.RUNNING)
        run_processes = script.children()
        script.signal(signal.SIGINT)  # Ctrl-C; SIGTERM (every other test's stop) is the same path
        assert script.wait(30) == 0, script.output()
    assert _completed(client, short)
    final = wait_final(client, long.id)
    assert final.state is not None and final.state.type is StateType.CANCELLED
    assert "shut down" in (final.state.message or "")
    assert not [p for p in run_processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_idle_serve_is_one_process_and_a_run_dies_with_its_runner(
    server: ServerProcess, client: SyncClient, tmp_path: Path
) -> None:
    """No resident helper process: runs are forked by the runner, and none outlives it (SIGKILL)."""
    script = ServeScript(tmp_path, server.api_url, "serve(sleeper.to_deployment(name='orphaned'))")
    with script:
        assert script.proc is not None
        time.sleep(0.5)
        assert script.children() == []
        run = _run(client, "sleeper/orphaned", seconds=60)
        wait_for(lambda: state_of(client, run.id).type is StateType.RUNNING)
        children = script.children()
        assert [p.ppid() for p in children] == [script.proc.pid]
        script.signal(signal.SIGKILL)
        script.wait()
        psutil.wait_procs(children, timeout=10)
        assert not [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_a_run_process_leads_its_group_and_keeps_the_inherited_heap_frozen(
    server: ServerProcess, client: SyncClient, tmp_path: Path
) -> None:
    """Forked from the runner: own process group, default SIGTERM, and the runner's objects frozen
    out of its garbage collector (so its collections do not copy the pages it shares)."""
    call = """
import gc, signal

@flow
def inspect_process():
    sigterm_default = signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    print("PROBE", gc.get_freeze_count(), os.getpgid(0) == os.getpid(), sigterm_default, flush=True)

serve(inspect_process.to_deployment(name="inspect"))
"""
    with ServeScript(tmp_path, server.api_url, call) as script:
        run = _run(client, "inspect-process/inspect")
        assert _completed(client, run)
        line = wait_for(
            lambda: next((x for x in script.output().splitlines() if x.startswith("PROBE")), None)
        )
    _, frozen, leader, sigterm_default = line.split()
    assert int(frozen) > 10_000, line  # the SDK's objects, at least
    assert leader == "True" and sigterm_default == "True", line


def test_the_runner_never_starts_a_thread_so_forking_runs_is_safe(
    server: ServerProcess, client: SyncClient, tmp_path: Path
) -> None:
    """Even with a host name to resolve (asyncio resolves names in executor threads)."""
    api_url = server.api_url.replace("127.0.0.1", "localhost")
    with ServeScript(tmp_path, api_url, "serve(record.to_deployment(name='threads'))") as script:
        run = _run(client, "record/threads")
        assert _completed(client, run)
        assert script.proc is not None
        assert psutil.Process(script.proc.pid).num_threads() == 1


def test_runs_send_their_own_events_and_logs_after_the_runner_emitted_at_import(
    server: ServerProcess, client: SyncClient, tmp_path: Path
) -> None:
    """The serving script emits an event before serve() (the runner then holds a live event
    sender thread and connection); each forked run must still deliver its own events and logs,
    not hand them to the parent's sender, which does not exist in the run's process."""
    tag = unique("forked")
    call = f"""
from tideflow.events import emit_event
emit_event("{tag}.runner-started", resource={{"tideflow.resource.id": "{tag}.runner"}})

@flow(log_prints=True)
def announce():
    emit_event("{tag}.from-run", resource={{"tideflow.resource.id": f"{tag}.{{flow_run.id}}"}})
    print("announced from", flow_run.id)

serve(announce.to_deployment(name="announce"))
"""
    with ServeScript(tmp_path, server.api_url, call):
        runs = [_run(client, "announce/announce") for _ in range(3)]
        for run in runs:
            assert wait_final(client, run.id).state.type is StateType.COMPLETED  # type: ignore[union-attr]

        def stored() -> list[str] | None:
            page = client.read_events(EventFilter(event_prefixes=[tag]))
            names = sorted(e.resource["tideflow.resource.id"] for e in page.events)
            return names if len(names) == 4 else None

        names = wait_for(stored, timeout=20)
    assert names == sorted([f"{tag}.runner", *(f"{tag}.{r.id}" for r in runs)])
    for run in runs:
        logs = wait_for(
            lambda run=run: (
                [
                    log.message
                    for log in client.read_logs(LogFilter(flow_run_id=[run.id]))
                    if log.message.startswith("announced from")
                ]
                or None
            )
        )
        assert logs == [f"announced from {run.id}"]


@pytest.mark.slow
def test_two_runners_race_and_each_run_executes_once(
    server: ServerProcess, client: SyncClient, tmp_path: Path
) -> None:
    call = "serve(record.to_deployment(name='race'))"
    first = ServeScript(tmp_path, server.api_url, call, env=FAST, name="first")
    second = ServeScript(tmp_path, server.api_url, call, env=FAST, name="second")
    with first, second:
        deployment = client.read_deployment_by_name("record/race")
        runs = [
            client.create_flow_run_from_deployment(deployment.id, DeploymentFlowRunCreate())
            for _ in range(200)
        ]
        for run in runs:
            wait_final(client, run.id, timeout=120)
    starts = first.run_log.starts()  # both scripts share tmp_path/runs.log
    assert len(starts) == 200 and len(set(starts)) == 200
    assert {str(r.id) for r in runs} == set(starts)
    assert all(client.read_flow_run(r.id).state_type is StateType.COMPLETED for r in runs)


@pytest.mark.slow
def test_killed_runner_has_its_runs_crashed_after_the_heartbeat_timeout(tmp_path: Path) -> None:
    env = {"TIDEFLOW_RUNNER_HEARTBEAT_TIMEOUT": "2", "TIDEFLOW_RUNNER_HEARTBEAT_INTERVAL": "0.5"}
    with (
        ServerProcess(home=tmp_path / "srv", env=env) as server,
        SyncClient(server.api_url) as client,
    ):
        call = "serve(sleeper.to_deployment(name='orphan'))"
        script = ServeScript(tmp_path, server.api_url, call, env={**FAST, **env})
        with script:
            run = _run(client, "sleeper/orphan", seconds=60)
            wait_for(lambda: state_of(client, run.id).type is StateType.RUNNING)
            script.signal(signal.SIGKILL)
            script.wait()
            final = wait_final(client, run.id, timeout=30)
        assert final.state is not None and final.state.type is StateType.CRASHED
        deployment = wait_for(
            lambda: (
                (d := client.read_deployment_by_name("sleeper/orphan")).status == "NOT_READY" and d
            ),
            timeout=30,
        )
        assert deployment.status == "NOT_READY"


@pytest.mark.slow
def test_runner_reconnects_after_a_server_restart(tmp_path: Path) -> None:
    server = ServerProcess(home=tmp_path / "srv")
    with server, SyncClient(server.api_url) as client:
        call = "serve(etl.to_deployment(name='survivor'))"
        with ServeScript(tmp_path, server.api_url, call, env=FAST) as script:
            before = _run(client, "etl/survivor", limit=1)
            assert _completed(client, before)
            server.stop()
            time.sleep(0.5)
            server.start()
            after = _run(client, "etl/survivor", limit=2)
            final = wait_final(client, after.id, timeout=30)
            assert final.state is not None and final.state.type is StateType.COMPLETED
            assert "reconnecting" in script.output()
            assert str(after.id) in script.run_log.starts()


def test_start_latency_and_idle_memory(
    server: ServerProcess,
    client: SyncClient,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """The headline figures: run created (Scheduled) → Running over 50 runs, and serve() idle RSS."""
    call = "serve(record.to_deployment(name='latency'))"
    with ServeScript(tmp_path, server.api_url, call, env=FAST) as s:
        time.sleep(1.0)
        assert s.proc is not None
        procs = [psutil.Process(s.proc.pid), *s.children()]
        rss = sum(p.memory_info().rss for p in procs)
        uss = sum(p.memory_full_info().uss for p in procs)
        deployment = client.read_deployment_by_name("record/latency")
        delays = []
        for _ in range(50):
            run = client.create_flow_run_from_deployment(deployment.id, DeploymentFlowRunCreate())
            wait_final(client, run.id)
            history = client.read_flow_run_states(run.id)
            scheduled = next(h for h in history if h.type is StateType.SCHEDULED).timestamp
            running = next(h for h in history if h.type is StateType.RUNNING).timestamp
            delays.append((running - scheduled).total_seconds())
    delays.sort()
    median, p95 = statistics.median(delays), delays[int(0.95 * len(delays)) - 1]
    print(f"\ncreated→Running over 50 runs: median {median * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms")
    print(f"serve() idle RSS (process tree): {rss / 2**20:.1f} MiB (USS {uss / 2**20:.1f} MiB)")
    record_property("created_to_running_median_ms", round(median * 1000, 1))
    record_property("created_to_running_p95_ms", round(p95 * 1000, 1))
    record_property("serve_idle_rss_mib", round(rss / 2**20, 1))
    assert median < 1.0  # generous: a shared CI machine; the figure is reported, not gated tightly
