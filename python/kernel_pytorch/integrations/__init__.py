"""Integrations with other libraries: `from kernel_pytorch.integrations import HuggingFaceOptimizer`."""
from .huggingface import HuggingFaceOptimizer, OptimizationReport

__all__ = ["HuggingFaceOptimizer", "OptimizationReport"]
