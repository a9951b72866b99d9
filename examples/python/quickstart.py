"""Quickstart: one line from a Hugging Face model to a KernelPyTorch model, then use it like the
transformers model it replaces.

    pip install '.[hf]'
    python examples/python/quickstart.py                      # models/smollm2-135m
    python examples/python/quickstart.py path/or/org/name     # a directory or a cached hub id

Needs no network: a hub id is looked up in the local Hugging Face cache."""
import sys
import time
from pathlib import Path

try:
    import torch  # optional: with torch, inputs and outputs are torch tensors
except ImportError:
    torch = None

from kernel_pytorch.integrations import HuggingFaceOptimizer

ROOT = Path(__file__).resolve().parents[2]
model_id = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "models" / "smollm2-135m")

optimizer = HuggingFaceOptimizer.from_pretrained(model_id, optimization_level="production",
                                                 hardware="auto", preserve_accuracy=True)
model = optimizer.optimize()
tokenizer = optimizer.tokenizer  # transformers' tokenizer when installed, else the built-in one
print(model)

prompt = "The three primary colors are"
inputs = tokenizer(prompt, return_tensors="pt" if torch is not None else "np")
t0 = time.perf_counter()
output_ids = model.generate(**inputs, max_new_tokens=24, do_sample=False)
elapsed = time.perf_counter() - t0
print(tokenizer.decode(output_ids[0], skip_special_tokens=True))
print(f"24 new tokens in {elapsed:.2f} s (greedy, batch 1, level {model.level}, {model.engine.device})")

logits = model(**inputs).logits  # [1, S, vocab], like transformers
print("next-token logits:", tuple(logits.shape))
print(optimizer.report)

# Compare with transformers itself when it is installed.
try:
    import transformers
except ImportError:
    sys.exit(0)
hf = transformers.AutoModelForCausalLM.from_pretrained(optimizer.model_dir, dtype=torch.float32).eval()
with torch.no_grad():
    ref_ids = hf.generate(**inputs, max_new_tokens=24, do_sample=False)
print("same tokens as transformers' greedy generate:", ref_ids.tolist() == output_ids.tolist())
