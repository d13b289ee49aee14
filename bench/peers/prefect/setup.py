"""Create the Prefect peer virtualenv (bench/.peers/prefect-venv) with prefect==3.9.1 from the index.

prefect 3.9.1 pins certifi>=2026.10.19, newer than the reachable package index serves, so this
installs Prefect's own dependencies with that one requirement relaxed to plain ``certifi`` (it is
only a CA bundle and all benchmark traffic is loopback), then the Prefect wheel with --no-deps.
The venv is never imported by tideflow or its tests; adapters run in it as subprocesses.
Run: ``python bench/peers/prefect/setup.py [--force]``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

__all__ = ["PREFECT_VERSION", "VENV_DIR", "ensure_venv", "venv_python"]

PREFECT_VERSION = "3.9.1"
ROOT = Path(__file__).resolve().parents[3]
VENV_DIR = ROOT / "bench" / ".peers" / "prefect-venv"

# Evaluated inside the new venv: Prefect's Requires-Dist without extras, markers applied,
# certifi relaxed to any version.
_REQUIREMENTS_SCRIPT = r"""
import json, importlib.metadata as md
from pip._vendor.packaging.requirements import Requirement
out = []
for raw in md.requires("prefect") or []:
    req = Requirement(raw)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    if req.name.lower() == "certifi":
        out.append("certifi")
        continue
    req.marker = None
    out.append(str(req))
print(json.dumps(out))
"""


def venv_python() -> Path:
    """Path of the peer venv's interpreter."""
    return VENV_DIR / "bin" / "python"


def _pip(*args: str) -> None:
    subprocess.run(
        [str(venv_python()), "-m", "pip", "--disable-pip-version-check", *args], check=True
    )


def _installed() -> bool:
    if not venv_python().exists():
        return False
    probe = subprocess.run(
        [
            str(venv_python()),
            "-c",
            "import prefect, prefect_dask, psutil, sys; sys.stdout.write(prefect.__version__)",
        ],
        capture_output=True,
        text=True,
    )
    return probe.returncode == 0 and probe.stdout.strip() == PREFECT_VERSION


def ensure_venv(force: bool = False) -> Path:
    """Create the peer venv if it is missing or broken; return its python."""
    if force and VENV_DIR.exists():
        shutil.rmtree(VENV_DIR)
    if _installed():
        return venv_python()
    VENV_DIR.parent.mkdir(parents=True, exist_ok=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(VENV_DIR)
    _pip("install", "--quiet", "--no-deps", f"prefect=={PREFECT_VERSION}")
    listed = subprocess.run(
        [str(venv_python()), "-c", _REQUIREMENTS_SCRIPT], capture_output=True, text=True, check=True
    )
    requirements = json.loads(listed.stdout)
    _pip("install", "--quiet", *requirements)
    # psutil measures process-tree RSS in the adapters, the same way as on our side; prefect-dask
    # is Prefect's Dask task runner, for the tasks benchmark's Dask workload.
    _pip("install", "--quiet", "psutil", "prefect-dask", "dask[distributed]")
    if not _installed():
        raise SystemExit(f"prefect {PREFECT_VERSION} did not import from {VENV_DIR}")
    return venv_python()


if __name__ == "__main__":
    print(ensure_venv(force="--force" in sys.argv[1:]))
