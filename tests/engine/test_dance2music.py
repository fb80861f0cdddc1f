"""Dance2Music tracks: the shipped default model's kit on a dancer's beats (with noise, dropped frames
and a tempo change), loop material conformed bar by bar, the learned-model slot with a tiny model of
the real layout, and the beat scores measured from the rendered audio."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from loopbridge.engine.beats import beat_scores
from loopbridge.engine.conform import read_wav_tags
from loopbridge.engine.core import Engine
from loopbridge.engine.dance2music import Dance2Music, DanceRequest, beat_grid, encode_track, music_report
from loopbridge.engine.errors import ModelLoadError, RequestError, UnsupportedError
from loopbridge.engine.frontdoor import FrontDoor
from loopbridge.engine.models.registry import ModelRegistry
from loopbridge.engine.motion import kinematic_beats, regular_frames
from loopbridge.engine.request import GenerateRequest, Kind, MotionPrompt

from tests.engine.doors import opened
from tests.engine.models.tiny_pipelines import build_dance2music
from tests.engine.motion_signals import dancing_body

SECTIONS = [(12.0, 100.0), (12.0, 128.0)]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dance-models")
    build_dance2music(root)
    return root


@pytest.fixture(scope="module")
def door(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoor]:
    registry = ModelRegistry(search_paths=[models], hf_cache=models / "no-hub", include_embedded=True)
    with opened(Engine(store_dir=tmp_path_factory.mktemp("store"), registry=registry, device="cpu")) as door:
        yield door


@pytest.fixture(scope="module")
def dancer() -> tuple[object, np.ndarray]:
    """A body bouncing at 100 then 128 BPM, with tracker jitter, 10 % dropped frames and a 0.4 s gap."""
    return dancing_body(SECTIONS, jitter_cm=1.0, drop_fraction=0.1, gap_s=(5.0, 0.4), seed=11)


def _tempo_between(beats: np.ndarray, start: float, end: float) -> float:
    inside = beats[(beats >= start) & (beats <= end)]
    return float(60.0 * (len(inside) - 1) / (inside[-1] - inside[0]))


def test_kit_track_follows_the_dancer(door: FrontDoor, dancer: tuple) -> None:
    motion, truth = dancer
    beats = kinematic_beats(motion)
    found = beats.beats_s + beats.start_s
    # the motion's tempo in each section, within 2 %
    assert _tempo_between(found, 2.0, 11.5) == pytest.approx(100.0, rel=0.02)
    assert _tempo_between(found, 14.0, 23.5) == pytest.approx(128.0, rel=0.02)
    track = Dance2Music(door).render(beats, DanceRequest(prompt="house", seed=3))
    assert track.material == "kit" and track.info["pattern"] == "four on the floor"
    assert track.audio.shape[1] == int(round(beats.duration_s * track.sample_rate))
    assert not track.steady
    report = music_report(track)
    # the music's beats, found in the audio alone, land on the motion's beats
    assert report.scores.hit >= 0.8, report.to_dict()
    assert report.scores.coverage == pytest.approx(1.0, abs=0.15)
    # and on the dancer's true beats too (the motion's clock starts at its first frame)
    assert beat_scores(truth - beats.start_s, report.music_beats_s).hit >= 0.8
    low, high = report.motion_range_bpm
    assert low == pytest.approx(100.0, rel=0.03) and high == pytest.approx(128.0, rel=0.03)
    assert "beat hit" in report.table()


def test_loop_material_is_conformed_to_each_bar(door: FrontDoor) -> None:
    motion, _ = dancing_body([(10.0, 96.0), (10.0, 112.0)], jitter_cm=0.5, seed=12)
    beats = kinematic_beats(motion)
    track = Dance2Music(door).render(beats, DanceRequest(prompt="four on the floor", seed=4, material="loop",
                                                           sample_rate=44100))
    assert track.material == "loop"
    assert {96.0, 112.0} <= set(track.info["tempos_bpm"])
    assert track.audio.shape[1] == int(round(beats.duration_s * 44100))
    assert music_report(track).scores.hit >= 0.8


def test_a_steady_track_is_tagged_with_its_tempo_and_a_changing_one_is_not(door: FrontDoor, dancer: tuple) -> None:
    motion, _ = dancing_body([(10.0, 122.0)], seed=13)
    track = Dance2Music(door).render(kinematic_beats(motion), DanceRequest(seed=5))
    assert track.steady
    tags = read_wav_tags(encode_track(track))
    assert tags.bits_per_sample == 24 and tags.frames == track.audio.shape[1]
    assert tags.acid is not None and tags.acid.tempo_bpm == pytest.approx(122.0, rel=0.02)
    changing = Dance2Music(door).render(kinematic_beats(dancer[0]), DanceRequest(seed=5))
    assert read_wav_tags(encode_track(changing)).acid is None


def test_beat_grid_runs_on_to_the_end_of_the_motion() -> None:
    grid = beat_grid(np.array([0.5, 1.0, 1.5, 2.0]), 4.2)
    assert np.allclose(grid, [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5])
    with pytest.raises(RequestError, match="at least two beats"):
        beat_grid(np.array([1.0]), 3.0)


def test_motion_without_a_pulse_is_refused_before_rendering(door: FrontDoor) -> None:
    motion, _ = dancing_body([(8.0, 120.0)])
    still = type(motion)(np.repeat(motion.values[:1], len(motion.values), axis=0), motion.times_s)
    with pytest.raises(RequestError, match="no beats could be found"):
        Dance2Music(door).render(kinematic_beats(still), DanceRequest())


def test_bad_dance_requests_name_the_value() -> None:
    with pytest.raises(RequestError, match="material"):
        DanceRequest(material="orchestra")
    with pytest.raises(RequestError, match="sample_rate"):
        DanceRequest(sample_rate=100)
    with pytest.raises(RequestError, match="seed"):
        DanceRequest(seed=-1)


# ---- the learned-model slot --------------------------------------------------------------------------------


def test_learned_model_loads_through_the_registry_and_renders_conditioned_on_motion(door: FrontDoor) -> None:
    caps = door.capabilities("tiny-dance2music")
    assert caps.family == "dance2music" and caps.motion_prompt and not caps.text_prompt
    motion, _ = dancing_body([(6.0, 120.0)], seed=14)
    positions, _ = regular_frames(motion)
    prompt = MotionPrompt(positions, 100.0)
    request = GenerateRequest(model="tiny-dance2music", kind=Kind.LOOP, duration_s=1.0, steps=2, motion_prompt=prompt)
    other = request.replace(motion_prompt=prompt.segment(1.0, 3.0))
    first, second = door.render([request, other])
    assert first.audio.shape == (1, 16000) and first.sample_rate == 16000
    assert first.key != second.key  # the motion is part of what makes the render
    # the tiny random vocoder is very quiet: compare relative to its level
    assert not np.allclose(first.audio, second.audio, rtol=1e-5, atol=0.0)
    track = Dance2Music(door).render(kinematic_beats(motion), DanceRequest(model="tiny-dance2music", steps=2,
                                                                              sample_rate=32000), motion=motion)
    assert track.material == "learned"
    assert track.audio.shape[1] == int(round(kinematic_beats(motion).duration_s * 32000))
    assert np.abs(track.audio).max() > 0


def test_a_motion_prompt_needs_a_model_that_takes_one(door: FrontDoor) -> None:
    motion, _ = dancing_body([(4.0, 120.0)])
    prompt = MotionPrompt(regular_frames(motion)[0], 100.0)
    with pytest.raises(UnsupportedError, match="does not take a motion prompt"):
        door.render([GenerateRequest(model="default", kind=Kind.LOOP, motion_prompt=prompt)])
    with pytest.raises(RequestError, match="not conditioned on motion"):
        Dance2Music(door).material_for(DanceRequest(material="learned"))
    wrong = MotionPrompt(np.zeros((200, 5, 3)), 100.0)
    with pytest.raises(UnsupportedError, match="expects 17"):
        door.render([GenerateRequest(model="tiny-dance2music", kind=Kind.LOOP, duration_s=1.0, steps=1,
                                       motion_prompt=wrong)])


def test_a_broken_motion_encoder_is_a_load_error(tmp_path: Path) -> None:
    folder = build_dance2music(tmp_path)
    (folder / "motion_encoder" / "model.safetensors").write_bytes(b"garbage")
    from loopbridge.engine.models.dance2music import Dance2MusicBackend

    with pytest.raises(ModelLoadError, match=r"model\.safetensors"):
        Dance2MusicBackend.load(folder)
    (folder / "motion_encoder" / "config.json").write_text(json.dumps({"joints": 0}))
    with pytest.raises(ModelLoadError, match=r"config\.json"):
        Dance2MusicBackend.inspect(folder)
