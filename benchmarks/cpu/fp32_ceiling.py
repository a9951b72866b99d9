#!/usr/bin/env python3
"""How fast could an fp32 encoder forward be on this CPU? A lower bound from the GEMM ceiling.

Measures the single-thread fp32 GEMM rate of this machine (best of OpenBLAS through numpy and
PyTorch's BLAS on square matrices: the most favourable shape), counts the multiply-adds of a BERT
encoder forward (the linears plus the two attention products) from the official configs in
benchmarks/configs, and prints the time the forward would take if every FLOP ran at that ceiling
and nothing else cost anything. A target time below that bound cannot be met at fp32 by any
engine on this machine.

Usage: python3 benchmarks/cpu/fp32_ceiling.py
"""
import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402  (thread counts must be set first)
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = os.path.join(HERE, "..", "configs")


def gemm_ceiling_gflops():
    torch.set_num_threads(1)
    best = 0.0
    for n in (1024, 2048):
        a = np.random.rand(n, n).astype(np.float32)
        b = np.random.rand(n, n).astype(np.float32)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        for mm in (lambda: a @ b, lambda: ta @ tb):
            mm()
            for _ in range(3):
                t = time.perf_counter()
                mm()
                best = max(best, 2 * n ** 3 / (time.perf_counter() - t) / 1e9)
    return best


def encoder_gflop(cfg_name, batch, seq):
    c = json.load(open(os.path.join(CONFIGS, cfg_name)))
    h, f, layers = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    linear = layers * (4 * h * h + 2 * h * f) * batch * seq       # q, k, v, o, up, down
    attention = layers * 2 * batch * seq * seq * h                # QK^T and PV
    return 2 * (linear + attention) / 1e9


def main():
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    ceiling = gemm_ceiling_gflops()
    print(f"single-thread fp32 GEMM ceiling measured now: {ceiling:.1f} GFLOP/s")
    print(f"{'workload':<22}{'GFLOP':>8}{'bound ms':>10}")
    for label, cfg, batch in (("MiniLM b1 s128", "all-MiniLM-L6-v2.json", 1), ("MiniLM b8 s128", "all-MiniLM-L6-v2.json", 8),
                              ("bert-base b1 s128", "bert-base-uncased.json", 1),
                              ("bert-base b8 s128", "bert-base-uncased.json", 8)):
        g = encoder_gflop(cfg, batch, 128)
        print(f"{label:<22}{g:>8.2f}{1000 * g / ceiling:>10.1f}")


if __name__ == "__main__":
    main()
