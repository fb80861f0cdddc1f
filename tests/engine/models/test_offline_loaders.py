"""No loader reaches the network, even where the hub client is allowed to.

Every family's tiny checkpoint sits in a hub cache under its real repository id, and a local server
answering the hub's file API serves the very same repositories at ``HF_ENDPOINT``: a loader that
asked the hub anything (a newer revision, a missing file, a config) would get an answer there and
be logged. A fresh process, with ``HF_HUB_OFFLINE`` unset (so the engine's own ``local_files_only``
loading is what is tested, not the switch the command line adds), watches every socket connection
and name lookup through a Python audit hook, then loads each model through the registry and the
engine and renders with it. Nothing may connect, look up a name or reach the server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.models.hub_server import HubServer
from tests.engine.models.test_hub_cache import COMMIT, hub_cache_layout
from tests.engine.models.tiny_dance_diffusion import build_tiny_dance_diffusion
from tests.engine.models.tiny_pipelines import RIFFUSION_FOLDER, tiny_models_root

#: (tiny folder under tiny_models_root(), or None for the tiny Dance Diffusion; the real repository id)
REPOS = [
    (None, "harmonai/maestro-150k"),
    ("tiny-audioldm", "cvssp/audioldm-s-full-v2"),
    ("tiny-audioldm2", "cvssp/audioldm2-music"),
    ("tiny-stable-audio", "stabilityai/stable-audio-open-1.0"),
    (RIFFUSION_FOLDER, "riffusion/riffusion-model-v1"),
]

CHILD = r"""
import json, sys

events = []
watched = {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex",
           "socket.gethostbyaddr", "socket.sendto", "urllib.Request", "http.client.connect"}

def watch(event, args):
    if event in watched:
        events.append([event, repr(args)[:200]])
        raise ConnectionRefusedError(f"network use while loading: {event}")

sys.addaudithook(watch)

import torch
from pathlib import Path
from loopbridge.engine import GenerateRequest
from loopbridge.engine.core import Engine
from loopbridge.engine.frontdoor import FrontDoor
from loopbridge.engine.models.registry import ModelRegistry

torch.set_num_threads(1)
cache, store, ids = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
registry = ModelRegistry(search_paths=[], hf_cache=cache, include_embedded=True)
engine = Engine(store_dir=store, registry=registry, device="cpu")
door = FrontDoor(engine, prerender_depth=0, conform_workers=1).start()
rendered = {}
try:
    for model in ["default", *ids]:
        seconds = 0.05 if model == "harmonai/maestro-150k" else 0.2
        request = GenerateRequest(model=model, prompt="rain on a tin roof", seed=1, steps=2, kind="one-shot",
                                  duration_s=seconds)
        (render,) = door.render([request])
        rendered[model] = [registry.resolve(model).source, list(render.audio.shape),
                           bool(torch.isfinite(torch.from_numpy(render.audio)).all())]
finally:
    door.stop()
print(json.dumps({"events": events, "rendered": rendered}))
"""


@pytest.mark.slow
def test_every_loader_stays_off_the_network(tmp_path: Path) -> None:
    cache = tmp_path / "hub-cache"
    dance = build_tiny_dance_diffusion(tmp_path / "tiny-dd")
    folders = {repo_id: (tiny_models_root() / name if name else dance) for name, repo_id in REPOS}
    with HubServer() as hub:
        for repo_id, folder in folders.items():
            hub_cache_layout(folder, cache, repo_id)
            hub.add_folder(repo_id, folder, COMMIT)
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
        env.update(HF_ENDPOINT=hub.url, HF_HUB_CACHE=str(cache), HF_HOME=str(tmp_path / "hf-home"),
                   LOOPBRIDGE_HOME=str(tmp_path / "home"), LOOPBRIDGE_MODELS="")
        done = subprocess.run([sys.executable, "-c", CHILD, str(cache), str(tmp_path / "store"), *folders],
                              env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-4000:]
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report["events"] == []
        assert hub.log == []
    assert set(report["rendered"]) == {"default", *folders}
    for model, (source, shape, finite) in report["rendered"].items():
        assert source == ("embedded" if model == "default" else "huggingface cache"), model
        assert finite and shape[-1] > 0, (model, shape)
