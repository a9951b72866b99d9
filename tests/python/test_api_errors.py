"""Errors from C++ arrive as Python exceptions with the engine's message, as the builtin a
Python caller expects; levels the engine does not offer are refused or, for 'production',
replaced by the best available one and reported."""
import json
import shutil

import numpy as np
import pytest
from conftest import FIXTURES

kpt = pytest.importorskip("kernel_pytorch", reason="kernel_pytorch is not installed (pip install .)")
from kernel_pytorch import _core  # noqa: E402
from kernel_pytorch.integrations import HuggingFaceOptimizer  # noqa: E402

GPT2 = FIXTURES / "gpt2_inner"


@pytest.fixture(scope="module")
def model():
    return HuggingFaceOptimizer.from_pretrained(GPT2, "reference").optimize()


def test_exception_hierarchy():
    assert issubclass(kpt.InvalidArgumentError, ValueError)
    assert issubclass(kpt.OutOfRangeError, ValueError)
    assert issubclass(kpt.InvalidFileError, ValueError)
    assert issubclass(kpt.NotFoundError, FileNotFoundError) and issubclass(kpt.NotFoundError, ValueError)
    assert issubclass(kpt.UnsupportedError, NotImplementedError) and issubclass(kpt.UnsupportedError, RuntimeError)
    for cls in (kpt.OutOfMemoryError, kpt.IoError, kpt.InternalError):
        assert issubclass(cls, RuntimeError)
    for cls in (kpt.InvalidArgumentError, kpt.NotFoundError, kpt.UnsupportedError, kpt.InternalError):
        assert issubclass(cls, kpt.KptError)
    assert kpt.OutOfRangeError.code == "out of range"


def test_token_out_of_range_is_value_error_with_engine_message(model):
    vocab = model.info.vocab_size
    with pytest.raises(ValueError) as e:
        model(input_ids=[[1, vocab]])
    assert type(e.value) is kpt.OutOfRangeError
    assert str(e.value) == f"token id {vocab} at input_ids[0][1] is out of range for vocab_size {vocab}"


def test_bad_shapes_and_values(model):
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(input_ids=[[1, 2, 3]], attention_mask=[[1, 1]])
    with pytest.raises(ValueError, match="masks every token"):
        model(input_ids=[[1, 2, 3]], attention_mask=[[0, 0, 0]])
    with pytest.raises(ValueError, match="must hold integers"):
        model(input_ids=np.ones((1, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        model(input_ids=np.ones((1, 2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="top_p must be in"):
        model.generate([[1, 2]], do_sample=True, top_p=1.5, max_new_tokens=2)
    with pytest.raises(TypeError, match="unexpected arguments"):
        model(input_ids=[[1]], past_key_values=None, foo=1)


def test_missing_directory_is_file_not_found():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        HuggingFaceOptimizer.from_pretrained("/nonexistent/model/dir")
    with pytest.raises(kpt.NotFoundError, match="does not exist"):
        kpt.load("/nonexistent/model/dir")


def test_malformed_config_is_value_error(tmp_path):
    shutil.copy(GPT2 / "model.safetensors", tmp_path)
    (tmp_path / "config.json").write_text("{ not json")
    with pytest.raises(ValueError) as e:
        HuggingFaceOptimizer.from_pretrained(tmp_path, "reference").optimize()
    assert isinstance(e.value, kpt.KptError)
    assert "config.json" in str(e.value)


def test_missing_tensor_names_it(tmp_path):
    # a config that asks for 3 layers over weights of 2: the engine names the missing tensor
    shutil.copy(GPT2 / "model.safetensors", tmp_path)
    cfg = json.loads((GPT2 / "config.json").read_text())
    cfg["n_layer"] = 3
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="h.2"):
        HuggingFaceOptimizer.from_pretrained(tmp_path, "reference").optimize()


def test_unknown_level_and_device():
    with pytest.raises(ValueError, match="unknown optimization level 'fastest'"):
        HuggingFaceOptimizer.from_pretrained(GPT2, "fastest")
    with pytest.raises(ValueError, match="unknown device"):
        HuggingFaceOptimizer.from_pretrained(GPT2, "reference", hardware="tpu").optimize()


@pytest.mark.parametrize("level", [lv for lv in kpt.LEVELS if lv not in ("reference", "production")])
def test_explicit_level_is_exact_or_refused_clearly(level):
    opt = HuggingFaceOptimizer.from_pretrained(GPT2, level)
    try:
        model = opt.optimize()
    except kpt.UnsupportedError as e:  # not built yet: the engine's message names the level
        assert level in str(e) and isinstance(e, RuntimeError)
        assert opt.report.fallbacks == []  # an explicit level never falls back silently
    else:
        assert model.level == level == opt.report.level


def test_production_falls_back_and_says_so(capsys):
    opt = HuggingFaceOptimizer.from_pretrained(GPT2)  # optimization_level="production"
    model = opt.optimize()
    report = opt.report
    assert report.requested_level == "production" and model.level == report.level
    skipped = [lv for lv, _ in report.fallbacks]
    assert skipped == list(reversed(kpt.LEVELS))[:len(skipped)]  # tried from production downwards
    if skipped:
        assert all(why for _, why in report.fallbacks)
        assert any("requested 'production'" in n for n in report.notes)
        assert "requested 'production'" in capsys.readouterr().err
        assert "fallback" in str(report)


def test_engine_errors_keep_message_in_core_api():
    with pytest.raises(kpt.NotFoundError) as e:
        _core.Engine.load("/nonexistent")
    assert str(e.value) == "model directory /nonexistent does not exist"
