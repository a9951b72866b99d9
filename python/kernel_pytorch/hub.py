"""Resolve a local directory or a Hugging Face hub id to a model directory, offline.

Hub ids are looked up in huggingface_hub's cache layout, never downloaded:

    <cache>/models--<org>--<name>/refs/<revision>          (a commit hash)
    <cache>/models--<org>--<name>/snapshots/<commit>/       (config.json, *.safetensors, ...)

<cache> is HF_HUB_CACHE, else HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
~/.cache/huggingface/hub (huggingface_hub's own order)."""
import json
import os
import re
from pathlib import Path

from . import _core

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def hub_cache_dir():
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "huggingface" / "hub"


def _how_to_get(repo_id):
    return (f"KernelPyTorch does not download models. Fetch it once with network access: "
            f"`hf download {repo_id}` (or `huggingface-cli download {repo_id}`, or in Python "
            f"huggingface_hub.snapshot_download('{repo_id}')), point HF_HUB_CACHE/HF_HOME at the cache that holds "
            f"it, or pass a local model directory")


def _missing_files(model_dir):
    """What a model directory lacks for the engine: config.json and safetensors weights."""
    missing = []
    if not (model_dir / "config.json").exists():
        missing.append("config.json")
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values()))
        except (OSError, ValueError):
            shards = []
        missing += [s for s in shards if not (model_dir / s).exists()]
    elif not any(model_dir.glob("*.safetensors")):
        if any(model_dir.glob("*.bin")) or any(model_dir.glob("*.pt")):
            missing.append("*.safetensors weights (only PyTorch .bin weights are there; KernelPyTorch reads "
                           "safetensors: load the model with transformers and use HuggingFaceOptimizer.from_model)")
        else:
            missing.append("*.safetensors weights")
    return missing


def resolve_model_dir(name_or_path, revision=None, cache_dir=None):
    """Returns (model_dir: Path, source: str). Raises NotFoundError naming what is missing."""
    path = Path(os.fspath(name_or_path)).expanduser()
    if path.is_dir():
        return path, str(path)
    text = os.fspath(name_or_path)
    if path.exists():
        raise _core.InvalidArgumentError(f"{text} is a file; from_pretrained expects a model directory or a hub id")
    looks_like_path = text.startswith((".", "/", "~")) or text.count("/") > 1 or os.sep in text.replace("/", "")
    if looks_like_path or not _HUB_ID.match(text):
        raise _core.NotFoundError(f"model directory {text} does not exist")

    cache = Path(cache_dir).expanduser() if cache_dir is not None else hub_cache_dir()
    repo_dir = cache / ("models--" + text.replace("/", "--"))
    if not repo_dir.is_dir():
        raise _core.NotFoundError(f"'{text}' is not a local directory and is not in the Hugging Face cache "
                                  f"{cache} (no {repo_dir.name}/ there). {_how_to_get(text)}.")
    snapshots = repo_dir / "snapshots"
    rev = revision or "main"
    if _COMMIT.match(rev) and (snapshots / rev).is_dir():
        snap = snapshots / rev
    elif (repo_dir / "refs" / rev).is_file():
        commit = (repo_dir / "refs" / rev).read_text(encoding="utf-8").strip()
        snap = snapshots / commit
        if not snap.is_dir():
            raise _core.NotFoundError(f"the cache entry for '{text}' names commit {commit} for '{rev}' but "
                                      f"{snap} does not exist. {_how_to_get(text)}.")
    else:
        found = sorted(p.name for p in snapshots.iterdir()) if snapshots.is_dir() else []
        if revision is None and len(found) == 1:
            snap = snapshots / found[0]
        else:
            refs = sorted(p.name for p in (repo_dir / "refs").iterdir()) if (repo_dir / "refs").is_dir() else []
            raise _core.NotFoundError(f"the cache entry for '{text}' has no revision '{rev}' (refs: {refs or 'none'}, "
                                      f"snapshots: {found or 'none'}); pass revision=... or {_how_to_get(text)}.")
    missing = _missing_files(snap)
    if missing:
        raise _core.NotFoundError(f"the cached snapshot of '{text}' ({snap}) lacks {', '.join(missing)}. "
                                  f"{_how_to_get(text)}.")
    return snap, f"{text} (hub cache, {snap.name[:12]})"
