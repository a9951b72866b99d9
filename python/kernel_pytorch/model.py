"""OptimizedModel: a loaded engine that behaves like a transformers model."""
import json
import os
import shutil
import sys
from collections import OrderedDict
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from . import _core
from ._generate import generate as _generate
from ._tensors import as_ids, output
from ._version import __version__


class ModelOutput(OrderedDict):
    """transformers-style output: `out.logits`, `out["logits"]` and `out[0]` all work.

    Fields that transformers defines but the engine does not compute (loss, hidden_states,
    attentions, past_key_values) read as None, as they do in transformers."""

    _optional_fields = ("loss", "past_key_values", "hidden_states", "attentions", "pooler_output")

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            if name in self._optional_fields:
                return None
            raise AttributeError(f"{type(self).__name__} has no field '{name}'; it has {list(self.keys())}") from None

    def __getitem__(self, key):
        if isinstance(key, (int, slice)):
            return self.to_tuple()[key]
        return super().__getitem__(key)

    def to_tuple(self):
        return tuple(self.values())


class CausalLMOutput(ModelOutput):
    pass


class BaseModelOutput(ModelOutput):
    pass


class ConfigNamespace(SimpleNamespace):
    """config.json as attributes, used when transformers is not installed."""

    def to_dict(self):
        return dict(self.__dict__)

    def __getitem__(self, key):
        return self.__dict__[key]

    def get(self, key, default=None):
        return self.__dict__.get(key, default)


def load_config(model_dir):
    """transformers' PretrainedConfig when transformers is installed, else a ConfigNamespace."""
    try:
        from transformers import AutoConfig
    except ImportError:
        AutoConfig = None
    if AutoConfig is not None:
        try:
            return AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
        except (ValueError, KeyError, OSError):
            pass  # a model_type transformers does not know: the plain namespace still serves
    with open(Path(model_dir) / "config.json", encoding="utf-8") as f:
        return ConfigNamespace(**json.load(f))


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


class OptimizedModel:
    """A model compiled by the engine. Call it like a transformers model:

        out = model(input_ids=ids, attention_mask=mask)   # out.logits or out.last_hidden_state
        ids = model.generate(ids, max_new_tokens=20)

    Inputs may be lists, numpy arrays or torch tensors; outputs are torch tensors when the
    input_ids were, numpy arrays otherwise."""

    def __init__(self, engine, model_dir, *, level, requested_level=None, keepalive=None):
        self._engine = engine
        self.model_dir = Path(model_dir)
        self.level = level
        self.requested_level = requested_level or level
        self._keepalive = keepalive  # e.g. the temporary directory of from_model: the engine maps its files
        self._config = None
        self.generation_config = read_json(self.model_dir / "generation_config.json")

    # --- what it is ---------------------------------------------------------------------------
    @property
    def engine(self):
        """The underlying kernel_pytorch._core.Engine."""
        return self._engine

    @property
    def info(self):
        return self._engine.info

    @property
    def config(self):
        if self._config is None:
            self._config = load_config(self.model_dir)
        return self._config

    @property
    def device(self):
        torch = sys.modules.get("torch")
        name = self._engine.device
        return torch.device(name) if torch is not None else name

    @property
    def dtype(self):
        return "float32"  # the outputs' dtype

    @property
    def is_causal_lm(self):
        return self._engine.info.causal_lm

    def num_parameters(self):
        return self._engine.info.n_parameters

    def describe(self):
        return self._engine.describe()

    def eval(self):
        return self

    def to(self, device):
        """Kept for drop-in use: a no-op when `device` is the engine's device; otherwise an error
        (choose the device when optimizing: hardware='cpu' / 'cuda')."""
        want = str(device)
        if want.split(":")[0] != str(self._engine.device).split(":")[0]:
            raise _core.UnsupportedError(
                f"this model was compiled for {self._engine.device}; re-optimize with hardware='{want}' "
                "instead of moving it")
        return self

    def __repr__(self):
        i = self._engine.info
        return (f"OptimizedModel({i.architecture}, {i.n_parameters / 1e6:.1f}M parameters, level={self.level}, "
                f"device={self._engine.device}, dir={self.model_dir})")

    # --- forward ------------------------------------------------------------------------------
    def __call__(self, input_ids=None, attention_mask=None, token_type_ids=None, *, position_ids=None,
                 return_dict=True, use_cache=None, output_hidden_states=None, output_attentions=None,
                 labels=None, **kwargs):
        """Forward pass: logits [B, S, V] (causal LMs) or last_hidden_state [B, S, H] (encoders).

        Padding may be on either side: positions count the unmasked tokens only."""
        if kwargs:
            raise TypeError(f"unexpected arguments: {sorted(kwargs)}")
        for name, value in (("position_ids", position_ids), ("labels", labels)):
            if value is not None:
                raise _core.UnsupportedError(
                    f"{name} is not supported: positions come from attention_mask (clamp(cumsum(mask) - 1, 0)); "
                    "compute a loss from the returned logits")
        if output_hidden_states or output_attentions:
            raise _core.UnsupportedError("output_hidden_states/output_attentions are not supported by the engine")
        ids, was_1d = as_ids(input_ids, "input_ids")
        mask, _ = as_ids(attention_mask, "attention_mask", allow_none=True)
        types, _ = as_ids(token_type_ids, "token_type_ids", allow_none=True)
        if mask is not None and mask.shape != ids.shape:
            raise _core.InvalidArgumentError(
                f"attention_mask has shape {tuple(mask.shape)} but input_ids has {tuple(ids.shape)}")
        if types is not None and types.shape != ids.shape:
            raise _core.InvalidArgumentError(
                f"token_type_ids has shape {tuple(types.shape)} but input_ids has {tuple(ids.shape)}")
        result = self._engine.forward(ids, mask, types)  # [B, S, V] or [B, S, H], f32, no copy
        if was_1d:
            result = result[0]
        result = output(result, input_ids)
        if self.is_causal_lm:
            out = CausalLMOutput(logits=result)
        else:
            out = BaseModelOutput(last_hidden_state=result)
        return out if return_dict else out.to_tuple()

    forward = __call__

    generate = _generate

    # --- saving -------------------------------------------------------------------------------
    def save_pretrained(self, save_directory):
        """Writes a directory that from_pretrained (here or in transformers) loads again: the
        model's config, weights, generation config and tokenizer files, plus kernel_pytorch.json
        saying how it was optimized."""
        dst = Path(save_directory)
        dst.mkdir(parents=True, exist_ok=True)
        src = self.model_dir.resolve()
        if dst.resolve() != src:
            for entry in sorted(src.iterdir()):
                if entry.name.startswith("."):
                    continue
                target = dst / entry.name
                if entry.is_dir():  # e.g. sentence-transformers' 1_Pooling/
                    shutil.copytree(entry, target, dirs_exist_ok=True)  # follows hub-cache symlinks
                else:
                    shutil.copy2(entry, target)
        meta = {"kernel_pytorch_version": __version__, "level": self.level,
                "requested_level": self.requested_level, "device": self._engine.device}
        with open(dst / "kernel_pytorch.json", "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2)
            f.write("\n")
        return str(dst)


def load(model_dir, level="reference", device="auto", num_threads=0, verbose=False):
    """Loads a local model directory at one exact level (no fallback). For hub ids, level
    fallback and reports use integrations.HuggingFaceOptimizer."""
    engine = _core.Engine.load(os.fspath(model_dir), level=level, device=device, num_threads=num_threads,
                               verbose=verbose)
    return OptimizedModel(engine, model_dir, level=level)
