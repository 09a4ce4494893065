"""Agreement of the extractors with the hand labels of real generations (per rule).

Reads tests/data/extraction_real_labelled.jsonl (see scripts/label_extraction_cases.py) and
prints, for evalkit's default extractor and MedReason's compat extractor: agreement, precision
(letters given that match the label), recall (committed cases given the right letter), the
letters given where the output commits to nothing, and the same per rule (``method``).

    python scripts/extraction_agreement.py [--code DIR] [--cases FILE]

``--code DIR`` imports evalkit from another checkout (for example the code before a change),
so the before and after tables come from the same script and the same labels.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "data" / "extraction_real_labelled.jsonl"


def load_cases(path: Path = CASES) -> list[dict[str, Any]]:
    """The labelled cases, one dict a line (text, options, expected letter or None)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def score(cases: Iterable[dict[str, Any]], extractor: Callable) -> dict[str, Any]:
    """Overall and per-rule counts of one extractor against the labels."""
    overall = {"n": 0, "committed": 0, "no_commit": 0, "agree": 0, "given": 0, "right": 0, "given_on_no_commit": 0}
    rules: dict[str, dict[str, int]] = defaultdict(lambda: {"given": 0, "right": 0, "given_on_no_commit": 0})
    for case in cases:
        got = extractor(case["text"], case["options"])
        expected = case["expected"]
        overall["n"] += 1
        overall["committed" if expected else "no_commit"] += 1
        overall["agree"] += got.letter == expected
        if got.letter is None:
            continue
        rule = rules[got.method]
        for counts in (overall, rule):
            counts["given"] += 1
            counts["right"] += got.letter == expected
            counts["given_on_no_commit"] += expected is None
    return {"overall": overall, "rules": dict(rules)}


def _pct(a: int, b: int) -> str:
    return f"{a / b:.3f}" if b else "-"


def table(name: str, result: dict[str, Any], methods: Iterable[str] = ()) -> str:
    """The printed table for one extractor; METHODS are rules listed even where they never fired."""
    o = result["overall"]
    for method in methods:
        result["rules"].setdefault(method, {"given": 0, "right": 0, "given_on_no_commit": 0})
    lines = [
        f"{name}: agreement {o['agree']}/{o['n']} ({_pct(o['agree'], o['n'])}); "
        f"precision {o['right']}/{o['given']} ({_pct(o['right'], o['given'])}); "
        f"recall {o['right']}/{o['committed']} ({_pct(o['right'], o['committed'])}); "
        f"no-commit cases left unparsed {o['no_commit'] - o['given_on_no_commit']}/{o['no_commit']} "
        f"({_pct(o['no_commit'] - o['given_on_no_commit'], o['no_commit'])})",
        f"  {'rule':<28}{'given':>7}{'right':>7}{'precision':>11}{'recall share':>14}{'on no-commit':>14}",
    ]
    for rule, c in sorted(result["rules"].items(), key=lambda kv: -kv[1]["given"]):
        lines.append(f"  {rule:<28}{c['given']:>7}{c['right']:>7}{_pct(c['right'], c['given']):>11}"
                     f"{_pct(c['right'], o['committed']):>14}{c['given_on_no_commit']:>14}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose evalkit is measured")
    parser.add_argument("--cases", type=Path, default=CASES)
    args = parser.parse_args()
    sys.path.insert(0, str(args.code.resolve()))
    from evalkit.scoring.extract import METHODS, extract_choice
    from evalkit.benchmarks.medreason.extract import extract_medreason

    cases = load_cases(args.cases)
    print(f"{len(cases)} labelled cases ({sum(c['expected'] is None for c in cases)} commit to no option); "
          f"evalkit from {Path(sys.modules['evalkit.scoring.extract'].__file__).parent.parent}")
    print(table("evalkit (default)", score(cases, extract_choice), METHODS))
    print(table("medreason (compat)", score(cases, extract_medreason)))


if __name__ == "__main__":
    main()
