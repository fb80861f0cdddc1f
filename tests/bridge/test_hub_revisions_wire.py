"""A revision of a hub model over the wire: listed under its own name, asked for by that name (``@`` and
all) over ZeroMQ and as the OSC session's model, and rendered from its own weights."""

from __future__ import annotations

from pathlib import Path

import pytest
from loopbridge.bridge import protocol as p
from loopbridge.bridge.client import Client, RemoteError

from tests.bridge.conftest import TINY, start_served, stop_served
from tests.bridge.test_osc import Peer
from tests.engine.models.test_hub_cache import hub_cache_layout
from tests.engine.models.tiny_dance_diffusion import build_tiny_dance_diffusion

REPO = "someone/model"
MAIN = "a" * 40
V2 = "b" * 40


def test_a_network_client_names_a_revision_as_models_lists_it(tmp_path: Path, tiny_dd_root: Path) -> None:
    root = tmp_path / "engine"
    cache = root / "no-hub"  # the hub cache the served engine's registry reads
    hub_cache_layout(tiny_dd_root / "tiny-dd", cache, REPO, commit=MAIN)
    entry = hub_cache_layout(build_tiny_dance_diffusion(tmp_path / "v2", seed=1), cache, REPO, commit=V2).parents[1]
    (entry / "refs" / "main").write_text(MAIN)
    (entry / "refs" / "v2").write_text(V2)
    served = start_served(tiny_dd_root, root)
    try:
        with Client(served.zmq.endpoint) as client:
            assert {REPO, f"{REPO}@v2"} <= set(client.hello()["models"])
            rows = {row["id"]: row for row in client.models()}
            assert (rows[f"{REPO}@v2"]["revision"], rows[f"{REPO}@v2"]["commit"]) == ("v2", V2)
            assert (rows[REPO]["revision"], rows[REPO]["commit"]) == ("main", MAIN)
            assert client.capabilities(f"{REPO}@v2")["family"] == "dance-diffusion"

            def wav(model: str) -> bytes:
                (sample,) = client.generate(seed=4, timeout=120, **{**TINY, "model": model}).samples
                assert sample.wav is not None
                return bytes(sample.wav)

            assert wav(f"{REPO}@v2") != wav(REPO)
            # over the network a model is named as `models` lists it, not by a commit prefix
            with pytest.raises(RemoteError) as caught:
                client.generate(seed=4, timeout=60, **{**TINY, "model": f"{REPO}@{V2[:8]}"})
            assert caught.value.code == "unknown_model" and f"{REPO}@v2" in caught.value.message
        peer = Peer(served)
        try:
            peer.send(f"{p.OSC_ROOT}/session/set/model", f"{REPO}@v2")
            assert peer.until(f"{p.OSC_ROOT}/session/model")[0] == [f"{REPO}@v2"]
        finally:
            peer.close()
        assert served.osc.session.params["model"] == f"{REPO}@v2"
    finally:
        stop_served(served)
