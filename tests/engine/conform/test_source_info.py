"""``SourceInfo.for_render``: what the engine tells the conform stage about a render, from the
model's info and the request (the one place that reads them)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from loopbridge.engine import GenerateRequest, Kind, Render, RequestError
from loopbridge.engine.conform import SourceInfo


def _render(request: GenerateRequest, **info: Any) -> Render:
    return Render(key="k" * 64, audio=np.zeros((1, 480), np.float32), sample_rate=48000, request=request,
                  model_digest="d", info=info)


def test_the_model_info_is_taken_and_other_keys_ignored() -> None:
    request = GenerateRequest(kind=Kind.ONE_SHOT, duration_s=1.0)
    render = _render(request, tempo_bpm=124, beats=8, downbeat_s=0.25, root_note=36, part="kick", **{"class": "kick"})
    # a kick's class says it has no pitch: never matched to a key
    assert SourceInfo.for_render(render) == SourceInfo(tempo_bpm=124.0, beats=8.0, downbeat_s=0.25, root_note=36,
                                                       pitched=False)
    assert SourceInfo.for_render(_render(request)) == SourceInfo()
    assert SourceInfo.for_render(_render(request, pitched=True, **{"class": "kick"})).pitched is True
    assert SourceInfo.for_render(_render(GenerateRequest(kind=Kind.KIT))).pitched is False


def test_a_loop_without_a_beat_count_holds_the_beats_it_was_asked_for() -> None:
    loop = GenerateRequest(kind=Kind.LOOP, bars=2, tempo_bpm=90, beats_per_bar=3)
    assert SourceInfo.for_render(_render(loop)) == SourceInfo(beats=6.0)
    assert SourceInfo.for_render(_render(loop, beats=0)) == SourceInfo(beats=6.0), "0 beats is no count"
    by_seconds = GenerateRequest(kind=Kind.LOOP, duration_s=3.0, tempo_bpm=100)
    assert SourceInfo.for_render(_render(by_seconds)).beats == pytest.approx(5.0)
    assert SourceInfo.for_render(_render(loop, beats=12.0, tempo_bpm=90.0)) == SourceInfo(tempo_bpm=90.0, beats=12.0)
    # only loops: a one-shot's beats stay unknown
    assert SourceInfo.for_render(_render(GenerateRequest(kind=Kind.ONE_SHOT, bars=1))).beats is None


def test_a_texture_keeps_the_duration_it_was_asked_for() -> None:
    texture = GenerateRequest(kind=Kind.TEXTURE, duration_s=3.0)
    assert SourceInfo.for_render(_render(texture)) == SourceInfo(duration_s=3.0)
    assert SourceInfo.for_render(_render(GenerateRequest(kind=Kind.TEXTURE))).duration_s == 4.0
    assert SourceInfo.for_render(_render(GenerateRequest(kind=Kind.ONE_SHOT, duration_s=3.0))).duration_s is None


@pytest.mark.parametrize(
    ("info", "field"),
    [
        ({"tempo_bpm": 5000}, "source.tempo_bpm"),
        ({"tempo_bpm": "fast"}, "source.tempo_bpm"),
        ({"beats": -4}, "source.beats"),
        ({"downbeat_s": [0.1]}, "source.downbeat_s"),
        ({"root_note": 200}, "source.root_note"),
    ],
)
def test_bad_model_info_names_the_field(info: dict[str, Any], field: str) -> None:
    with pytest.raises(RequestError) as caught:
        SourceInfo.for_render(_render(GenerateRequest(kind=Kind.LOOP, bars=1), **info))
    assert caught.value.field == field
