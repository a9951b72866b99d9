#!/usr/bin/env python3
"""GPU benchmark helper for scripts/gpu/run_gpu.sh.

  bench_torch.py make MODELS_DIR      random-weight models with the official shapes of BENCHMARKS.md
  bench_torch.py peers MODELS_DIR     PyTorch peers on the same models; one JSON line per result
  bench_torch.py table RESULTS.jsonl  the short table printed last

Shapes: bert-base-uncased, gpt2-medium, TinyLlama-1.1B (configs written here with transformers'
config classes; no network on the GPU machine). Weights are random (speed does not depend on
them), saved in bf16. Peers: transformers eager in bf16 with SDPA attention, and for BERT also
torch.compile(mode="reduce-overhead") (CUDA graphs), the strongest PyTorch peer of BENCHMARKS.md.
Timing: CUDA events, warm-up first, median of >= 20 runs, fresh random inputs.
"""
import json
import os
import statistics
import sys
import time

import torch

MODELS = {
    "bert-base": ("BertConfig", "BertModel", dict()),  # the defaults are bert-base-uncased
    "gpt2-medium": ("GPT2Config", "GPT2LMHeadModel", dict(n_embd=1024, n_layer=24, n_head=16)),
    "llama-1b": ("LlamaConfig", "LlamaForCausalLM", dict(
        vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
        num_key_value_heads=4, max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=10000.0,
        tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)),
}


def emit(**kw):
    print(json.dumps(kw), flush=True)


def make(root):
    import transformers
    torch.manual_seed(0)
    for name, (cfg_cls, model_cls, kw) in MODELS.items():
        out = os.path.join(root, name)
        if os.path.exists(os.path.join(out, "config.json")):
            continue
        cfg = getattr(transformers, cfg_cls)(**kw)
        with torch.device("cuda"):
            model = getattr(transformers, model_cls)(cfg).to(torch.bfloat16)
        model.save_pretrained(out)
        print(f"made {name}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters", file=sys.stderr)
        del model
        torch.cuda.empty_cache()


def time_cuda(fn, iters=20, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def ceilings():
    n = 1 << 30  # 1 GiB copies: far past the 60 MB L2
    x = torch.empty(n, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    ms = time_cuda(lambda: y.copy_(x), iters=10)
    emit(engine="ceiling", what="copy", value=2 * n / ms / 1e6, unit="GB/s")
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    ms = time_cuda(lambda: a @ b, iters=10)
    emit(engine="ceiling", what="bf16_gemm", value=2 * 8192**3 / ms / 1e9, unit="TFLOP/s")


def gemm_bytes(m):
    """Bytes of the matrices a decode step streams: every 2-D weight except position tables and
    the input embedding (one row read per token) unless it is tied to the LM head."""
    emb = m.get_input_embeddings().weight
    out = m.get_output_embeddings()
    tied = out is not None and out.weight.data_ptr() == emb.data_ptr()
    total = 0
    for n, p in m.named_parameters():
        if p.dim() != 2 or "wpe" in n or "position" in n:
            continue
        if p.data_ptr() == emb.data_ptr() and not tied:
            continue
        total += p.numel() * p.element_size()
    return total


def load(root, name):
    import transformers
    _, model_cls, _ = MODELS[name]
    return getattr(transformers, model_cls).from_pretrained(
        os.path.join(root, name), dtype=torch.bfloat16, attn_implementation="sdpa").cuda().eval()


@torch.inference_mode()
def peers(root):
    ceilings()
    gen = torch.Generator(device="cuda").manual_seed(0)
    bert = load(root, "bert-base")
    for batch in (1, 32):
        ids = lambda: torch.randint(0, 30522, (batch, 128), device="cuda", generator=gen)
        ms = time_cuda(lambda: bert(input_ids=ids()))
        emit(engine="hf-eager-bf16-sdpa", mode="encoder", model="bert-base", batch=batch, seq=128, value=ms, unit="ms")
    try:
        compiled = torch.compile(bert, mode="reduce-overhead")
        for batch in (1, 32):
            x = torch.randint(0, 30522, (batch, 128), device="cuda", generator=gen)
            ms = time_cuda(lambda: compiled(input_ids=x), warmup=5)
            emit(engine="hf-compile-reduce-overhead-bf16", mode="encoder", model="bert-base", batch=batch, seq=128,
                 value=ms, unit="ms")
    except Exception as e:  # a peer that fails is reported, not fatal
        print(f"torch.compile peer failed: {e}", file=sys.stderr)
    del bert
    for name, vocab in (("gpt2-medium", 50257), ("llama-1b", 32000)):
        model = load(root, name)
        emit(engine="info", model=name, gemm_weight_bytes_bf16=gemm_bytes(model))
        ids = torch.randint(0, vocab, (1, 512), device="cuda", generator=gen)
        try:
            ms = time_cuda(lambda: model(input_ids=ids, use_cache=False, logits_to_keep=1))
        except TypeError:  # a model class without logits_to_keep computes every row's logits
            ms = time_cuda(lambda: model(input_ids=ids, use_cache=False))
        emit(engine="hf-eager-bf16-sdpa", mode="prefill", model=name, batch=1, seq=512, value=ms, unit="ms")
        for batch in (1, 8):
            # Greedy decode loop over transformers' own KV cache: 32-token prompt, 128 new tokens.
            def run():
                prompt = torch.randint(0, vocab, (batch, 32), device="cuda", generator=gen)
                out = model(input_ids=prompt, use_cache=True)
                past, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                for _ in range(127):
                    out = model(input_ids=nxt, past_key_values=past, use_cache=True)
                    past, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)
                torch.cuda.synchronize()
                return (time.perf_counter() - t0) * 1000 / 127
            run()
            step_ms = statistics.median(run() for _ in range(3))
            emit(engine="hf-eager-bf16-sdpa", mode="decode", model=name, batch=batch, seq=32, value=batch * 1000 / step_ms,
                 unit="tok/s", median_step_ms=step_ms)
        del model
        torch.cuda.empty_cache()


@torch.inference_mode()
def compiled_decode(root):
    """transformers' generate() with a static KV cache, which compiles the decode forward with
    torch.compile(mode="reduce-overhead") (CUDA graphs): the strongest PyTorch decode peer.
    Decode time = generate(128 new tokens) - generate(1 new token), both from the same 32-token
    prompt, over 127 steps; the first calls (compilation, graph capture) are warm-ups."""
    from transformers import CompileConfig
    gen = torch.Generator(device="cuda").manual_seed(0)
    for name, vocab in (("gpt2-medium", 50257), ("llama-1b", 32000)):
        model = load(root, name)
        for batch in (1, 8):
            prompt = torch.randint(0, vocab, (batch, 32), device="cuda", generator=gen)
            kw = dict(do_sample=False, cache_implementation="static", pad_token_id=0, eos_token_id=None,
                      compile_config=CompileConfig(fullgraph=True, mode="reduce-overhead"))

            def timed(n):
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                out = model.generate(prompt, max_new_tokens=n, min_new_tokens=n, **kw)
                torch.cuda.synchronize()
                assert out.shape[1] == 32 + n, out.shape
                return time.perf_counter() - t0
            try:
                t_compile = time.perf_counter()
                for _ in range(2):
                    timed(128)
                t_compile = time.perf_counter() - t_compile
                full = statistics.median(timed(128) for _ in range(3))
                first = statistics.median(timed(1) for _ in range(3))
                step_ms = (full - first) * 1000 / 127
                emit(engine="hf-static-compile-bf16", mode="decode", model=name, batch=batch, seq=32,
                     value=batch * 1000 / step_ms, unit="tok/s", median_step_ms=step_ms,
                     warmup_s=round(t_compile, 1))
            except Exception as e:  # a peer that fails is reported, not fatal
                print(f"static-cache torch.compile decode peer failed ({name} b{batch}): {e}", file=sys.stderr)
        del model
        torch.cuda.empty_cache()


def table(path):
    rows = [json.loads(l) for l in open(path) if l.startswith("{")]
    ceil = {r["what"]: r["value"] for r in rows if r.get("engine") == "ceiling"}
    info = {r["model"]: r for r in rows if r.get("engine") == "info"}
    print("\n=== CUDA backend vs PyTorch, one H200, same run ===")
    for k, v in ceil.items():
        print(f"ceiling {k}: {v:,.0f} {'GB/s' if k == 'copy' else 'TFLOP/s'}")
    print(f"{'workload':<34}{'engine':<34}{'value':>12}  {'unit':<6} note")
    for r in rows:
        if r.get("engine") in ("ceiling", "info"):
            continue
        w = f"{r['model']} {r['mode']} b{r['batch']} s{r['seq']}"
        eng = r["engine"] + (f" [{r['level']}]" if "level" in r else "")
        note = ""
        if r["mode"] == "decode" and r["model"] in info and "copy" in ceil:
            step_s = r["batch"] / r["value"]
            gbs = info[r["model"]]["gemm_weight_bytes_bf16"] / step_s / 1e9
            note = f"{gbs:,.0f} GB/s of bf16 weights = {100 * gbs / ceil['copy']:.0f}% of copy"
        if "launches_per_step" in r:
            note += f" launches/step {r.get('launches_unfused', '?')} -> {r['launches_per_step']}"
        if r["mode"] == "encoder" and r["unit"] == "ms":
            note = f"{r['batch'] * 1000 / r['value']:,.0f} seq/s " + note
        print(f"{w:<34}{eng:<34}{r['value']:>12,.3f}  {r['unit']:<6} {note}")


if __name__ == "__main__":
    {"make": make, "peers": peers, "compiled_decode": compiled_decode, "table": table}[sys.argv[1]](sys.argv[2])
