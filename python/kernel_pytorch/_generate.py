"""OptimizedModel.generate with transformers' argument conventions, over Engine.generate."""
import sys

import numpy as np

from . import _core
from ._tensors import as_ids, output

# transformers' GenerationConfig defaults for the arguments we honour; generation_config.json in
# the model directory overrides them, and explicit arguments override both (as in transformers).
_HF_DEFAULTS = {"max_length": 20, "max_new_tokens": None, "do_sample": False, "temperature": 1.0, "top_k": 50,
                "top_p": 1.0, "repetition_penalty": 1.0, "eos_token_id": None, "pad_token_id": None}

# Arguments transformers accepts that change nothing here (we always use the KV cache and return
# sequences); anything else unknown is an error rather than silently ignored.
_IGNORED = {"use_cache", "output_scores", "output_logits", "output_attentions", "output_hidden_states",
            "min_length", "synced_gpus"}


def _as_id_list(value):
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        return [int(value)]
    return [int(v) for v in value]


def _resolve_settings(model, generation_config, explicit):
    cfg = dict(_HF_DEFAULTS)
    cfg.update({k: v for k, v in model.generation_config.items() if k in cfg and v is not None})
    if generation_config is not None:
        gc = generation_config.to_dict() if hasattr(generation_config, "to_dict") else dict(generation_config)
        cfg.update({k: v for k, v in gc.items() if k in cfg and v is not None})
    cfg.update({k: v for k, v in explicit.items() if v is not None})
    return cfg


def _random_seed():
    # Follow the caller's seeding habit: torch.manual_seed (when torch is in use) or numpy's.
    torch = sys.modules.get("torch")
    if torch is not None:
        return int(torch.randint(0, 2**62, (1,)).item())
    return int(np.random.randint(0, 2**62, dtype=np.int64))


def _progress_bar(show, total):
    if show is False or (show is None and not (sys.stderr.isatty() and total >= 256)):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="generate", unit="tok", leave=False)


class _StreamerAdapter:
    """transformers streamers (put()/end(), e.g. TextStreamer): the prompt first, then one
    token per step, then end(); batch size 1 only, as in transformers."""

    def __init__(self, streamer, prompt_ids):
        self.streamer = streamer
        torch = sys.modules.get("torch")
        self.make = (lambda v: torch.tensor(v, dtype=torch.long)) if torch is not None else (
            lambda v: np.asarray(v, dtype=np.int64))
        streamer.put(self.make(prompt_ids))

    def __call__(self, row, token):
        self.streamer.put(self.make([token]))
        return True


def generate(self, inputs=None, generation_config=None, streamer=None, *, input_ids=None, attention_mask=None,
             token_type_ids=None, max_new_tokens=None, max_length=None, do_sample=None, temperature=None,
             top_k=None, top_p=None, repetition_penalty=None, eos_token_id=None, pad_token_id=None, seed=None,
             num_beams=None, num_return_sequences=None, return_dict_in_generate=False, show_progress=None,
             **kwargs):
    """Continues each row of input_ids like transformers' generate and returns prompt + new
    tokens, [B, S + new] (rows that stop early are filled with pad_token_id).

    A left-padded batch is supported through attention_mask. `streamer` is a transformers
    streamer (put/end) or a callable(row, token) that may return False to stop that row.
    Sampling uses `seed` (default: drawn from torch's or numpy's global generator)."""
    unknown = set(kwargs) - _IGNORED
    if unknown:
        raise TypeError(f"generate() got unsupported arguments: {sorted(unknown)}")
    if (num_beams or 1) != 1 or (num_return_sequences or 1) != 1:
        raise _core.UnsupportedError("beam search and num_return_sequences > 1 are not supported; "
                                     "use greedy (do_sample=False) or sampling")
    if inputs is not None and input_ids is not None:
        raise TypeError("pass the prompt as `inputs` or as `input_ids`, not both")
    original = inputs if inputs is not None else input_ids
    ids, _ = as_ids(original, "input_ids")  # [B, S]
    mask, _ = as_ids(attention_mask, "attention_mask", allow_none=True)
    if not self.is_causal_lm:
        info = self.info
        raise _core.UnsupportedError(f"generate needs a causal LM; {info.architecture} ({info.family}) is an encoder")

    cfg = _resolve_settings(self, generation_config, {
        "max_new_tokens": max_new_tokens, "max_length": max_length, "do_sample": do_sample,
        "temperature": temperature, "top_k": top_k, "top_p": top_p, "repetition_penalty": repetition_penalty,
        "eos_token_id": eos_token_id, "pad_token_id": pad_token_id})
    batch, seq = ids.shape
    if max_new_tokens is not None:
        n_new = max_new_tokens
    elif max_length is not None:
        n_new = max_length - seq
    elif cfg["max_new_tokens"] is not None:
        n_new = cfg["max_new_tokens"]
    else:
        n_new = cfg["max_length"] - seq
    n_new = max(int(n_new), 0)

    eos = _as_id_list(cfg["eos_token_id"])  # None: the engine uses the model's own
    pad = cfg["pad_token_id"]
    # As transformers: a mask is inferred from pad_token_id when the prompt holds it and it is
    # not also the eos token.
    if mask is None and pad is not None and (ids == pad).any() and pad not in (eos or self.info.eos_token_ids):
        mask = (ids != pad).astype(np.int64)
    if pad is None:
        pad = self.info.pad_token_id
    if pad is None:
        pad = (eos or self.info.eos_token_ids or [0])[0]

    if mask is None:
        prompts = ids.tolist()
    else:
        if mask.shape != ids.shape:
            raise _core.InvalidArgumentError(
                f"attention_mask has shape {tuple(mask.shape)} but input_ids has {tuple(ids.shape)}")
        prompts = [row[m != 0].tolist() for row, m in zip(ids, mask)]

    on_token = None
    if streamer is not None:
        if hasattr(streamer, "put") and hasattr(streamer, "end"):
            if batch != 1:
                raise _core.InvalidArgumentError(
                    "put()/end() streamers (transformers' TextStreamer) support batch size 1, as in transformers; "
                    "pass a callable(row, token) to stream a batch")
            on_token = _StreamerAdapter(streamer, ids)
        elif callable(streamer):
            on_token = streamer
        else:
            raise TypeError("streamer must have put()/end() (a transformers streamer) or be callable(row, token)")
    bar = _progress_bar(show_progress, batch * n_new)
    if bar is not None:
        user = on_token

        def on_token(row, token):  # noqa: F811 - wraps the user's callback
            bar.update(1)
            return True if user is None else user(row, token)

    do_sample_flag = bool(cfg["do_sample"])
    try:
        result = self._engine.generate(
            prompts, max_new_tokens=n_new, do_sample=do_sample_flag,
            temperature=float(cfg["temperature"]) if do_sample_flag else 1.0,
            top_k=int(cfg["top_k"] or 0) if do_sample_flag else 0,
            top_p=float(cfg["top_p"]) if do_sample_flag else 1.0,
            repetition_penalty=float(cfg["repetition_penalty"]),
            seed=int(seed) if seed is not None else (_random_seed() if do_sample_flag else 0),
            eos_token_ids=eos, on_token=on_token)
    finally:
        if bar is not None:
            bar.close()
        if streamer is not None and hasattr(streamer, "end"):
            streamer.end()

    n_out = max((len(r) for r in result.new_ids), default=0)
    sequences = np.full((batch, seq + n_out), pad, dtype=np.int64)  # [B, S + new]
    sequences[:, :seq] = ids
    for b, new in enumerate(result.new_ids):
        sequences[b, seq:seq + len(new)] = new
    sequences = output(sequences, original)
    if return_dict_in_generate:
        from .model import ModelOutput
        return ModelOutput(sequences=sequences, finish_reasons=list(result.finish_reasons),
                           prefill_ms=result.prefill_ms, decode_ms=result.decode_ms)
    return sequences
