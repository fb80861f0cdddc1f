"""The Max for Live device's JavaScript copy of the protocol stays in line with bridge/protocol.py.

The device (``ableton/js/loopbridge_protocol.js``) cannot import Python; this test loads the
JavaScript with Node (``ableton/tools/dump_js_protocol.js``) and compares it with what
``ableton/tools/dump_protocol.py`` reads from the protocol module and the engine's limits, so a
protocol change that the device would get wrong fails the Python suite too.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ABLETON = REPO / "ableton"


def _load_dump_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dump_protocol", ABLETON / "tools" / "dump_protocol.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def python_side() -> dict[str, Any]:
    result: dict[str, Any] = _load_dump_module().device_protocol()
    return result


@pytest.fixture(scope="module")
def js_side() -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the device's JavaScript cannot be loaded")
    out = subprocess.run([node, str(ABLETON / "tools" / "dump_js_protocol.js")], check=True, capture_output=True,
                         text=True, timeout=60)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


SCALARS = ("PROTOCOL_VERSION", "DEFAULT_OSC_HOST", "DEFAULT_OSC_PORT", "DEFAULT_OSC_REPLY_PORT", "REQUEST_TIMEOUT_S",
           "MAX_ID_CHARS", "MAX_OSC_PACKET_BYTES", "OSC_ROOT", "DEFAULT_SAMPLE_RATE", "RANDOM_SEED_MAX",
           "DEFAULT_LOUDNESS_LUFS")


@pytest.mark.parametrize("name", SCALARS)
def test_scalar_constants(js_side: dict[str, Any], python_side: dict[str, Any], name: str) -> None:
    assert js_side["protocol"][name] == python_side[name]


def test_addresses_exist(js_side: dict[str, Any], python_side: dict[str, Any]) -> None:
    known = set(python_side["INCOMING"]) | set(python_side["OUTGOING"])
    unknown = {name: a for name, a in js_side["protocol"]["ADDRESSES"].items() if a not in known}
    assert unknown == {}


def test_request_and_reply_arguments(js_side: dict[str, Any], python_side: dict[str, Any]) -> None:
    for address, spec in js_side["protocol"]["REQUEST_ARGS"].items():
        assert spec == python_side["INCOMING"][address], address
    for address, names in js_side["protocol"]["REPLY_ARGS"].items():
        assert names == python_side["OUTGOING"][address], address


def test_device_reads_every_job_reply(js_side: dict[str, Any], python_side: dict[str, Any]) -> None:
    job_replies = {a for a in python_side["OUTGOING"] if a.startswith(python_side["OSC_ROOT"] + "/job/")}
    assert job_replies
    assert job_replies - set(js_side["protocol"]["REPLY_ARGS"]) == set()


def test_fields_kinds_limits(js_side: dict[str, Any], python_side: dict[str, Any]) -> None:
    assert js_side["protocol"]["FIELDS"] == python_side["FIELDS"]
    assert js_side["protocol"]["KINDS"] == python_side["KINDS"]
    assert js_side["protocol"]["LIMITS"] == python_side["LIMITS"]
    assert js_side["protocol"]["KEY_NAMES"] == python_side["KEY_NAMES"]
    assert js_side["protocol"]["TASKS"] == python_side["TASKS"]
    assert js_side["protocol"]["TRACKS"] == python_side["TRACKS"]


def test_every_control_maps_to_a_field_of_its_address(js_side: dict[str, Any], python_side: dict[str, Any]) -> None:
    for row in js_side["controls"] + js_side["live_inputs"] + js_side["settings"]:
        entry = python_side["INCOMING"].get(row["address"])
        assert entry is not None, f"{row['name']}: {row['address']} is not an incoming OSC address"
        if row.get("field") is not None:
            assert entry["keyvalues"] is not None, f"{row['name']}: {row['address']} takes no key/value fields"
            assert row["field"] in python_side["FIELDS"][entry["keyvalues"]], row["name"]
