#!/usr/bin/env python3
"""Single-threaded encode throughput: kpt::Tokenizer vs Hugging Face tokenizers, same text.

Builds a few MB of mixed text (English licence texts, Python source, the multilingual parity
corpus), then for each tokenizer runs
  - kpt_tokenizer_bench (C++, one encode call per line, best of N passes), and
  - HF tokenizers: Tokenizer.encode per line, and encode_batch over all lines with
    TOKENIZERS_PARALLELISM=false / RAYON_NUM_THREADS=1 (no Python call per line),
and prints tokens/s and MB/s. Token counts must agree (same ids).

usage: python3 scripts/tokenizer/bench.py --bench build/.../kpt_tokenizer_bench [--mb 4]
"""
import argparse
import glob
import json
import os
import pathlib
import subprocess
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"
import tokenizers  # noqa: E402  (after the thread settings)

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = pathlib.Path(os.environ.get("KPT_SHARED", ROOT.parent / "shared")) / "data/tokenizers"


def build_text(path, megabytes):
    sources = sorted(glob.glob("/usr/share/common-licenses/*")) + \
        sorted(glob.glob("/usr/lib/python3*/**/*.py", recursive=True))
    corpus = json.loads((ROOT / "tests/fixtures/tokenizer/corpus.json").read_text())["texts"]
    lines, size = [], 0
    limit = int(megabytes * 1e6)
    while size < limit:
        for src in sources:
            try:
                text = pathlib.Path(src).read_text(encoding="utf-8")
            except (UnicodeDecodeError, IsADirectoryError, PermissionError):
                continue
            for line in text.splitlines():
                if line.strip():
                    lines.append(line)
                    size += len(line.encode())
            # Mix in the multilingual corpus (newlines inside entries become spaces).
            for t in corpus:
                t = " ".join(t.split("\n"))
                if t.strip():
                    lines.append(t)
                    size += len(t.encode())
            if size >= limit:
                break
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


def bench_hf(tok_path, lines, repeats):
    tok = tokenizers.Tokenizer.from_file(str(tok_path))
    tok.no_padding()
    tok.no_truncation()
    n_bytes = sum(len(line.encode()) for line in lines)
    best_loop = best_batch = 1e30
    n_tokens = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        n_tokens = sum(len(tok.encode(line, add_special_tokens=False).ids) for line in lines)
        best_loop = min(best_loop, time.perf_counter() - t0)
        t0 = time.perf_counter()
        tok.encode_batch(lines, add_special_tokens=False)
        best_batch = min(best_batch, time.perf_counter() - t0)
    return n_tokens, n_bytes, best_loop, best_batch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True, help="path to kpt_tokenizer_bench")
    ap.add_argument("--mb", type=float, default=4.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--names", default="gpt2,bert-base-uncased,qwen3,sp-bpe-32k")
    args = ap.parse_args()
    text_path = pathlib.Path("/tmp/kpt_tokenizer_bench.txt")
    lines = build_text(text_path, args.mb)
    print(f"text: {len(lines)} lines, {text_path.stat().st_size / 1e6:.2f} MB; "
          f"tokenizers {tokenizers.__version__}; single thread")
    print(f"{'tokenizer':20} {'tokens':>9} {'kpt tok/s':>12} {'HF encode tok/s':>16} "
          f"{'HF batch(1t) tok/s':>19} {'kpt MB/s':>9} {'HF batch MB/s':>14}")
    for name in args.names.split(","):
        tok_path = SHARED / name / "tokenizer.json"
        out = subprocess.run([args.bench, str(tok_path), str(text_path), str(args.repeats)],
                             check=True, capture_output=True, text=True).stdout
        ours = json.loads(out)
        n_tokens, n_bytes, loop_s, batch_s = bench_hf(tok_path, lines, args.repeats)
        same = "" if n_tokens == ours["tokens"] else f"  TOKEN COUNT MISMATCH {ours['tokens']}"
        print(f"{name:20} {n_tokens:9d} {ours['tokens_per_s']:12.0f} {n_tokens / loop_s:16.0f} "
              f"{n_tokens / batch_s:19.0f} {ours['mb_per_s']:9.2f} {n_bytes / batch_s / 1e6:14.2f}"
              f"{same}")


if __name__ == "__main__":
    main()
