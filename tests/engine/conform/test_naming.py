"""File names: human, tempo and key in them, and safe whatever the prompt holds."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loopbridge.engine import Kind, RequestError
from loopbridge.engine.conform import ConformedAudio, note_name, sample_filename

#: letters, digits, '_', '-', '#', and a dot only as a decimal point (between two digits)
SAFE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_#-]|(?<=[0-9])\.(?=[0-9]))*\.wav$")


def _sample(kind: Kind, tempo_bpm: float = 128.0, beats: float = 16.0, root: int | None = None,
            beats_per_bar: int = 4, info: dict | None = None) -> ConformedAudio:
    audio = np.zeros((2, 10), np.float32)
    loop = (0, 10) if kind is not Kind.ONE_SHOT else (None, None)
    return ConformedAudio(audio, 48000, kind, tempo_bpm, beats, root, loop[0], loop[1], info or {}, beats_per_bar)


def test_examples() -> None:
    shot = _sample(Kind.ONE_SHOT, beats=0.5, root=24)
    assert (
        sample_filename("punchy", shot, seed=42, variation=0, part="kick") == "kick-punchy_one-shot_128bpm_s42v0_C1.wav"
    )
    loop = _sample(Kind.LOOP, beats=16.0)
    assert sample_filename("House groove", loop, seed=7, variation=2) == "house-groove_loop_128bpm_4bars_s7v2.wav"
    one_bar = _sample(Kind.LOOP, tempo_bpm=127.5, beats=4.0, root=70)
    assert sample_filename("Acid  bass!!", one_bar, seed=1, variation=3) == "acid-bass_loop_127.5bpm_1bar_s1v3_Bb4.wav"
    texture = _sample(Kind.TEXTURE, beats=2.0)
    assert sample_filename("", texture, seed=0, variation=0) == "sample_texture_128bpm_s0v0.wav"


def test_pitch_shift_and_sample_rate_are_named_so_files_never_collide() -> None:
    plain = _sample(Kind.ONE_SHOT, beats=0.5)
    up = ConformedAudio(plain.audio, 48000, Kind.ONE_SHOT, 128.0, 0.5, None, None, None, {"pitch_semitones": 5.0}, 4)
    down = ConformedAudio(plain.audio, 44100, Kind.ONE_SHOT, 128.0, 0.5, None, None, None,
                          {"pitch_semitones": -2.5}, 4)
    names = {sample_filename("bass", s, seed=1, variation=0) for s in (plain, up, down)}
    assert names == {"bass_one-shot_128bpm_s1v0.wav", "bass_one-shot_128bpm_up5st_s1v0.wav",
                     "bass_one-shot_128bpm_down2.5st_44.1kHz_s1v0.wav"}


def test_a_meter_other_than_four_four_is_named_so_the_same_request_in_two_meters_never_collides() -> None:
    # two bars at 128 BPM in 3/4 (6 beats) and in 4/4 (8 beats): two lengths, two names
    waltz = _sample(Kind.LOOP, beats=6.0, beats_per_bar=3)
    common = _sample(Kind.LOOP, beats=8.0, beats_per_bar=4)
    assert sample_filename("house", waltz, seed=7, variation=0) == "house_loop_128bpm_2bars_3-4_s7v0.wav"
    assert sample_filename("house", common, seed=7, variation=0) == "house_loop_128bpm_2bars_s7v0.wav"
    seven = _sample(Kind.LOOP, beats=7.0, beats_per_bar=7, root=61)
    assert sample_filename("odd", seven, seed=1, variation=0) == "odd_loop_128bpm_1bar_7-4_s1v0_Db4.wav"
    # a one-shot has no bars: its meter changes nothing and is not named
    assert "3-4" not in sample_filename("kick", _sample(Kind.ONE_SHOT, beats=0.5, beats_per_bar=3), 1, 0)


def test_a_loudness_other_than_the_default_is_named() -> None:
    quiet = _sample(Kind.LOOP, beats=8.0, info={"loudness_target_lufs": -20.0})
    loud = _sample(Kind.TEXTURE, beats=8.0, info={"loudness_target_lufs": -10.5})
    default = _sample(Kind.LOOP, beats=8.0, info={"loudness_target_lufs": -14.0})
    assert sample_filename("pad", quiet, 1, 0) == "pad_loop_128bpm_2bars_-20LUFS_s1v0.wav"
    assert sample_filename("pad", loud, 1, 0) == "pad_texture_128bpm_-10.5LUFS_s1v0.wav"
    assert sample_filename("pad", default, 1, 0) == "pad_loop_128bpm_2bars_s1v0.wav"


def test_a_long_prompt_gives_way_to_the_fields_a_daw_reads() -> None:
    name = sample_filename("word " * 40, _sample(Kind.LOOP, root=70, beats_per_bar=3, beats=6.0), 2**32 - 1, 9999,
                           part="snare")
    assert len(name) <= 120 and SAFE.match(name), name
    assert name.endswith("_loop_128bpm_2bars_3-4_s4294967295v9999_Bb4.wav"), name


@pytest.mark.parametrize(("midi", "name"), [(0, "C-1"), (24, "C1"), (60, "C4"), (61, "Db4"), (69, "A4"), (127, "G9")])
def test_note_names(midi: int, name: str) -> None:
    assert note_name(midi) == name


@pytest.mark.parametrize(
    "prompt",
    [
        "../../etc/passwd",
        "..",
        ".hidden",
        "/absolute/path",
        "C:\\Windows\\system32",
        "kick\x00drum",
        "naïve café crème — ünïcödé",
        "鼓 ループ 🥁",
        "x" * 10_000,
        "a/" * 3000,
        " ",
        "con",
        "-rf",
    ],
)
def test_hostile_prompts_give_safe_names(prompt: str) -> None:
    name = sample_filename(prompt, _sample(Kind.LOOP), seed=2**32 - 1, variation=9999, part="../..")
    assert SAFE.match(name), name
    assert ".." not in name and "/" not in name and "\\" not in name
    assert len(name) <= 120
    assert name.endswith("_s4294967295v9999.wav")


def test_accents_fold_to_ascii() -> None:
    assert sample_filename("naïve café", _sample(Kind.LOOP), 1, 1).startswith("naive-cafe_loop_")


@settings(max_examples=300, deadline=None)
@given(prompt=st.text(max_size=400), part=st.text(max_size=40))
def test_any_text_gives_a_safe_bounded_name(prompt: str, part: str) -> None:
    name = sample_filename(prompt, _sample(Kind.ONE_SHOT, root=36), seed=5, variation=6, part=part)
    assert SAFE.match(name), name
    assert ".." not in name
    assert len(name) <= 120


@pytest.mark.parametrize(
    ("seed", "variation", "field"),
    [
        (-1, 0, "seed"),
        (2**32, 0, "seed"),
        (1.5, 0, "seed"),
        (True, 0, "seed"),
        (0, -1, "variation"),
        (0, "2", "variation"),
    ],
)
def test_bad_seed_or_variation(seed: object, variation: object, field: str) -> None:
    with pytest.raises(RequestError) as caught:
        sample_filename("x", _sample(Kind.LOOP), seed=seed, variation=variation)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_prompt_must_be_text() -> None:
    with pytest.raises(RequestError) as caught:
        sample_filename(b"kick", _sample(Kind.LOOP), seed=1, variation=0)  # type: ignore[arg-type]
    assert caught.value.field == "prompt"
