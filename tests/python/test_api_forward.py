"""OptimizedModel forward through the Python API: parity with transformers' float64 references
(the committed fixtures), numpy in/out, torch in/out, and the transformers-style output object."""
import json

import numpy as np
import pytest
from conftest import CAUSAL_CASES, FIXTURE_CASES, FIXTURES, TOLERANCES, rel_err

kpt = pytest.importorskip("kernel_pytorch", reason="kernel_pytorch is not installed (pip install .)")
from kernel_pytorch.integrations import HuggingFaceOptimizer  # noqa: E402

TOL = TOLERANCES["fp32_vs_transformers"]["rel_max_abs"]


def fixture_inputs(case, name):
    return json.loads((FIXTURES / case / f"forward_{name}.json").read_text())


def expected(case, name):
    return np.load(FIXTURES / case / f"forward_{name}_expected.npy")


@pytest.fixture(scope="module")
def models():
    cache = {}

    def get(case):
        if case not in cache:
            cache[case] = HuggingFaceOptimizer.from_pretrained(FIXTURES / case, "reference").optimize()
        return cache[case]
    return get


@pytest.mark.parametrize("name", ["right", "left", "single"])
@pytest.mark.parametrize("case", FIXTURE_CASES)
def test_numpy_forward_matches_transformers(models, case, name):
    model = models(case)
    inputs = {k: np.asarray(v, dtype=np.int64) for k, v in fixture_inputs(case, name).items()}
    out = model(**inputs)
    ours = out.logits if model.is_causal_lm else out.last_hidden_state
    ref = expected(case, name)
    assert isinstance(ours, np.ndarray) and ours.dtype == np.float32 and ours.shape == ref.shape
    assert rel_err(ours, ref, inputs.get("attention_mask")) <= TOL


@pytest.mark.parametrize("case", FIXTURE_CASES)
def test_torch_in_torch_out(models, case):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    model = models(case)
    inputs = {k: torch.tensor(v) for k, v in fixture_inputs(case, "left").items()}
    out = model(**inputs)
    ours = out[0]
    assert isinstance(ours, torch.Tensor) and ours.dtype == torch.float32 and ours.device.type == "cpu"
    assert rel_err(ours.numpy(), expected(case, "left"), inputs["attention_mask"].numpy()) <= TOL


def test_output_object_and_input_forms(models):
    model = models("gpt2_inner")
    ids = fixture_inputs("gpt2_inner", "single")["input_ids"]
    out = model(input_ids=np.asarray(ids))
    assert out.logits is out["logits"] is out[0]
    assert out.hidden_states is None and out.loss is None  # defined by transformers, not computed here
    assert list(out.keys()) == ["logits"]
    with pytest.raises(AttributeError, match="has no field"):
        out.last_hidden_state
    as_list = model(input_ids=ids).logits                       # nested lists
    as_int32 = model(np.asarray(ids, dtype=np.int32)).logits     # other integer dtypes
    one_d = model(np.asarray(ids[0])).logits                     # a single unbatched row
    np.testing.assert_array_equal(as_list, out.logits)
    np.testing.assert_array_equal(as_int32, out.logits)
    np.testing.assert_array_equal(one_d, out.logits[0])
    (logits,) = model(input_ids=ids, return_dict=False)
    np.testing.assert_array_equal(logits, out.logits)


def test_output_is_not_copied(models):
    # The engine's output tensor is handed over as the array's memory; torch views the same bytes.
    torch = pytest.importorskip("torch", reason="torch is not installed")
    model = models("gpt2_inner")
    ids = fixture_inputs("gpt2_inner", "single")["input_ids"]
    arr = model.engine.forward(np.asarray(ids, dtype=np.int64))
    assert not arr.flags.owndata and arr.base is not None
    t = torch.from_numpy(arr)
    assert t.data_ptr() == arr.ctypes.data


def test_batched_equals_single(models):
    model = models("llama_gqa3_headdim")
    inputs = fixture_inputs("llama_gqa3_headdim", "left")
    batch = model(**inputs).logits
    tol = TOLERANCES["batched_vs_single"]["rel_max_abs"]
    for b, (row, mask) in enumerate(zip(inputs["input_ids"], inputs["attention_mask"])):
        valid = [t for t, m in zip(row, mask) if m]
        single = model(input_ids=[valid]).logits[0]
        assert rel_err(batch[b][np.asarray(mask, bool)][None], single[None]) <= tol


def test_token_type_ids_matter_for_bert(models):
    model = models("bert_tokentypes")
    inputs = fixture_inputs("bert_tokentypes", "single")
    with_types = model(**inputs).last_hidden_state
    without = model(input_ids=inputs["input_ids"]).last_hidden_state
    assert not np.allclose(with_types, without)
    assert rel_err(with_types, expected("bert_tokentypes", "single")) <= TOL


def test_model_metadata(models):
    model = models("mistral_gqa")
    assert model.is_causal_lm and model.level == "reference"
    assert model.info.family == "llama" and model.info.n_kv_heads == 2
    assert model.num_parameters() > 0
    assert "MistralForCausalLM" in repr(model) and "level" in model.describe()
    assert model.eval() is model and model.to("cpu") is model
    with pytest.raises(kpt.UnsupportedError, match="re-optimize"):
        model.to("cuda")


@pytest.mark.parametrize("case", CAUSAL_CASES[:1])
def test_config_is_transformers_config(models, case):
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    cfg = models(case).config
    assert isinstance(cfg, transformers.PretrainedConfig)
    assert cfg.model_type == json.loads((FIXTURES / case / "config.json").read_text())["model_type"]
