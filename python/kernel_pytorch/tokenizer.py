"""KptTokenizer: the built-in C++ tokenizer with transformers' call conventions, used when
transformers is not installed (or when asked for). Same ids as the Rust `tokenizers` library
(see docs/tokenizer.md); padding and return types follow PreTrainedTokenizerFast."""
import json
import shutil
import threading
from pathlib import Path

import numpy as np

from . import _core

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


class BatchEncoding(dict):
    """dict of model inputs with attribute access (`enc.input_ids`) and `.to(device)`."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to(self, device):
        return BatchEncoding({k: v.to(device) if hasattr(v, "to") else v for k, v in self.items()})


def _token_text(value):
    # tokenizer_config.json writes special tokens as strings or as AddedToken dicts.
    if isinstance(value, dict):
        return value.get("content")
    return value


class KptTokenizer:
    """Wraps kernel_pytorch._core.Tokenizer:

        enc = tok(["a text", "another"], padding=True, return_tensors="np")
        tok.batch_decode(ids, skip_special_tokens=True)
    """

    def __init__(self, core, model_dir=None, model_type=None, model_kind=None):
        self._core = core
        self._lock = threading.Lock()  # truncation is configured per call on the shared C++ object
        self.model_dir = Path(model_dir) if model_dir is not None else None
        cfg = {}
        if self.model_dir is not None:
            for name in ("special_tokens_map.json", "tokenizer_config.json"):  # later files win
                try:
                    with open(self.model_dir / name, encoding="utf-8") as f:
                        cfg.update(json.load(f))
                except FileNotFoundError:
                    pass
        self.init_kwargs = cfg
        self.padding_side = cfg.get("padding_side", "right")
        self.truncation_side = cfg.get("truncation_side", "right")
        self.model_max_length = int(cfg.get("model_max_length", 1e30)) if cfg.get("model_max_length") else int(1e30)
        # transformers 5 applies clean_up_tokenization only to WordPiece (it corrupts BPE text).
        self.clean_up_tokenization_spaces = (bool(cfg.get("clean_up_tokenization_spaces", False))
                                             and model_kind in (None, "WordPiece"))
        for role in ("pad", "eos", "bos", "unk", "sep", "cls", "mask"):
            setattr(self, f"{role}_token", _token_text(cfg.get(f"{role}_token")))
        if self.pad_token is None and core.padding is not None:
            self.pad_token = core.padding["pad_token"]
        names = cfg.get("model_input_names")
        if names is None:
            # transformers' BERT-style tokenizers return token_type_ids; GPT-2/LLaMA-style do not.
            bert_like = "Bert" in str(cfg.get("tokenizer_class", "")) or model_type == "bert"
            names = ["input_ids", "token_type_ids", "attention_mask"] if bert_like else ["input_ids", "attention_mask"]
        self.model_input_names = list(names)

    @classmethod
    def from_pretrained(cls, model_dir, model_type=None):
        path = Path(model_dir) / "tokenizer.json"
        core = _core.Tokenizer.from_file(str(path))
        try:
            with open(path, encoding="utf-8") as f:
                kind = (json.load(f).get("model") or {}).get("type")
        except (OSError, ValueError, AttributeError):
            kind = None
        return cls(core, model_dir, model_type, kind)

    # --- vocabulary ---------------------------------------------------------------------------
    def _id(self, token):
        return None if token is None else self._core.token_to_id(token)

    pad_token_id = property(lambda self: self._id(self.pad_token))
    eos_token_id = property(lambda self: self._id(self.eos_token))
    bos_token_id = property(lambda self: self._id(self.bos_token))
    unk_token_id = property(lambda self: self._id(self.unk_token))

    @property
    def vocab_size(self):
        return self._core.vocab_size(False)  # as transformers: without added tokens

    def __len__(self):
        return self._core.vocab_size(True)

    def convert_tokens_to_ids(self, tokens):
        if isinstance(tokens, str):
            return self._core.token_to_id(tokens)
        return [self._core.token_to_id(t) for t in tokens]

    def convert_ids_to_tokens(self, ids):
        if isinstance(ids, (int, np.integer)):
            return self._core.id_to_token(int(ids))
        return [self._core.id_to_token(int(i)) for i in ids]

    # --- encoding -----------------------------------------------------------------------------
    def __call__(self, text, text_pair=None, *, add_special_tokens=True, padding=False, truncation=None,
                 max_length=None, pad_to_multiple_of=None, padding_side=None, return_tensors=None,
                 return_attention_mask=None, return_token_type_ids=None, return_special_tokens_mask=False,
                 return_offsets_mapping=False, **kwargs):
        if kwargs:
            raise TypeError(f"unexpected arguments: {sorted(kwargs)}")
        batched = not isinstance(text, str)
        texts = list(text) if batched else [text]
        pairs = None
        if text_pair is not None:
            pairs = list(text_pair) if batched else [text_pair]
            if len(pairs) != len(texts):
                raise _core.InvalidArgumentError(f"{len(texts)} texts but {len(pairs)} text pairs")

        if truncation in (None, False, "do_not_truncate"):
            limit = None
        else:
            limit = max_length if max_length is not None else self.model_max_length
            if limit >= int(1e30):
                limit = None
        strategy = truncation if isinstance(truncation, str) else "longest_first"
        with self._lock:
            self._core.set_padding(False)
            self._core.set_truncation(limit, strategy, self.truncation_side)
            if pairs is None:
                encs = self._core.encode_batch(texts, add_special_tokens)
            else:
                encs = [self._core.encode_pair(a, b, add_special_tokens) for a, b in zip(texts, pairs)]

        fields = {"input_ids": [list(e.ids) for e in encs],
                  "token_type_ids": [list(e.type_ids) for e in encs],
                  "attention_mask": [list(e.attention_mask) for e in encs]}
        if return_special_tokens_mask:
            fields["special_tokens_mask"] = [list(e.special_tokens_mask) for e in encs]
        if return_offsets_mapping:
            fields["offset_mapping"] = [list(e.offsets) for e in encs]
        fields = self._pad(fields, padding, max_length, pad_to_multiple_of, padding_side or self.padding_side)

        keep_types = return_token_type_ids if return_token_type_ids is not None else (
            "token_type_ids" in self.model_input_names)
        keep_mask = return_attention_mask if return_attention_mask is not None else True
        if not keep_types:
            del fields["token_type_ids"]
        if not keep_mask:
            del fields["attention_mask"]
        if return_tensors is not None:
            lengths = {len(r) for r in fields["input_ids"]}
            if len(lengths) > 1:
                raise _core.InvalidArgumentError(
                    "sequences have different lengths; pass padding=True (or truncation) to return tensors")
            fields = {k: self._tensor(v, return_tensors) for k, v in fields.items()}
        elif not batched:
            fields = {k: v[0] for k, v in fields.items()}
        return BatchEncoding(fields)

    def _pad(self, fields, padding, max_length, multiple, side):
        if padding in (False, None, "do_not_pad"):
            return fields
        if padding in (True, "longest"):
            target = max(len(r) for r in fields["input_ids"])
        elif padding == "max_length":
            target = max_length if max_length is not None else self.model_max_length
        else:
            raise _core.InvalidArgumentError(f"padding must be True, False, 'longest' or 'max_length', got {padding!r}")
        if multiple:
            target = -(-target // multiple) * multiple
        pad_id = self.pad_token_id
        if pad_id is None:
            raise _core.InvalidArgumentError(
                "this tokenizer has no pad token; set tokenizer.pad_token (e.g. = tokenizer.eos_token) to pad")
        fill = {"input_ids": pad_id, "token_type_ids": 0, "attention_mask": 0, "special_tokens_mask": 1,
                "offset_mapping": (0, 0)}
        out = {}
        for key, rows in fields.items():
            padded = []
            for r in rows:
                extra = [fill[key]] * max(target - len(r), 0)
                padded.append(extra + r if side == "left" else r + extra)
            out[key] = padded
        return out

    @staticmethod
    def _tensor(rows, kind):
        a = np.asarray(rows, dtype=np.int64)
        if kind == "np":
            return a
        if kind == "pt":
            import torch
            return torch.from_numpy(a)
        raise _core.InvalidArgumentError(f"return_tensors must be 'np' or 'pt', got {kind!r}")

    def encode(self, text, text_pair=None, add_special_tokens=True, return_tensors=None, **kwargs):
        enc = self(text, text_pair, add_special_tokens=add_special_tokens, return_tensors=return_tensors, **kwargs)
        return enc["input_ids"]

    # --- decoding -----------------------------------------------------------------------------
    def decode(self, token_ids, skip_special_tokens=False, clean_up_tokenization_spaces=None):
        ids = np.asarray(token_ids.cpu() if hasattr(token_ids, "cpu") else token_ids, dtype=np.int64).reshape(-1)
        text = self._core.decode(ids.tolist(), skip_special_tokens)
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        return _clean_up(text) if clean else text

    def batch_decode(self, sequences, skip_special_tokens=False, clean_up_tokenization_spaces=None):
        if hasattr(sequences, "cpu"):
            sequences = sequences.cpu().numpy()
        return [self.decode(s, skip_special_tokens, clean_up_tokenization_spaces) for s in sequences]

    def save_pretrained(self, save_directory):
        dst = Path(save_directory)
        dst.mkdir(parents=True, exist_ok=True)
        if self.model_dir is not None:
            for name in _TOKENIZER_FILES:
                src = self.model_dir / name
                if src.exists() and (dst / name).resolve() != src.resolve():
                    shutil.copy2(src, dst / name)
        return tuple(str(dst / n) for n in _TOKENIZER_FILES if (dst / n).exists())

    def __repr__(self):
        return f"KptTokenizer(vocab={len(self)}, dir={self.model_dir})"


def _clean_up(text):
    # transformers' clean_up_tokenization, applied only when tokenizer_config.json asks for it.
    for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
                 (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(a, b)
    return text


def load_tokenizer(model_dir, model_type=None, prefer="auto"):
    """transformers' AutoTokenizer when installed (prefer='auto'/'transformers'), else the
    built-in one; None when the directory has no tokenizer files."""
    model_dir = Path(model_dir)
    has_json = (model_dir / "tokenizer.json").exists()
    has_any = has_json or any((model_dir / n).exists() for n in ("tokenizer_config.json", "vocab.txt", "vocab.json",
                                                                  "tokenizer.model"))
    if not has_any:
        return None
    if prefer in ("auto", "transformers"):
        try:
            from transformers import AutoTokenizer
        except ImportError:
            if prefer == "transformers":
                raise
        else:
            return AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    if prefer not in ("auto", "builtin", "transformers"):
        raise _core.InvalidArgumentError(f"tokenizer must be 'auto', 'transformers' or 'builtin', got {prefer!r}")
    if not has_json:
        raise _core.NotFoundError(f"{model_dir} has no tokenizer.json, which the built-in tokenizer needs; "
                                  "install transformers (pip install 'kernel-pytorch[hf]') to use its tokenizer")
    return KptTokenizer.from_pretrained(model_dir, model_type)
