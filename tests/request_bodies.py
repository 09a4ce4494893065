"""The request bodies evalkit sends for a fixed set of runs, recorded by the loopback double.

``tests/data/request_bodies.jsonl`` holds them as the code before the prompt was built in one
place (prompts.build_messages) sent them; ``tests/test_prompt_bytes.py`` checks the bodies are
still the same, byte for byte (key order included). Regenerate only on purpose:
``python -m tests.request_bodies`` (writes the file).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "request_bodies.jsonl"


def write_inputs(folder: Path) -> dict[str, Path]:
    """Small benchmark files of each prompt shape: options, an abstract, a conversation."""
    sys.path.insert(0, str(ROOT))
    from tests.conftest import write_items

    folder.mkdir(parents=True, exist_ok=True)
    mcq = write_items(folder / "mcq.jsonl", 3)
    pubmed = folder / "pubmed.jsonl"
    pubmed.write_text("".join(json.dumps({"id": f"p{i}", "question": f"Does drug {i} help?",
                                          "context": f"Abstract {i}: it was tried.",
                                          "options": {"A": "yes", "B": "no", "C": "maybe"}, "answer_idx": "A"}) + "\n"
                              for i in range(2)))
    convo = folder / "convo.jsonl"
    convo.write_text("".join(json.dumps({"prompt_id": f"c{i}", "prompt": [
        {"role": "system", "content": "You are a careful clinician."},
        {"role": "user", "content": f"My child has a fever of 3{i} C."},
        {"role": "assistant", "content": "How long has it lasted?"},
        {"role": "user", "content": "Two days."}],
        "rubrics": [{"criterion": "Asks about hydration", "points": 5}]}) + "\n" for i in range(2)))
    return {"mcq": mcq, "pubmed": pubmed, "convo": convo}


def cases(files: dict[str, Path]) -> list[tuple[str, dict]]:
    """(name, RunConfig settings) of each recorded run."""
    controls = dict(system_prompt="Answer briefly.", stop=("</s>",), top_k=20, seed=7,
                    chat_template_kwargs={"enable_thinking": False}, extra_body={"repetition_penalty": 1.05})
    return [
        ("strict", dict(eval_files=[str(files["mcq"])])),
        ("controls", dict(eval_files=[str(files["mcq"])], params=controls)),
        ("context", dict(eval_files=[str(files["pubmed"])], prompt="cot")),
        ("conversation", dict(eval_files=[str(files["convo"])], adapter="healthbench", scorers=[])),
        ("conversation+system", dict(eval_files=[str(files["convo"])], adapter="healthbench", scorers=[],
                                     params=dict(system_prompt="Be brief."))),
        ("fewshot", dict(eval_files=[str(files["mcq"])], prompt="fewshot", fewshot_k=2)),
        ("self-consistency", dict(eval_files=[str(files["mcq"])], samples=3, params=dict(seed=3),
                                  n_per_request=False)),
        ("ensemble-refinement", dict(eval_files=[str(files["mcq"])], strategy="ensemble-refinement", samples=2,
                                     refine_samples=2, params=dict(seed=11, system_prompt="Think."))),
    ]


def record_bodies(tmp: Path) -> list[dict]:
    """Run every case against a recording loopback double; the bodies each sent, in a stable order."""
    sys.path.insert(0, str(ROOT))
    from evalkit.config import GenerationParams, RunConfig
    from evalkit.run.runner import run_eval
    from tests.conftest import Loopback

    files = write_inputs(tmp / "inputs")
    out = []
    for name, settings in cases(files):
        record = tmp / f"{name}.jsonl"
        lb = Loopback("--record", str(record))
        try:
            params = GenerationParams(max_new_tokens=32, **settings.pop("params", {}))
            run_eval(RunConfig(endpoint=lb.url, results_dir=str(tmp / "results"), concurrency=1, params=params,
                               **settings))
        finally:
            lb.stop()
        bodies = sorted(record.read_text(encoding="utf-8").splitlines())
        out += [{"case": name, "body": line} for line in bodies]
    return out


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        rows = record_bodies(Path(d))
    GOLDEN.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} bodies -> {GOLDEN}")
