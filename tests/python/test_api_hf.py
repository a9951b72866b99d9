"""The transformers side of the API: from_model with in-memory BERT/GPT-2/LLaMA models, the
tokenizer (transformers' or the built-in one with the same conventions), config, the report,
and parity with transformers on the real models in models/ when present."""
import numpy as np
import pytest
from conftest import FIXTURES, TOLERANCES, real_model, rel_err

kpt = pytest.importorskip("kernel_pytorch", reason="kernel_pytorch is not installed (pip install .)")
torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'kernel-pytorch[hf]')")
transformers = pytest.importorskip("transformers", reason="transformers is not installed")
from kernel_pytorch.integrations import HuggingFaceOptimizer  # noqa: E402

TOL = TOLERANCES["fp32_vs_transformers"]["rel_max_abs"]
TEXTS = ["The capital of France is", "Hello, world! Naïve café — 東京 😀", "a"]


def tiny(kind):
    torch.manual_seed(0)
    if kind == "llama":
        cfg = transformers.LlamaConfig(vocab_size=97, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                                       num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=64,
                                       initializer_range=0.2)
        return transformers.LlamaForCausalLM(cfg).eval()
    if kind == "gpt2":
        cfg = transformers.GPT2Config(vocab_size=89, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                                      initializer_range=0.2)
        return transformers.GPT2LMHeadModel(cfg).eval()
    cfg = transformers.BertConfig(vocab_size=91, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=40, max_position_embeddings=64, initializer_range=0.2)
    return transformers.BertModel(cfg, add_pooling_layer=False).eval()


@pytest.mark.parametrize("kind", ["llama", "gpt2", "bert"])
def test_from_model_matches_the_model(kind):
    hf = tiny(kind)
    opt = HuggingFaceOptimizer.from_model(hf, optimization_level="reference")
    model = opt.optimize()
    assert opt.tokenizer is None and model.config is hf.config
    ids = torch.randint(0, hf.config.vocab_size, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, :3] = 0  # left padding
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask)
    ours = model(input_ids=ids, attention_mask=mask)
    key = "last_hidden_state" if kind == "bert" else "logits"
    # transformers' own positions differ from ours on left-padded rows; compare unpadded rows only
    assert rel_err(ours[key][0:1].numpy(), ref[key][0:1].numpy()) <= TOL
    if kind != "bert":
        prompt = ids[:1]
        with torch.no_grad():
            want = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=8, do_sample=False,
                               pad_token_id=0)
        assert model.generate(prompt, max_new_tokens=8, pad_token_id=0).tolist() == want.tolist()


def test_from_model_rejects_non_models():
    with pytest.raises(TypeError, match="PreTrainedModel"):
        HuggingFaceOptimizer.from_model(object())


def test_measure_reports_speed_and_accuracy():
    opt = HuggingFaceOptimizer.from_pretrained(FIXTURES / "qwen2_tied_bias", "reference")
    opt.optimize(measure=True)
    m = opt.report.measurements
    assert m["max_rel_diff_logits"] <= TOL and m["top1_agreement"] == 1.0
    assert m["kernel_pytorch_ms"] > 0 and m["transformers_ms"] > 0 and "median" in m["conditions"]
    assert "speedup_vs_transformers" in str(opt.report)


# --- real models (models/, prepared by scripts/models/prepare_models.py) -----------------------

@pytest.fixture(scope="module")
def smollm():
    d = real_model("smollm2-135m")
    opt = HuggingFaceOptimizer.from_pretrained(d, "reference")
    return opt, opt.optimize(), transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()


def test_real_llama_logits_and_generate_match_transformers(smollm):
    opt, model, hf = smollm
    tok = opt.tokenizer
    assert isinstance(tok, transformers.PreTrainedTokenizerBase)
    tok.padding_side = "left"
    tok.pad_token = tok.pad_token or tok.eos_token  # SmolLM2 ships no pad token
    enc = tok(TEXTS[:2], return_tensors="pt", padding=True)
    with torch.no_grad():
        ref = hf(**enc).logits
    ours = model(**enc).logits
    assert isinstance(ours, torch.Tensor)
    assert rel_err(ours.numpy(), ref.numpy(), enc["attention_mask"].numpy()) <= TOL
    single = tok(TEXTS[0], return_tensors="pt")
    with torch.no_grad():
        want = hf.generate(**single, max_new_tokens=12, do_sample=False)
    got = model.generate(**single, max_new_tokens=12, do_sample=False)
    assert got.tolist() == want.tolist()
    assert tok.decode(got[0], skip_special_tokens=True).startswith(TEXTS[0])


def test_real_bert_matches_transformers():
    d = real_model("minilm-l6")
    opt = HuggingFaceOptimizer.from_pretrained(d, "reference")
    model = opt.optimize()
    hf = transformers.AutoModel.from_pretrained(d, dtype=torch.float32).eval()
    enc = opt.tokenizer(TEXTS, return_tensors="pt", padding=True)
    assert "token_type_ids" in enc
    with torch.no_grad():
        ref = hf(**enc).last_hidden_state
    ours = model(**enc).last_hidden_state
    assert rel_err(ours.numpy(), ref.numpy(), enc["attention_mask"].numpy()) <= TOL


@pytest.mark.parametrize("name", ["smollm2-135m", "minilm-l6"])
def test_builtin_tokenizer_follows_transformers_conventions(name):
    d = real_model(name)
    ours = kpt.KptTokenizer.from_pretrained(d)
    ref = transformers.AutoTokenizer.from_pretrained(d)
    if ref.pad_token is None:
        ref.pad_token = ref.eos_token
        ours.pad_token = ours.eos_token
    for side in ("right", "left"):
        ref.padding_side = ours.padding_side = side
        a = ours(TEXTS, padding=True, return_tensors="np")
        b = ref(TEXTS, padding=True, return_tensors="np")
        assert sorted(a.keys()) == sorted(b.keys())
        for k in b:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{name} {side} {k}")
    assert ours(TEXTS[1]) == dict(ref(TEXTS[1]))  # one text: plain lists
    t = ours(TEXTS, truncation=True, max_length=4)
    assert t["input_ids"] == ref(TEXTS, truncation=True, max_length=4)["input_ids"]
    for text in (TEXTS[1], "Don 't stop , ok ? I 'm sure ."):  # the second hits clean_up_tokenization
        ids = ref(text)["input_ids"]
        for skip in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip) == ref.decode(ids, skip_special_tokens=skip)
    pt = ours(TEXTS, padding=True, return_tensors="pt")["input_ids"]
    assert isinstance(pt, torch.Tensor)
    assert ours.batch_decode(pt, skip_special_tokens=True) == ref.batch_decode(pt, skip_special_tokens=True)
    assert ours.convert_ids_to_tokens(ids) == ref.convert_ids_to_tokens(ids)
    assert len(ours) == len(ref) and ours.eos_token_id == ref.eos_token_id


def test_save_pretrained_keeps_tokenizer_and_config(smollm, tmp_path):
    opt, model, _ = smollm
    model.save_pretrained(tmp_path)
    for f in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json", "kernel_pytorch.json"):
        assert (tmp_path / f).exists(), f
    again = HuggingFaceOptimizer.from_pretrained(tmp_path, "reference")
    ids = opt.tokenizer(TEXTS[0], return_tensors="np")["input_ids"]
    np.testing.assert_array_equal(again.optimize()(ids).logits, model(ids).logits)
    assert transformers.AutoConfig.from_pretrained(tmp_path).model_type == "llama"
