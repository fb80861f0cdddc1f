"""The song's key through the front door: a key change re-conforms stored renders without running the model
(like a tempo change), text models hear the key in their prompt, and files fitted to a key are named by it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from loopbridge.engine import GenerateRequest, RequestError
from loopbridge.engine.conform.key import parse_key
from loopbridge.engine.core import Engine
from loopbridge.engine.frontdoor import FrontDoor, HostFacts, Order
from loopbridge.engine.models.registry import ModelRegistry
from loopbridge.engine.models.stable_audio import prompt_with_tempo
from loopbridge.engine.request import Kind
from loopbridge.engine.user_audio import UserAudio

from tests.engine.conform import instruments


@pytest.fixture()
def door(tiny_dd_root: Path, tmp_path: Path) -> Iterator[FrontDoor]:
    torch.set_num_threads(1)
    registry = ModelRegistry(search_paths=[tiny_dd_root], hf_cache=tmp_path / "no-cache", include_embedded=False)
    engine = Engine(store_dir=tmp_path / "store", registry=registry, device="cpu")
    door = FrontDoor(engine, prerender_depth=0, conform_workers=1).start()
    yield door
    door.stop()


def test_text_models_hear_the_key_in_words() -> None:
    loop = GenerateRequest(prompt="house groove", kind=Kind.LOOP, tempo_bpm=124, key="a minor")
    assert loop.key == "Am" and loop.model_prompt == "house groove, in A minor"
    assert prompt_with_tempo(loop) == "house groove, in A minor, 124 BPM"
    assert GenerateRequest(prompt="", key="F#").model_prompt == "in F# major"
    assert GenerateRequest(prompt="dark pad in Eb minor", key="C").model_prompt == "dark pad in Eb minor"
    assert GenerateRequest(prompt="pad").model_prompt == "pad"
    # a request without a key keeps its render key; with one it is another render
    assert GenerateRequest(prompt="pad").render_key("d") != GenerateRequest(prompt="pad", key="Am").render_key("d")
    with pytest.raises(RequestError, match="key='Hm'"):
        GenerateRequest(prompt="pad", key="Hm")


def test_a_key_change_reconforms_without_running_the_model(door: FrontDoor) -> None:
    request = GenerateRequest(prompt="", model="tiny-dd", kind=Kind.LOOP, bars=1, tempo_bpm=240, steps=2, seed=4)
    (first,) = door.generate(Order(request, HostFacts(tempo_bpm=240, bars=1, key="Am")))
    assert not first.cached
    # a model without text renders the same audio for any key: another key is a conform of that render
    (other,) = door.generate(Order(request, HostFacts(tempo_bpm=240, bars=1, key="C#m")))
    assert other.cached and other.render_key == first.render_key and other.key != first.key
    (again,) = door.generate(Order(render_key=first.render_key, host=HostFacts(tempo_bpm=240, bars=1, key="Eb")))
    assert again.cached and again.render_key == first.render_key
    (same,) = door.generate(Order(request, HostFacts(tempo_bpm=240, bars=1, key="Am")))
    assert same.key == first.key, "the same key is the same file, from the store"


@pytest.mark.skipif(instruments.available() is not None, reason=str(instruments.available()))
def test_a_users_file_in_a_key_is_refitted_to_another_by_its_render_key(door: FrontDoor, tmp_path: Path) -> None:
    key = parse_key("Bbm")
    assert key is not None
    audio, rate = instruments.tonal_loop(key, "epiano", tmp_path)
    user = UserAudio(audio=audio, sample_rate=rate, name="keys", kind="loop", tempo_bpm=120.0)
    (own,) = door.generate(Order(audio=user, host=HostFacts(tempo_bpm=120, bars=4, sample_rate=rate)))
    assert own.music_key == "Bbm" and own.filename.endswith("_Bbm.wav")
    (moved,) = door.generate(Order(render_key=own.render_key, host=HostFacts(tempo_bpm=100, bars=4, sample_rate=rate,
                                                                              key="Dm")))
    assert moved.music_key == "Dm" and moved.info["key_shift_semitones"] == 4 and moved.info["detected_key"] == "Bbm"
    assert moved.frames == round(4 * 4 * 60 / 100 * rate) and moved.filename.endswith("_Dm.wav")
    assert moved.key_confidence is not None and 0.0 <= moved.key_confidence <= 1.0
    # the history names the render's own key, before any shift
    (entry,) = door.history()
    assert entry.music_key == "Bbm" and entry.to_dict()["music_key"] == "Bbm" and entry.key == own.render_key
