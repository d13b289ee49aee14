"""Memory of a process tree three ways: RSS (what issue 6's targets use), PSS and USS.

A forked child maps the pages it shares copy-on-write with its parent, so the tree's summed RSS
counts each shared page once per process. PSS divides every page among the processes mapping it (the
tree's real share of RAM); USS counts only pages no other process maps (what ending it frees).
"""

from __future__ import annotations

import threading

import psutil

__all__ = ["MIB", "TreeMemorySampler", "tree_memory_mib"]

MIB = 1024 * 1024


def tree_memory_mib(pid: int) -> dict[str, float]:
    """``{"rss", "pss", "uss"}`` of a process and all its descendants, summed, in MiB."""
    root = psutil.Process(pid)
    total = {"rss": 0.0, "pss": 0.0, "uss": 0.0}
    for proc in [root, *root.children(recursive=True)]:
        try:
            info = proc.memory_full_info()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        total["rss"] += info.rss / MIB
        total["pss"] += getattr(info, "pss", 0) / MIB  # Linux only
        total["uss"] += info.uss / MIB
    return total


class TreeMemorySampler:
    """Samples a tree's memory every ``every`` s in a thread; ``peak`` holds each measure's maximum
    (each taken at its own worst moment)."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.pid, self.every = pid, every
        self.peak = {"rss": 0.0, "pss": 0.0, "uss": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                now = tree_memory_mib(self.pid)
            except Exception:  # the tree changes under us (children come and go)
                now = {}
            for key, value in now.items():
                self.peak[key] = max(self.peak[key], value)
            self._stop.wait(self.every)

    def __enter__(self) -> TreeMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
