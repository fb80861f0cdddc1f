"""Shared fixtures: every test gets its own data folder, so nothing touches the user's store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.cluster_head import Head, HeadProcess

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

# The models under test are tiny: one thread is as fast as two, and on a busy machine OpenMP's
# spinning threads make two many times slower.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("loopbridge-home")
    monkeypatch.setenv("LOOPBRIDGE_HOME", str(home))
    monkeypatch.setenv("LOOPBRIDGE_MODELS", "")
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hf-cache"))
    return home


@pytest.fixture(scope="session")
def tiny_dd_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding one tiny Dance Diffusion checkpoint, ``tiny-dd`` (16 kHz, stereo)."""
    from tests.engine.models.tiny_dance_diffusion import build_tiny_dance_diffusion

    root = tmp_path_factory.mktemp("models")
    build_tiny_dance_diffusion(root / "tiny-dd")
    return root


@pytest.fixture(scope="session")
def ray_head_process() -> Iterator[HeadProcess]:
    """The session's Ray head, started and not waited for (tests/cluster/conftest.py starts it first),
    SIGINT ignored as in a background job of a shell without job control (it must still stop its node
    when asked: :meth:`HeadProcess.stop` fails the test if it had to be killed)."""
    head = HeadProcess(sigint_ignored=True)
    yield head
    head.stop()


@pytest.fixture(scope="session")
def ray_head(ray_head_process: HeadProcess) -> Head:
    """A Ray cluster on loopback for the whole session (tests/cluster_head.py); skipped without Ray."""
    return ray_head_process.ready()
