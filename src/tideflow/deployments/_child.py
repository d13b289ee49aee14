"""``python -m tideflow.deployments._child [--lifeline FD] ENTRYPOINT RUN_ID``: run one flow run in a
fresh interpreter.

The fallback of ``serve()`` on platforms without ``os.fork`` (see ``_launchers.SpawnLauncher``), and
how a process worker starts each run (``_worker``). ``--lifeline FD`` names the read end of a pipe
whose write end only the starting process holds: when it closes (that process ended, even
SIGKILLed), this run's process group is terminated, so no run outlives its worker.
``ENTRYPOINT`` is ``path/to/file.py:name`` (a deployment's ``entrypoint``); the file is imported
under a name other than ``__main__``, so its ``if __name__ == "__main__": serve(...)`` block does
not run again. The exit status is the engine's (0: Completed).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any
from uuid import UUID

from tideflow.engine.cancellation import install_cancellation_hooks
from tideflow.engine.existing import execute_flow_run
from tideflow.settings import get_settings

__all__ = ["load_entrypoint", "main"]


def load_entrypoint(entrypoint: str) -> Any:
    """The object named by ``path/to/file.py:name``; ValueError naming what is wrong."""
    path_text, sep, attr = entrypoint.rpartition(":")
    if not sep or not path_text or not attr:
        raise ValueError(f"entrypoint {entrypoint!r} must be 'path/to/file.py:name'")
    path = Path(path_text)
    if not path.is_file():
        raise ValueError(f"entrypoint file {path} does not exist")
    sys.path.insert(0, str(path.parent.resolve()))
    spec = importlib.util.spec_from_file_location(f"__tideflow_entrypoint__.{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"entrypoint file {path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"{path} has no attribute {attr!r}") from None


def _watch_lifeline(fd: int) -> None:
    """Block until the starter's end of the lifeline closes, then end this run's process group."""
    with contextlib.suppress(OSError):
        while os.read(fd, 1):
            pass
    with contextlib.suppress(OSError):
        os.killpg(os.getpgid(0), signal.SIGTERM)


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "--lifeline" and argv[1].isdigit():
        threading.Thread(target=_watch_lifeline, args=(int(argv[1]),), daemon=True).start()
        argv = argv[2:]
    if len(argv) != 2:
        print(
            "usage: python -m tideflow.deployments._child [--lifeline FD] ENTRYPOINT RUN_ID",
            file=sys.stderr,
        )
        return 2
    try:
        flow = load_entrypoint(argv[0])
        run_id = UUID(argv[1])
    except ValueError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    if not hasattr(flow, "parameter_schema") or not hasattr(flow, "fn"):
        print(f"Error: {argv[0]} is not a flow (decorate the function with @flow)", file=sys.stderr)
        return 2
    settings = get_settings()
    install_cancellation_hooks(flow, run_id, settings)
    return execute_flow_run(flow, run_id, settings)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
