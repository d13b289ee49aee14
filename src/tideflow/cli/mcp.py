"""``tideflow mcp``: serve tideflow's tools to an MCP client (an assistant) over stdio."""

from __future__ import annotations

from typing import Annotated

import typer

from tideflow.cli._common import exit_with_error

__all__ = ["mcp"]


def mcp(
    read_only: Annotated[
        bool,
        typer.Option("--read-only", help="Offer only the read tools (no run, pause or resume)."),
    ] = False,
) -> None:
    """Serve deployments, runs, logs, events and automations (with explain) as MCP tools over
    stdio, and run/pause/resume unless --read-only; the API key's scopes bound what they can do."""
    try:
        import mcp as _mcp  # noqa: F401
    except ImportError:
        exit_with_error("tideflow mcp needs the MCP SDK: pip install 'tideflow[mcp]'")
    from tideflow.mcp_server import run_stdio

    run_stdio(read_only=read_only)
