"""A sweep's trend page: each benchmark's score with its CI per training step, as one HTML file.

The entry point for ``evalkit sweep report --format html``: the sweep hands over its
points (step, benchmark, score, CI, and the run directory the point was measured in)
and ``render_trend_html`` returns the page. The page is the comparison page of
``pages.compare`` over all the sweep's runs, in step order, with an SVG plot on top:
clicking one point and then another pairs their runs (the earlier step as the
baseline), so the paired statistics and the item table below show what changed
between those two checkpoints.

The plot is drawn here in Python (SVG with escaped text); the only script it adds
turns two clicks into ``evalkitCompare.setPair``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, Sequence

from evalkit.results.compare import build_comparison, default_pairs
from evalkit.results.pages.compare import render_compare_html
from evalkit.results.pages.page_assets import script, style
from evalkit.results.pages.report import PALETTE
from evalkit.run.rundir import Run


@dataclass(frozen=True)
class TrendPoint:
    """One benchmark's score at one training step. Score and bounds are fractions (0.62 = 62%)."""

    step: float
    benchmark: str
    score: float
    low: float
    high: float
    run: "str | Path | Run"  # the run directory (or loaded Run) the point was measured in
    partial: str | None = None  # the run's status where it is not complete (running, interrupted): drawn hollow


def _run_key(run: "str | Path | Run") -> str:
    path = run.path if isinstance(run, Run) else Path(run)
    return str(Path(path).resolve())


def sweep_runs(points: Sequence[TrendPoint]) -> tuple[list["str | Path | Run"], list[int]]:
    """The distinct runs of POINTS ordered by their earliest step, and each point's run index."""
    order: dict[str, tuple[float, int, "str | Path | Run"]] = {}
    for k, p in enumerate(points):
        key = _run_key(p.run)
        if key not in order or p.step < order[key][0]:
            order[key] = (p.step, k if key not in order else order[key][1], p.run)
    ranked = sorted(order.items(), key=lambda kv: (kv[1][0], kv[1][1]))
    index = {key: i for i, (key, _) in enumerate(ranked)}
    return [v[2] for _, v in ranked], [index[_run_key(p.run)] for p in points]


def trend_plot_svg(points: Sequence[TrendPoint], run_index: Sequence[int], *, title: str = "") -> str:
    """An SVG line plot: per benchmark, its score per step with the CI as a bar; each marker
    carries ``data-run`` (the run's index on the page) for the click-to-compare script, and its
    figures as given (``data-score``, ``data-low``, ``data-high``: fractions) for tools and tests."""
    benchmarks = list(dict.fromkeys(p.benchmark for p in points))
    colour = {b: PALETTE[i % len(PALETTE)] for i, b in enumerate(benchmarks)}
    steps = sorted({p.step for p in points})
    # The score axis spans the intervals, widened to whole multiples of 5 points.
    lo = max(0.0, math.floor(min(p.low for p in points) * 20) / 20)
    hi = min(1.0, math.ceil(max(p.high for p in points) * 20) / 20)
    if hi - lo < 0.05:
        lo, hi = max(0.0, hi - 0.05), max(0.05, lo + 0.05)
    left, width, top, height, legend_w = 56, 720, 20, 320, 220

    def x(step: float) -> float:
        span = (steps[-1] - steps[0]) or 1.0
        return left + (width * (step - steps[0]) / span if len(steps) > 1 else width / 2)

    def y(v: float) -> float:
        return top + height * (1 - (v - lo) / (hi - lo))

    out = [f'<svg class="plot trend" role="img" viewBox="0 0 {left + width + legend_w} {top + height + 44}" '
           f'width="{left + width + legend_w}" height="{top + height + 44}">',
           f"<title>{escape(title or 'Score per training step')}</title>"]
    for k in range(6):
        v = lo + (hi - lo) * k / 5
        out.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{left + width}" y2="{y(v):.1f}" class="grid"/>')
        out.append(f'<text x="{left - 8}" y="{y(v) + 4:.1f}" class="ytick">{100 * v:.0f}</text>')
    for s in steps:
        out.append(f'<text x="{x(s):.1f}" y="{top + height + 18}" class="tick">{escape(f"{s:g}")}</text>')
    out.append(f'<text x="{left + width / 2}" y="{top + height + 38}" class="tick">training step</text>')
    for b_i, bench in enumerate(benchmarks):
        mine = sorted(((p, r) for p, r in zip(points, run_index) if p.benchmark == bench), key=lambda pr: pr[0].step)
        c = colour[bench]
        path = " ".join(f"{x(p.step):.1f},{y(p.score):.1f}" for p, _ in mine)
        out.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="1.5"/>')
        for p, r in mine:
            tip = (f"{bench} at step {p.step:g}: {100 * p.score:.1f}% [{100 * p.low:.1f}, {100 * p.high:.1f}]"
                   + (f" PARTIAL: the run is {p.partial}, its figures cover the items done so far" if p.partial else "")
                   + " (click two points to compare their runs)")
            fill = "#fff" if p.partial else c  # a partial run's point is hollow
            extra = (f' stroke="{c}" stroke-width="2" data-partial="{escape(p.partial)}"' if p.partial else "")
            out.append(f'<g class="pt"><title>{escape(tip)}</title>'
                       f'<line x1="{x(p.step):.1f}" y1="{y(p.low):.1f}" x2="{x(p.step):.1f}" y2="{y(p.high):.1f}" '
                       f'stroke="{c}" stroke-width="2"/>'
                       f'<circle cx="{x(p.step):.1f}" cy="{y(p.score):.1f}" r="6" fill="{fill}"{extra} data-run="{r}" '
                       f'data-step="{escape(f"{p.step:g}")}" data-benchmark="{escape(bench)}" '
                       f'data-score="{p.score!r}" data-low="{p.low!r}" data-high="{p.high!r}"/></g>')
        ly = top + 14 + 20 * b_i
        out.append(f'<rect x="{left + width + 16}" y="{ly - 9}" width="12" height="12" fill="{c}"/>'
                   f'<text x="{left + width + 34}" y="{ly + 2}" class="legend">{escape(bench)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def render_trend_html(points: Sequence[TrendPoint], *, title: str = "evalkit sweep", **gate_options: Any) -> str:
    """The trend page of a sweep: the plot of POINTS, and the comparison of the sweep's runs below it.

    GATE_OPTIONS go to ``build_comparison`` (score, max_drop, alpha, n_resamples, seed). With
    more than a few runs only the pairs (earlier step, later step) are gated, which is what a
    click on two points asks for.
    """
    if not points:
        raise ValueError("a trend needs at least one point")
    runs, run_index = sweep_runs(points)
    if len(runs) < 2:
        raise ValueError("a trend page compares runs: the points name only one run")
    pairs = gate_options.pop("pairs", None) or [(i, j) for i, j in default_pairs(len(runs)) if i < j]
    comparison = build_comparison(runs, pairs=pairs, **gate_options)
    top = ('<section id="trend"><h2>Score per training step</h2>'
           '<p class="note" id="trend-note">Click a point, then another: the two checkpoints are compared below '
           "(the earlier step as the baseline).</p>"
           f"{partial_note(points, run_index)}"
           f"{trend_plot_svg(points, run_index, title=title)}</section>\n")
    page = render_compare_html(comparison, title=title, top=top)
    return (page.replace("</head>", style("trend.css") + "\n</head>", 1)
            .replace("</body>", script("trend.js") + "\n</body>", 1))


def partial_runs(points: Sequence[TrendPoint], run_index: Sequence[int]) -> dict[int, str]:
    """Run index -> what the page says of it, for each run of POINTS that is not complete."""
    out: dict[int, str] = {}
    for p, r in zip(points, run_index):
        if p.partial:
            out.setdefault(r, f"step {p.step:g} ({p.partial})")
    return out


def partial_note(points: Sequence[TrendPoint], run_index: Sequence[int]) -> str:
    """The page's warning about runs still going (or stopped early), and their indices for the script that
    marks a gate involving one of them as provisional; empty when every run is complete."""
    partial = partial_runs(points, run_index)
    if not partial:
        return ""
    import json

    listed = ", ".join(partial[r] for r in sorted(partial))
    return (f'<p class="warning" id="trend-partial" data-runs="{escape(json.dumps(partial))}"><strong>PARTIAL:'
            f"</strong> {escape(listed)}: not complete; hollow points cover the items done so far, and a gate "
            "involving such a run is provisional.</p>")





