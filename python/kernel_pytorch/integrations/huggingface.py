"""HuggingFaceOptimizer: one line from a Hugging Face model to an OptimizedModel.

    optimizer = HuggingFaceOptimizer.from_pretrained("HuggingFaceTB/SmolLM2-135M")  # or a directory
    model = optimizer.optimize()
    print(optimizer.report)

Everything numeric happens in the engine; this class resolves where the model is, picks the
level (saying so when it falls back), and keeps the caller's tokenizer and config."""
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import _core
from ..hub import resolve_model_dir
from ..model import OptimizedModel, load_config
from ..tokenizer import load_tokenizer

LEVELS = tuple(_core.level_names())  # reference ... production, cheapest-to-check first


@dataclasses.dataclass
class OptimizationReport:
    """What optimize() did. Every number in it was measured in this process."""

    source: str
    model_dir: str
    requested_level: str
    level: str = ""
    hardware: str = "auto"
    device: str = ""
    preserve_accuracy: bool = True
    architecture: str = ""
    n_parameters: int = 0
    weights_dtype: str = ""
    load_seconds: float = 0.0
    fallbacks: list = dataclasses.field(default_factory=list)  # [(level, why it was not used)]
    applied: list = dataclasses.field(default_factory=list)  # the engine's pass report, one line each
    notes: list = dataclasses.field(default_factory=list)
    measurements: dict = dataclasses.field(default_factory=dict)  # optimize(measure=True)

    def to_dict(self):
        return dataclasses.asdict(self)

    def __str__(self):
        lines = [f"KernelPyTorch optimization report: {self.source}",
                 f"  model        {self.architecture}, {self.n_parameters / 1e6:.1f}M parameters ({self.weights_dtype})",
                 f"  level        {self.level or '(not optimized yet)'} (requested {self.requested_level})",
                 f"  device       {self.device or '-'} (hardware={self.hardware})",
                 f"  load         {self.load_seconds:.2f} s"]
        for level, why in self.fallbacks:
            lines.append(f"  fallback     {level} not used: {why}")
        for line in self.applied:
            lines.append(f"  applied      {line}")
        for note in self.notes:
            lines.append(f"  note         {note}")
        for key, value in self.measurements.items():
            lines.append(f"  measured     {key} = {value}")
        if not self.measurements:
            lines.append("  measured     nothing yet (optimize(measure=True) compares with transformers)")
        return "\n".join(lines)


class HuggingFaceOptimizer:
    """Loads a Hugging Face model into the KernelPyTorch engine.

    optimization_level: reference | conservative | balanced | aggressive | production.
        'production' uses the best level this engine build accepts and says in `report` which
        levels it skipped and why; any other level is used exactly or raises the engine's error.
    hardware: auto | cpu | cuda | cuda:N.
    preserve_accuracy: keep the accuracy budget checked (levels below 'reference' are measured
        against it by the engine)."""

    def __init__(self, model_dir, *, source=None, optimization_level="production", hardware="auto",
                 preserve_accuracy=True, num_threads=0, verbose=False, tokenizer="auto", keepalive=None):
        self.model_dir = Path(model_dir)
        self.optimization_level = _core.parse_level(optimization_level)
        self.hardware = hardware
        self.preserve_accuracy = bool(preserve_accuracy)
        self.num_threads = num_threads
        self.verbose = verbose
        self._tokenizer_choice = tokenizer
        self._tokenizer = None if isinstance(tokenizer, str) else tokenizer
        self._keepalive = keepalive
        self._hf_model = None
        self._config = None
        self.model = None
        self.report = OptimizationReport(source=source or str(model_dir), model_dir=str(model_dir),
                                         requested_level=self.optimization_level, hardware=hardware,
                                         preserve_accuracy=self.preserve_accuracy)

    # --- constructors -------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, optimization_level="production", hardware="auto",
                        preserve_accuracy=True, *, revision=None, cache_dir=None, num_threads=0, verbose=False,
                        tokenizer="auto"):
        """A local model directory (config.json + safetensors), a directory written by
        save_pretrained / kpt-optimize, or a hub id found in the local Hugging Face cache."""
        model_dir, source = resolve_model_dir(pretrained_model_name_or_path, revision=revision, cache_dir=cache_dir)
        return cls(model_dir, source=source, optimization_level=optimization_level, hardware=hardware,
                   preserve_accuracy=preserve_accuracy, num_threads=num_threads, verbose=verbose, tokenizer=tokenizer)

    @classmethod
    def from_model(cls, model, tokenizer=None, optimization_level="production", hardware="auto",
                   preserve_accuracy=True, *, num_threads=0, verbose=False):
        """An in-memory transformers model (BERT, GPT-2, LLaMA/Mistral/Qwen2 ...). It is saved once
        with save_pretrained to a temporary directory that lives as long as the optimizer and
        the models it makes."""
        if not hasattr(model, "save_pretrained") or not hasattr(model, "config"):
            raise TypeError(f"from_model expects a transformers PreTrainedModel, got {type(model).__name__}")
        tmp = tempfile.TemporaryDirectory(prefix="kpt-model-")
        t0 = time.perf_counter()
        model.save_pretrained(tmp.name)
        if tokenizer is not None and hasattr(tokenizer, "save_pretrained"):
            tokenizer.save_pretrained(tmp.name)
        opt = cls(tmp.name, source=f"in-memory {type(model).__name__}", optimization_level=optimization_level,
                   hardware=hardware, preserve_accuracy=preserve_accuracy, num_threads=num_threads,
                   verbose=verbose, tokenizer=tokenizer if tokenizer is not None else "none", keepalive=tmp)
        opt._hf_model = model
        opt._config = model.config
        opt.report.notes.append(f"saved the in-memory model to {tmp.name} in {time.perf_counter() - t0:.2f} s")
        return opt

    # --- what the caller keeps using ----------------------------------------------------------
    @property
    def tokenizer(self):
        """transformers' tokenizer when installed, else the built-in one (KptTokenizer); None when
        the model has no tokenizer files (from_model without a tokenizer)."""
        if self._tokenizer is None and self._tokenizer_choice != "none":
            self._tokenizer = load_tokenizer(self.model_dir, getattr(self.config, "model_type", None),
                                             prefer=self._tokenizer_choice)
            if self._tokenizer is None:
                self._tokenizer_choice = "none"
        return self._tokenizer

    @property
    def config(self):
        if self._config is None:
            self._config = load_config(self.model_dir)
        return self._config

    # --- optimize -----------------------------------------------------------------------------
    def _candidates(self):
        plan = _core.plan_options(str(self.model_dir), self.hardware, self.num_threads)
        if plan is not None and self.optimization_level == "production":
            # An optimized directory: its measured choice stands; no need to measure again.
            self.report.notes.append(f"optimized directory: level {plan['level']} from kpt_plan.json, measured on "
                                     f"{plan['planned_device']} ({plan['hardware']})")
            if plan["note"]:
                self.report.notes.append(plan["note"])
            self.hardware = plan["device"]
            return [plan["level"]]
        if self.optimization_level != "production":
            return [self.optimization_level]
        return list(reversed(LEVELS))  # production, aggressive, ..., reference

    def optimize(self, measure=False, sample_inputs=None):
        """Compiles the model and returns an OptimizedModel (also kept as self.model).

        measure=True also runs transformers (needs torch + transformers) on sample_inputs (default:
        one row of 32 tokens) and records in `report.measurements` the median forward time of
        both, the speedup and the largest difference."""
        report = self.report
        report.fallbacks.clear()
        t0 = time.perf_counter()
        engine = None
        candidates = self._candidates()
        for i, level in enumerate(candidates):
            try:
                engine = _core.Engine.load(str(self.model_dir), level=level, device=self.hardware,
                                           num_threads=self.num_threads, verbose=self.verbose)
            except _core.UnsupportedError as e:
                if i + 1 == len(candidates):
                    raise
                report.fallbacks.append((level, str(e)))
                continue
            report.level = level
            break
        report.load_seconds = time.perf_counter() - t0
        if report.fallbacks:
            note = (f"requested '{self.optimization_level}': this engine build does not offer "
                    f"{', '.join(l for l, _ in report.fallbacks)}; using '{report.level}'")
            report.notes.append(note)
            print(f"kernel_pytorch: {note}", file=sys.stderr)
        info = engine.info
        report.device = engine.device
        report.architecture = info.architecture
        report.n_parameters = info.n_parameters
        report.weights_dtype = info.weights_dtype
        report.applied = list(engine.pass_report())
        if not self.preserve_accuracy and report.level != "reference":
            report.notes.append("preserve_accuracy=False changes nothing yet: the engine always keeps its accuracy "
                                "budget (levels beyond it are refused)")
        if report.level == "reference":
            report.notes.append("reference level: fp32, one kernel per op; it is the accuracy oracle itself")
        self.model = OptimizedModel(engine, self.model_dir, level=report.level,
                                    requested_level=self.optimization_level, keepalive=self._keepalive)
        self.model._config = self._config
        if measure:
            report.measurements.update(self._measure(self.model, sample_inputs))
        return self.model

    # --- measurement --------------------------------------------------------------------------
    def _reference_model(self):
        if self._hf_model is not None:
            return self._hf_model
        import torch
        import transformers
        cfg = self.config
        arch = (getattr(cfg, "architectures", None) or [None])[0]
        cls = getattr(transformers, arch, None) if arch else None
        if cls is None:
            cls = transformers.AutoModelForCausalLM if self.model.is_causal_lm else transformers.AutoModel
        return cls.from_pretrained(str(self.model_dir), dtype=torch.float32, local_files_only=True).eval()

    def _measure(self, model, sample_inputs, runs=5):
        import torch
        hf = self._reference_model()
        if sample_inputs is None:
            rng = np.random.default_rng(0)
            ids = rng.integers(0, model.info.vocab_size, size=(1, 32), dtype=np.int64)
            sample_inputs = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        sample = {k: torch.as_tensor(np.asarray(v.cpu() if hasattr(v, "cpu") else v)) for k, v in sample_inputs.items()}
        hf_inputs = dict(sample)
        if model.info.family == "bert" and "token_type_ids" not in hf_inputs:
            hf_inputs["token_type_ids"] = torch.zeros_like(sample["input_ids"])

        # Interleaved runs, so that load from other processes hits both sides alike.
        def run_ref():
            return hf(**hf_inputs)

        def run_ours():
            return model(**sample)

        times_ref, times_ours = [], []
        with torch.no_grad():
            ref_out, ours_out = run_ref(), run_ours()  # warm-up
            for _ in range(runs):
                for fn, times in ((run_ref, times_ref), (run_ours, times_ours)):
                    t = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - t)
        t_ref, t_ours = float(np.median(times_ref)), float(np.median(times_ours))
        key = "logits" if model.is_causal_lm else "last_hidden_state"
        ref = getattr(ref_out, key).float().numpy()
        ours = getattr(ours_out, key).numpy()
        mask = sample["attention_mask"].numpy().astype(bool) if "attention_mask" in sample else np.ones(ref.shape[:2], bool)
        diff = np.abs(ours - ref)[mask].max() / max(np.abs(ref[mask]).max(), 1e-30)
        shape = tuple(sample["input_ids"].shape)
        result = {
            "conditions": f"forward, input {shape}, median of {runs} interleaved runs after 1 warm-up, "
                          f"{os.cpu_count()} CPUs, engine threads {self.num_threads or 'default'}, torch "
                          f"{torch.__version__} ({torch.get_num_threads()} threads) fp32 eager as the baseline",
            "transformers_ms": round(t_ref * 1e3, 3),
            "kernel_pytorch_ms": round(t_ours * 1e3, 3),
            "speedup_vs_transformers": round(t_ref / t_ours, 3),
            f"max_rel_diff_{key}": float(diff),
        }
        if model.is_causal_lm:
            result["top1_agreement"] = float((ours.argmax(-1) == ref.argmax(-1))[mask].mean())
        return result

    def __repr__(self):
        return f"HuggingFaceOptimizer({self.report.source}, level={self.optimization_level}, hardware={self.hardware})"
