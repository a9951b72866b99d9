"""`kernelpytorch optimize`: the accuracy guard, the optimized directory and its plan, and how
the other commands load it."""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "models"
CLI = os.environ.get("KPT_CLI", str(ROOT / "build" / "src" / "cli" / "kernelpytorch"))

pytestmark = pytest.mark.skipif(not Path(CLI).exists(), reason=f"CLI not built at {CLI}")


def run(*args):
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("case", ["gpt2_inner", "llama_gqa3_headdim", "bert_tokentypes"])
def test_optimize_writes_a_directory_that_loads_with_its_plan(case, tmp_path):
    out = tmp_path / "opt"
    report = tmp_path / "report.json"
    p = run("optimize", FIXTURES / case, "--level", "conservative", "-o", out, "--json", report, "--repeat", "2")
    assert p.returncode == 0, p.stderr
    assert "[5/5] writing" in p.stderr
    plan = json.loads((out / "kpt_plan.json").read_text())
    assert plan["format"] == "kernelpytorch-plan/1" and plan["level"] == "conservative" and plan["device"] == "cpu"
    assert plan["accuracy"]["passes"] is True and plan["timing"]["speedup"] > 0
    assert (out / "config.json").read_text() == (FIXTURES / case / "config.json").read_text()
    assert json.loads(report.read_text())["level"] == "conservative"
    # forward on the optimized directory uses the plan's level and matches the reference output.
    inputs = FIXTURES / case / "forward_right.json"
    f = run("forward", out, "--inputs", inputs, "-o", tmp_path / "o.npy")
    assert f.returncode == 0, f.stderr
    assert "optimized model: level conservative on cpu (from kpt_plan.json)" in f.stderr
    g = run("forward", FIXTURES / case, "--inputs", inputs, "-o", tmp_path / "r.npy")
    assert g.returncode == 0
    mask = np.array(json.loads(inputs.read_text())["attention_mask"], bool)
    ours, ref = np.load(tmp_path / "o.npy")[mask], np.load(tmp_path / "r.npy")[mask]
    assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max()
    # benchmark runs the plan too.
    b = run("benchmark", out, "--no-history", "--no-progress", "--repeat", "1", "--warmup", "0", "--seq", "8",
            "--prompt-len", "4", "--new-tokens", "2", "--threads", "1", "-o", tmp_path / "bench.json")
    assert b.returncode == 0, b.stderr
    assert "optimized model: level conservative on cpu (from kpt_plan.json)" in b.stderr
    assert "/conservative/cpu" in b.stdout


def test_optimize_refuses_what_misses_the_budget(tmp_path):
    out = tmp_path / "opt"
    p = run("optimize", FIXTURES / "gpt2_inner", "--level", "aggressive", "--min-top1", "1.01", "-o", out, "--repeat", "1")
    assert p.returncode == 1
    assert "fails the accuracy budget" in p.stderr and "nothing written" in p.stderr
    assert not out.exists()


def test_optimize_bad_arguments(tmp_path):
    p = run("optimize", FIXTURES / "gpt2_inner", "--level", "reference", "-o", tmp_path / "o")
    assert p.returncode == 1 and "--level reference is the unoptimized oracle" in p.stderr
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    p = run("optimize", FIXTURES / "gpt2_inner", "-o", tmp_path / "full")
    assert p.returncode == 1 and "is not empty; pass --force" in p.stderr


def test_malformed_plan_is_a_clear_error(tmp_path):
    out = tmp_path / "opt"
    assert run("optimize", FIXTURES / "gpt2_inner", "--level", "conservative", "-o", out, "--repeat", "1").returncode == 0
    (out / "kpt_plan.json").write_text('{"format": "kernelpytorch-plan/1", "level": "warp9"}')
    p = run("generate", out, "--prompt-ids", "1,2", "-n", "2")
    assert p.returncode == 1 and "unknown optimization level 'warp9'" in p.stderr
    (out / "kpt_plan.json").write_text("{oops")
    p = run("generate", out, "--prompt-ids", "1,2", "-n", "2")
    assert p.returncode == 1 and "kpt_plan.json: not valid JSON" in p.stderr
    # An explicit --level bypasses the plan.
    p = run("generate", out, "--prompt-ids", "1,2", "-n", "2", "--level", "reference")
    assert p.returncode == 0, p.stderr
