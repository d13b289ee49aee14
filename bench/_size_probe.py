"""Installed size of a distribution and everything it requires, run with the venv's own python.

Usage: ``python bench/_size_probe.py DIST`` prints ``{"dist", "packages", "bytes"}``. Sums the
files listed in each distribution's RECORD (an editable install counts its package directory),
walking Requires-Dist without extras, markers evaluated for this interpreter. Standard library only.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import json
import sys
from pathlib import Path

from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.utils import canonicalize_name

__all__ = ["closure", "dist_bytes"]


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def dist_bytes(dist: md.Distribution) -> int:
    """Bytes on disk of one installed distribution (its RECORD, or its editable source package)."""
    total = 0
    editable = False
    for entry in dist.files or []:
        path = Path(str(dist.locate_file(entry)))
        if path.is_file():
            total += path.stat().st_size
        editable = editable or path.name.startswith("__editable__")
    if editable:  # the package's files live in the source tree, not in RECORD
        for top in (dist.read_text("top_level.txt") or dist.metadata["Name"]).split():
            spec = importlib.util.find_spec(top.replace("-", "_"))
            if spec is not None and spec.origin:
                total += _dir_bytes(Path(spec.origin).parent)
    return total


def closure(name: str) -> list[md.Distribution]:
    """``name`` and every distribution it requires (transitively, no extras)."""
    seen: dict[str, md.Distribution] = {}
    todo = [name]
    while todo:
        key = canonicalize_name(todo.pop())
        if key in seen:
            continue
        try:
            dist = md.distribution(key)
        except md.PackageNotFoundError:
            continue
        seen[key] = dist
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            todo.append(req.name)
    return list(seen.values())


if __name__ == "__main__":
    dists = closure(sys.argv[1])
    print(
        json.dumps(
            {"dist": sys.argv[1], "packages": len(dists), "bytes": sum(map(dist_bytes, dists))}
        )
    )
