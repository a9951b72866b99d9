"""OptimizedModel.generate: equal to transformers' greedy generate, left-padded batches, the
transformers argument conventions, streamers and callbacks."""
import json

import numpy as np
import pytest
from conftest import CAUSAL_CASES, FIXTURES

kpt = pytest.importorskip("kernel_pytorch", reason="kernel_pytorch is not installed (pip install .)")
from kernel_pytorch.integrations import HuggingFaceOptimizer  # noqa: E402


@pytest.fixture(scope="module")
def models():
    cache = {}

    def get(case):
        if case not in cache:
            cache[case] = HuggingFaceOptimizer.from_pretrained(FIXTURES / case, "reference").optimize()
        return cache[case]
    return get


def gen_fixture(case):
    return json.loads((FIXTURES / case / "generate.json").read_text())


@pytest.mark.parametrize("case", CAUSAL_CASES)
def test_greedy_matches_fixture(models, case):
    g = gen_fixture(case)
    out = models(case).generate(np.asarray([g["prompt_ids"]]), max_new_tokens=g["max_new_tokens"],
                                eos_token_id=[], do_sample=False)
    assert isinstance(out, np.ndarray) and out.dtype == np.int64
    assert out[0].tolist() == g["prompt_ids"] + g["new_ids"]


@pytest.mark.parametrize("case", CAUSAL_CASES)
def test_greedy_equals_transformers_generate(models, case):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    g = gen_fixture(case)
    hf = transformers.AutoModelForCausalLM.from_pretrained(FIXTURES / case, dtype=torch.float32).eval()
    prompt = torch.tensor([g["prompt_ids"]])
    kwargs = dict(max_new_tokens=g["max_new_tokens"], do_sample=False, pad_token_id=0)
    with torch.no_grad():
        ref = hf.generate(prompt, attention_mask=torch.ones_like(prompt), **kwargs)
    ours = models(case).generate(prompt, attention_mask=torch.ones_like(prompt), **kwargs)
    assert isinstance(ours, torch.Tensor) and ours.dtype == torch.long
    assert ours.tolist() == ref.tolist()


def test_left_padded_batch_equals_rows(models):
    model = models("qwen2_tied_bias")
    rows = [[5, 9, 17, 33, 2, 8, 100], [44, 0, 12], [7, 7, 150, 3, 91]]
    width = max(map(len, rows))
    ids = np.zeros((3, width), np.int64)
    mask = np.zeros((3, width), np.int64)
    for b, r in enumerate(rows):
        ids[b, width - len(r):] = r
        mask[b, width - len(r):] = 1
    batch = model.generate(ids, attention_mask=mask, max_new_tokens=6, eos_token_id=[])
    assert batch.shape == (3, width + 6)
    np.testing.assert_array_equal(batch[:, :width], ids)  # the prompt comes back as given
    for b, r in enumerate(rows):
        single = model.generate([r], max_new_tokens=6, eos_token_id=[])
        assert batch[b, width:].tolist() == single[0, len(r):].tolist()


def test_eos_stops_and_pads_like_transformers(models):
    model = models("gpt2_inner")
    g = gen_fixture("gpt2_inner")
    k = next(i for i in range(2, 24) if g["new_ids"][i] not in g["new_ids"][:i])
    stop = g["new_ids"][k]  # the first new token that did not occur before becomes the stop token
    out = model.generate([g["prompt_ids"]], max_new_tokens=10, eos_token_id=stop, pad_token_id=-1)
    assert out[0, len(g["prompt_ids"]):].tolist() == g["new_ids"][:k + 1]  # stops at, and keeps, it
    res = model.generate([g["prompt_ids"], g["prompt_ids"][::-1]], max_new_tokens=10, eos_token_id=stop,
                         pad_token_id=-1, return_dict_in_generate=True)
    assert res.finish_reasons[0] == "eos"
    tail = res.sequences[0, len(g["prompt_ids"]) + k + 1:].tolist()
    assert tail == [-1] * len(tail)  # a finished row is filled with pad_token_id


def test_max_length_and_generation_config_defaults(models):
    model = models("mistral_gqa")
    prompt = [gen_fixture("mistral_gqa")["prompt_ids"]]
    assert model.generate(prompt, max_length=10, eos_token_id=[]).shape == (1, 10)
    # transformers' default: max_length 20 in total when nothing else is said
    assert model.generate(prompt, eos_token_id=[]).shape == (1, 20)


def test_sampling_is_seeded_and_follows_torch_seed(models):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    model = models("llama_gqa3_headdim")
    prompt = [gen_fixture("llama_gqa3_headdim")["prompt_ids"]]
    kw = dict(max_new_tokens=16, do_sample=True, temperature=1.5, top_k=20, top_p=0.95, eos_token_id=[])
    a = model.generate(prompt, seed=123, **kw)
    b = model.generate(prompt, seed=123, **kw)
    np.testing.assert_array_equal(a, b)
    torch.manual_seed(7)
    c = model.generate(prompt, **kw)
    torch.manual_seed(7)
    d = model.generate(prompt, **kw)
    np.testing.assert_array_equal(c, d)


def test_callback_streams_and_stops(models):
    model = models("gpt2_default_inner")
    g = gen_fixture("gpt2_default_inner")
    seen = []

    def on_token(row, token):
        seen.append((row, token))
        return len(seen) < 5  # stop after five tokens
    out = model.generate([g["prompt_ids"]], streamer=on_token, max_new_tokens=20, eos_token_id=[])
    assert [t for _, t in seen] == g["new_ids"][:5]
    assert out[0, len(g["prompt_ids"]):].tolist() == g["new_ids"][:5]


def test_transformers_streamer_protocol(models):
    torch = pytest.importorskip("torch", reason="torch is not installed")

    class Recorder:  # the put()/end() protocol of transformers' BaseStreamer
        def __init__(self):
            self.puts, self.ended = [], False

        def put(self, value):
            self.puts.append(value.tolist())

        def end(self):
            self.ended = True
    model = models("gpt2_inner")
    g = gen_fixture("gpt2_inner")
    rec = Recorder()
    model.generate(torch.tensor([g["prompt_ids"]]), streamer=rec, max_new_tokens=4, eos_token_id=[])
    assert rec.puts[0] == [g["prompt_ids"]] and rec.puts[1:] == [[t] for t in g["new_ids"][:4]] and rec.ended
    with pytest.raises(ValueError, match="batch size 1"):
        model.generate([[1, 2], [3, 4]], streamer=Recorder(), max_new_tokens=2)


def test_text_streamer_with_builtin_tokenizer(capsys):
    from conftest import real_model
    d = real_model("smollm2-135m")
    opt = HuggingFaceOptimizer.from_pretrained(d, "reference", tokenizer="builtin")
    model = opt.optimize()
    tok = opt.tokenizer
    assert isinstance(tok, kpt.KptTokenizer)
    enc = tok("The capital of France is", return_tensors="np")
    pieces = []
    out = model.generate(**enc, max_new_tokens=8, streamer=lambda row, t: pieces.append(t))
    assert out[0, enc["input_ids"].shape[1]:].tolist() == pieces
    assert tok.decode(out[0]).startswith("The capital of France is")


def test_callback_exception_propagates(models):
    def boom(row, token):
        raise KeyError("from the callback")
    with pytest.raises(KeyError, match="from the callback"):
        models("gpt2_inner").generate([[1, 2, 3]], streamer=boom, max_new_tokens=5)


def test_unsupported_arguments_are_errors(models):
    model = models("gpt2_inner")
    with pytest.raises(kpt.UnsupportedError, match="beam search"):
        model.generate([[1, 2]], num_beams=4)
    with pytest.raises(TypeError, match="unsupported arguments"):
        model.generate([[1, 2]], penalty_alpha=0.6)
    with pytest.raises(kpt.UnsupportedError, match="causal LM"):
        models("bert_tokentypes").generate([[1, 2]])
