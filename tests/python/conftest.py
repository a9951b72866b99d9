"""Shared paths and helpers for tests/python (kept small: each test file owns its own setup)."""
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "models"
MODELS = ROOT / "models"  # real weights from scripts/models/prepare_models.py (git-ignored)
TOLERANCES = json.loads((ROOT / "tests" / "tolerances.json").read_text())
FIXTURE_CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "config.json").exists())
CAUSAL_CASES = [c for c in FIXTURE_CASES if (FIXTURES / c / "generate.json").exists()]


def rel_err(ours, ref, mask=None):
    """max |ours - ref| / max |ref| over unmasked positions ([B, S] mask over [B, S, ...])."""
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    m = np.ones(ref.shape[:2], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    return np.abs(ours - ref)[m].max() / np.abs(ref[m]).max()


def real_model(name):
    """Path of a real model in models/, or a skip saying how to get it."""
    d = MODELS / name
    if not (d / "config.json").exists():
        pytest.skip(f"{d} not present (python3 scripts/models/prepare_models.py prepares it)")
    return d
