#!/usr/bin/env python3
"""KernelPyTorch CPU levels vs PyTorch eager, ONNX Runtime, CTranslate2 and llama.cpp, side by side in one script.

Workloads (BENCHMARKS.md, the ones that fit a 2-core machine):
  encoders: all-MiniLM-L6-v2 (real weights, models/minilm-l6) and bert-base (official config,
            random weights) at batch 1 and 8, seq 128: time of one forward.
  decoders: gpt2 (official config, random weights) and SmolLM2-135M (real weights,
            models/smollm2-135m): greedy decode of 128 new tokens after a 16-token prompt, batch 1.
Peers: PyTorch eager, ONNX Runtime (encoders, transformer graph optimizations), CTranslate2 float32
and int8 (all workloads), llama.cpp F32 and Q8_0 GGUF (SmolLM2 only; see peers_native.py).
Engines run interleaved: for each round, each workload, each engine in turn, so load from other
processes on the machine hits all of them alike. Reported: median over all timed runs.

  python3 benchmarks/cpu/run.py [--rounds 3] [--reps 5] [--build build-cpu] [--json out.json]
                                [--peers pytorch,onnxruntime,ctranslate2,llama.cpp]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers_native as native  # noqa: E402  (CTranslate2 and llama.cpp)

NATIVE = (native.CTranslate2, native.LlamaCpp)
CACHE = ROOT / ".cache" / "bench_cpu"  # git-ignored: random-weight models and ONNX exports

BERT_BASE = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, hidden_act="gelu", max_position_embeddings=512, type_vocab_size=2)


def ids_row(n, vocab, seed):
    """The same pseudo-random ids as kpt_cpu_bench.cc (LCG), so every engine sees equal inputs."""
    row = []
    for _ in range(n):
        seed = (seed * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        base, span = (1000, vocab - 2000) if vocab > 3000 else (0, vocab)
        row.append(base + (seed >> 33) % span)
    return row


def read_bandwidth_gbs():
    """Single-thread streaming read of 512 MiB (numpy max, best of 3): an indicator of memory
    contention from other processes at the start of a round, not a ceiling (numpy's max is not a
    tuned streaming kernel; fp32 decode steps measured above it)."""
    import numpy as np
    a = np.ones(128 << 20, dtype=np.float32)
    best = min(_timed(a.max) for _ in range(3))
    return a.nbytes / best / 1e9


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def prepare_models():
    import torch
    from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    bert = CACHE / "bert-base-random"
    if not (bert / "config.json").exists():
        BertModel(BertConfig(**BERT_BASE)).eval().save_pretrained(bert)
    cfg = json.loads((bert / "config.json").read_text())
    if "position_embedding_type" not in cfg:  # the default; CTranslate2's converter reads the key
        cfg["position_embedding_type"] = "absolute"
        (bert / "config.json").write_text(json.dumps(cfg, indent=2))
    gpt2 = CACHE / "gpt2-random"
    if not (gpt2 / "config.json").exists():
        GPT2LMHeadModel(GPT2Config()).eval().save_pretrained(gpt2)  # GPT2Config() is gpt2 (124M)
    return {
        "minilm-l6": ROOT / "models" / "minilm-l6",
        "bert-base": bert,
        "gpt2": gpt2,
        "smollm2-135m": ROOT / "models" / "smollm2-135m",
    }


class Torch:
    name = "pytorch-eager"

    def __init__(self, threads):
        import torch
        torch.set_num_threads(threads)
        self.torch = torch
        self.models = {}

    def model(self, path, causal):
        from transformers import AutoModel, AutoModelForCausalLM
        key = str(path)
        if key not in self.models:
            cls = AutoModelForCausalLM if causal else AutoModel
            self.models[key] = cls.from_pretrained(path, dtype=self.torch.float32).eval()
        return self.models[key]

    def encode(self, path, batch, seq, reps):
        m = self.model(path, False)
        ids = self.torch.tensor([ids_row(seq, m.config.vocab_size, 7 + r) for r in range(batch)])
        out = []
        with self.torch.inference_mode():
            for i in range(2 + reps):
                t = native.start()
                m(input_ids=ids, attention_mask=self.torch.ones_like(ids))
                if i >= 2:
                    out.append(native.stop(t))
        return out

    def decode(self, path, prompt_len, new_tokens, reps):
        m = self.model(path, True)
        ids = self.torch.tensor([ids_row(prompt_len, m.config.vocab_size, 11)])
        kw = dict(do_sample=False, min_new_tokens=new_tokens, pad_token_id=0, attention_mask=self.torch.ones_like(ids))
        out = []
        with self.torch.inference_mode():
            m.generate(ids, max_new_tokens=8, **{**kw, "min_new_tokens": 8})
            for _ in range(reps):
                t = native.start()
                m.generate(ids, max_new_tokens=new_tokens, **kw)
                out.append(native.stop(t))
        return out


class Ort:
    """ONNX Runtime with its transformer graph optimizations (attention/LayerNorm/GELU fusion)."""
    name = "onnxruntime"

    def __init__(self, threads):
        import onnxruntime
        self.ort = onnxruntime
        self.threads = threads
        self.sessions = {}

    def session(self, path):
        key = str(path)
        if key in self.sessions:
            return self.sessions[key]
        import torch
        from transformers import AutoConfig, AutoModel
        from onnxruntime.transformers.optimizer import optimize_model
        cfg = AutoConfig.from_pretrained(path)
        raw = CACHE / f"{Path(path).name}.onnx"
        opt = CACHE / f"{Path(path).name}.opt.onnx"
        if not opt.exists():
            m = AutoModel.from_pretrained(path, dtype=torch.float32).eval()
            ids = torch.ones(1, 16, dtype=torch.long)
            class Wrap(torch.nn.Module):  # positional inputs in a fixed order for the exporter
                def __init__(self, inner):
                    super().__init__()
                    self.inner = inner

                def forward(self, input_ids, attention_mask, token_type_ids):
                    return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                                      token_type_ids=token_type_ids).last_hidden_state

            torch.onnx.export(Wrap(m), (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(raw), dynamo=False,
                              input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["last_hidden_state"],
                              dynamic_axes={n: {0: "b", 1: "s"} for n in ["input_ids", "attention_mask", "token_type_ids", "last_hidden_state"]},
                              opset_version=17)
            o = optimize_model(str(raw), model_type="bert", num_heads=cfg.num_attention_heads, hidden_size=cfg.hidden_size)
            o.save_model_to_file(str(opt))
        so = self.ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        s = self.ort.InferenceSession(str(opt), so, providers=["CPUExecutionProvider"])
        self.sessions[key] = (s, cfg)
        return self.sessions[key]

    def encode(self, path, batch, seq, reps):
        import numpy as np
        s, cfg = self.session(path)
        ids = np.array([ids_row(seq, cfg.vocab_size, 7 + r) for r in range(batch)], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        feed = {k: v for k, v in feed.items() if k in {i.name for i in s.get_inputs()}}
        out = []
        for i in range(2 + reps):
            t = native.start()
            s.run(None, feed)
            if i >= 2:
                out.append(native.stop(t))
        return out


class Kpt:
    def __init__(self, build, level, threads, int8_compute=False):
        self.env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        if int8_compute:  # opt-in int8 GEMMs for encoders (outside the cosine budget on MiniLM)
            self.env["KPT_INT8_COMPUTE"] = "1"
        self.bin = ROOT / build / "tests" / "cpp" / "cpu" / "kpt_cpu_bench"
        self.level = level
        self.name = f"kpt-{level}" + ("-int8compute" if int8_compute else "")
        self.passes = {}

    def _run(self, path, mode, a, b, reps):
        r = subprocess.run([str(self.bin), str(path), self.level, mode, str(a), str(b), str(reps)],
                           capture_output=True, text=True, check=True, env=self.env)
        j = json.loads(r.stdout)
        self.passes[str(path)] = j["passes"]
        native.CPU_MS.extend(j["cpu_ms"])
        return j["times_ms"]

    def encode(self, path, batch, seq, reps):
        return self._run(path, "encode", batch, seq, reps)

    def decode(self, path, prompt_len, new_tokens, reps):
        return self._run(path, "decode", prompt_len, new_tokens, reps)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--build", default="build-cpu")
    ap.add_argument("--levels", default="conservative,aggressive")
    ap.add_argument("--only", default="", help="comma-separated workload names to run")
    ap.add_argument("--json", default="")
    ap.add_argument("--int8-compute", action="store_true",
                    help="also run encoders with KPT_INT8_COMPUTE=1 (opt-in int8 GEMMs, see docs/levels.md)")
    ap.add_argument("--peers", default="pytorch,onnxruntime,ctranslate2,llama.cpp",
                    help="comma-separated subset of pytorch,onnxruntime,ctranslate2,llama.cpp")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="threads for every engine (torch.set_num_threads, ORT intra-op, OMP_NUM_THREADS)")
    args = ap.parse_args()
    models = prepare_models()
    peers = set(args.peers.split(","))
    torch_e = [Torch(args.threads)] if "pytorch" in peers else []
    ort_e = [Ort(args.threads)] if "onnxruntime" in peers else []
    ct2 = [native.CTranslate2(CACHE, args.threads, q) for q in ("float32", "int8")] if "ctranslate2" in peers else []
    lcpp = [native.LlamaCpp(CACHE, args.threads, k) for k in ("F32", "Q8_0")] if "llama.cpp" in peers else []
    kpts = [Kpt(args.build, l, args.threads) for l in args.levels.split(",")]
    enc = torch_e + ort_e + ct2 + kpts
    if args.int8_compute:
        enc = enc + [Kpt(args.build, "aggressive", args.threads, int8_compute=True)]
    workloads = [
        ("minilm-l6 b1 s128", "encode", models["minilm-l6"], 1, 128, enc),
        ("minilm-l6 b8 s128", "encode", models["minilm-l6"], 8, 128, enc),
        ("bert-base b1 s128", "encode", models["bert-base"], 1, 128, enc),
        ("bert-base b8 s128", "encode", models["bert-base"], 8, 128, enc),
        ("gpt2 decode 128", "decode", models["gpt2"], 16, 128, torch_e + ct2 + kpts),
        ("smollm2-135m decode 128", "decode", models["smollm2-135m"], 16, 128, torch_e + lcpp + ct2 + kpts),
    ]
    if args.only:
        keep = set(args.only.split(","))
        workloads = [w for w in workloads if w[0] in keep]
    times, cpu = {}, {}
    loads = []
    bandwidth = []
    for rnd in range(args.rounds):
        loads.append(os.getloadavg()[0])
        bandwidth.append(read_bandwidth_gbs())
        print(f"round {rnd}: 1-min load {loads[-1]:.2f}, single-thread read bandwidth {bandwidth[-1]:.1f} GB/s", flush=True)
        for name, mode, path, a, b, engines in workloads:
            for e in engines:
                fn = e.encode if mode == "encode" else e.decode
                native.CPU_MS.clear()
                t = fn(path, a, b, args.reps, ids_row) if isinstance(e, NATIVE) else fn(path, a, b, args.reps)
                c = list(native.CPU_MS)
                assert len(c) == len(t), (e.name, len(c), len(t))
                times.setdefault(name, {}).setdefault(e.name, []).extend(t)
                cpu.setdefault(name, {}).setdefault(e.name, []).extend(c)
                print(f"round {rnd} {name:26s} {e.name:28s} median {statistics.median(t):9.1f} ms wall, "
                      f"{statistics.median(c):9.1f} ms CPU", flush=True)
    loads.append(os.getloadavg()[0])
    print(f"\n1-min load average at round starts/end: {', '.join(f'{l:.2f}' for l in loads)}")
    print(f"single-thread read bandwidth at round starts (GB/s): {', '.join(f'{b:.1f}' for b in bandwidth)}")
    print(f"threads per engine: {args.threads}; rounds {args.rounds} x reps {args.reps}")
    print("\nCPU = process CPU time of the run (1 thread: compute time without the time the scheduler gave"
          " to other processes); ratios = peer median / engine median, > 1 means this engine is faster.")
    print("\n| workload | engine | wall median ms | wall min..max | CPU median ms | n | vs pytorch-eager wall / CPU "
          "| vs onnxruntime CPU | vs same-precision native peers CPU |")
    print("|---|---|---|---|---|---|---|---|---|")
    result = {"threads": args.threads, "load": loads, "read_bandwidth_gbs": bandwidth, "rounds": args.rounds,
              "reps": args.reps, "workloads": {}}
    for name, mode, path, a, b, engines in workloads:
        med = {k: statistics.median(v) for k, v in times[name].items()}
        cmed = {k: statistics.median(v) for k, v in cpu[name].items()}
        for k, v in times[name].items():
            r1 = f"{med['pytorch-eager'] / med[k]:.2f}x / {cmed['pytorch-eager'] / cmed[k]:.2f}x" if "pytorch-eager" in med else ""
            r2 = f"{cmed['onnxruntime'] / cmed[k]:.2f}x" if "onnxruntime" in cmed else ""
            # conservative (fp32) against the fp32 native peers, aggressive (int8) against the int8 ones.
            same = {"kpt-conservative": ("ctranslate2-float32", "llama.cpp-f32"),
                    "kpt-aggressive": ("ctranslate2-int8", "llama.cpp-q8_0"),
                    "kpt-aggressive-int8compute": ("ctranslate2-int8",)}.get(k, ())
            r3 = ", ".join(f"{cmed[p] / cmed[k]:.2f}x {p}" for p in same if p in cmed)
            unit = "" if mode == "encode" else f" ({cmed[k] / b:.2f} ms/token CPU)"
            print(f"| {name} | {k} | {med[k]:.1f} | {min(v):.1f}..{max(v):.1f} | {cmed[k]:.1f}{unit} | {len(v)} "
                  f"| {r1} | {r2} | {r3} |")
        result["workloads"][name] = {"median_ms": med, "cpu_median_ms": cmed, "times_ms": times[name],
                                     "cpu_ms": cpu[name]}
    for k in kpts:
        for p, lines in k.passes.items():
            print(f"\n{k.name} on {Path(p).name}:\n  " + "\n  ".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    sys.exit(main())
