"""The study report (``report.build_report``'s data) as text, markdown, JSON or a self-contained HTML
page whose stacked bars (one per system and axis, as in Med-PaLM 2's figures) are inline SVG."""

from __future__ import annotations

import json
from html import escape
from typing import Any, Mapping, Sequence

from evalkit.results.formats import format_names, register
from evalkit.results.formats import render as render_as
from evalkit.results.pages.page_assets import style

# Worst choice first: red through amber to green; a pairwise bar: X, tie, Y.
_PALETTE = {2: ["#d9534f", "#5cb85c"], 3: ["#d9534f", "#f0ad4e", "#5cb85c"],
            4: ["#d9534f", "#f0ad4e", "#9acd32", "#5cb85c"]}


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _ci(ci: Sequence[float]) -> str:
    return f"[{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]"


def _num(x: Any) -> str:
    return "-" if x is None else f"{x:.2f}"


def _tables(report: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[str]], list[str]]]:
    """Every table of the report: (title, header, rows, notes); text and markdown lay these out."""
    out = []
    for sec in report["independent"]:
        for ax in sec["axes"]:
            rows = [[system] + [f"{_pct(s['share'])} {_ci(s['ci'])}" for s in cells] + [str(cells[0]["n"])]
                    for system, cells in ax["systems"].items()]
            ag = ax["agreement"]
            out.append((f"{sec['pool']} raters: {ax['axis']} — {ax['question']}", ["system"] + ax["choices"] + ["n"],
                        rows, [f"Randolph's kappa {_num(ag['randolph_kappa'])}, Krippendorff's alpha "
                               f"{_num(ag['krippendorff_alpha'])} over {ag['units']} answers rated twice or more"]))
    if report.get("pairwise"):
        rows = []
        for ax in report["pairwise"]["axes"]:
            for p in ax["pairs"]:
                rows.append([ax["axis"], f"{p['system_x']} vs {p['system_y']}", f"{_pct(p['x'])} {_ci(p['x_ci'])}",
                             f"{_pct(p['y'])} {_ci(p['y_ci'])}", _pct(p["tie"]), f"{p['p_value']:.3g}",
                             str(p["n"]), _num(ax["agreement"]["randolph_kappa"])])
        out.append(("pairwise preference (physicians): share of ratings preferring each system",
                    ["axis", "X vs Y", "X preferred", "Y preferred", "tie", "p (permutation)", "n", "kappa"], rows,
                    ["On axes asking which answer has more of a fault, the other answer counts as preferred.",
                     "p: permutation test of no preference, the two systems swapped within whole pairs."]))
    judge = report.get("judge")
    if judge:
        rows = [[a["axis"], str(a["n"]), str(a["judge"]["n"]), _pct(a["judge"]["accuracy"]), _num(a["judge"]["kappa"]),
                 _pct(a["ceiling"]["accuracy"]), _num(a["ceiling"]["kappa"]), _pct(a["majority_floor"]["accuracy"]),
                 _pct(a["length_floor"]["accuracy"]), _num(a["length_floor"]["kappa"])] for a in judge["axes"]]
        out.append((f"the judge ({judge.get('model', '?')}) against the raters' majority",
                    ["axis", "n", "judged", "judge acc", "judge kappa", "rater acc (ceiling)", "rater kappa",
                     "majority-label acc", "length-rule acc", "length-rule kappa"], rows,
                    ["n: units whose raters have a majority; judged: those of them the judge gave a valid reply on.",
                     "ceiling: each rater against the majority of the other raters of the same unit; floors: always "
                     "the most common majority label, and a rule that looks only at the answers' lengths."]))
    return out


def render_text(report: Mapping[str, Any]) -> str:
    """Plain aligned text."""
    lines = [_headline(report), ""]
    for title, header, rows, notes in _tables(report):
        widths = [max(len(c) for c in col) for col in zip(header, *rows)]
        lines.append(title)
        for row in [header] + rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        lines += notes + [""]
    return "\n".join(lines)


def render_markdown(report: Mapping[str, Any]) -> str:
    """GitHub markdown tables."""
    lines = [f"# Rating study {report['study']}", "", _headline(report), ""]
    for title, header, rows, notes in _tables(report):
        lines += [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        lines += [""] + [f"_{n}_" for n in notes] + [""]
    return "\n".join(lines)


def _headline(report: Mapping[str, Any]) -> str:
    c = report["counts"]
    return (f"study {report['study']}: {c['ratings']} ratings by {c['raters']} raters "
            f"({c['cannot_rate']} marked cannot rate); systems: {', '.join(report['systems'])}")


def _bar(segments: Sequence[tuple[float, str, str]], label: str, width: int = 420) -> str:
    """One stacked bar as inline SVG: SEGMENTS of (share, colour, title)."""
    x, parts = 0.0, []
    for share, colour, title in segments:
        w = share * width
        parts.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="18" fill="{colour}">'
                     f"<title>{escape(title)}</title></rect>")
        x += w
    return (f'<div class="bar"><span class="lbl">{escape(label)}</span><svg width="{width}" height="18" '
            f'role="img" aria-label="{escape(label)}">{"".join(parts)}</svg></div>')


def render_html(report: Mapping[str, Any]) -> str:
    """A self-contained page: each axis's stacked bars per system (worst choice red, best green), the
    pairwise bars (X, tie, Y), then every table. No script."""
    body = [f"<h1>Rating study {escape(report['study'])}</h1><p>{escape(_headline(report))}</p>"]
    for sec in report["independent"]:
        body.append(f"<h2>{escape(sec['pool'])} raters ({escape(sec['rubric'])})</h2>")
        for ax in sec["axes"]:
            colours = _PALETTE.get(len(ax["choices"]), _PALETTE[4] * 3)
            legend = " ".join(f'<span style="color:{c}">&#9632;</span> {escape(ch)}'
                              for ch, c in zip(ax["choices"], colours))
            body.append(f"<h3>{escape(ax['axis'])}</h3><p>{escape(ax['question'])}<br>{legend}</p>")
            for system, cells in ax["systems"].items():
                body.append(_bar([(s["share"], c, f"{s['value']}: {_pct(s['share'])} {_ci(s['ci'])}")
                                  for s, c in zip(cells, colours)], system))
    if report.get("pairwise"):
        body.append("<h2>pairwise preference</h2>")
        for ax in report["pairwise"]["axes"]:
            body.append(f"<h3>{escape(ax['axis'])}</h3><p>{escape(ax['question'])}</p>")
            for p in ax["pairs"]:
                body.append(_bar([(p["x"], "#337ab7", f"{p['x']:.0%} prefer {p['system_x']}"),
                                  (p["tie"], "#bbbbbb", f"{p['tie']:.0%} tie"),
                                  (p["y"], "#f0ad4e", f"{p['y']:.0%} prefer {p['system_y']}")],
                                 f"{p['system_x']} vs {p['system_y']} (p={p['p_value']:.3g})"))
    for title, header, rows, notes in _tables(report):
        body.append(f"<h3>{escape(title)}</h3><table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in header)
                    + "</tr>" + "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                                        for row in rows) + "</table>"
                    + "".join(f"<p class=note>{escape(n)}</p>" for n in notes))
    return (f"<!doctype html><html><head><meta charset=utf-8><title>Rating study {escape(report['study'])}</title>"
            f"{style('study-report.css')}</head><body>{''.join(body)}</body></html>")


def render_json(report: Mapping[str, Any]) -> str:
    """The report's data as JSON."""
    return json.dumps(report, indent=2, ensure_ascii=False)


# The study's report in the formats of evalkit.results.formats, in the order its --format offers them.
for _name, _renderer in (("text", render_text), ("markdown", render_markdown), ("json", render_json),
                         ("html", render_html)):
    register("study", _name)(lambda report, _render=_renderer, **_: _render(report))
STUDY_FORMATS = format_names("study")


def render(report: Mapping[str, Any], fmt: str) -> str:
    """REPORT in format FMT (one of STUDY_FORMATS)."""
    return render_as("study", report, fmt)
