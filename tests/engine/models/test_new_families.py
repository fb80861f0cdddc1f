"""Stable Audio 3 and ACE-Step on tiny real pipelines: every task through the real loader, the engine,
the front door and the conform stage; a continuation's join and a replacement's kept bars to the sample."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from loopbridge.engine import GenerateRequest, RequestError, UnsupportedError
from loopbridge.engine.core import Engine
from loopbridge.engine.frontdoor import FrontDoor, HostFacts, Order
from loopbridge.engine.models.ace_step import AceStepBackend
from loopbridge.engine.models.registry import ModelRegistry, detect_family
from loopbridge.engine.models.source_tasks import SPLICE_FADE_S, key_name
from loopbridge.engine.models.stable_audio_3 import StableAudio3Backend, caption
from loopbridge.engine.request import TRACKS, AudioPrompt, Task

from tests.engine.doors import opened
from tests.engine.models.tiny_new_families import build_ace_step, build_stable_audio_3

torch.set_num_threads(2)

SA3, ACE = "tiny-stable-audio-3", "tiny-ace-step"
TEMPO = 240.0  # one bar of 4/4 is one second
RATES = {SA3: 44100, ACE: 48000}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("new-families")
    build_stable_audio_3(folder)
    build_ace_step(folder)
    return folder


@pytest.fixture(scope="module")
def door(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoor]:
    registry = ModelRegistry(search_paths=[root], hf_cache=root / "no-cache", include_embedded=False)
    engine = Engine(store_dir=tmp_path_factory.mktemp("store"), registry=registry, device="cpu")
    with opened(engine) as opened_door:
        yield opened_door


def loop_source(rate: int, bars: float = 1.0, channels: int = 2) -> AudioPrompt:
    """A loop of ``bars`` bars at TEMPO whose end runs seamlessly into its start: a 480 Hz tone and
    its fifth, each a whole number of periods in the loop (as a conformed loop's seam is)."""
    frames = int(round(bars * 4 * 60.0 / TEMPO * rate))
    t = np.arange(frames) / rate
    tone = 0.3 * np.sin(2 * np.pi * 480.0 * t) + 0.1 * np.sin(2 * np.pi * 720.0 * t)
    audio = np.stack([tone, 0.8 * tone][:channels]).astype(np.float32)
    return AudioPrompt(audio, rate)


def task_request(model: str, task: str, bars: float = 1.0, **fields: object) -> GenerateRequest:
    return GenerateRequest(model=model, prompt="deep bass", kind="loop", tempo_bpm=TEMPO, steps=2, seed=3,
                           task=task, audio_prompt=loop_source(RATES[model], bars), **fields)  # type: ignore[arg-type]


# ---- what the folders say -----------------------------------------------------------------------------------


def test_capabilities_come_from_the_configs(root: Path) -> None:
    assert detect_family(root / SA3) == "stable-audio-3" and detect_family(root / ACE) == "ace-step"
    sa3 = StableAudio3Backend.inspect(root / SA3)
    assert (sa3.sample_rate, sa3.channels, sa3.max_duration_s, sa3.default_steps) == (44100, 2, 64.0, 8)
    assert sa3.to_dict()["tasks"] == ["generate", "continue", "replace", "transform"]
    ace = AceStepBackend.inspect(root / ACE)
    assert (ace.sample_rate, ace.channels, ace.default_steps, ace.default_guidance) == (48000, 2, 8, 1.0)
    assert ace.to_dict()["tasks"] == ["generate", "continue", "replace", "transform", "extract", "add"]
    assert ace.musical_conditioning and not sa3.musical_conditioning
    # the parts a front end offers for extract and add: the engine's own list, for the model that does them
    assert ace.to_dict()["tracks"] == list(TRACKS) and sa3.to_dict()["tracks"] == []


def test_models_lists_both_with_their_capabilities(door: FrontDoor) -> None:
    families = {spec.id: spec.family for spec in door.models()}
    assert families == {SA3: "stable-audio-3", ACE: "ace-step"}
    assert door.capabilities(ACE).tasks == frozenset(Task)


def test_key_and_meter_in_each_models_terms() -> None:
    assert key_name(GenerateRequest(key="Am")) == "A minor"
    assert key_name(GenerateRequest(key="f# major")) == "F# major"
    assert key_name(GenerateRequest(key="Bb")) == "Bb major"
    assert key_name(GenerateRequest(key="off")) is None and key_name(GenerateRequest()) is None
    with pytest.raises(RequestError, match="key='not a key'"):
        GenerateRequest(key="not a key")
    loop = GenerateRequest(model=SA3, prompt="warm pad", kind="loop", tempo_bpm=128, beats_per_bar=3, key="Em")
    assert caption(loop) == "warm pad, 128 BPM, E minor, 3/4"
    assert caption(GenerateRequest(prompt="kick", kind="one-shot")) == "kick"
    assert caption(GenerateRequest(prompt="house 124 BPM", kind="loop")) == "house 124 BPM"


def test_task_fields_are_checked_up_front() -> None:
    source = loop_source(44100)
    with pytest.raises(RequestError, match=r"audio_prompt=None .*the audio to continue"):
        GenerateRequest(task="continue", continue_bars=1)
    with pytest.raises(RequestError, match="continue_bars=None"):
        GenerateRequest(task="continue", audio_prompt=source)
    with pytest.raises(RequestError, match=r"replace_to_bar=2 .*within the source's 1 bars"):
        GenerateRequest(task="replace", audio_prompt=source, tempo_bpm=TEMPO, replace_from_bar=0.5, replace_to_bar=2)
    with pytest.raises(RequestError, match=r"track='kazoo' .*drums"):
        GenerateRequest(task="extract", audio_prompt=source, track="kazoo")
    with pytest.raises(RequestError, match=r"task='dance' .*generate, continue"):
        GenerateRequest(task="dance")
    with pytest.raises(RequestError, match=r"audio_prompt_strength=0.0 .*more than 0"):
        GenerateRequest(task="transform", audio_prompt=source, audio_prompt_strength=0.0)


def test_a_task_the_model_lacks_is_refused_naming_the_ones_it_has(door: FrontDoor) -> None:
    with pytest.raises(UnsupportedError, match=r"task='extract' .*expected generate, continue, replace, transform"):
        door.generate(Order(task_request(SA3, "extract", track="drums")))


def test_a_text_request_keeps_the_render_key_it_always_had() -> None:
    request = GenerateRequest(prompt="kick", model="m")
    assert "task" not in request.render_fields()


# ---- text to audio at the host's tempo, key and meter --------------------------------------------------------


@pytest.mark.parametrize("model", [SA3, ACE])
def test_text_to_audio_at_the_hosts_tempo_conformed(door: FrontDoor, model: str) -> None:
    host = HostFacts(tempo_bpm=TEMPO, meter_numerator=3, meter_denominator=4, bars=1, sample_rate=48000)
    (sample,) = door.generate(Order(GenerateRequest(model=model, prompt="deep bass", kind="loop", steps=2, key="Am"),
                                    host=host), timeout=600)
    assert sample.audio.shape == (2, 36000)  # one bar of 3/4 at 240 BPM
    assert sample.tempo_bpm == TEMPO and sample.beats == 3
    (entry,) = [e for e in door.history(limit=50) if e.key == sample.render_key]
    render = door.recall(entry.key)
    assert render is not None
    if model == ACE:  # native conditioning, not the prompt
        assert (render.info["bpm"], render.info["timesignature"], render.info["keyscale"]) == (240, "3", "A minor")
    else:
        assert render.info["prompt_sent"] == "deep bass, 240 BPM, A minor, 3/4"


# ---- continue, replace -------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [SA3, ACE])
def test_continue_keeps_the_loop_to_the_sample_and_joins_seamlessly(door: FrontDoor, model: str) -> None:
    request = task_request(model, "continue", continue_bars=1)
    source = request.audio_prompt.audio  # type: ignore[union-attr]
    (render,) = door.render([request])
    rate, kept = RATES[model], source.shape[1]
    assert render.sample_rate == rate and render.audio.shape == (2, 2 * kept)
    np.testing.assert_array_equal(render.audio[:, :kept], source)
    # across the join the loop runs into its own start, so the step there is its own seam's
    np.testing.assert_array_equal(render.audio[:, kept], source[:, 0])
    seam_step = np.abs(source[:, 0] - source[:, -1])
    np.testing.assert_allclose(np.abs(render.audio[:, kept] - render.audio[:, kept - 1]), seam_step, atol=1e-7)
    fade = int(round(SPLICE_FADE_S * rate))
    assert not np.allclose(render.audio[:, kept + fade:], np.tile(source, 1)[:, : kept - fade])  # new bars
    # conformed on the same grid: two bars at the host's tempo and rate
    (sample,) = door.generate(Order(request, host=HostFacts(tempo_bpm=TEMPO, sample_rate=48000)), timeout=600)
    assert sample.audio.shape == (2, 96000) and sample.beats == 8 and sample.render_key == render.key


@pytest.mark.parametrize("model", [SA3, ACE])
def test_replace_keeps_every_sample_outside_the_bars(door: FrontDoor, model: str) -> None:
    request = task_request(model, "replace", bars=2.0, replace_from_bar=0.5, replace_to_bar=1.5)
    source = request.audio_prompt.audio  # type: ignore[union-attr]
    (render,) = door.render([request])
    rate = RATES[model]
    start, end = rate // 2, rate * 3 // 2
    assert render.audio.shape == source.shape
    np.testing.assert_array_equal(render.audio[:, :start], source[:, :start])
    np.testing.assert_array_equal(render.audio[:, end:], source[:, end:])
    assert not np.allclose(render.audio[:, start:end], source[:, start:end])
    (sample,) = door.generate(Order(request, host=HostFacts(tempo_bpm=TEMPO, sample_rate=48000)), timeout=600)
    assert sample.audio.shape == (2, 96000)


# ---- transform, extract, add --------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [SA3, ACE])
def test_transform_with_a_strength(door: FrontDoor, model: str) -> None:
    light = task_request(model, "transform", audio_prompt_strength=0.3)
    heavy = light.replace(audio_prompt_strength=0.9)
    renders = door.render([light, heavy])
    assert renders[0].key != renders[1].key
    assert all(r.audio.shape == (2, RATES[model]) and np.all(np.isfinite(r.audio)) for r in renders)
    assert not np.allclose(renders[0].audio, renders[1].audio)
    assert renders[0].info["task"] == "transform"


@pytest.mark.parametrize("task", ["extract", "add"])
def test_ace_step_extracts_and_adds_a_part_on_the_same_grid(door: FrontDoor, task: str) -> None:
    request = task_request(ACE, task, track="bass" if task == "add" else "drums")
    sample, second = door.generate(Order(request, host=HostFacts(tempo_bpm=TEMPO, sample_rate=48000, bars=4),
                                         variations=2), timeout=600)
    assert not np.allclose(sample.audio, second.audio)
    # the source's one bar (not the host's four): the part lies on the source's grid
    assert sample.audio.shape == (2, 48000) and sample.beats == 4 and sample.tempo_bpm == TEMPO
    render = door.recall(sample.render_key)
    assert render is not None and render.info["track"] == request.track and render.info["task"] == task


@pytest.mark.parametrize("model", [SA3, ACE])
def test_each_variation_of_a_batch_is_the_one_it_would_be_alone(root: Path, model: str) -> None:
    backend = (StableAudio3Backend if model == SA3 else AceStepBackend).load(root / model)
    request = task_request(model, "continue", continue_bars=0.5)
    both = backend.generate([request, request.with_variation(1)])
    (alone,) = backend.generate([request.with_variation(1)])
    assert not np.allclose(both[0].audio, both[1].audio)
    np.testing.assert_allclose(alone.audio, both[1].audio, atol=1e-4 * max(1.0, float(np.abs(alone.audio).max())))


def test_a_task_result_lands_like_any_sample(door: FrontDoor) -> None:
    """History, recall and a tempo change that conforms again without running the model."""
    request = task_request(ACE, "replace", bars=2.0, replace_from_bar=1, replace_to_bar=2)
    (first,) = door.generate(Order(request, host=HostFacts(tempo_bpm=TEMPO)), timeout=600)
    assert first.cached is False
    assert any(entry.key == first.render_key for entry in door.history(limit=50))
    (slower,) = door.generate(Order(render_key=first.render_key, host=HostFacts(tempo_bpm=120.0)), timeout=600)
    assert slower.tempo_bpm == 120.0 and slower.audio.shape == (2, 192000)  # two bars at 120 BPM, 48 kHz
    stored = door.recall(first.render_key)
    assert stored is not None and stored.request.task is Task.REPLACE and stored.request.replace_to_bar == 2
