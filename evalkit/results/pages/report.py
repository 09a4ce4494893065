"""Self-contained HTML pages: the run report and the leaderboard.

One file each, opened from disk with no server: CSS, script and the SVG plot
are inline and nothing is fetched. The report embeds its samples as JSON in a
``<script type="application/json">`` element; "<", ">" and "&" are written as
\\u escapes there, so no text a model produced (say "</script>") can end the
element or be read as markup. The browser script builds the page with
``textContent`` only, never by parsing sample text as HTML.

Each sample's detail can be audited: the prompt that was sent, the item's
context (an abstract, read back from the benchmark file the manifest names, when it is
still there unchanged, since samples do not store it), and for multi-sample
runs every generation of every stage with what it voted and the vote counts,
each in a ``<details>`` block that is collapsed until clicked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from typing import Any, Sequence

from evalkit import __version__
from evalkit.results.leaderboard import (Leaderboard, first_number_column, footnotes, ranking_note, settings_text,
                                 table_cells, table_header)
from evalkit.results.report import (
    Report,
    Run,
    accuracy_cells,
    accuracy_header,
    run_setups,
    throughput_cells,
    throughput_header,
    fmt_ci,
    pct,
    run_labels,
    score_header,
    score_rows,
)
from evalkit.results.pages.page_assets import script, style
from evalkit.run.rundir import choice_answer, choice_verdict

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]


@dataclass(frozen=True)
class PlotPoint:
    """One marker of the accuracy plot: a series (run or model) on a dataset."""

    dataset: str
    series: str
    accuracy: float
    low: float
    high: float
    n: int
    flagged: bool = False


def json_for_script(data: Any) -> str:
    """JSON safe to place inside a <script> element (no "<", ">", "&" or line separators)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def accuracy_plot_svg(points: Sequence[PlotPoint], *, title: str = "") -> str:
    """An inline SVG dot plot: per dataset, one marker per series with its interval."""
    series = list(dict.fromkeys(p.series for p in points))
    colour = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(series)}
    datasets = list(dict.fromkeys(p.dataset for p in points))
    label_w, plot_w, right_w, top, row_h, head_h = 300, 560, 150, 34, 20, 26
    height = top + sum(head_h + row_h * sum(1 for p in points if p.dataset == d) for d in datasets) + 30
    width = label_w + plot_w + right_w

    def x(v: float) -> float:
        return label_w + plot_w * min(max(v, 0.0), 1.0)

    out = [f'<svg class="plot" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
           f"<title>{escape(title or 'Accuracy per dataset')}</title>"]
    for tick in range(0, 101, 10):
        tx = x(tick / 100)
        out.append(f'<line x1="{tx:.1f}" y1="{top - 6}" x2="{tx:.1f}" y2="{height - 24}" class="grid"/>')
        out.append(f'<text x="{tx:.1f}" y="{top - 12}" class="tick">{tick}</text>')
        out.append(f'<text x="{tx:.1f}" y="{height - 8}" class="tick">{tick}</text>')
    y = top
    for dataset in datasets:
        out.append(f'<text x="8" y="{y + 17}" class="ds">{escape(dataset)}</text>')
        y += head_h
        for p in (p for p in points if p.dataset == dataset):
            cy = y + row_h / 2
            c = colour[p.series]
            tip = f"{p.series} on {p.dataset}: {pct(p.accuracy)}% {fmt_ci(p.low, p.high)}, n={p.n}"
            out.append(f'<g><title>{escape(tip)}</title>')
            out.append(f'<text x="{label_w - 10}" y="{cy + 4:.1f}" class="lab">{escape(p.series)}</text>')
            out.append(f'<line x1="{x(p.low):.1f}" y1="{cy:.1f}" x2="{x(p.high):.1f}" y2="{cy:.1f}" '
                       f'stroke="{c}" stroke-width="2"/>')
            for end in (p.low, p.high):
                out.append(f'<line x1="{x(end):.1f}" y1="{cy - 5:.1f}" x2="{x(end):.1f}" y2="{cy + 5:.1f}" '
                           f'stroke="{c}" stroke-width="2"/>')
            out.append(f'<circle cx="{x(p.accuracy):.1f}" cy="{cy:.1f}" r="5" fill="{c}"/>')
            mark = " !" if p.flagged else ""
            out.append(f'<text x="{label_w + plot_w + 12}" y="{cy + 4:.1f}" class="val">'
                       f'{pct(p.accuracy)}%{mark} {escape(fmt_ci(p.low, p.high))}</text></g>')
            y += row_h
    out.append("</svg>")
    return "\n".join(out)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int,
           row_classes: Sequence[str] | None = None) -> str:
    head = "".join(f'<th class="{"num" if i >= right_from else ""}">{escape(h)}</th>' for i, h in enumerate(header))
    body = []
    for k, row in enumerate(rows):
        cls = f' class="{row_classes[k]}"' if row_classes and row_classes[k] else ""
        cells = "".join(f'<td class="{"num" if i >= right_from else ""}">{escape(c)}</td>' for i, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def html_page(title: str, body: str, script: str = "") -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<meta name=\"generator\" content=\"evalkit {escape(__version__)}\">\n"
        f"<title>{escape(title)}</title>\n{style('page.css')}\n</head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n{body}\n{script}\n</body>\n</html>\n"
    )


def _contexts_from_file(path: str, sha256: str | None) -> dict[tuple[str, str], str]:
    """(dataset, id) -> context of the items of one benchmark file, if it is still there unchanged."""
    from evalkit.data.datasets import DatasetError, load_dataset

    try:
        loaded = load_dataset(path, skip_invalid=True)
    except (DatasetError, OSError, ValueError):
        return {}
    if sha256 and loaded.sha256 != sha256:
        return {}  # the file changed since the run: its abstracts may not be the ones sent
    return {(item.dataset, item.id): item.context for item in loaded.items if item.context}


def item_contexts(runs: Sequence[Run]) -> list[dict[tuple[str, str], str]]:
    """Per run, the context (an abstract) of each item whose sample does not carry one.

    Samples do not store the context, so it is read back from the benchmark files the
    manifest names, where they still exist with the same sha256; each file is read once.
    """
    cache: dict[tuple[str, str | None], dict[tuple[str, str], str]] = {}
    out = []
    for run in runs:
        found: dict[tuple[str, str], str] = {}
        if any(not s.get("context") for s in run.samples):
            for entry in (run.manifest or {}).get("data") or []:
                if not isinstance(entry, dict) or not entry.get("path"):
                    continue
                key = (str(entry["path"]), entry.get("sha256"))
                if key not in cache:
                    cache[key] = _contexts_from_file(*key)
                found.update(cache[key])
        out.append(found)
    return out


def _stages_payload(stages: Any) -> list[dict[str, Any]] | None:
    """Every generation of a multi-sample record, stage by stage, with its votes."""
    if not isinstance(stages, list):
        return None
    out = []
    for i, stage in enumerate(stages):
        out.append({
            "name": stage.get("name"),
            "pred": stage.get("pred"),
            "votes": stage.get("votes") or {},
            "unparsed": stage.get("unparsed"),
            # The first stage's prompt is the sample's own prompt: not repeated.
            "prompt": stage.get("prompt") if i else None,
            "outputs": [{"k": g.get("k"), "output": g.get("output") or "", "pred": g.get("pred"),
                         "method": g.get("method"), "finish_reason": g.get("finish_reason"),
                         "completion_tokens": (g.get("usage") or {}).get("completion_tokens")}
                        for g in stage.get("outputs") or []],
        })
    return out


def prompt_text(prompt: Any) -> str:
    """A prompt as shown: the text, or a conversation as "role: content" blocks."""
    if isinstance(prompt, list):
        return "\n\n".join(f"{m.get('role', '?')}: {m.get('content', '')}" if isinstance(m, dict) else str(m)
                             for m in prompt)
    return str(prompt or "")


def _scores_payload(scores: Any) -> dict[str, Any]:
    """Each named score as the browser shows it, with a judge's prompt and reply where it kept them."""
    out: dict[str, Any] = {}
    for name, sc in (scores or {}).items():
        if not isinstance(sc, dict):
            continue
        meta = sc.get("meta") or {}
        out[name] = {"value": sc.get("value"), "answer": sc.get("answer"), "explanation": sc.get("explanation"),
                     "error": sc.get("error"),
                     "reply": meta.get("reply") or meta.get("judge_reply"),
                     "judge_prompt": prompt_text(meta.get("prompt") or meta.get("judge_prompt") or "")}
    return out


def _browser_payload(runs: Sequence[Run]) -> dict[str, Any]:
    labels = run_labels(runs)
    contexts = item_contexts(runs)
    samples = []
    for r, run in enumerate(runs):
        for s in run.samples:
            samples.append({
                "run": r,
                "dataset": s.get("dataset"),
                "id": s.get("id"),
                "index": s.get("index") or 0,
                "question": s.get("question") or "",
                "options": s.get("options") or {},
                "output": s.get("output") or "",
                "pred": choice_answer(s)[0],
                "gold": s.get("answer_idx"),
                "method": choice_answer(s)[1],
                "correct": bool(choice_verdict(s)),
                "truncated": bool(s.get("truncated")),
                "finish_reason": s.get("finish_reason"),
                "error": s.get("error"),
                "latency_s": s.get("latency_s"),
                "completion_tokens": (s.get("usage") or {}).get("completion_tokens"),
                "meta": s.get("meta") or {},
                "prompt": prompt_text(s.get("prompt")),
                "scores": _scores_payload(s.get("scores")),
                "context": s.get("context") or contexts[r].get((str(s.get("dataset")), str(s.get("id")))),
                "strategy": s.get("strategy"),
                "votes": s.get("votes"),
                "stages": _stages_payload(s.get("stages")),
            })
    return {"runs": [{"label": lab, "model": run.model} for lab, run in zip(labels, runs)], "samples": samples}


def _scores_section(report: Report) -> str:
    """The named scores other than the multiple-choice verdict, each by the metric recorded for it."""
    rows = score_rows(report)
    if not rows:
        return ""
    return ('<section id="scores"><h2>Scores</h2>\n'
            f'<p class="note">Each score by its metric ({escape(report.ci_label)} for proportions; '
            "a bootstrap otherwise).</p>\n"
            f"{_table(score_header(report), rows, 4)}</section>\n")


def _scorer_sections(report: Report) -> str:
    """The scorers' own report tables (``Report.sections``: title, header, text cells, notes), each laid out
    the same way whatever the scorer."""
    return "".join(section_html(section) for section in report.sections)


def _reference_classes(section: Any) -> list[str] | None:
    """Row classes that set a section's reference rows (``reference_from`` on) apart from its runs."""
    first = getattr(section, "reference_from", None)
    return None if first is None else ["reference" if k >= first else "" for k in range(len(section.rows))]


def section_html(section: Any, *, anchor: str | None = None) -> str:
    """A report section (``records.ReportTable``, a scorer's or the report document's) as a page section:
    title, table, notes, every text escaped. ANCHOR: the section's id (else it is a ``scorer-section``)."""
    notes = "".join(f"<li>{escape(n)}</li>" for n in section.notes)
    opening = f'<section id="{escape(anchor)}">' if anchor else '<section class="scorer-section">'
    return (f"{opening}<h2>{escape(section.title)}</h2>\n"
            f"{_table(section.header, section.rows, section.label_columns, _reference_classes(section))}"
            f'{"<ul class=note>" + notes + "</ul>" if notes else ""}</section>\n')


def render_html(report: Report, runs: Sequence[Run], *, title: str = "evalkit report", sections: str = "") -> str:
    """The report page: accuracy plot, accuracy and throughput tables, the scorers' own tables,
    per-sample browser. SECTIONS is HTML placed after the accuracy and score tables (the overlap split)."""
    points = [PlotPoint(r.dataset, r.run, r.accuracy, r.ci_low, r.ci_high, r.n)
              for r in report.rows if r.group is None]
    acc_rows = [accuracy_cells(r) for r in report.rows]
    classes = ["group" if r.group else "" for r in report.rows]
    setups = {s[0]: s for s in run_setups(report)}
    speed_rows = [[*setups.get(t.run, [t.run, t.model, "-", "-"]), *throughput_cells(t)[2:]]
                  for t in report.throughput]
    body = (
        f'<p class="note">Accuracy in % with {escape(report.ci_label)}. Unparsed answers count as wrong; '
        "failed requests are left out of n and counted as errors.</p>\n"
        f'<section id="plot"><h2>Accuracy per dataset</h2>\n'
        f"{accuracy_plot_svg(points, title='Accuracy per dataset with ' + report.ci_label)}</section>\n"
        f'<section id="accuracy"><h2>Accuracy</h2>\n'
        f"{_table(accuracy_header(report), acc_rows, 2, classes)}</section>\n"
        + _scores_section(report)
        + _scorer_sections(report)
        + sections +
        '<section id="throughput"><h2>Runs: setup and throughput</h2>\n'
        f"{_table(['run', 'model', 'prompt', 'extractor'] + throughput_header()[2:], speed_rows, 4)}</section>\n"
        + _BROWSER_HTML
    )
    scripts = (f'<script type="application/json" id="evalkit-samples">{json_for_script(_browser_payload(runs))}'
              f"</script>\n{script('pager.js', 'report.js')}")
    return html_page(title, body, scripts)


def render_leaderboard_html(lb: Leaderboard, *, title: str = "evalkit leaderboard", sections: str = "") -> str:
    """The leaderboard page: the models x datasets table and a plot of every cell. SECTIONS is
    HTML placed after the table (the clean-accuracy table of ``--overlap``)."""

    points = []
    for row in lb.rows:
        series = row.model + (f" ({settings_text(lb, row)})" if lb.varying else "")
        for d in lb.datasets:
            c = row.cells.get(d)
            if c is not None:
                points.append(PlotPoint(d, series, c.accuracy, c.ci_low, c.ci_high, c.n, bool(c.flag or c.partial)))
    tables = []
    for i, group in enumerate(lb.groups):  # like with like: a table per group, its heading what its rows share
        rows = [table_cells(lb, group, r) for r in group.rows]
        classes = ["" if r.comparable else "flagged" for r in group.rows]
        tables.append(f'<h3 class="lb-group">{i + 1}. {escape(group.heading)}</h3>'
                      f"{_table(table_header(lb, group), rows, first_number_column(lb, group), classes)}")
    foot = "".join(f"<li>! {escape(n)}</li>" for n in footnotes(lb))
    body = (
        f'<p class="note">{escape(lb.what[0].upper() + lb.what[1:])} with {escape(lb.ci_label)}. {escape(ranking_note(lb))}. '
        '"!" marks numbers not comparable with the rest of their column (see the notes).</p>\n'
        f'<section id="leaderboard">{"".join(tables)}'
        f'{"<ul class=notes>" + foot + "</ul>" if foot else ""}</section>\n'
        f"{sections}"
        f'<section id="plot"><h2>Accuracy per dataset</h2>{accuracy_plot_svg(points)}</section>'
    )
    return html_page(title, body)




_BROWSER_HTML = """
<section id="browser"><h2>Samples</h2>
<div class="filters">
  <label>Run <select id="f-run"><option value="">all</option></select></label>
  <label>Dataset <select id="f-dataset"><option value="">all</option></select></label>
  <label>Verdict <select id="f-verdict">
    <option value="">all</option><option value="correct">correct</option>
    <option value="wrong">wrong (incl. unparsed)</option><option value="unparsed">unparsed</option>
    <option value="truncated">truncated</option><option value="error">error</option></select></label>
  <input type="search" id="f-q" placeholder="search id, question, output">
</div>
<p id="browser-status" class="note">The sample browser needs JavaScript.</p>
<div class="cols">
  <div><table><thead><tr><th>run</th><th>dataset</th><th>id</th><th>pred</th><th>gold</th><th>verdict</th>
  </tr></thead><tbody id="sample-list"></tbody></table>
  <div class="pager"><button id="p-prev" type="button">&larr; prev</button><span id="p-info"></span>
  <button id="p-next" type="button">next &rarr;</button></div></div>
  <div id="sample-detail"></div>
</div>
</section>
"""


