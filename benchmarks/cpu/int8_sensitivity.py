#!/usr/bin/env python3
"""Can int8 compute keep an encoder inside the accuracy budget? A fake-quantization study.

Simulates, in PyTorch float64-free fp32, the int8-compute GEMM schemes an AVX2 CPU can run on an
encoder's nn.Linear layers and reports the minimum per-token cosine of the last hidden state
against the unquantized model (the `min_cosine` of tests/tolerances.json's accuracy_budget, 0.999).

Schemes (activations: per-row asymmetric uint, weights: per-output-channel symmetric int):
  a8w7  what `KPT_INT8_COMPUTE=1` runs: AVX2 without VNNI sums u8*s8 pairs in int16
        (vpmaddubsw), so one side must lose a bit to avoid saturation; ours keeps 8-bit activations
  a7w8  the other way round
  a8w8  exact 8x8 products: needs VNNI/AMX (or a slower int16 kernel)
and the same with the input channels of largest calibration magnitude kept in fp32 (LLM.int8()-
style outlier columns), or with SmoothQuant-style per-channel smoothing. Calibration statistics
come from other sentences than the evaluation ones.

Usage: python3 benchmarks/cpu/int8_sensitivity.py [--model models/minilm-l6]
"""
import argparse

import torch
from transformers import AutoModel, AutoTokenizer

CALIB = ["A woman is slicing tomatoes in the kitchen.", "Stock markets fell sharply on Monday morning.",
         "The committee will publish its report next week.", "Photosynthesis converts light into chemical energy.",
         "He scored twice in the second half of the match.", "for i in range(10): print(i)",
         "Das Wetter ist heute sehr schön.", "Call me at 555-0100 after 6 pm!"]
EVAL = ["The quick brown fox jumps over the lazy dog.", "KernelPyTorch makes transformer models fast on CPUs and GPUs.",
        "A man is playing a guitar on the street while people walk by.", "What is the capital of France? Paris is.",
        "In 1905 Einstein published four papers that changed physics forever, including special relativity.",
        "def f(x): return x * 2  # a tiny python function", "Je pense, donc je suis.", "12345 67890 !!! ??? ..."]


def q_act(x, bits):
    lo = x.amin(-1, keepdim=True).clamp(max=0)
    hi = x.amax(-1, keepdim=True).clamp(min=0)
    levels = 2 ** bits - 1
    s = ((hi - lo) / levels).clamp(min=1e-12)
    z = torch.round(-lo / s)
    return (torch.clamp(torch.round(x / s) + z, 0, levels) - z) * s


def q_weight(w, bits):
    m = 2 ** (bits - 1) - 1
    s = (w.abs().amax(1, keepdim=True) / m).clamp(min=1e-12)
    return torch.clamp(torch.round(w / s), -m, m) * s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/minilm-l6", help="Hugging Face encoder directory")
    args = ap.parse_args()
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModel.from_pretrained(args.model).eval()
    linears = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}

    calib = {}
    def record(name):
        def hook(_m, inputs, _o):
            x = inputs[0].abs().reshape(-1, inputs[0].shape[-1]).amax(0)
            calib[name] = torch.maximum(calib.get(name, torch.zeros_like(x)), x)
        return hook
    hooks = [m.register_forward_hook(record(n)) for n, m in linears.items()]
    with torch.no_grad():
        model(**tok(CALIB, padding=True, return_tensors="pt"))
    for h in hooks:
        h.remove()

    enc = tok(EVAL, padding=True, return_tensors="pt")
    mask = enc["attention_mask"].bool()
    with torch.no_grad():
        ref = model(**enc).last_hidden_state

    def min_cosine(bits_a, bits_w, outlier_frac=0.0, smooth_alpha=None):
        saved = {}
        for n, m in linears.items():
            w, b = m.weight.data, m.bias
            keep = torch.ones(w.shape[1], dtype=torch.bool)
            if outlier_frac > 0:
                keep[calib[n].topk(max(1, round(outlier_frac * w.shape[1]))).indices] = False
            smooth = None
            if smooth_alpha is not None:
                smooth = calib[n].clamp(min=1e-5) ** smooth_alpha / w.abs().amax(0).clamp(min=1e-5) ** (1 - smooth_alpha)
            wq = q_weight((w * smooth if smooth is not None else w)[:, keep], bits_w)
            w_out = w[:, ~keep]

            def fwd(x, wq=wq, w_out=w_out, b=b, keep=keep, smooth=smooth):
                xs = x / smooth if smooth is not None else x
                y = torch.nn.functional.linear(q_act(xs[..., keep], bits_a), wq, b)
                return y + x[..., ~keep] @ w_out.T if w_out.shape[1] else y
            saved[n] = m.forward
            m.forward = fwd
        try:
            with torch.no_grad():
                out = model(**enc).last_hidden_state
        finally:
            for n, m in linears.items():
                m.forward = saved[n]
        return torch.nn.functional.cosine_similarity(out, ref, dim=-1)[mask].min().item()

    print(f"{args.model}: minimum token cosine vs fp32 over {int(mask.sum())} tokens (budget 0.999)")
    print(f"{'scheme':<34}{'a8w7':>9}{'a7w8':>9}{'a8w8':>9}")
    rows = [("all linears int8", {}), ("+ 1% outlier channels in fp32", {"outlier_frac": 0.01}),
            ("+ 2% outlier channels in fp32", {"outlier_frac": 0.02}),
            ("+ 5% outlier channels in fp32", {"outlier_frac": 0.05}),
            ("smoothing alpha 0.5", {"smooth_alpha": 0.5})]
    for label, kw in rows:
        vals = [min_cosine(a, w, **kw) for a, w in ((8, 7), (7, 8), (8, 8))]
        print(f"{label:<34}" + "".join(f"{v:>9.5f}" for v in vals))


if __name__ == "__main__":
    main()
