"""`kernelpytorch benchmark` and `doctor` from the command line: a short run on a tiny fixture
model, the result JSON contract, compare's exit codes on synthetic samples (noise passes, a 20%
slowdown fails), history with change points, the HTML report, and clear errors."""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "models"
CLI = os.environ.get("KPT_CLI", str(ROOT / "build" / "src" / "cli" / "kernelpytorch"))

pytestmark = pytest.mark.skipif(not Path(CLI).exists(), reason=f"CLI not built at {CLI} (run scripts/build.sh)")


def run(*args, check=True, exe=CLI):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=600, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"{exe} {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}")
    return p


@pytest.fixture(scope="module")
def gpt2_result(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    out, hist = d / "r.json", d / "h.sqlite"
    p = run("benchmark", FIXTURES / "gpt2_inner", "--prompt-len", 4, "--new-tokens", 5, "--repeat", 3,
            "--warmup", 1, "--threads", 1, "--history", hist, "-o", out)
    return json.loads(out.read_text()), p, hist


def test_doctor_json_schema():
    env = json.loads(run("doctor", "--json").stdout)
    assert env["schema"] == "kernelpytorch.environment/1"
    assert env["hardware"]["cpu"]["logical_cores"] >= 1
    assert isinstance(env["hardware"]["cpu"]["flags"], list)
    assert env["hardware"]["memory"]["total_bytes"] > 0
    assert isinstance(env["hardware"]["gpus"], list)
    for key in ("version", "git_commit", "compiler", "build_type", "cuda", "onednn"):
        assert key in env["build"]
    assert len(env["env_key"]) == 16
    assert env["capabilities"]["devices"][0]["device"] == "cpu"
    assert set(env["capabilities"]["levels"]) == {"reference", "conservative", "balanced", "aggressive", "production"}


def test_doctor_text_and_alias():
    text = run("doctor").stdout
    for section in ("Build", "System", "GPUs", "Devices", "Levels", "Recommendation"):
        assert f"\n{section}\n" in text
    alias = Path(CLI).with_name("kpt-doctor")
    if alias.exists():
        assert "KernelPyTorch doctor" in run(exe=str(alias)).stdout


def test_result_contract(gpt2_result):
    r, p, _ = gpt2_result
    assert r["schema"] == "kernelpytorch.benchmark/1"
    assert r["environment"]["env_key"]
    (w,) = r["workloads"]
    assert w["id"] == "gpt2_inner/generate/b1-p4-n5/reference/cpu"
    assert w["weights"] == "real" and w["kind"] == "generate"
    m = w["metrics"]
    assert len(m["latency_ms"]["samples"]) == 3
    assert len(m["ttft_ms"]["samples"]) == 3
    assert len(m["itl_ms"]["samples"]) == 3 * 4  # 4 gaps between 5 tokens
    assert m["tokens_s"]["better"] == "higher" and m["latency_ms"]["better"] == "lower"
    lat = m["latency_ms"]
    assert lat["median"] == pytest.approx(np.median(lat["samples"]))
    assert lat["p90"] == pytest.approx(np.percentile(lat["samples"], 90))
    assert m["peak_rss_bytes"]["samples"][0] > 0
    assert "gpt2_inner/generate/b1-p4-n5/reference/cpu" in p.stdout  # the table
    assert "recorded as run #1" in p.stderr


def test_forward_workload_on_encoder(tmp_path):
    out = tmp_path / "bert.json"
    run("benchmark", FIXTURES / "bert_tokentypes", "--seq", 9, "--batch", 2, "--repeat", 2, "--no-history",
        "--no-progress", "-o", out)
    (w,) = json.loads(out.read_text())["workloads"]
    assert w["id"] == "bert_tokentypes/forward/b2-s9/reference/cpu"
    assert set(w["metrics"]) >= {"latency_ms", "throughput_seq_s", "tokens_s", "peak_rss_bytes"}


def synthetic(template, latency_ms, tokens_s, path):
    r = json.loads(json.dumps(template))
    m = r["workloads"][0]["metrics"]
    m["latency_ms"]["samples"] = list(map(float, latency_ms))
    m["tokens_s"]["samples"] = list(map(float, tokens_s))
    for k in ("ttft_ms", "itl_ms", "peak_rss_bytes", "load_ms"):
        m.pop(k, None)
    path.write_text(json.dumps(r))
    return path


def noisy(center, n, seed, rel=0.03):
    rng = np.random.default_rng(seed)
    v = center * (1 + rel * rng.standard_normal(n))
    v[rng.random(n) < 0.1] *= 1.5  # descheduled runs
    return v


def test_compare_noise_passes_and_slowdown_fails(gpt2_result, tmp_path):
    r, _, _ = gpt2_result
    base = synthetic(r, noisy(100, 20, 1), noisy(50, 20, 2), tmp_path / "base.json")
    same = synthetic(r, noisy(100, 20, 3), noisy(50, 20, 4), tmp_path / "same.json")
    slow = synthetic(r, noisy(120, 20, 5), noisy(41, 20, 6), tmp_path / "slow.json")
    p = run("benchmark", "compare", base, same, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "0 regressed" in p.stdout
    p = run("benchmark", "compare", base, slow, check=False)
    assert p.returncode == 3, p.stdout + p.stderr
    assert "REGRESSED" in p.stdout and "latency_ms" in p.stdout and "tokens_s" in p.stdout
    # A threshold above the change turns it into "unchanged".
    assert run("benchmark", "compare", base, slow, "--threshold", "30%", check=False).returncode == 0


def test_compare_malformed_is_a_clear_error(gpt2_result, tmp_path):
    r, _, _ = gpt2_result
    good = synthetic(r, [1, 2, 3], [1, 2, 3], tmp_path / "good.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    p = run("benchmark", "compare", good, bad, check=False)
    assert p.returncode == 1 and "bad.json is not valid JSON" in p.stderr
    broken = json.loads(good.read_text())
    broken["workloads"][0]["metrics"]["latency_ms"]["samples"] = "fast"
    bad.write_text(json.dumps(broken))
    p = run("benchmark", "compare", good, bad, check=False)
    assert p.returncode == 1 and "latency_ms.samples must be a non-empty array" in p.stderr, p.stderr
    p = run("benchmark", "compare", good, tmp_path / "missing.json", check=False)
    assert p.returncode == 1 and "cannot open" in p.stderr


def test_history_change_point_and_report(gpt2_result, tmp_path):
    r, _, _ = gpt2_result
    hist = tmp_path / "h.sqlite"
    files = []
    for i in range(14):  # a 25% slowdown enters at the 9th run
        center = 100 if i < 8 else 125
        files.append(synthetic(r, noisy(center, 10, 100 + i, 0.01), noisy(5000 / center, 10, 200 + i, 0.01),
                               tmp_path / f"run{i}.json"))
    p = run("benchmark", "history", "--history", hist, "--import", *files)
    assert "change point: +2" in p.stdout and "at run #9" in p.stdout, p.stdout
    html = tmp_path / "report.html"
    run("benchmark", "report", "--history", hist, "-o", html)
    text = html.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text and "change point at run #9" in text
    assert "<script" not in text and "https://" not in text


def test_baseline_against_history(gpt2_result):
    _, _, hist = gpt2_result
    p = run("benchmark", FIXTURES / "gpt2_inner", "--prompt-len", 4, "--new-tokens", 5, "--repeat", 3, "--warmup", 1,
            "--threads", 1, "--history", hist, "--baseline", "--threshold", "1000%", "--no-progress")
    assert "baseline for gpt2_inner/generate/b1-p4-n5/reference/cpu: run #1" in p.stderr
    assert "metrics compared" in p.stdout


def test_bad_options_are_clear(tmp_path):
    p = run("benchmark", check=False)
    assert p.returncode == 1 and "give a MODEL_DIR or --suite" in p.stderr
    p = run("benchmark", "--suite", "nope", "--no-history", check=False)
    assert p.returncode == 1 and "suite 'nope' not found" in p.stderr
    p = run("benchmark", FIXTURES / "bert_tokentypes", "--kind", "generate", "--no-history", "--repeat", 1, check=False)
    assert p.returncode == 1 and "is an encoder" in p.stderr
    p = run("benchmark", "compare", "a.json", "b.json", "--threshold", "lots", check=False)
    assert p.returncode == 1 and "threshold 'lots'" in p.stderr


def test_levels_interleaved_in_one_run(tmp_path):
    out = tmp_path / "levels.json"
    p = run("benchmark", FIXTURES / "gpt2_inner", "--level", "reference,conservative", "--prompt-len", 3,
            "--new-tokens", 3, "--repeat", 2, "--threads", 1, "--no-history", "--no-progress", "-o", out)
    ids = [w["id"] for w in json.loads(out.read_text())["workloads"]]
    assert ids == ["gpt2_inner/generate/b1-p3-n3/reference/cpu", "gpt2_inner/generate/b1-p3-n3/conservative/cpu"]
    assert "same-run ratios" in p.stdout and "vs reference/cpu" in p.stdout
    p = run("benchmark", FIXTURES / "gpt2_inner", "--level", "reference,fastest", "--no-history", check=False)
    assert p.returncode == 1 and "fastest" in p.stderr


def test_custom_suite_with_real_and_random_weights(tmp_path):
    # A small llama-shaped config: the suite makes its random checkpoint in C++ (no Python).
    (tmp_path / "configs").mkdir()
    cfg = json.loads((ROOT / "benchmarks" / "configs" / "TinyLlama-1.1B-Chat-v1.0.json").read_text())
    cfg.update(num_hidden_layers=2, hidden_size=64, intermediate_size=96, num_attention_heads=4,
               num_key_value_heads=2, vocab_size=101, max_position_embeddings=64)
    (tmp_path / "configs" / "tiny-llama.json").write_text(json.dumps(cfg))
    suite = {
        "name": "mini",
        "models": {"fixture": {"real_weights": ["gpt2_inner"]}, "tiny-llama": {"config": "configs/tiny-llama.json"},
                   "absent": {"real_weights": ["not-prepared"]}},
        "defaults": {"warmup": 0, "repeat": 2},
        "workloads": [],
        "quick": [{"model": "fixture", "kind": "generate", "prompt_len": 3, "new_tokens": 2},
                  {"model": "tiny-llama", "kind": "forward", "seq": 5},
                  {"model": "absent", "kind": "forward", "optional": True}],
    }
    (tmp_path / "mini.json").write_text(json.dumps(suite))
    out = tmp_path / "r.json"
    env_cache = dict(XDG_CACHE_HOME=str(tmp_path / "cache"))
    p = subprocess.run([CLI, "benchmark", "--suite", str(tmp_path / "mini.json"), "--quick", "--models-dir",
                        str(FIXTURES), "--threads", "1", "--no-history", "--no-progress", "-o", str(out)],
                       capture_output=True, text=True, timeout=600, env=dict(os.environ, **env_cache))
    assert p.returncode == 0, p.stderr
    ws = json.loads(out.read_text())["workloads"]
    assert [(w["name"], w["weights"]) for w in ws] == [("fixture", "real"), ("tiny-llama", "random")]
    assert list((tmp_path / "cache" / "kernelpytorch" / "random-models").glob("tiny-llama-*/model.safetensors"))


def _has(module):
    import importlib.util
    return importlib.util.find_spec(module) is not None


@pytest.mark.skipif(not (_has("torch") and _has("transformers")), reason="the pytorch peer needs torch + transformers")
def test_pytorch_peer_in_the_same_harness(tmp_path):
    import torch
    out = tmp_path / "peers.json"
    fixture = FIXTURES / "llama_gqa3_headdim"
    p = run("benchmark", fixture, "--level", "conservative", "--peers", "pytorch,onnxruntime", "--prompt-len", 6,
            "--new-tokens", 5, "--repeat", 3, "--warmup", 1, "--threads", 1, "--no-history", "--no-progress",
            "-o", out)
    r = json.loads(out.read_text())
    ours, peer = r["workloads"]
    assert ours["engine"] == "kernelpytorch" and ours["id"] == "llama_gqa3_headdim/generate/b1-p6-n5/conservative/cpu"
    assert peer["engine"] == "pytorch" and peer["id"] == "llama_gqa3_headdim/generate/b1-p6-n5/pytorch/cpu"
    assert peer["peer"]["version"] == torch.__version__ and "transformers" in peer["peer"]["what"]
    # The same metrics as ours, from raw samples that are real timings.
    assert set(ours["metrics"]) <= set(peer["metrics"]) | {"load_ms"}
    m = peer["metrics"]
    lat, ttft, itl = m["latency_ms"]["samples"], m["ttft_ms"]["samples"], m["itl_ms"]["samples"]
    assert len(lat) == 3 and len(ttft) == 3 and len(itl) == 3 * 4
    assert all(0 < t < 60_000 for t in lat)
    assert all(0 < f <= t for f, t in zip(ttft, lat))            # first token before the call returns
    assert all(i > 0 for i in itl) and sum(itl) < sum(lat)
    assert all(v > 0 for v in m["tokens_s"]["samples"])
    assert m["peak_rss_bytes"]["samples"][0] > 50e6              # a Python process with torch loaded
    assert 0 < m["cpu_share"]["median"] < 4
    assert peer["n_parameters"] > 0
    # The onnxruntime peer cannot run a generate workload: skipped with the reason, not an error.
    assert any("onnxruntime" in s and "forward workloads only" in s for s in r["skipped"])
    assert "vs pytorch/cpu" in p.stdout and "skipped peer" in p.stdout


@pytest.mark.skipif(not (_has("onnxruntime") and _has("onnx") and _has("torch") and _has("transformers")),
                    reason="the onnxruntime peer needs onnxruntime, onnx, torch and transformers")
def test_onnxruntime_peer_on_an_encoder(tmp_path):
    out = tmp_path / "ort.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", XDG_CACHE_HOME=str(tmp_path / "cache"))
    p = subprocess.run([CLI, "benchmark", str(FIXTURES / "bert_tokentypes"), "--level", "conservative", "--peers",
                        "onnxruntime", "--seq", "12", "--repeat", "3", "--threads", "1", "--no-history",
                        "--no-progress", "-o", str(out)], capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stderr
    ours, peer = json.loads(out.read_text())["workloads"]
    assert peer["engine"] == "onnxruntime" and peer["kind"] == "forward" and peer["seq"] == 12
    assert "optimizer" in peer["peer"]["what"]
    assert all(0 < t < 60_000 for t in peer["metrics"]["latency_ms"]["samples"])
    assert len(peer["metrics"]["throughput_seq_s"]["samples"]) == 3
    assert list((tmp_path / "cache" / "kernelpytorch" / "peers").glob("*.opt.onnx"))


def test_unknown_peer_is_a_clear_error():
    p = run("benchmark", FIXTURES / "gpt2_inner", "--peers", "tensorrt", "--no-history", check=False)
    assert p.returncode == 1 and "unknown peer 'tensorrt'" in p.stderr and "pytorch" in p.stderr


def test_min_ratio_fails_only_when_clearly_below(tmp_path):
    args = ["benchmark", FIXTURES / "gpt2_inner", "--level", "reference,conservative", "--kind", "forward",
            "--seq", 8, "--repeat", 8, "--warmup", 1, "--threads", 1, "--no-history", "--no-progress"]
    ok = run(*args, "--min-ratio", "0.01x")
    assert "ok - meets the floor" in ok.stdout
    # No level of this engine is 1000x faster than reference: significantly below, exit 3.
    bad = run(*args, "--min-ratio", "gpt2_inner/forward=1000", check=False)
    assert bad.returncode == 3, bad.stdout + bad.stderr
    assert "REGRESSED" in bad.stdout and "floor 1000.00x" in bad.stdout
    p = run("benchmark", FIXTURES / "gpt2_inner", "--min-ratio", "3x", "--no-history", check=False)
    assert p.returncode == 1 and "two or more --level" in p.stderr


FAKE_PEER = r'''
import json, sys
mode = sys.argv[0].rsplit("_", 1)[-1].split(".")[0]
for line in sys.stdin:
    req = json.loads(line)
    if req["cmd"] == "load":
        if mode == "absent":
            print(json.dumps({"event": "error", "reason": "not_installed", "message": "fakelib is not installed here"}))
            sys.exit(0)
        assert len(req["input_ids"]) == 1 and len(req["input_ids"][0]) == 4   # the workload's ids
        print("library chatter on stdout is skipped")
        print(json.dumps({"event": "ready", "device": "cpu", "threads": 1, "n_parameters": 7, "load_ms": 1.0,
                          "info": {"engine": "fake"}}), flush=True)
    elif req["cmd"] == "run":
        if mode == "crash":
            print("fake peer: segfault imitation", file=sys.stderr)
            sys.exit(9)
        print(json.dumps({"event": "rep", "latency_ms": 5.0, "cpu_s": 0.005, "token_ms": [1.0, 2.0, 3.0]}), flush=True)
    elif req["cmd"] == "quit":
        print(json.dumps({"event": "bye", "peak_rss_bytes": 1e6}), flush=True)
        sys.exit(0)
'''


@pytest.mark.parametrize("mode", ["ok", "absent", "crash"])
def test_peer_protocol_with_a_fake_peer(tmp_path, mode):
    script = tmp_path / f"peer_{mode}.py"
    script.write_text(FAKE_PEER)
    out = tmp_path / "r.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", KPT_PEER_SCRIPT=str(script))
    p = subprocess.run([CLI, "benchmark", str(FIXTURES / "gpt2_inner"), "--peers", "pytorch", "--prompt-len", "4",
                        "--new-tokens", "3", "--repeat", "2", "--warmup", "1", "--threads", "1", "--no-history",
                        "--no-progress", "-o", str(out)], capture_output=True, text=True, timeout=120, env=env)
    if mode == "crash":  # an error naming the peer, with its stderr; no SIGPIPE death
        assert p.returncode == 1, p.stderr
        assert "peer pytorch" in p.stderr and "segfault imitation" in p.stderr
        return
    assert p.returncode == 0, p.stderr
    r = json.loads(out.read_text())
    if mode == "absent":
        assert [w["engine"] for w in r["workloads"]] == ["kernelpytorch"]
        assert r["skipped"] == ["gpt2_inner/generate/b1-p4-n3/pytorch/cpu: fakelib is not installed here"]
        return
    peer = r["workloads"][1]
    assert peer["metrics"]["latency_ms"]["samples"] == [5.0, 5.0]        # the warm-up is not kept
    assert peer["metrics"]["ttft_ms"]["samples"] == [1.0, 1.0]
    assert peer["metrics"]["itl_ms"]["samples"] == [1.0] * 4
    assert peer["metrics"]["tokens_s"]["samples"] == [1000.0, 1000.0]    # 2 tokens in 2 ms
    assert peer["metrics"]["peak_rss_bytes"]["samples"] == [1e6]
    assert peer["n_parameters"] == 7 and peer["peer"] == {"engine": "fake"}
