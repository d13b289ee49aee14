"""Run logging under the name a Prefect user looks for: ``get_run_logger`` and
``disable_run_logger``."""

from __future__ import annotations

from tideflow.engine.logging import disable_run_logger, get_run_logger

__all__ = ["disable_run_logger", "get_run_logger"]
