"""Deployments from the SDK side: ``Flow.to_deployment`` builds a ``RunnerDeployment``; ``serve()``
registers deployments and runs their flow runs, each in its own process.
"""

from __future__ import annotations

from tideflow.deployments._deployment import RunnerDeployment, build_deployment
from tideflow.deployments._serve import serve

__all__ = ["RunnerDeployment", "build_deployment", "serve"]
