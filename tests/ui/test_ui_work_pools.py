"""The work pool pages in a real browser against a real server and a real `tideflow worker start`
process: the pools list (queues, workers online, runs waiting), a pool's page (queues, the worker
online with its heartbeat, recent runs, pause/resume), the deployment page showing its pool, queue
and job variables, and its Run form sending job variables (the server's 422 shown in the form for an
unknown one; a valid set reaching the run's environment, and shown on the run's page with its pool,
queue and worker). No CSP violation on the new pages."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

import pytest
from playwright.sync_api import Page, expect
from ui_helpers import unique, wait_final

from tideflow.client import SyncClient
from tideflow.client import _work_pools as calls
from tideflow.schemas import StateType
from tideflow.schemas.deployments import DeploymentCreate, DeploymentFlowRunCreate
from tideflow.schemas.work_pools import WorkPoolCreate, WorkQueueCreate
from tideflow.testing import ServerProcess

FLOWS = """
import os
from tideflow import flow

@flow
def record():
    with open(os.environ["UI_RUN_LOG"], "a") as fh:
        fh.write(os.environ.get("MODE", "-") + "\\n")
"""


def _wait(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


class _Setup:
    def __init__(
        self, pool: str, deployment_id: str, run_log: Path, worker: subprocess.Popen[bytes]
    ) -> None:
        self.pool = pool
        self.deployment_id = deployment_id
        self.run_log = run_log
        self.worker = worker

    def stop_worker(self) -> None:
        if self.worker.poll() is None:
            self.worker.send_signal(signal.SIGTERM)
            try:
                self.worker.wait(30)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()


@pytest.fixture(scope="module")
def pooled(ui_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Setup]:
    """A process pool with a second queue, a deployment on it, and one worker process running."""
    folder = tmp_path_factory.mktemp("pool-project")
    (folder / "flows.py").write_text(FLOWS)
    run_log = folder / "runs.log"
    pool = unique("ui-pool")
    with SyncClient(ui_server.api_url) as client:
        client.send(calls.create_work_pool(WorkPoolCreate(name=pool, concurrency_limit=3)))
        client.send(calls.create_work_queue(pool, WorkQueueCreate(name="urgent", priority=5)))
        deployment = client.create_deployment(
            DeploymentCreate(
                flow_name="record",
                name=unique("pooled"),
                entrypoint="flows.py:record",
                work_pool_name=pool,
                job_variables={"env": {"MODE": "from-deployment"}},
                pull_steps=[{"set_working_directory": {"directory": str(folder)}}],
            )
        )
    out = folder / "worker.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(TIDEFLOW_API_URL=ui_server.api_url, UI_RUN_LOG=str(run_log))
    with out.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tideflow", "worker", "start", "--pool", pool, "--name", "ui-w1"],
            stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=folder,
        )  # fmt: skip
    try:
        _wait(
            lambda: (
                "started for work pool" in out.read_text(errors="replace")
                or proc.poll() is not None
            ),
            60,
        )
        assert proc.poll() is None, out.read_text(errors="replace")
        setup = _Setup(pool, str(deployment.id), run_log, proc)
        yield setup
    finally:
        _Setup(pool, "", run_log, proc).stop_worker()


def _watch(page: Page) -> list[str]:
    found: list[str] = []
    page.on(
        "console",
        lambda msg: (
            found.append(msg.text)
            if "Content Security Policy" in msg.text or "Refused to" in msg.text
            else None
        ),
    )
    return found


def test_pools_list_and_pool_page_show_queues_worker_and_pause(
    page: Page, pooled: _Setup, client: SyncClient, snap: Callable[[Page, str], list[Path]]
) -> None:
    violations = _watch(page)
    page.goto("/")
    page.get_by_role("link", name="Work pools").click()
    expect(page).to_have_url(re.compile(r"/work-pools$"))
    row = page.locator(f"tr[data-pool='{pooled.pool}']")
    expect(row.locator("td[data-col=queues]")).to_have_text("2")
    expect(row.locator("td[data-col=limit]")).to_have_text("3")
    expect(row.locator("td[data-col=workers]")).to_contain_text("1 online")
    expect(row.locator("td[data-col=status]")).to_have_text("Active")
    snap(page, "work-pools")

    row.get_by_role("link", name=pooled.pool).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(pooled.pool)
    # queues by priority: "default" (1) before "urgent" (5)
    expect(page.locator("#queues tbody tr")).to_have_count(2)
    expect(page.locator("#queues tbody tr").first).to_have_attribute("data-queue", "default")
    worker = page.locator("#workers tr[data-worker='ui-w1']")
    expect(worker.locator("td[data-col=status]")).to_have_text("Online")
    expect(worker.locator("time[data-time]")).to_have_count(1)
    snap(page, "work-pool")

    # pause and resume the pool (the buttons send the CSRF token with the request)
    page.get_by_role("button", name="Pause").first.click()
    expect(page.locator("#pool-paused-badge")).to_be_visible()
    # a run created while the pool is paused waits (Scheduled), counted on both pages
    waiting = client.create_flow_run_from_deployment(
        UUID(pooled.deployment_id), DeploymentFlowRunCreate()
    )
    page.goto("/work-pools")
    paused_row = page.locator(f"tr[data-pool='{pooled.pool}']")
    expect(paused_row.locator("td[data-col=status]")).to_have_text("Paused")
    expect(paused_row.locator("td[data-col=waiting]")).to_have_text("1")
    page.goto(f"/work-pools/{pooled.pool}")
    expect(page.locator("#pool-waiting")).to_have_text("1")
    expect(page.locator(f"#pool-runs tr[data-run-id='{waiting.id}']")).to_contain_text("Scheduled")
    page.locator(".head-actions").get_by_role("button", name="Resume").click()
    expect(page.locator("#pool-paused-badge")).to_have_count(0)
    # resumed: the worker runs it
    assert wait_final(client, waiting.id, timeout=60).state_type is StateType.COMPLETED
    # a queue's own pause button
    urgent = page.locator("#queues tr[data-queue='urgent']")
    urgent.get_by_role("button", name="Pause").click()
    expect(page.locator("#queues tr[data-queue='urgent'] td[data-col=status]")).to_have_text(
        "Paused"
    )
    page.locator("#queues tr[data-queue='urgent']").get_by_role("button", name="Resume").click()
    expect(page.locator("#queues tr[data-queue='urgent'] td[data-col=status]")).to_have_text(
        "Active"
    )

    response = page.goto("/work-pools/no-such-pool")
    assert response is not None and response.status == 404
    expect(page.get_by_text("work pool 'no-such-pool'")).to_be_visible()
    assert not violations, violations


def test_deployment_page_shows_pool_and_run_form_takes_job_variables(
    page: Page, pooled: _Setup, client: SyncClient, snap: Callable[[Page, str], list[Path]]
) -> None:
    violations = _watch(page)
    page.goto(f"/deployments/{pooled.deployment_id}")
    expect(page.locator("#deployment-pool")).to_have_text(pooled.pool)
    expect(page.locator("#deployment-queue")).to_have_text("default")
    expect(page.locator("#deployment-job-variables")).to_contain_text('"MODE": "from-deployment"')
    expect(page.locator("#hint-job-variables")).to_contain_text("env")
    snap(page, "deployment-pooled")

    form = page.locator("#run-form")
    field = page.get_by_label("Job variables")
    # not JSON: refused in the page, nothing sent
    field.fill("{nope")
    form.get_by_role("button", name="Run deployment").click()
    expect(page.locator("#err-job-variables")).to_contain_text("not valid JSON")
    # an unknown variable: the server's 422 message, shown under the field
    field.fill('{"nope": 1}')
    form.get_by_role("button", name="Run deployment").click()
    error = page.locator("#err-job-variables")
    expect(error).to_contain_text("unknown job variable 'nope'")
    expect(field).to_have_attribute("aria-invalid", "true")
    assert re.search(r"/deployments/", page.url)
    # a valid set: the run is created with them and reaches the run's environment on the worker
    field.fill('{"env": {"MODE": "from-ui"}}')
    form.get_by_role("button", name="Run deployment").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
    run_id = page.url.rsplit("/", 1)[1]
    run = wait_final(client, run_id, timeout=60)
    assert run.state_type is StateType.COMPLETED
    assert run.job_variables == {"env": {"MODE": "from-ui"}}
    assert "from-ui" in pooled.run_log.read_text().splitlines()
    # the run page says where it ran and with which job variables
    page.reload()
    expect(page.locator("#run-pool")).to_have_text(pooled.pool)
    expect(page.locator("#run-queue")).to_have_text("default")
    expect(page.locator("#run-worker")).to_have_text("ui-w1")
    expect(page.locator("#run-job-variables")).to_contain_text('"MODE": "from-ui"')
    # the run is listed among the pool's recent runs, in its queue
    page.goto(f"/work-pools/{pooled.pool}")
    recent = page.locator(f"#pool-runs tr[data-run-id='{run_id}']")
    expect(recent).to_contain_text("default")
    expect(recent).to_contain_text("Completed")
    assert not violations, violations


def test_a_stopped_worker_shows_offline(page: Page, pooled: _Setup) -> None:
    # Runs last in this module (tests of a file run in order, in one process): it stops the worker.
    pooled.stop_worker()
    page.goto(f"/work-pools/{pooled.pool}")
    worker = page.locator("#workers tr[data-worker='ui-w1']")
    expect(worker.locator("td[data-col=status]")).to_have_text("Offline")
    expect(page.locator("#pool-workers")).to_have_text("0 online · 1 offline")
    page.goto("/work-pools")
    row = page.locator(f"tr[data-pool='{pooled.pool}'] td[data-col=workers]")
    expect(row).to_contain_text("0 online")
    expect(row).to_contain_text("1 offline")


def test_create_a_pool_edit_it_and_add_a_queue_from_the_ui(page: Page, client: SyncClient) -> None:
    name = unique("ui-made-pool")
    page.goto("/work-pools")
    form = page.locator("#new-pool")
    form.get_by_label("Name").fill("team/etl")
    form.get_by_role("button", name="Create work pool").click()
    # The API's refusal, in the form; nothing created.
    expect(form.locator(".form-error")).to_contain_text("must not contain '/'")
    form.get_by_label("Name").fill(name)
    form.get_by_label("Type").select_option("docker")
    form.get_by_label("Concurrency limit (empty: none)").fill("two")
    form.get_by_role("button", name="Create work pool").click()
    expect(form.locator(".form-error")).to_have_text("concurrency_limit must be a whole number")
    form.get_by_label("Concurrency limit (empty: none)").fill("3")
    form.get_by_label("Description").fill("made in the UI")
    form.get_by_role("button", name="Create work pool").click()
    row = page.locator(f'#work-pools tr[data-pool="{name}"]')
    expect(row.locator('[data-col="limit"]')).to_have_text("3")
    expect(row).to_contain_text("docker")
    pool = client.send(calls.read_work_pool(name))
    assert (pool.type.value, pool.concurrency_limit, pool.description) == (
        "docker",
        3,
        "made in the UI",
    )

    row.get_by_role("link", name=name).click()
    page.locator("#edit-pool summary").click()
    edit = page.locator("#edit-pool")
    edit.get_by_label("Concurrency limit (empty: none)").fill("")
    edit.get_by_label("Description").fill("edited")
    edit.get_by_role("button", name="Save").click()
    expect(page.locator("#pool-limit")).to_have_text("none")
    expect(page.get_by_text("docker work pool · edited")).to_be_visible()

    page.locator("#new-queue summary").click()
    queue = page.locator("#new-queue")
    queue.get_by_label("Name").fill("urgent")
    queue.get_by_label("Priority (empty: last)").fill("1")
    queue.get_by_label("Concurrency limit (empty: none)").fill("5")
    queue.get_by_role("button", name="Create queue").click()
    urgent = page.locator('#queues tr[data-queue="urgent"]')
    expect(urgent).to_be_visible()
    made = client.send(calls.read_work_queue(name, "urgent"))
    assert (made.priority, made.concurrency_limit) == (1, 5)
