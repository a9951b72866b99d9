"""KernelPyTorch: run Hugging Face transformer models fast, from Python.

    from kernel_pytorch.integrations import HuggingFaceOptimizer
    optimizer = HuggingFaceOptimizer.from_pretrained("path/or/org/name")
    model = optimizer.optimize()
    logits = model(input_ids=ids).logits

The engine is C++ (kernel_pytorch._core); this package is a thin layer that speaks the
transformers conventions. See docs/python.md.
"""
from ._version import __version__
from .errors import (InternalError, InvalidArgumentError, InvalidFileError, IoError, KptError, NotFoundError,
                     OutOfMemoryError, OutOfRangeError, UnsupportedError)
from .model import ModelOutput, OptimizedModel, load
from .tokenizer import BatchEncoding, KptTokenizer
from . import _core

LEVELS = tuple(_core.level_names())

__all__ = [
    "__version__", "LEVELS", "load", "OptimizedModel", "ModelOutput", "KptTokenizer", "BatchEncoding",
    "KptError", "InvalidArgumentError", "NotFoundError", "InvalidFileError", "UnsupportedError",
    "OutOfRangeError", "OutOfMemoryError", "IoError", "InternalError",
]
