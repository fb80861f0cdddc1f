"""The host's facts in the engine's terms: the shared meter table, and the one conform-spec constructor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from loopbridge.engine.errors import RequestError
from loopbridge.engine.host import HostFacts, conform_spec, engine_bars
from loopbridge.engine.request import DEFAULT_SAMPLE_RATE, GenerateRequest, Kind

TABLE = json.loads((Path(__file__).resolve().parents[1] / "data" / "host_meters.json").read_text())["cases"]


def _label(case: dict[str, Any]) -> str:
    return f"{case['bars']}x{case['numerator']}/{case['denominator']}"


@pytest.mark.parametrize("case", TABLE, ids=_label)
def test_shared_meter_table(case: dict[str, Any]) -> None:
    length = engine_bars(case["numerator"], case["denominator"], case["bars"])
    assert (length.beats_per_bar, length.bars, length.quarter_notes, length.exact) == (
        case["beats_per_bar"], case["engine_bars"], case["quarter_notes"], case["exact"])
    assert (length.note == "") == case["exact"]
    if not case["exact"]:
        assert case["note_contains"] in length.note
        assert f"{case['numerator']}/{case['denominator']}" in length.note

    # the same facts through the constructor every front end uses: a loop's spec, and its length in frames
    host = HostFacts(tempo_bpm=case["tempo_bpm"], meter_numerator=case["numerator"],
                     meter_denominator=case["denominator"], bars=case["bars"], sample_rate=case["sample_rate"])
    request = GenerateRequest(kind=Kind.LOOP, **host.request_fields())
    spec = conform_spec(request, host)
    assert (spec.beats_per_bar, spec.bars, spec.sample_rate) == (case["beats_per_bar"], case["engine_bars"],
                                                                 case["sample_rate"])
    assert spec.loop_frames == case["frames"]
    assert request.render_duration_s == pytest.approx(case["quarter_notes"] * 60 / case["tempo_bpm"])
    assert host.notes == ([] if case["exact"] else [length.note])


def test_what_the_host_does_not_say_comes_from_the_request() -> None:
    request = GenerateRequest(kind=Kind.LOOP, bars=2, tempo_bpm=90, beats_per_bar=3)
    spec = conform_spec(request)
    assert (spec.tempo_bpm, spec.bars, spec.beats_per_bar, spec.sample_rate) == (90, 2, 3, DEFAULT_SAMPLE_RATE)
    assert conform_spec(request, HostFacts(tempo_bpm=128)).tempo_bpm == 128
    # one-shots keep their own length; textures, like loops, take the bars
    assert conform_spec(GenerateRequest(bars=2)).bars is None
    assert conform_spec(GenerateRequest(kind=Kind.TEXTURE, bars=4)).bars == 4
    # a meter without bars gives the engine's bar only
    assert conform_spec(request, HostFacts(meter_numerator=6, meter_denominator=8)).beats_per_bar == 3


@pytest.mark.parametrize(
    ("facts", "field"),
    [
        ({"meter_numerator": 7}, "meter_denominator"),
        ({"meter_denominator": 8}, "meter_numerator"),
        ({"meter_numerator": 4, "meter_denominator": 4, "beats_per_bar": 4}, "beats_per_bar"),
        ({"meter_numerator": 0, "meter_denominator": 4}, "meter_numerator"),
        ({"meter_numerator": 100, "meter_denominator": 4}, "meter_numerator"),
        ({"meter_numerator": 4, "meter_denominator": 3}, "meter_denominator"),
        ({"meter_numerator": 4, "meter_denominator": 4, "bars": 0}, "bars"),
        ({"meter_numerator": 4, "meter_denominator": 4, "bars": float("nan")}, "bars"),
        ({"beats_per_bar": 17}, "beats_per_bar"),
        ({"bars": 65}, "bars"),
    ],
)
def test_bad_facts_name_the_field(facts: dict[str, Any], field: str) -> None:
    with pytest.raises(RequestError) as caught:
        HostFacts(**facts)
    assert caught.value.field == field
    assert "expected" in str(caught.value)
