"""Human-readable output: a table per benchmark run, and the side-by-side comparison with ratios."""

from __future__ import annotations

from typing import Any, TextIO

from bench._stats import Figure
from bench._targets import target_for

__all__ = ["comparison_rows", "print_comparison", "print_figures", "ratio", "verdict"]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def verdict(figure: Figure) -> str:
    """ "met" / "NOT met" against the figure's targets, or "" when it has none."""
    targets = target_for(figure.bench, figure.figure)
    if not targets or not figure.samples or figure.system != "tideflow":
        return ""
    record = figure.record()
    results = [t.met(record) for t in targets]
    text = ", ".join(t.text() for t in targets)
    return f"{'met' if all(results) else 'NOT met'} ({text})"


def print_figures(
    bench: str, system: str, figures: list[Figure], meta: dict[str, Any], out: TextIO
) -> None:
    """One benchmark's figures for one system: n, min, median, p95, max, target."""
    print(
        f"\n== {bench} · {system} · {meta['seconds']} s · load {meta['load_before']} → {meta['load_after']}",
        file=out,
    )
    for figure in figures:
        record = figure.record()
        if not figure.samples:
            print(f"  {figure.figure:<34} unsupported: {record['unsupported']}", file=out)
            continue
        stats = "  ".join(f"{k} {_fmt(record[k])}" for k in ("min", "median", "p95", "max"))
        extra = "  ".join(x for x in (verdict(figure), figure.note or "") if x)
        print(f"  {figure.figure:<34} n {record['n']:<4} {stats}  {extra}", file=out, flush=True)


def ratio(ours: Figure, theirs: Figure) -> float | None:
    """How many times better ours is (their time / ours, or our rate / theirs), by median."""
    if not ours.samples or not theirs.samples:
        return None
    a, b = float(ours.record()["median"]), float(theirs.record()["median"])
    if ours.higher_is_better:
        return a / b if b else None
    return b / a if a else None


def comparison_rows(figures: list[Figure]) -> list[tuple[str, str, str, str, str]]:
    """(bench.figure, our median, peer system, peer median or why not, ratio) per figure and peer.

    Every figure of ours gets a row for each peer system that reported anything for its benchmark
    ("prefect" when none did): a peer figure without samples reads "cannot: <why>", a figure the
    peer did not report at all reads "not measured".
    """
    ours = {(f.bench, f.figure): f for f in figures if f.system == "tideflow"}
    theirs = {(f.bench, f.figure, f.system): f for f in figures if f.system != "tideflow"}
    benches = list(dict.fromkeys(f.bench for f in figures))
    rows = []
    for bench in benches:
        peers = list(dict.fromkeys(s for b, _, s in theirs if b == bench)) or ["prefect"]
        names = [n for b, n in ours if b == bench]
        names += [n for b, n, _ in theirs if b == bench and n not in names]
        for name in dict.fromkeys(names):
            mine = ours.get((bench, name))
            left = _fmt(mine.record()["median"]) if mine and mine.samples else "—"
            for peer in peers:
                other = theirs.get((bench, name, peer))
                if other is None:
                    right, r = "not measured", ""
                elif not other.samples:
                    right, r = f"cannot: {other.unsupported}", ""
                else:
                    right = _fmt(other.record()["median"])
                    value = ratio(mine, other) if mine else None
                    r = f"{value:,.3g}x" if value else ""
                rows.append((f"{bench}.{name}", left, peer, right, r))
    return rows


def print_comparison(figures: list[Figure], out: TextIO) -> None:
    """Per figure: our median, each peer row's median, and the ratio (times better for tideflow)."""
    print("\n== tideflow vs prefect (medians; ratio = how many times better tideflow is)", file=out)
    for label, left, peer, right, r in comparison_rows(figures):
        print(f"  {label:<40} tideflow {left:>8}   {peer:<14} {right:>10}   {r}", file=out)
