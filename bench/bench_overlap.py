"""Throughput and peak memory of ``evalkit overlap`` on a generated corpus, beside grep.

Generates a corpus of about --size-mb MB (default 1024) of text in a temporary
folder (deleted afterwards): random lines over the benchmark's own vocabulary,
with --planted benchmark questions written into it at random places (inside lines,
at line starts, across line breaks, in capitals). Then, each in its own process:

- evalkit: ``corpus.analyse_overlap`` of the benchmark against the corpus, one core;
- the reference: ``grep -F -c -f PATTERNS`` (LC_ALL=C) over the same bytes, where
  PATTERNS are the benchmark's normalized 13-grams, as the practical limit of a
  C exact multi-pattern matcher reading the same bytes.

Prints MB/s and peak RSS of both, the ratio of their times, and whether every
planted question was found exactly once (and nothing else).

With --long-line-mb MB it measures memory on one very long line instead: a JSONL file
whose only record holds MB megabytes of text in one string (JSON escapes in it, one
benchmark question planted in the middle), and the same words as one line of a .txt
file; each is scanned in its own process, which prints its peak RSS and whether the
question was found. The scan's memory should not grow with the line (issue 29: 3.3 GB
for a 200 MB JSONL line before; a .txt line 204 MB).

    python -m bench.bench_overlap [--size-mb 1024] [--planted 200] [--benchmark FILE]
    python -m bench.bench_overlap --long-line-mb 200
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_BENCHMARK = ROOT.parent / "shared" / "eval_data" / "medqa_test.jsonl"
BLOCK_MB = 64


def _items(path: Path):
    from evalkit.data.datasets import load_dataset
    return load_dataset(path).items


def generate(folder: Path, items, size_mb: int, planted: int, seed: int = 0) -> dict[str, int]:
    """Write the corpus; returns the planted item ids -> how many times planted (once each)."""
    rng = random.Random(seed)
    vocab = sorted({w for it in items for w in it.question.split()})
    n_blocks = max(1, size_mb // BLOCK_MB)
    picks = rng.sample(range(len(items)), min(planted, len(items)))
    per_block: list[list] = [[] for _ in range(n_blocks)]
    for k, i in enumerate(picks):
        per_block[k % n_blocks].append(items[i])
    words = rng.choices(vocab, k=BLOCK_MB * 1_000_000 // 9)
    lines, i = [], 0
    while i < len(words):
        n = rng.choice((5, 12, 30, 80, 200, 1500))
        lines.append(" ".join(words[i:i + n]))
        i += n
    base = lines
    with open(folder / "corpus.txt", "w", encoding="utf-8") as fh:
        for b in range(n_blocks):
            block = list(base)
            rng.shuffle(block)
            for it in per_block[b]:
                at = rng.randrange(len(block))
                q = it.question
                style = rng.randrange(3)
                text = q.upper() if style == 0 and q.isascii() else q.replace(". ", ".\n") if style == 1 else q
                block[at] = block[at] + " " + text + " " + block[(at + 1) % len(block)][:80]
            fh.write("\n".join(block) + "\n")
    return {items[i].id: 1 for i in picks}


def _patterns(items, path: Path) -> int:
    from evalkit.data.overlap import words
    grams = set()
    for it in items:
        ws = words(it.question)
        grams.update(" ".join(ws[i:i + 13]) for i in range(len(ws) - 12))
    path.write_text("".join(g + "\n" for g in sorted(grams)), encoding="utf-8")
    return len(grams)


def _sharing(items, planted) -> set[str]:
    """Ids of the items that share a 13-gram with a planted item (the planted ones included)."""
    from evalkit.data.overlap import words

    def grams(it):
        ws = words(it.question)
        return {tuple(ws[i:i + 13]) for i in range(len(ws) - 12)} or {tuple(ws)}
    hot = set().union(*(grams(it) for it in items if it.id in planted))
    return {it.id for it in items if grams(it) & hot}


def scan_child(benchmark: str, corpus: str) -> None:
    """Run in a child process: scan, print one JSON line of figures."""
    from evalkit.data.corpus import scan_corpus
    from evalkit.data.overlap import index_items
    items = _items(Path(benchmark))
    t0, c0 = time.perf_counter(), time.process_time()
    index = index_items(items)
    t1, c1 = time.perf_counter(), time.process_time()
    scan = scan_corpus(index, [corpus])
    t2, c2 = time.perf_counter(), time.process_time()
    rows = [f.to_dict() for f in scan.scanner.found]
    rows = [r for r in rows if r["ngram_overlap"] or r["medpalm_overlap"]]
    print(json.dumps({"seconds": t2 - t1, "cpu_seconds": c2 - c1, "index_seconds": t1 - t0,
                      "index_cpu_seconds": c1 - c0, "bytes": scan.bytes_read,
                      "found": {r["id"]: r["places"] for r in rows},
                      "whole": [r["id"] for r in rows if r["whole_question"]],
                      "medpalm": sum(r["medpalm_overlap"] for r in rows)}))


def write_long_line(folder: Path, question: str, size_mb: int, seed: int = 0) -> tuple[Path, Path]:
    """FOLDER/line.jsonl (one record, SIZE_MB MB of text in one string, QUESTION in the middle) and
    FOLDER/line.txt (the same words on one line), written piece by piece."""
    rng = random.Random(seed)
    vocab = r'the of patient and with was in to for on study clinical results data caf\u00e9 \"quoted\" a\nb'.split()
    piece = " ".join(rng.choice(vocab) for _ in range(200_000)) + " "  # about 1.5 MB of JSON string text
    n = max(1, size_mb * 1_000_000 // len(piece))
    jsonl, txt = folder / "line.jsonl", folder / "line.txt"
    plain = json.loads(f'"{piece}"')
    with open(jsonl, "w", encoding="utf-8") as fj, open(txt, "w", encoding="utf-8") as ft:
        fj.write('{"meta": {"source": "bench"}, "text": "')
        for i in range(n):
            if i == n // 2:
                fj.write(json.dumps(question)[1:-1] + " ")
                ft.write(question + " ")
            fj.write(piece)
            ft.write(plain)
        fj.write('"}\n')
        ft.write("\n")
    return jsonl, txt


def long_line_child(benchmark: str, corpus: str) -> None:
    """Run in a child process: scan one file, print its peak RSS and what was found (one JSON line)."""
    import resource

    from evalkit.data.corpus import scan_corpus
    from evalkit.data.overlap import index_items
    items = _items(Path(benchmark))
    t0 = time.perf_counter()
    scan = scan_corpus(index_items(items), [corpus])
    rows = [f.to_dict() for f in scan.scanner.found]
    print(json.dumps({"seconds": time.perf_counter() - t0, "bytes": scan.bytes_read,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "whole": [r["id"] for r in rows if r["whole_question"]], "notes": scan.problems}))


def long_line(benchmark: Path, size_mb: int) -> None:
    """The --long-line-mb measurement (see the module's docstring)."""
    items = _items(benchmark)
    planted = items[len(items) // 2]
    folder = Path(tempfile.mkdtemp(prefix="bench_overlap_line_"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        (folder / "empty.txt").write_bytes(b"")
        for path in (folder / "empty.txt", *write_long_line(folder, planted.question, size_mb)):
            out = subprocess.run([sys.executable, __file__, "--long-line-child", str(benchmark), str(path)],
                                 capture_output=True, text=True, env=env)
            if out.returncode:
                raise SystemExit(out.stderr)
            ev = json.loads(out.stdout.strip().splitlines()[-1])
            found = planted.id in ev["whole"]
            if path.name == "empty.txt":
                print(f"baseline, an empty corpus (the process, the benchmark's index): peak RSS {ev['rss_mb']:.0f} MB")
                continue
            print(f"{path.name}: one line of {path.stat().st_size / 1e6:.0f} MB: peak RSS {ev['rss_mb']:.0f} MB, "
                  f"{ev['seconds']:.1f} s wall ({ev['bytes'] / 1e6 / ev['seconds']:.0f} MB/s); planted question found "
                  f"whole: {found}; {len(ev['whole'])} items flagged whole")
            for note in ev["notes"]:
                print(f"  note: {note[len(str(folder)) + 1:] if note.startswith(str(folder)) else note}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, dict[str, float]]:
    """Run CMD under /usr/bin/time: its output, and wall / CPU seconds and peak RSS (MB) of CMD alone."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        proc = subprocess.run(["/usr/bin/time", "-o", tf.name, "-f", "%e %U %S %M", *cmd],
                              capture_output=True, text=True, env=env)
        wall, user, sys_s, rss_kb = map(float, Path(tf.name).read_text().split()[-4:])
    return proc, {"wall": wall, "cpu": user + sys_s, "rss_mb": rss_kb / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--planted", type=int, default=200)
    ap.add_argument("--benchmark", type=Path, default=DEFAULT_BENCHMARK)
    ap.add_argument("--long-line-mb", type=int, default=None,
                    help="Measure peak memory on one line of this many MB (JSONL and text) instead.")
    ap.add_argument("--scan-child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--long-line-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.scan_child:
        scan_child(*args.scan_child)
        return
    if args.long_line_child:
        long_line_child(*args.long_line_child)
        return
    if args.long_line_mb:
        long_line(args.benchmark, args.long_line_mb)
        return
    items = _items(args.benchmark)
    folder = Path(tempfile.mkdtemp(prefix="bench_overlap_"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LC_ALL": "C"}
    try:
        t0 = time.perf_counter()
        planted = generate(folder, items, args.size_mb, args.planted)
        corpus = folder / "corpus.txt"
        size = corpus.stat().st_size / 1e6
        n_patterns = _patterns(items, folder / "patterns.txt")
        print(f"corpus: {size:.0f} MB, {len(planted)} planted questions; benchmark: {len(items)} items, "
              f"{n_patterns} distinct 13-grams (generated in {time.perf_counter() - t0:.0f} s)")
        out, ev_t = _timed([sys.executable, "-m", "bench.bench_overlap", "--scan-child", str(args.benchmark),
                            str(corpus)], env)
        if out.returncode:
            raise SystemExit(out.stderr)
        ev = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"evalkit overlap: scan {ev['seconds']:.1f} s wall = {size / ev['seconds']:.0f} MB/s, "
              f"{ev['cpu_seconds']:.1f} s CPU = {size / ev['cpu_seconds']:.0f} MB/s of CPU (index of the benchmark: "
              f"{ev['index_cpu_seconds']:.1f} s CPU); whole process {ev_t['wall']:.1f} s wall, {ev_t['cpu']:.1f} s CPU, "
              f"peak RSS {ev_t['rss_mb']:.0f} MB")
        grep, g_t = _timed(["grep", "-F", "-c", "-f", str(folder / "patterns.txt"), str(corpus)], env)
        print(f"grep -F -c -f (reference): {g_t['wall']:.1f} s wall = {size / g_t['wall']:.0f} MB/s, "
              f"{g_t['cpu']:.1f} s CPU = {size / g_t['cpu']:.0f} MB/s of CPU, peak RSS {g_t['rss_mb']:.0f} MB, "
              f"{grep.stdout.strip()} matching lines")
        _, wc_t = _timed(["wc", "-l", str(corpus)], env)
        print(f"reading floor, wc -l over the same bytes: {wc_t['wall']:.1f} s wall = {size / wc_t['wall']:.0f} MB/s, "
              f"{wc_t['cpu']:.1f} s CPU")
        print(f"ratio evalkit / grep: wall {ev_t['wall'] / g_t['wall']:.2f}, CPU {ev_t['cpu'] / g_t['cpu']:.2f} "
              f"(target <= 3; and >= 50 MB/s)")
        found = ev["found"]
        expected = _sharing(items, planted)
        whole = sum(1 for i in planted if i in ev["whole"])
        print(f"planted questions found whole: {whole}/{len(planted)}; flagged = planted + items sharing a 13-gram "
              f"with one: {set(found) == expected} ({len(found)} flagged, {len(expected)} expected); "
              f"Med-PaLM rule: {ev['medpalm']}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
