"""The comparison page: ``evalkit compare`` as one self-contained HTML file.

Like the report (``pages.report``), the page is opened from disk: CSS and script are
inline and nothing is fetched. Everything computed (settings that differ, the gate's
paired statistics per dataset, each item's direction of change) comes from
``evalkit.results.compare``; the browser script only shows, filters and sorts it. Item text
(questions, options, generations, judge replies) is embedded as JSON with "<", ">",
"&" and the line separators escaped (``json_for_script``), and is put on the page
with ``textContent`` only, so a generation holding "</script>" or an ``<img onerror>``
is shown as the text it is.
"""

from __future__ import annotations

import base64
import gzip
import json
from html import escape
from typing import Any, Mapping

from evalkit.config import CompareSettings, field_default
from evalkit.results.compare import (DIRECTION_LABELS, LEFT_OUT, PAIR_HEADER, SETTING_LABELS, VERDICT_LABELS,
                             Comparison, pair_rows)
from evalkit.results.pages.page_assets import script, style
from evalkit.results.pages.report import html_page, json_for_script, prompt_text
from evalkit.results.overlap_split import overlap_rows
from evalkit.results.overlap_tables import CLEAN, NOT_COVERED, OVERLAP, overlap_table_html


def _setting_text(value: Any) -> str:
    return "-" if value is None else str(value)


def settings_table(comparison: Comparison) -> str:
    """What differs between the runs (one row per differing setting), then what they share."""
    labels = comparison.labels
    head = "<tr><th>setting</th>" + "".join(f"<th>{escape(lab)}</th>" for lab in labels) + "</tr>"
    rows = []
    for name in comparison.differing:
        cells = "".join(f"<td>{escape(_setting_text(s[name]))}</td>" for s in comparison.settings)
        rows.append(f"<tr><td>{escape(SETTING_LABELS.get(name, name))}</td>{cells}</tr>")
    paths = "".join(f"<td>{escape(str(r.path))}</td>" for r in comparison.runs)
    rows.append(f'<tr class="group"><td>run path</td>{paths}</tr>')
    same = [f"{SETTING_LABELS.get(n, n)} {_setting_text(v)}" for n, v in comparison.settings[0].items()
            if n not in comparison.differing and v is not None]
    note = ("No setting differs between the runs." if not comparison.differing else
            f"{len(comparison.differing)} setting{'s differ' if len(comparison.differing) > 1 else ' differs'}.")
    shared = f'<p class="note">Shared by all: {escape("; ".join(same))}.</p>' if same else ""
    return (f'<p class="note" id="settings-note">{escape(note)}</p>{mismatch_notes(comparison)}'
            f'<div class="scroll"><table id="settings"><thead>{head}</thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>'
            f"{shared}")


def mismatch_notes(comparison: Comparison) -> str:
    """The gate's reasons the baseline and candidate are not comparable, as a warning list; "" when none."""
    reasons = comparison.mismatches
    if not reasons:
        return ""
    labels = comparison.labels
    items = "".join(f"<li>mismatch: {escape(r)}</li>" for r in reasons)
    return (f'<div id="mismatches"><p class="warn"><strong>Not comparable as evalkit gate sees them</strong> '
            f"({escape(labels[0])} \u2192 {escape(labels[1])}): evalkit gate says NOT COMPARABLE without "
            "--allow-mismatch; the paired results below are on the shared items only.</p>"
            f'<ul class="notes">{items}</ul></div>')


def _scores(scores: Any) -> dict[str, Any] | None:
    """Named scores other than the multiple-choice verdict (a judge's axes), with the judge's reply."""
    out = {}
    for name, sc in (scores or {}).items():
        if name == "correct" or not isinstance(sc, Mapping):
            continue
        meta = sc.get("meta") or {}
        reply = meta.get("reply") or meta.get("judge_reply")
        out[name] = {"v": sc.get("value"), "a": sc.get("answer"), "x": sc.get("explanation"), "err": sc.get("error"),
                     "reply": prompt_text(reply) if reply else None}
    return out or None


def _side(sample: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """One run's sample of an item, as much of it as the page shows."""
    if sample is None:
        return None
    return {"p": sample.get("pred"), "m": sample.get("method"),
            "t": (sample.get("usage") or {}).get("completion_tokens"), "l": sample.get("latency_s"),
            "f": sample.get("finish_reason"), "e": sample.get("error"), "tr": bool(sample.get("truncated")),
            "sc": _scores(sample.get("scores")), "vo": sample.get("votes") or None}


def _target_text(target: Any) -> str | None:
    if target in (None, "", [], {}):
        return None
    return target if isinstance(target, str) else json_for_display(target)


def json_for_display(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1)


def packed_json(data: Any) -> str:
    """DATA as gzip-compressed JSON in base64: about a third of the bytes for text, and base64 holds no
    character that could end a <script> element. The page inflates it with the browser's own
    DecompressionStream."""
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")


# Items per block of generations: a page of the item table.
BLOCK = 50


def run_outputs(comparison: Comparison) -> list[list[str | None]]:
    """Per run, each item's generation (None where the run has no sample of it), aligned with the items.

    They are the bulk of a page, so they are embedded after the page's script in blocks of BLOCK
    items (``output_blocks``) and inflated only when an item is opened or the text search needs
    them: the page opens without them.
    """
    out = []
    for run in comparison.runs:
        chosen = run.items()
        out.append([None if chosen.get(k) is None else (chosen[k].get("output") or "") for k in comparison.items])
    return out


def output_blocks(comparison: Comparison) -> str:
    """The generations as elements: for each block of BLOCK items, one element per run (gzip JSON in
    base64, ``evalkit-out-RUN-BLOCK``), then an empty marker ``evalkit-done-BLOCK``. Blocks come in
    item order, all runs' together, so an item of the first pages can be shown as soon as the browser
    has read its block, long before the whole file, and only that block is inflated."""
    outputs = run_outputs(comparison)
    parts = []
    for k, start in enumerate(range(0, len(comparison.items), BLOCK)):
        for r, texts in enumerate(outputs):
            parts.append(f'<script type="application/gzip" id="evalkit-out-{r}-{k}">'
                         f"{packed_json(texts[start:start + BLOCK])}</script>")
        parts.append(f'<i hidden id="evalkit-done-{k}"></i>\n')
    return "".join(parts)


def comparison_payload(comparison: Comparison) -> dict[str, Any]:
    """Everything the browser script shows but the generations (``run_outputs``), as plain JSON-able data."""
    item_maps = [run.items() for run in comparison.runs]
    items = []
    for key in comparison.items:
        samples = [m.get(key) for m in item_maps]
        first = next(s for s in samples if s is not None)
        items.append({"d": key[0], "id": key[1], "q": first.get("question") or "", "o": first.get("options") or {},
                      "g": first.get("answer_idx"), "tg": _target_text(first.get("target")),
                      "s": [_side(s) for s in samples]})
    pairs = {}
    for (b, c), pair in comparison.pairs.items():
        gate = pair.gate
        pairs[f"{b}-{c}"] = {"verdict": gate.verdict, "mismatches": gate.mismatches, "warnings": gate.warnings,
                             "rows": pair_rows(gate, comparison.binary), "dirs": pair.directions}
        if pair.clean_gate is not None:
            clean = pair.clean_gate
            pairs[f"{b}-{c}"]["clean"] = {"verdict": clean.verdict, "warnings": clean.warnings,
                                          "rows": pair_rows(clean, comparison.binary)}
    payload = {
        "score": comparison.score,
        "runs": [{"label": lab, "model": run.model, "path": str(run.path)}
                 for lab, run in zip(comparison.labels, comparison.runs)],
        "pairHeader": PAIR_HEADER,
        "pairs": pairs,
        "directions": dict(DIRECTION_LABELS),
        "verdictLabels": dict(VERDICT_LABELS),
        "leftOut": LEFT_OUT,
        "binary": comparison.binary,
        "verdicts": comparison.verdicts,
        "items": items,
        "block": BLOCK,
    }
    if comparison.overlap is not None:
        payload["overlap"] = {"rule": comparison.overlap.rule, "marks": comparison.overlap_marks,
                              "labels": {OVERLAP: "overlapping", CLEAN: "clean", NOT_COVERED: "not in overlap file"}}
    return payload


def overlap_section(comparison: Comparison) -> str:
    """Each run's accuracy on overlapping and clean items (``overlap_split.overlap_rows``);
    "" without an overlap file."""
    if comparison.overlap is None:
        return ""
    rows = [row for run, label in zip(comparison.runs, comparison.labels)
            for row in overlap_rows(label, run.items(), comparison.overlap)]
    return overlap_table_html(rows, comparison.overlap.rule)


def render_compare_html(comparison: Comparison, *, title: str = field_default(CompareSettings, "title"),
                        top: str = "") -> str:
    """The comparison page. TOP is HTML placed above the settings (the trend plot of a sweep)."""
    gate_opts = next(iter(comparison.pairs.values())).gate if comparison.pairs else None
    rule = ""
    if gate_opts is not None:
        rule = (f"Paired per dataset by the regression gate on {comparison.score!r} (as evalkit gate computes it): "
                f"{round(gate_opts.confidence * 100):g}% CI of the difference by the paired bootstrap, exact McNemar "
                f"p (a bootstrap p for a numeric score), Holm-adjusted over datasets; a regression is a drop of more "
                f"than {gate_opts.max_drop:g} points with Holm p \u2264 {gate_opts.alpha:g}.")
    body = (
        f"{top}"
        '<section id="differences"><h2>What differs between the runs</h2>\n'
        f"{settings_table(comparison)}</section>\n"
        + overlap_section(comparison)
        + _PAIR_HTML.replace("{rule}", escape(rule))
        + _ITEMS_HTML
    )
    scripts = (f'<script type="application/json" id="evalkit-compare">{json_for_script(comparison_payload(comparison))}'
              f"</script>\n{script('pager.js', 'compare.js')}\n{output_blocks(comparison)}")
    return html_page(title, body, scripts).replace("</head>", f"{style('compare.css')}\n</head>", 1)


_PAIR_HTML = """
<section id="pair"><h2>Paired result</h2>
<div class="filters">
  <label>Baseline <select id="pair-a"></select></label>
  <label>Candidate <select id="pair-b"></select></label>
  <strong id="pair-verdict"></strong>
</div>
<p class="note">{rule}</p>
<ul id="pair-notes" class="notes"></ul>
<div class="scroll"><table><thead><tr id="pair-head"></tr></thead><tbody id="pair-stats"></tbody></table></div>
<div id="pair-clean" hidden><h3>On clean items only</h3>
<p class="note" id="pair-clean-note"></p><ul id="pair-clean-notes" class="notes"></ul>
<div class="scroll"><table><thead><tr id="pair-clean-head"></tr></thead><tbody id="pair-clean-stats"></tbody></table></div>
</div>
</section>
"""

_ITEMS_HTML = """
<section id="browser"><h2>Items</h2>
<div class="filters">
  <label>Dataset <select id="f-dataset"><option value="">all</option></select></label>
  <label>Change <select id="f-dir"><option value="">all</option></select></label>
  <label id="f-overlap-label" hidden>Overlap <select id="f-overlap"><option value="">all</option></select></label>
  <input type="search" id="f-q" placeholder="search id, question, generations">
</div>
<p id="items-status" class="note">The item table needs JavaScript.</p>
<div class="scroll"><table id="item-table"><thead><tr id="items-head"></tr></thead><tbody id="items"></tbody></table></div>
<div class="pager"><button id="p-prev" type="button">&larr; prev</button><span id="p-info"></span>
<button id="p-next" type="button">next &rarr;</button></div>
<div id="item-detail"></div>
</section>
"""




