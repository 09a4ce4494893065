"""Draw, show and assemble the hand-labelled set of real generations (tests/data/extraction_real_labelled.jsonl).

The set was made in three steps; this script does the first two and the last:

1. ``draw``: a stratified random sample (fixed seed) of the public generations in
   ``../shared/model_outputs`` (MIRAGE GPT-3.5/GPT-4, Lievin InstructGPT): strata by source,
   by what the extractor of the time did (which rule, or unparsed), and texts whose end holds
   words the new rules read ("hence", "thus", "final:", "most consistent with", arrows ...).
   Written to a work file outside the repository.
2. ``show --batch K``: prints 40 cases at a time (options, and the end of the text, or all of a
   short one) for a person to read and label: a letter, or ``-`` when the text commits to no
   option. The labels are typed into a plain file, one ``INDEX LABEL [note]`` a line.
3. ``build LABELS``: joins the labels with the drawn cases into the fixture (the output text and
   option texts only, no other benchmark field), each marked with how its label was made.

    python scripts/label_extraction_cases.py draw
    python scripts/label_extraction_cases.py show --batch 0
    python scripts/label_extraction_cases.py build labels.txt
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evalkit.scoring.extract import extract_choice  # noqa: E402

SHARED = ROOT.parent / "shared" / "model_outputs"
WORK = Path("/tmp/extraction_label_draw.jsonl")
FIXTURE = ROOT / "tests" / "data" / "extraction_real_labelled.jsonl"
PUBMEDQA = {"A": "yes", "B": "no", "C": "maybe"}
_LIEVIN_OPTION = re.compile(r"^([A-J])\) (.*)$", re.M)
# Words near the end of a text that the new rules read, to draw their look-alikes.
_CUES = re.compile(r"(?i)\b(?:hence|thus|so|final\s*:|most consistent with|is the (?:best|most appropriate)|start)\b|=>|->|⇒|→")
SEED = 34
PER_STRATUM = {"mirage_json": 50, "mirage_unparsed": 50, "mirage_other": 22, "lievin_answer_is": 50,
               "lievin_unparsed": 50, "lievin_other": 30, "cue_words": 50}
BATCH = 40
LABEL_HOW = ("read by hand (show): the options and the output's last 600 characters, all of a shorter one; "
             "the extractors' answers not shown; a letter where the output commits to one option, else null")
# Added by hand after the random draw: unparsed generations met while reading the unparsed ones,
# where a reader sees an answer the extractor misses, or a look-alike of one ("the answer is not A").
CURATED = [
    "prediction/medmcqa/cot/OpenAI/gpt-35-turbo-16k/dev_796d7b5d-f79d-4c6a-860c-198e9404ea07.json",
    "prediction/pubmedqa/cot/OpenAI/gpt-35-turbo-16k/test_23571528.json",
    "prediction/medmcqa/rag_32/OpenAI/gpt-4-32k/medcorp/RRF-4/dev_e45edfb9-2b6f-4ffb-9d2e-82ee6504cba5.json",
    "prediction/medmcqa/cot/OpenAI/gpt-35-turbo-16k/dev_abbc3eaf-dde4-426e-9222-6bbd6522888f.json",
    "prediction/medmcqa/cot/OpenAI/gpt-35-turbo-16k/dev_bebb654f-88d5-4a1f-a9fb-dd65b42beeca.json",
    "455305d3e6ba2f2e536c244dc86295e2|None",
    "316510e4b141740eb995baa6f1dda12e|None",
    "8ab26f2427e4ffeb48b8c94169a7727f|Let's reflect on each answer option step by step",
    "7df9de82afefac4b346246312466c7e9|Let's differentiate using step by step reasoning like a medical expert",
    "bdcbf2c8240863fa00079b7e84b0b488|Let's derive the differential diagnosis step by step",
    "90e6f2ad30a42b7ce53c520729223818|Let's differentiate using step by step reasoning like a medical expert",
    "3c20d2dae6c7156af935f7a3c044a4e1|Let's derive the differential diagnosis step by step",
    "7764c7fedbff47420664777748fdf6a7|Let's use step by step inductive reasoning, given the medical nature of the question",
]


def load() -> list[dict]:
    """Every generation with its options, as (source, id, dataset, model, setting, options, text)."""
    out = []
    with open(SHARED / "mirage_predictions_gpt35_gpt4.jsonl", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            options = ast.literal_eval(r["options"]) if isinstance(r["options"], str) else r["options"]
            text = r["raw_output"] if isinstance(r["raw_output"], str) else json.dumps(r["raw_output"])
            out.append({"source": "mirage", "id": r["source_path"], "dataset": r["dataset"], "model": r["model"],
                        "options": options, "text": text})
    with open(SHARED / "lievin_instructgpt_cot_samples.jsonl", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            options = dict(PUBMEDQA) if r["dataset"] == "pubmedqa" else \
                dict(_LIEVIN_OPTION.findall(r["question_block"].split("\n\n")[-1]))
            if len(options) in (3, 4):  # a few question blocks were mangled by the HTML export
                out.append({"source": "lievin", "id": f'{r["qid"]}|{r["prompt_style"]}', "dataset": r["dataset"],
                            "model": r["model"], "options": options, "text": r["raw_output"]})
    return out


def stratum(r: dict) -> str:
    """The stratum of one generation, from its source and what the extractor did with it."""
    method = extract_choice(r["text"], r["options"]).method
    if r["source"] == "mirage":
        return "mirage_json" if method == "json" else "mirage_unparsed" if method is None else "mirage_other"
    return "lievin_answer_is" if method == "answer_is" else "lievin_unparsed" if method is None else "lievin_other"


def draw() -> None:
    rng = random.Random(SEED)
    records = load()
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        groups[stratum(r)].append(r)
        if _CUES.search(r["text"][-300:]):
            groups["cue_words"].append(r)
    chosen, seen = [], set()
    for name, n in PER_STRATUM.items():
        pool = [r for r in groups[name] if r["id"] not in seen]
        for r in rng.sample(pool, min(n, len(pool))):
            seen.add(r["id"])
            chosen.append({**r, "stratum": name})
    by_id = {r["id"]: r for r in records}
    chosen += [{**by_id[i], "stratum": "curated"} for i in CURATED if i not in seen]
    with open(WORK, "w", encoding="utf-8") as fh:
        for r in chosen:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(chosen)} cases drawn to {WORK}")


def show(batch: int) -> None:
    cases = [json.loads(line) for line in WORK.read_text(encoding="utf-8").splitlines()]
    for i in range(batch * BATCH, min(len(cases), (batch + 1) * BATCH)):
        c = cases[i]
        text = c["text"] if len(c["text"]) <= 700 else "..." + c["text"][-600:]
        print(f"===== {i} [{c['source']}] {json.dumps({k: v[:70] for k, v in c['options'].items()}, ensure_ascii=False)}")
        print(text.strip())


def build(labels_path: str) -> None:
    cases = [json.loads(line) for line in WORK.read_text(encoding="utf-8").splitlines()]
    labels = {}
    for line in Path(labels_path).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            index, label, *note = line.split(maxsplit=2)
            labels[int(index)] = (None if label == "-" else label, note[0] if note else "")
    with open(FIXTURE, "w", encoding="utf-8") as fh:
        for i, c in enumerate(cases):
            if i not in labels:
                continue
            expected, note = labels[i]
            fh.write(json.dumps({
                "source": c["source"], "id": c["id"], "dataset": c["dataset"], "model": c["model"],
                "stratum": c["stratum"], "options": c["options"], "text": c["text"], "expected": expected,
                "label_how": LABEL_HOW,
                **({"note": note} if note else {}),
            }, ensure_ascii=False) + "\n")
    print(f"{len(labels)} labelled cases written to {FIXTURE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("draw")
    s = sub.add_parser("show")
    s.add_argument("--batch", type=int, required=True)
    b = sub.add_parser("build")
    b.add_argument("labels")
    args = parser.parse_args()
    if args.command == "draw":
        draw()
    elif args.command == "show":
        show(args.batch)
    else:
        build(args.labels)


if __name__ == "__main__":
    main()
