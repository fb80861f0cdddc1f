"""Mixing two model folders' weights: exact at the ends, the mean between, refusing different networks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from loopbridge.engine.models.default import DefaultModel
from loopbridge.engine.models.default.interpolate import interpolate_folders, main
from loopbridge.engine.models.default.model import MelUNet, ModelConfig
from loopbridge.engine.models.default.train import export_weights
from loopbridge.engine.request import GenerateRequest
from safetensors.torch import load_file, save_file

TINY = ModelConfig(channels=(8, 16), embed_dim=16, attention_heads=2)


def tiny_folder(folder: Path, seed: int, config: ModelConfig = TINY) -> Path:
    torch.manual_seed(seed)
    export_weights(MelUNet(config), config, folder, {"seed": seed})
    return folder


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_the_ends_are_the_folders_and_the_middle_is_their_mean(tmp_path: Path) -> None:
    start, end = tiny_folder(tmp_path / "start", 1), tiny_folder(tmp_path / "end", 2)
    for alpha, name in ((0.0, "a0"), (1.0, "a1"), (0.5, "a05")):
        assert main([str(start), str(end), "--alpha", str(alpha), "--out", str(tmp_path / name)]) == 0
    first, second = weights(start), weights(end)
    assert any(not first[k].equal(second[k]) for k in first)
    for name, source in (("a0", first), ("a1", second)):
        mixed = weights(tmp_path / name)
        assert mixed.keys() == source.keys()
        for key, tensor in source.items():
            assert mixed[key].dtype == torch.float16 and mixed[key].equal(tensor), (name, key)
    middle = weights(tmp_path / "a05")
    for key, tensor in first.items():
        expected = ((tensor.float() + second[key].float()) / 2).half()
        assert middle[key].float().sub(expected.float()).abs().max() <= expected.float().abs().max() * 2e-3, key
    # the start's config.json as written, training replaced by the record of the mix
    written = json.loads((tmp_path / "a05" / "config.json").read_text(encoding="utf-8"))
    original = json.loads((start / "config.json").read_text(encoding="utf-8"))
    record = written.pop("training")
    assert written == {k: v for k, v in original.items() if k != "training"}
    assert record["alpha"] == 0.5 and record["end"] == str(end) and json.loads(record["end_training"]) == {"seed": 2}
    model = DefaultModel.load(tmp_path / "a05")
    assert model.generate([GenerateRequest(prompt="kick", steps=2)])[0].audio.shape == (1, 44100)


def test_folders_of_different_networks_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    start = tiny_folder(tmp_path / "start", 1)
    guidance = tiny_folder(tmp_path / "guidance", 2, ModelConfig(channels=(8, 16), embed_dim=16, attention_heads=2,
                                                                  default_guidance=3.0))
    wider = tiny_folder(tmp_path / "wider", 2, ModelConfig(channels=(8, 24), embed_dim=16, attention_heads=2))
    with pytest.raises(ValueError, match=r"'default_guidance': 2\.0 against 3\.0"):
        interpolate_folders(start, guidance, 0.5, tmp_path / "out")
    with pytest.raises(ValueError, match=r"'channels'.*tensor .*\(24"):
        interpolate_folders(start, wider, 0.5, tmp_path / "out")
    # the same config.json, one tensor left out of the weights
    missing = tiny_folder(tmp_path / "missing", 2)
    tensors = weights(missing)
    dropped = sorted(tensors)[0]
    del tensors[dropped]
    save_file(tensors, str(missing / "model.safetensors"))
    with pytest.raises(ValueError, match=f"tensors only in the first: {re.escape(dropped)}"):
        interpolate_folders(start, missing, 0.5, tmp_path / "out")
    with pytest.raises(ValueError, match=r"alpha=1\.5 is not accepted"):
        interpolate_folders(start, tiny_folder(tmp_path / "end", 2), 1.5, tmp_path / "out")
    assert main([str(start), str(tmp_path / "nowhere"), "--alpha", "0.5", "--out", str(tmp_path / "out")]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
