"""Figures and their summaries: one ``Figure`` per measured quantity, summarised as n/min/median/p95/max.

Pure standard library, so the Prefect peer adapters (another virtualenv) could reuse it; the
harness summarises the raw samples that every benchmark and adapter returns.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Figure", "percentile", "summarise"]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100) with linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(rank), math.ceil(rank)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def summarise(values: list[float]) -> dict[str, float | int]:
    """``{"n", "min", "median", "p95", "max"}`` of ``values`` (rounded to 4 significant places)."""
    if not values:
        raise ValueError("summary of no values")
    stats = {
        "min": min(values),
        "median": statistics.median(values),
        "p95": percentile(values, 95),
        "max": max(values),
    }
    return {"n": len(values), **{k: _round(v) for k, v in stats.items()}}


def _round(value: float) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    digits = max(0, 3 - math.floor(math.log10(abs(value))))
    return round(value, digits)


@dataclass
class Figure:
    """One measured quantity of one system: raw samples, or why it could not be measured.

    ``higher_is_better`` is set for throughputs (events/s), so ratios read "how many times better".
    """

    bench: str
    figure: str
    system: str
    samples: list[float] = field(default_factory=list)
    unsupported: str | None = None
    higher_is_better: bool = False
    note: str | None = None

    def record(self) -> dict[str, Any]:
        """The JSON object printed by ``--json`` and appended to results.jsonl."""
        out: dict[str, Any] = {"bench": self.bench, "figure": self.figure, "system": self.system}
        if self.samples:
            out.update(summarise(self.samples))
        else:
            out["n"] = 0
            out["unsupported"] = self.unsupported or "no samples"
        if self.note:
            out["note"] = self.note
        return out

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Figure:
        """Parse one adapter line: ``{"bench", "figure", "samples" | "unsupported", ...}``."""
        return cls(
            bench=str(data["bench"]),
            figure=str(data["figure"]),
            system=str(data.get("system", "prefect")),
            samples=[float(v) for v in data.get("samples", [])],
            unsupported=data.get("unsupported"),
            higher_is_better=bool(data.get("higher_is_better", False)),
            note=data.get("note"),
        )
