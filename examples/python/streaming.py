"""Streaming generation with transformers' TextStreamer, or with a plain callback that can stop
a row early.

    python examples/python/streaming.py [model_dir_or_hub_id]"""
import sys
from pathlib import Path

from kernel_pytorch.integrations import HuggingFaceOptimizer

ROOT = Path(__file__).resolve().parents[2]
model_id = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "models" / "smollm2-135m")
optimizer = HuggingFaceOptimizer.from_pretrained(model_id, optimization_level="reference")
model, tok = optimizer.optimize(), optimizer.tokenizer

inputs = tok("Once upon a time", return_tensors="np")
try:
    from transformers import TextStreamer
    model.generate(**inputs, max_new_tokens=40, streamer=TextStreamer(tok, skip_prompt=False))
except ImportError:
    pass

# A callback gets (row, token) for every new token; returning False stops that row.
words = []


def on_token(row, token):
    words.append(tok.decode([token]))
    print(words[-1], end="", flush=True)
    return "." not in words[-1]  # stop at the end of the first sentence


model.generate(**inputs, max_new_tokens=60, streamer=on_token)
print()
