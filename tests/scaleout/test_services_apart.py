"""The API apart from the services (ADR 0014): two `tideflow server start --no-services` replicas
and one `tideflow server services start` process on one PostgreSQL. Chains served on one API
replica and started through the other fire once each, by the engine in the services process (the
only one holding the leases); `--only` takes a subset."""

from __future__ import annotations

import time
from pathlib import Path

from test_exactly_once import DOWN, SERVE, UP, _check_chains, _finished, _run_chains

from conftest import (
    lease_holder,
    serve_script,
    served,
    services_process,
    start_replicas,
    stop_all,
    wait_for,
)

CHAINS = 10


def test_api_only_replicas_and_a_services_process(pg_db: str, tmp_path: Path) -> None:
    a, b = start_replicas(pg_db, tmp_path, 2, args=("--no-services",))
    services = services_process(pg_db, tmp_path / "services")
    runner = None
    try:
        holder = wait_for("the services process to take the engine lease",
                          lambda: lease_holder(pg_db, "triggers"), 60)  # fmt: skip
        assert holder == services.proc.pid, services.output()
        assert lease_holder(pg_db, "scheduler") == services.proc.pid
        runner = serve_script(tmp_path / "serve.py", SERVE, a.api_url, tmp_path / "client")
        up, down = served(a.api_url, UP, DOWN)
        started = time.monotonic()
        _run_chains([b], up.id, "apart", CHAINS)
        wait_for("every downstream run", lambda: _finished(b.api_url, down.id, CHAINS), 120)
        summary = _check_chains(pg_db, up.id, down.id, CHAINS)
        print(f"\n{CHAINS} chains, API on 2 --no-services replicas, engine in a services process, "
              f"{time.monotonic() - started:.1f} s: {summary}")  # fmt: skip
    finally:
        stop_all(runner, services, a, b)
    assert "Traceback" not in services.output(), services.output()[-3000:]


def test_services_only_subset(pg_db: str, tmp_path: Path) -> None:
    services = services_process(pg_db, tmp_path / "services", "late-runs")
    try:
        wait_for("the late-runs lease", lambda: lease_holder(pg_db, "late-runs"), 60)
        assert lease_holder(pg_db, "triggers") is None
        assert lease_holder(pg_db, "scheduler") is None
    finally:
        stop_all(services)
    assert services.proc.returncode == 0, services.output()
