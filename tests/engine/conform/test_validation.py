"""Bad input to the conform stage: a RequestError naming the value, nothing half-done."""

from __future__ import annotations

import numpy as np
import pytest
from loopbridge.engine import ConformSpec, Kind, RequestError
from loopbridge.engine.conform import SourceInfo, StretchOptions, conform_audio

GOOD = np.zeros((2, 4800), np.float32) + np.float32(0.1)
SPEC = ConformSpec(tempo_bpm=120.0, bars=1, sample_rate=48000)


@pytest.mark.parametrize(
    ("audio", "rate", "kind", "spec", "field", "shown"),
    [
        (np.zeros((2, 0), np.float32), 48000, Kind.LOOP, SPEC, "audio", "empty"),
        (np.array([[0.0, np.nan, 0.1]], np.float32), 48000, Kind.LOOP, SPEC, "audio", "NaN"),
        (np.array([[0.0, np.inf, 0.1]], np.float32), 48000, Kind.ONE_SHOT, SPEC, "audio", "infinite"),
        (np.zeros((48000, 2), np.float32), 48000, Kind.LOOP, SPEC, "audio", "(48000, 2)"),
        (np.zeros((2, 2, 100), np.float32), 48000, Kind.TEXTURE, SPEC, "audio", "(2, 2, 100)"),
        (np.zeros(()), 48000, Kind.LOOP, SPEC, "audio", "shape"),
        ("not audio", 48000, Kind.LOOP, SPEC, "audio", ""),
        (GOOD, 0, Kind.LOOP, SPEC, "sample_rate", "0"),
        (GOOD, 48000.0, Kind.LOOP, SPEC, "sample_rate", "48000.0"),
        (GOOD, 400000, Kind.LOOP, SPEC, "sample_rate", "400000"),
        (GOOD, 48000, "drone", SPEC, "kind", "drone"),
        (GOOD, 48000, Kind.LOOP, {"tempo_bpm": 120}, "spec", "dict"),
    ],
)
def test_bad_input_names_the_value(
    audio: object, rate: object, kind: object, spec: object, field: str, shown: str
) -> None:
    with pytest.raises(RequestError) as caught:
        conform_audio(audio, rate, kind, spec)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert shown in str(caught.value)


def test_too_long_input_is_refused_before_any_work() -> None:
    audio = np.zeros((1, 8000 * 1201), np.float32)
    with pytest.raises(RequestError) as caught:
        conform_audio(audio, 8000, Kind.LOOP, SPEC)
    assert caught.value.field == "audio"
    assert "at most 1200 s" in str(caught.value)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"tempo_bpm": 0.0}, "source.tempo_bpm"),
        ({"tempo_bpm": float("nan")}, "source.tempo_bpm"),
        ({"beats": 0}, "source.beats"),
        ({"beats": -4}, "source.beats"),
        ({"downbeat_s": -0.1}, "source.downbeat_s"),
        ({"root_note": 128}, "source.root_note"),
        ({"root_note": 60.5}, "source.root_note"),
    ],
)
def test_bad_source_info(fields: dict, field: str) -> None:
    with pytest.raises(RequestError) as caught:
        SourceInfo(**fields)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"transient_mode": "sharp"}, "transient_mode"),
        ({"window": "tiny"}, "window"),
        ({"high_quality": "yes"}, "high_quality"),
        ({"pitch": "formant"}, "pitch"),
        ({"shift_alone": "fast"}, "shift_alone"),
    ],
)
def test_bad_stretch_options(fields: dict, field: str) -> None:
    with pytest.raises(RequestError) as caught:
        StretchOptions(**fields)
    assert caught.value.field == field


def test_input_is_not_modified() -> None:
    audio = (0.1 * np.random.default_rng(0).standard_normal((2, 48000))).astype(np.float32)
    before = audio.copy()
    for kind in (Kind.LOOP, Kind.ONE_SHOT, Kind.TEXTURE):
        conform_audio(audio, 48000, kind, SPEC, SourceInfo(tempo_bpm=100.0))
    np.testing.assert_array_equal(audio, before)
