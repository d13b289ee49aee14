"""tideflow's side of the driver's ``Api``: the ``tideflow`` CLI and the reads the driver needs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bench._driver import Api
from bench._proc import http_json
from bench._servers import Server, client_environment

__all__ = ["tideflow_api"]


def tideflow_api(server: Server) -> Api:
    """An ``Api`` for ``server`` through the installed ``tideflow`` console script."""
    base = server.api_url

    def states(run_id: str) -> list[dict[str, Any]]:
        return list(http_json("GET", f"{base}/flow_runs/{run_id}/states"))

    def runs_of(deployment_id: str) -> list[dict[str, Any]]:
        return list(
            http_json(
                "POST",
                f"{base}/flow_runs/filter",
                {"deployment_id": [deployment_id], "limit": 1000},
            )
        )

    def deployment_id(name: str) -> str:
        return str(http_json("GET", f"{base}/deployments/name/{name}")["id"])

    cli = [str(Path(sys.executable).parent / "tideflow")]
    return Api(cli, client_environment(server.home, base), states, runs_of, deployment_id)
