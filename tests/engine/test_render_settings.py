"""Load settings that change the audio (a scheduler, a dtype) are part of the render key; the rest are not.

One store, engines with different settings: each gets its own renders, and renders made under the
defaults keep the keys they always had.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from loopbridge.engine import GenerateRequest, RequestError
from loopbridge.engine.core import Engine
from loopbridge.engine.models.base import LoadOptions, folder_fingerprint
from loopbridge.engine.models.dance_diffusion import DanceDiffusionBackend
from loopbridge.engine.models.default.backend import DefaultModel
from loopbridge.engine.models.registry import ModelRegistry

from tests.engine.doors import opened
from tests.engine.models.tiny_pipelines import build_audioldm

MODEL = "tiny-audioldm"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("settings-models")
    build_audioldm(root, name=MODEL)
    return root


def _engine(models: Path, store: Path, **settings) -> Engine:
    registry = ModelRegistry(search_paths=[models], hf_cache=models / "no-hub", include_embedded=False)
    return Engine(store_dir=store, registry=registry, device="cpu", **settings)


def _request(**fields) -> GenerateRequest:
    return GenerateRequest(**{"model": MODEL, "prompt": "rain", "kind": "texture", "duration_s": 0.2, "steps": 2,
                              "seed": 11, **fields})


def test_keys_differ_by_scheduler_and_dtype_and_not_by_speed_options(models: Path, tmp_path: Path) -> None:
    request = _request()
    default = _engine(models, tmp_path / "store").render_key(request)
    assert default == request.render_key(folder_fingerprint(models / MODEL)), "default keys are unchanged"
    euler = _engine(models, tmp_path / "store", load_options=LoadOptions(scheduler="euler")).render_key(request)
    shouted = _engine(models, tmp_path / "store", load_options=LoadOptions(scheduler=" Euler ")).render_key(request)
    bf16 = _engine(models, tmp_path / "store", dtype=torch.bfloat16).render_key(request)
    both = _engine(models, tmp_path / "store", dtype=torch.bfloat16,
                   load_options=LoadOptions(scheduler="euler")).render_key(request)
    assert len({default, euler, bf16, both}) == 4
    assert shouted == euler, "the scheduler's name is taken as the loader takes it"
    speed = LoadOptions(attention="eager", compile=True, cpu_offload=True)
    assert _engine(models, tmp_path / "store", load_options=speed).render_key(request) == default


def test_one_store_two_schedulers_two_renders(models: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    request = _request()
    with opened(_engine(models, store)) as door:
        (plain,) = door.render([request])
    assert "load_settings" not in plain.info
    euler_engine = _engine(models, store, load_options=LoadOptions(scheduler="euler"))
    euler_key = euler_engine.render_key(request)
    assert not euler_engine.store.has_render(euler_key), "the default scheduler's render is not this one"
    with opened(euler_engine) as door:
        (euler,) = door.render([request])
    assert euler.key == euler_key != plain.key and euler.info["load_settings"] == {"scheduler": "euler"}
    assert euler.model_digest != plain.model_digest
    scale = float(np.abs(plain.audio).max())
    assert float(np.abs(euler.audio - plain.audio).max()) > 1e-3 * scale, "another sampler, other audio"
    # each is served from the store to the engine that made it
    with opened(_engine(models, store)) as door:
        (again,) = door.render([request])
    np.testing.assert_array_equal(again.audio, plain.audio)
    assert euler_engine.store.has_render(euler_key)
    assert {e.key for e in euler_engine.history()} == {plain.key, euler.key}


def test_a_bad_scheduler_is_bad_input_not_a_broken_model(models: Path, tmp_path: Path) -> None:
    engine = _engine(models, tmp_path / "store", load_options=LoadOptions(scheduler="warp-drive"))
    with opened(engine) as door, pytest.raises(RequestError, match=r"scheduler='warp-drive'.*dpm\+\+"):
        door.render([_request()])


def test_settings_a_family_ignores_or_already_uses_leave_its_keys_alone() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    # the default model computes in float32 on the CPU and has one sampler
    assert DefaultModel.render_settings(cpu, torch.bfloat16, LoadOptions(scheduler="dpm++")) == {}
    assert DefaultModel.render_settings(cuda, torch.bfloat16, LoadOptions()) == {"dtype": "bf16"}
    assert DanceDiffusionBackend.render_settings(cpu, torch.float32, LoadOptions(scheduler="ipndm")) == {}
    assert DanceDiffusionBackend.render_settings(cuda, torch.float16, LoadOptions()) == {"dtype": "fp16"}
