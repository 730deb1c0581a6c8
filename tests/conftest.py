"""Shared test fixtures: real assets, the CPU device, and the toy nodes used by executor tests."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/toy_nodes.py
os.environ.setdefault("OMP_NUM_THREADS", "2")

import toy_nodes  # noqa: E402,F401  (registers the Toy* node types)

GRAPHS = ROOT / "graphs"
ASSETS = GRAPHS / "assets"


@pytest.fixture
def assets() -> Path:
    return ASSETS


@pytest.fixture
def graphs_dir() -> Path:
    return GRAPHS
