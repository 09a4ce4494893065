"""Benchmark: extraction + scoring rate over 100,000 synthetic saved generations.

Generations are built in memory from realistic templates (step-by-step
reasoning, <think> blocks, HuatuoGPT-style "## Final Response" sections,
MIRAGE-style JSON, boxed answers, bare letters, yes/no/maybe, refusals and
truncated reasoning), with lengths up to about 2,000 tokens (~4 characters a
token). Prints samples/s for the default extractor and for the MedReason
compat extractor, the default's rate on the longest generations, and the
ratio to the 20,000 samples/s target. Scoring goes through
``evalkit.run.summary.rescore_samples`` as ``evalkit score`` does; that holds off the
cyclic garbage collector while it builds the scored dicts (``store.paused_gc``),
and the rate the same loop gets with the collector running is printed too.

    python -m bench.bench_extract [--n 100000] [--compat-n 100000] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evalkit.scoring.extract import extract_choice  # noqa: E402
from evalkit.benchmarks.medreason.extract import extract_medreason  # noqa: E402
from evalkit.run.summary import rescore_sample, rescore_samples, summarize  # noqa: E402
from evalkit.scoring.choice import ChoiceScorer  # noqa: E402
from evalkit.scoring.stage import ScoringPlan  # noqa: E402

TARGET = 20_000
CHARS_PER_TOKEN = 4
MAX_TOKENS = 2_000

OPTION_SETS = [
    {"A": "Acute pancreatitis", "B": "Perforated peptic ulcer", "C": "Acute cholecystitis", "D": "Mesenteric ischemia"},
    {"A": "Lisinopril", "B": "Metoprolol", "C": "Amlodipine", "D": "Hydrochlorothiazide", "E": "Spironolactone"},
    {"A": "Hyperkalemia", "B": "Hypokalemia", "C": "Hypercalcemia", "D": "Hypocalcemia", "E": "Hypermagnesemia",
     "F": "Hypomagnesemia", "G": "Hypernatremia", "H": "Hyponatremia", "I": "Hyperphosphatemia", "J": "Metabolic alkalosis"},
    {"A": "yes", "B": "no", "C": "maybe"},
]
SENTENCES = [
    "The patient is a {age}-year-old {sex} presenting with {symptom} for {days} days.",
    "Vital signs show a heart rate of {hr} beats per minute and a blood pressure of {sbp}/{dbp} mm Hg.",
    "Laboratory studies reveal a serum potassium of {k} mEq/L and a creatinine of {cr} mg/dL.",
    "Let's consider each option in turn, weighing the history against the examination findings.",
    "Option {letter} would explain the {symptom}, but it does not account for the laboratory pattern.",
    "{opt} is typically associated with a different time course and is therefore less likely here.",
    "The imaging findings argue against a structural cause, which narrows the differential considerably.",
    "In a patient of this age, the pretest probability of {opt} is moderate, so further testing is reasonable.",
    "Wait, I should double-check whether {opt} could also produce these findings.",
    "The study enrolled {n} participants and reported a hazard ratio of {hr2} (95% CI {lo} to {hi}).",
    "These results suggest an association, although residual confounding cannot be excluded.",
    "Hmm, the absence of fever makes an infectious cause less likely but does not rule it out.",
]
SYMPTOMS = ["epigastric pain", "palpitations", "confusion", "muscle weakness", "dyspnea", "fatigue", "chest pain"]


def _sentence(rng: random.Random, options: dict[str, str]) -> str:
    letter = rng.choice(list(options))
    return rng.choice(SENTENCES).format(
        age=rng.randint(18, 90), sex=rng.choice(["man", "woman"]), symptom=rng.choice(SYMPTOMS), days=rng.randint(1, 30),
        hr=rng.randint(50, 140), sbp=rng.randint(90, 180), dbp=rng.randint(50, 110), k=round(rng.uniform(2.5, 7.5), 1),
        cr=round(rng.uniform(0.5, 4.0), 1), letter=letter, opt=options[letter], n=rng.randint(40, 5000),
        hr2=round(rng.uniform(0.4, 2.5), 2), lo=round(rng.uniform(0.2, 0.9), 2), hi=round(rng.uniform(1.1, 3.0), 2),
    )


def _reasoning(rng: random.Random, options: dict[str, str], tokens: int) -> str:
    parts, size = [], 0
    while size < tokens * CHARS_PER_TOKEN:
        s = _sentence(rng, options)
        parts.append(s + ("\n\n" if rng.random() < 0.2 else " "))
        size += len(s) + 1
    return "".join(parts)


def _generation(rng: random.Random) -> tuple[dict[str, str], str, str]:
    options = rng.choice(OPTION_SETS)
    gold = rng.choice(list(options))
    letter = gold if rng.random() < 0.6 else rng.choice(list(options))
    # Lengths: a third short, a third medium, a third long (up to MAX_TOKENS).
    tokens = rng.choice([rng.randint(5, 100), rng.randint(100, 800), rng.randint(800, MAX_TOKENS - 50)])
    body = _reasoning(rng, options, tokens)
    kind = rng.randrange(11)
    if kind == 0:
        text = body + f"\n\nTherefore, among A through {list(options)[-1]}, the answer is {letter}."
    elif kind == 1:
        text = f"<think>\n{body}\n</think>\n\nThe answer is {letter}. {options[letter]}"
    elif kind == 2:
        text = f"## Thinking\n\n{body}\n\n## Final Response\n\nThe most likely answer is {letter}. {options[letter]}."
    elif kind == 3:
        text = '{"step_by_step_thinking": "' + body.replace("\n", "\\n") + f'", "answer_choice": "{letter}. {options[letter]}"}}'
    elif kind == 4:
        text = body + f"\n\n**Final Answer:** $\\boxed{{{letter}}}$"
    elif kind == 5:
        text = f"{letter}. {options[letter]}" if rng.random() < 0.5 else letter
    elif kind == 6:
        text = body + f"\n\nAnswer: {letter}"
    elif kind == 7:
        text = body + f"\nTherefore, the most likely diagnosis is {options[letter].lower()}."
    elif kind == 8:
        text = "<think>\n" + body  # truncated inside the reasoning
    elif kind == 9:
        text = body  # truncated without a verdict
    else:
        text = "I'm sorry, but I can't determine the answer from the information provided."
    return options, gold, text


def build(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    samples = []
    for i in range(n):
        options, gold, text = _generation(rng)
        samples.append({
            "id": str(i), "dataset": "pubmedqa" if len(options) == 3 else f"synthetic-{len(options)}",
            "options": options, "answer_idx": gold, "output": text,
            "finish_reason": "length" if text.startswith("<think>") and "</think>" not in text else "stop",
        })
    return samples


def rate(samples: list[dict], extractor, repeats: int = 3, collector_on: bool = False) -> float:
    """Samples/s of extraction + scoring + summary; the best of REPEATS runs (the machine is shared).

    COLLECTOR_ON scores sample by sample with the cyclic garbage collector left running."""
    plan = ScoringPlan([ChoiceScorer(extractor)])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        if collector_on:
            scored = [rescore_sample(s, plan=plan) for s in samples]
        else:
            scored = rescore_samples(samples, plan=plan)
        summarize(scored)
        best = min(best, time.perf_counter() - start)
        del scored
    return len(samples) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="generations for the default extractor")
    parser.add_argument("--compat-n", type=int, default=100_000, help="generations for the compat extractor")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    t0 = time.perf_counter()
    samples = build(max(args.n, args.compat_n), args.seed)
    tokens = sorted(len(s["output"]) // CHARS_PER_TOKEN for s in samples)
    print(f"built {len(samples):,} generations in {time.perf_counter() - t0:.1f}s; "
          f"~tokens median {tokens[len(tokens) // 2]}, p90 {tokens[int(len(tokens) * 0.9)]}, max {tokens[-1]}")

    t0 = time.perf_counter()
    for s in samples[:args.n]:
        extract_choice(s["output"], s["options"])
    alone = args.n / (time.perf_counter() - t0)
    default_rate = rate(samples[:args.n], extract_choice)
    long_samples = [s for s in samples[:args.n] if len(s["output"]) >= 1500 * CHARS_PER_TOKEN]
    long_rate = rate(long_samples, extract_choice)
    gc_on_rate = rate(samples[:args.n], extract_choice, repeats=1, collector_on=True)
    compat_rate = rate(samples[:args.compat_n], extract_medreason, repeats=1)
    print(f"evalkit   (default): {default_rate:>10,.0f} samples/s over {args.n:,}  "
          f"({default_rate / TARGET:.2f}x the {TARGET:,}/s target)")
    print(f"  extraction alone (no scoring stage, no summary): {alone:,.0f} samples/s; the scoring stage "
          f"costs {1e6 * (1 / default_rate - 1 / alone):.1f} us a sample")
    print(f"  with the garbage collector left running (one run): {gc_on_rate:,.0f} samples/s")
    print(f"evalkit   (>=1500 tokens only): {long_rate:>10,.0f} samples/s over {len(long_samples):,}")
    print(f"medreason (compat):  {compat_rate:>10,.0f} samples/s over {args.compat_n:,}  "
          f"(default is {default_rate / compat_rate:.1f}x faster)")


if __name__ == "__main__":
    main()
