"""Shared pytest fixtures. Tests run offline, on CPU, with tiny random components."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Nothing may reach the network during tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

DATA_DIR = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR
