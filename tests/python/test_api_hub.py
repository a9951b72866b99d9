"""from_pretrained with a hub id resolved offline through a (fake) Hugging Face cache in
tmp_path, laid out like huggingface_hub's: refs/, snapshots/<commit>/ with symlinks to blobs/."""
import os
import shutil

import numpy as np
import pytest
from conftest import FIXTURES

kpt = pytest.importorskip("kernel_pytorch", reason="kernel_pytorch is not installed (pip install .)")
from kernel_pytorch.hub import hub_cache_dir  # noqa: E402
from kernel_pytorch.integrations import HuggingFaceOptimizer  # noqa: E402

COMMIT = "0123456789abcdef0123456789abcdef01234567"
CASE = FIXTURES / "llama_bias_linear_tied"  # sharded: exercises the index through symlinks


def make_cache(root, repo_id="acme/tiny-llama", files=None, ref="main", commit=COMMIT):
    repo = root / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snap.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(sorted(files if files is not None else CASE.iterdir())):
        if f.suffix not in (".json", ".safetensors"):
            continue
        blob = repo / "blobs" / f"blob{i}"
        shutil.copy(f, blob)
        os.symlink(os.path.relpath(blob, snap), snap / f.name)
    (repo / "refs").mkdir(exist_ok=True)
    if ref:
        (repo / "refs" / ref).write_text(commit)
    return repo


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert hub_cache_dir() == tmp_path / "home" / ".cache" / "huggingface" / "hub"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub_cache_dir() == tmp_path / "xdg" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert hub_cache_dir() == tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert hub_cache_dir() == tmp_path / "hub"


def test_hub_id_resolves_through_cache(monkeypatch, tmp_path):
    make_cache(tmp_path / "hf" / "hub")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    opt = HuggingFaceOptimizer.from_pretrained("acme/tiny-llama", "reference")
    assert opt.model_dir.name == COMMIT and "hub cache" in opt.report.source
    model = opt.optimize()
    ref = kpt.load(CASE)
    ids = [[3, 1, 4, 1, 5, 9, 2, 6]]
    np.testing.assert_array_equal(model(input_ids=ids).logits, ref(input_ids=ids).logits)


def test_revision_and_explicit_cache_dir(tmp_path):
    make_cache(tmp_path, ref="v1")
    with pytest.raises(kpt.NotFoundError, match="no revision 'v2'"):
        HuggingFaceOptimizer.from_pretrained("acme/tiny-llama", cache_dir=tmp_path, revision="v2")
    opt = HuggingFaceOptimizer.from_pretrained("acme/tiny-llama", "reference", cache_dir=tmp_path, revision="v1")
    assert opt.model_dir.name == COMMIT
    opt = HuggingFaceOptimizer.from_pretrained("acme/tiny-llama", "reference", cache_dir=tmp_path, revision=COMMIT)
    assert opt.model_dir.name == COMMIT
    # no refs/main, but exactly one snapshot: that one
    assert HuggingFaceOptimizer.from_pretrained("acme/tiny-llama", cache_dir=tmp_path).model_dir.name == COMMIT


def test_missing_model_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError) as e:
        HuggingFaceOptimizer.from_pretrained("microsoft/DialoGPT-medium")
    msg = str(e.value)
    assert "models--microsoft--DialoGPT-medium" in msg and str(tmp_path) in msg
    assert "hf download microsoft/DialoGPT-medium" in msg and isinstance(e.value, kpt.NotFoundError)


def test_incomplete_snapshot_names_missing_files(tmp_path):
    shard = "model-00002-of-00003.safetensors"
    make_cache(tmp_path, files=[f for f in CASE.iterdir() if f.name != shard])
    with pytest.raises(kpt.NotFoundError, match=shard):
        HuggingFaceOptimizer.from_pretrained("acme/tiny-llama", cache_dir=tmp_path)
    make_cache(tmp_path, "acme/bin-only", files=[CASE / "config.json"])
    (tmp_path / "models--acme--bin-only" / "snapshots" / COMMIT / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(kpt.NotFoundError, match="from_model"):
        HuggingFaceOptimizer.from_pretrained("acme/bin-only", cache_dir=tmp_path)


def test_save_pretrained_round_trip_from_cache(tmp_path):
    make_cache(tmp_path / "hub")
    model = HuggingFaceOptimizer.from_pretrained("acme/tiny-llama", "reference", cache_dir=tmp_path / "hub").optimize()
    out = tmp_path / "saved"
    model.save_pretrained(out)
    assert not any(p.is_symlink() for p in out.iterdir())  # blobs copied, not links into the cache
    assert (out / "kernel_pytorch.json").exists()
    again = HuggingFaceOptimizer.from_pretrained(out, "reference").optimize()
    ids = np.asarray([[7, 8, 9, 10]])
    np.testing.assert_array_equal(again(ids).logits, model(ids).logits)
    np.testing.assert_array_equal(again.generate(ids, max_new_tokens=5), model.generate(ids, max_new_tokens=5))


def test_optimized_directory_uses_its_plan(tmp_path):
    import subprocess

    from kernel_pytorch import cli
    out = tmp_path / "optimized"
    p = subprocess.run([str(cli.binary_path()), "optimize", str(FIXTURES / "gpt2_inner"), "-o", str(out),
                        "--level", "conservative", "--repeat", "1"], capture_output=True, text=True, timeout=600)
    if p.returncode != 0 and "optimize" in p.stderr and not (out / "kpt_plan.json").exists():
        pytest.skip(f"this build's CLI cannot optimize: {p.stderr.strip()[-200:]}")
    assert p.returncode == 0, p.stderr
    opt = HuggingFaceOptimizer.from_pretrained(out)  # production: the plan's measured choice stands
    model = opt.optimize()
    assert model.level == opt.report.level == "conservative"
    assert any("kpt_plan.json" in n for n in opt.report.notes)
    ids = np.asarray([[5, 6, 7, 8]])
    np.testing.assert_allclose(model(ids).logits, kpt.load(FIXTURES / "gpt2_inner")(ids).logits, rtol=0, atol=1e-4)
