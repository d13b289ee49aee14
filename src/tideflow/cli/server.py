"""`tideflow server` commands."""

from __future__ import annotations

import typer

__all__ = ["app"]

app = typer.Typer(help="server commands.", no_args_is_help=True)
