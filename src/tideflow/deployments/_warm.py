"""``python -m tideflow.deployments._warm [--lifeline FD]``: an interpreter with tideflow's engine
already imported, waiting for the one flow run it will execute (the process worker's warm start).

A cold ``python -m tideflow.deployments._child`` spends most of its start importing tideflow (a
second or more on a loaded machine); the process worker keeps one of these ready instead and hands
it the next run on stdin as one JSON line: ``{"argv": [ENTRYPOINT, RUN_ID], "env": {...}, "cwd":
..., "quiet": bool}``. It then takes that environment (``os.environ`` replaced whole, as a fresh
process would have it), directory (also ``sys.path[0]``, as ``python -m`` would set it) and, when
``quiet``, sends its output to /dev/null, and runs exactly what ``_child`` runs. The user's code is
imported only then, so each run still sees the code as pulled for it. End of input (the worker went
away) ends it quietly; ``--lifeline`` works as ``_child``'s.
"""

from __future__ import annotations

import json
import os
import sys
import threading

from tideflow.deployments import _child

__all__ = ["main"]


def _take(line: str) -> list[str]:
    """Become the run's process as ``line`` describes it; the argv for ``_child.main``."""
    job = json.loads(line)
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in job["env"].items()})
    cwd = job.get("cwd")
    if cwd:
        os.chdir(cwd)
        sys.path[0] = os.getcwd()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)  # as a cold run's: no input
    if job.get("quiet"):
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    os.close(devnull)
    return [str(arg) for arg in job["argv"]]


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--lifeline" and argv[1].isdigit():
        watch = threading.Thread(target=_child._watch_lifeline, args=(int(argv[1]),), daemon=True)
        watch.start()
    line = sys.stdin.readline()
    if not line.strip():
        return 0
    try:
        run_argv = _take(line)
    except (ValueError, KeyError, TypeError, OSError) as exc:
        print(f"Error: the warm start got an unusable job: {exc}", file=sys.stderr)
        return 2
    return _child.main(run_argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
