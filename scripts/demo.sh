#!/usr/bin/env bash
# The main job on the embedded default: serve SmolLM2-135M-Instruct with llama.cpp,
# evaluate the sample benchmark with the strict prompt, print the table, stop.
set -euo pipefail
cd "$(dirname "$0")/.."
EVALKIT=${EVALKIT:-.venv/bin/evalkit}
NAME=${EVALKIT_DEMO_NAME:-demo}

"$EVALKIT" serve --backend llamacpp --name "$NAME"
trap '"$EVALKIT" stop --name "$NAME"' EXIT
"$EVALKIT" run --server "$NAME" --eval-file eval_data/sample_medqa.jsonl --prompt strict \
  --max-new-tokens 256 --task-folder demo
echo "evalkit lives in .venv, not on your PATH: '. .venv/bin/activate' once per shell, then 'evalkit report results/demo/*'" \
  "(or '.venv/bin/evalkit ...' without activating)"
