"""``loopbridge models pull / remove / --available`` against a local server in the hub's file API layout.

Each pull is the real command in its own process (the hub client reads ``HF_ENDPOINT`` once, when
imported), with ``HF_ENDPOINT`` pointing at :class:`HubServer` and a hub cache and ``HF_HOME`` of
the test's own, so no stored token of the machine's takes part. What the server logged tells what
the client asked for: which files, which byte ranges, with which token.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from loopbridge.bridge.cli import main
from loopbridge.engine.models.hub import folder_size
from loopbridge.engine.models.registry import ModelRegistry

from tests.engine.models.hub_server import HubServer
from tests.engine.models.test_hub_cache import hub_cache_layout
from tests.engine.models.tiny_dance_diffusion import build_tiny_dance_diffusion
from tests.engine.models.tiny_pipelines import build_stable_audio

REPO = "harmonai/maestro-150k"
COMMIT = "3f1c0e9a7b5d2c4e6f8a0b1c2d3e4f5a6b7c8d9e"
WEIGHTS = "unet/diffusion_pytorch_model.safetensors"
#: the hub client writes a download in 10 MiB chunks: a cut after 11 MiB leaves 10 MiB to resume from
CHUNK = 10 * 2**20
#: what a loader reads of the tiny checkpoint (the pull must fetch exactly these)
LOADER_FILES = {"model_index.json", "README.md", "scheduler/scheduler_config.json", "unet/config.json", WEIGHTS}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Dance Diffusion checkpoint laid out as published, with a 13 MiB weight file, plus what a
    hub repository carries for other tools: a root single-file checkpoint, the same weights in the
    older format and a precision variant (none of which the loader reads)."""
    folder = build_tiny_dance_diffusion(tmp_path_factory.mktemp("hub") / "maestro", block_out_channels=(64, 96, 128))
    (folder / "README.md").write_text("---\nlicense: other\n---\n# a tiny test checkpoint\n")
    (folder / "model.ckpt").write_bytes(b"\x80\x02single-file checkpoint for another tool" * 64)
    (folder / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"older format" * 64)
    (folder / "unet" / "diffusion_pytorch_model.fp16.safetensors").write_bytes(b"a half-precision variant" * 64)
    assert (folder / WEIGHTS).stat().st_size > CHUNK + 2**20
    return folder


@pytest.fixture
def hub(checkpoint: Path) -> Iterator[HubServer]:
    with HubServer() as server:
        server.add_folder(REPO, checkpoint, COMMIT)
        yield server


def hub_env(tmp_path: Path, endpoint: str) -> dict[str, str]:
    """The environment of a user on a network: no offline switches, no token, the hub at ``endpoint``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env.update(HF_ENDPOINT=endpoint, HF_HUB_CACHE=str(tmp_path / "hub-cache"), HF_HOME=str(tmp_path / "hf-home"),
               LOOPBRIDGE_HOME=str(tmp_path / "home"), LOOPBRIDGE_MODELS="", HF_HUB_DISABLE_TELEMETRY="1")
    return env


def loopbridge(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loopbridge.bridge.cli", *args], env=env, capture_output=True,
                          text=True, timeout=600)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pull_fetches_what_the_loader_reads_resumes_a_dropped_file_and_the_engine_generates(
        tmp_path: Path, hub: HubServer, checkpoint: Path) -> None:
    hub.drop_next_get(REPO, WEIGHTS, after_bytes=CHUNK + 2**20)
    env = hub_env(tmp_path, hub.url)
    done = loopbridge(env, "models", "pull", REPO)
    assert done.returncode == 0, done.stderr
    snapshot = Path(done.stdout.strip())
    cache = tmp_path / "hub-cache"
    entry = cache / "models--harmonai--maestro-150k"
    assert snapshot == entry / "snapshots" / COMMIT
    assert f"pulling {REPO} (dance-diffusion) at main: 5 files" in done.stderr
    assert "Fetching 5 files" in done.stderr, "the hub client's progress bar"

    # the standard cache layout: snapshot links into blobs, refs/main naming the commit
    pulled = {p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if not p.is_dir()}
    assert pulled == LOADER_FILES
    assert all((snapshot / name).is_symlink() for name in pulled)
    assert all(sha256(snapshot / name) == sha256(checkpoint / name) for name in pulled)
    assert (entry / "refs" / "main").read_text() == COMMIT
    asked = {r.path for r in hub.requests()}
    assert not any(path.endswith(("model.ckpt", ".bin", ".fp16.safetensors")) for path in asked), asked

    # the dropped connection was picked up where the written bytes ended, not started again
    gets = [(r.range, r.status, r.body_bytes) for r in hub.requests("GET", WEIGHTS)]
    size = (checkpoint / WEIGHTS).stat().st_size
    assert gets == [(None, 200, CHUNK + 2**20), (f"bytes={CHUNK}-", 206, size - CHUNK)]

    # the engine finds, loads and runs it offline, through the command line: the hub hears nothing more
    before = len(hub.log)
    made = loopbridge(env, "generate", "--model", REPO, "--seconds", "0.05", "--steps", "2", "--seed", "3",
                      "--out", str(tmp_path / "out"), "--quiet")
    assert made.returncode == 0, made.stderr
    (wav,) = [Path(line) for line in made.stdout.split()]
    import soundfile

    audio, rate = soundfile.read(wav)
    assert rate == 48000 and len(audio) > 0 and bool(torch.isfinite(torch.from_numpy(audio)).all())
    assert hub.log[before:] == []

    # size on disk: the revision's five files; the whole cache entry adds the client's small bookkeeping
    listed = loopbridge(env, "models", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = [r for r in json.loads(listed.stdout) if r["id"] == REPO]
    files_bytes = sum((checkpoint / name).stat().st_size for name in LOADER_FILES)
    assert row["source"] == "huggingface cache" and row["size_on_disk"] == files_bytes
    assert (row["revision"], row["commit"]) == ("main", COMMIT)
    assert row["missing_files"] == []
    assert row["entry_size_on_disk"] == folder_size(entry)
    assert files_bytes <= row["entry_size_on_disk"] <= files_bytes + 64 * 1024
    available = {r["id"]: r for r in json.loads(loopbridge(env, "models", "--available", "--json").stdout)}
    assert available[REPO]["status"] == "present" and available[REPO]["size_on_disk"] == row["entry_size_on_disk"]


def test_a_pull_that_stopped_keeps_its_files_and_the_next_fetches_only_the_rest(tmp_path: Path,
                                                                                 hub: HubServer) -> None:
    hub.fail_next_get(REPO, WEIGHTS, status=500)
    env = hub_env(tmp_path, hub.url)
    failed = loopbridge(env, "models", "pull", REPO)
    assert failed.returncode == 1
    assert f"answered 500 while pulling {REPO}" in failed.stderr
    assert "files already pulled are kept: run the same command again" in failed.stderr
    snapshot = tmp_path / "hub-cache" / "models--harmonai--maestro-150k" / "snapshots" / COMMIT
    kept = {p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if not p.is_dir()}
    assert kept == LOADER_FILES - {WEIGHTS}
    available = {r["id"]: r for r in json.loads(loopbridge(env, "models", "--available", "--json").stdout)}
    assert available[REPO]["status"] == "partial"
    (row,) = [r for r in json.loads(loopbridge(env, "models", "--json").stdout) if r["id"] == REPO]
    assert row["missing_files"] == [WEIGHTS]

    before = len(hub.log)
    again = loopbridge(env, "models", "pull", REPO)
    assert again.returncode == 0, again.stderr
    fetched = {r.path.rpartition(f"/{COMMIT}/")[2] for r in hub.log[before:] if r.method == "GET"
               and "/resolve/" in r.path and f"/{COMMIT}/" in r.path}
    assert fetched == {WEIGHTS}


def test_an_interrupted_pull_stops_at_once_keeping_finished_files_and_no_partial_ones(tmp_path: Path,
                                                                                      hub: HubServer) -> None:
    hub.stall_next_get(REPO, WEIGHTS, after_bytes=CHUNK + 2**20)
    # the client waits on the stalled server (its default 10 s read timeout would retry by range instead)
    env = {**hub_env(tmp_path, hub.url), "HF_HUB_DOWNLOAD_TIMEOUT": "600"}
    # a process started in the background inherits SIGINT ignored; a terminal's Ctrl-C reaches a command with
    # the default disposition, which Python turns into KeyboardInterrupt
    pulling = subprocess.Popen([sys.executable, "-m", "loopbridge.bridge.cli", "models", "pull", REPO], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert hub.stalled.wait(timeout=300), "the weights' download began"
        entry = tmp_path / "hub-cache" / "models--harmonai--maestro-150k"
        partial = []
        for _ in range(600):  # the client has written its first 10 MiB chunk
            partial = [p for p in (entry / "blobs").glob("*.incomplete") if p.stat().st_size >= CHUNK]
            if partial:
                break
            subprocess.run(["sleep", "0.1"], check=True)
        assert partial
        pulling.send_signal(signal.SIGINT)
        _, stderr = pulling.communicate(timeout=60)  # while the server still holds the download open
    finally:
        if pulling.poll() is None:
            pulling.kill()
            pulling.wait()
    assert pulling.returncode == 130
    assert "interrupted: the files finished are kept; run the same command again" in stderr
    assert list((entry / "blobs").glob("*.incomplete")) == []
    snapshot = entry / "snapshots" / COMMIT
    assert {p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if not p.is_dir()} \
        == LOADER_FILES - {WEIGHTS}


def test_a_gated_model_says_where_to_accept_the_licence_and_how_to_give_a_token(tmp_path: Path) -> None:
    repo_id = "stabilityai/stable-audio-open-1.0"
    folder = build_stable_audio(tmp_path / "published")
    with HubServer() as hub:
        repo = hub.add_folder(repo_id, folder, COMMIT, gated=True)
        env = hub_env(tmp_path, hub.url)

        refused = loopbridge(env, "models", "pull", repo_id)
        assert refused.returncode == 1
        message = refused.stderr.strip().splitlines()[-1]
        assert f"{repo_id} is gated and no token was given" in message
        assert f"open {hub.url}/{repo_id} while signed in and accept its licence" in message
        assert "hf auth login" in message and "HF_TOKEN" in message and "--token-file" in message
        assert any(r.status == 401 for r in hub.log)

        token_file = tmp_path / "token"
        token_file.write_text("hf_notgrantedyet\n")
        refused = loopbridge(env, "models", "pull", repo_id, "--token-file", str(token_file))
        assert refused.returncode == 1
        assert "the token given has not been granted access to it yet" in refused.stderr
        assert {r.token for r in hub.requests(path_suffix="model_index.json")} >= {"hf_notgrantedyet"}
        assert "hf_notgrantedyet" not in refused.stderr, "a token is never printed"
        assert not (tmp_path / "hub-cache" / "models--stabilityai--stable-audio-open-1.0" / "snapshots").exists()

        repo.granted_tokens.add("hf_accepted")
        granted = loopbridge({**env, "HF_TOKEN": "hf_accepted"}, "models", "pull", repo_id, "--quiet")
        assert granted.returncode == 0, granted.stderr
    spec = ModelRegistry(search_paths=[], hf_cache=tmp_path / "hub-cache", include_embedded=False).resolve(repo_id)
    assert (spec.family, spec.source) == ("stable-audio", "huggingface cache")
    published = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {p.relative_to(spec.path).as_posix() for p in spec.path.rglob("*") if not p.is_dir()} == published


def test_offline_says_so_and_nothing_is_asked(tmp_path: Path, hub: HubServer) -> None:
    env = hub_env(tmp_path, hub.url)
    switched_off = loopbridge({**env, "HF_HUB_OFFLINE": "1"}, "models", "pull", REPO)
    assert switched_off.returncode == 1
    assert "the Hugging Face client is switched off here" in switched_off.stderr
    assert "HF_HUB_OFFLINE=0" in switched_off.stderr
    assert [r for r in hub.log if "/api/models/" in r.path or "/resolve/" in r.path] == []

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    unreachable = loopbridge(hub_env(tmp_path, closed), "models", "pull", REPO)
    assert unreachable.returncode == 1
    assert f"cannot reach {closed} to pull {REPO}" in unreachable.stderr
    assert "check the network connection" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr


def test_bad_ids_revisions_and_repositories_nothing_loads_are_refused(tmp_path: Path, hub: HubServer,
                                                                     checkpoint: Path) -> None:
    env = hub_env(tmp_path, hub.url)
    missing = loopbridge(env, "models", "pull", "nobody/nothing")
    assert missing.returncode == 2 and f"model='nobody/nothing' is not on {hub.url}" in missing.stderr

    revision = loopbridge(env, "models", "pull", REPO, "--revision", "v9")
    assert revision.returncode == 2 and "revision='v9' is not accepted" in revision.stderr

    other = tmp_path / "image-model"
    other.mkdir()
    (other / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline", "vae": ["diffusers", "X"]}))
    (other / "vae").mkdir()
    (other / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(b"\0" * 4096)
    hub.add_folder("someone/image-model", other, COMMIT)
    unloadable = loopbridge(env, "models", "pull", "someone/image-model")
    assert unloadable.returncode == 2 and "(it is a FluxPipeline)" in unloadable.stderr
    assert not hub.requests("GET", "diffusion_pytorch_model.safetensors"), "no weights fetched"
    assert not (tmp_path / "hub-cache" / "models--someone--image-model").exists()



def test_remove_frees_only_that_models_cache_entry(tmp_path: Path, hub: HubServer, checkpoint: Path) -> None:
    env = hub_env(tmp_path, hub.url)
    assert loopbridge(env, "models", "pull", REPO, "--quiet").returncode == 0
    cache = tmp_path / "hub-cache"
    neighbour = hub_cache_layout(checkpoint, cache, "someone/other-model").parents[1]
    neighbour_bytes = folder_size(neighbour)
    entry = cache / "models--harmonai--maestro-150k"
    size = folder_size(entry)
    assert (cache / ".locks" / entry.name).is_dir()

    removed = loopbridge(env, "models", "remove", REPO)
    assert removed.returncode == 0, removed.stderr
    assert f"removed {REPO} from the Hugging Face cache (its whole cache entry): {size / 1e6:.1f} MB freed" \
        in removed.stderr
    assert not entry.exists() and not (cache / ".locks" / entry.name).exists()
    assert folder_size(neighbour) == neighbour_bytes
    listed = [r["id"] for r in json.loads(loopbridge(env, "models", "--json").stdout)]
    assert REPO not in listed and "someone/other-model" in listed

    again = loopbridge(env, "models", "remove", REPO)
    assert again.returncode == 2
    assert f"model='{REPO}' has no entry in the Hugging Face cache" in again.stderr
    assert "expected one of the ids there (someone/other-model)" in again.stderr
    embedded = loopbridge(env, "models", "remove", "default")
    assert embedded.returncode == 2 and "ships inside loopbridge" in embedded.stderr


def test_a_pulled_revision_is_named_listed_loaded_and_removed_on_its_own(tmp_path: Path) -> None:
    v2_commit = "9" * 40
    published = tmp_path / "published"
    main_folder = build_tiny_dance_diffusion(published / "main", seed=0)
    v2_folder = build_tiny_dance_diffusion(published / "v2", seed=1)  # other weights, the same config
    with HubServer() as hub:
        hub.add_folder(REPO, main_folder, COMMIT)
        hub.add_folder(REPO, v2_folder, v2_commit, branch="v2")
        env = hub_env(tmp_path, hub.url)
        cache = tmp_path / "hub-cache"
        entry = cache / "models--harmonai--maestro-150k"

        first = loopbridge(env, "models", "pull", REPO, "--revision", "v2", "--quiet")
        assert first.returncode == 0, first.stderr
        assert Path(first.stdout.strip()) == entry / "snapshots" / v2_commit
        assert f"{REPO}@v2 is here: revision v2, commit {v2_commit[:12]}" in first.stderr
        assert f"use it as --model {REPO}@v2 " in first.stderr
        second = loopbridge(env, "models", "pull", REPO, "--quiet")
        assert second.returncode == 0, second.stderr
        assert f"use it as --model {REPO} " in second.stderr
        served = len(hub.log)

        rows = {r["id"]: r for r in json.loads(loopbridge(env, "models", "--json").stdout)}
        assert [(rows[n]["revision"], rows[n]["commit"]) for n in (REPO, f"{REPO}@v2")] \
            == [("main", COMMIT), ("v2", v2_commit)]
        for name, folder in ((REPO, main_folder), (f"{REPO}@v2", v2_folder)):
            own = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name != "loopbridge.json")
            assert rows[name]["size_on_disk"] == own, "the revision's own files, a shared one in each"
            assert rows[name]["entry_size_on_disk"] == folder_size(entry)
        text = loopbridge(env, "models").stdout
        assert f"{REPO}@v2  [dance-diffusion]" in text
        assert f"from the huggingface cache, revision v2 (commit {v2_commit[:12]})" in text
        assert "the cache entry of its 2 revisions takes" in text

        # each name loads its own revision, offline: @v2 renders what the v2 checkpoint's folder renders
        def made(model: str) -> bytes:
            out = tmp_path / f"out-{len(list(tmp_path.glob('out-*')))}"
            done = loopbridge(env, "generate", "--model", model, "--seconds", "0.05", "--steps", "2", "--seed", "3",
                              "--out", str(out), "--quiet")
            assert done.returncode == 0, done.stderr
            (wav,) = [Path(line) for line in done.stdout.split()]
            import soundfile

            return soundfile.read(wav, dtype="int32")[0].tobytes()

        v2_audio = made(f"{REPO}@v2")
        assert v2_audio == made(f"dance-diffusion:{v2_folder}")
        assert made(REPO) != v2_audio
        assert hub.log[served:] == [], "loading asked the hub nothing"

        unknown = loopbridge(env, "generate", "--model", f"{REPO}@v3", "--seconds", "0.05", "--quiet")
        assert unknown.returncode == 2
        assert f"the revision 'v3' of {REPO} is not in the Hugging Face cache" in unknown.stderr
        assert f"expected one of the revisions cached: {REPO}, {REPO}@v2" in unknown.stderr

        removed = loopbridge(env, "models", "remove", f"{REPO}@v2")
        assert removed.returncode == 0, removed.stderr
        assert f"removed {REPO}@v2 from the Hugging Face cache (its other revisions stay)" in removed.stderr
        assert [r["id"] for r in json.loads(loopbridge(env, "models", "--json").stdout)
                if r["source"] == "huggingface cache"] == [REPO]
        assert not (entry / "snapshots" / v2_commit).exists() and (entry / "snapshots" / COMMIT).is_dir()


def test_input_is_checked_before_the_network(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "pull", "not an id"]) == 2
    assert "model='not an id' is not accepted: expected a model id as the Hugging Face hub shows it" \
        in capsys.readouterr().err
    empty = tmp_path / "empty-token"
    empty.write_text("\n")
    assert main(["models", "pull", REPO, "--token-file", str(empty)]) == 2
    assert "the file is empty" in capsys.readouterr().err
    assert main(["models", "pull", REPO, "--token-file", str(tmp_path / "nowhere")]) == 2
    assert f"token-file={str(tmp_path / 'nowhere')!r} is not accepted" in capsys.readouterr().err
    assert main(["models", "remove", "../etc"]) == 2
    assert "model='../etc' has no entry in the Hugging Face cache" in capsys.readouterr().err


def test_every_command_but_pull_switches_the_hub_client_off(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert main(["models", "pull", "not an id"]) == 2
    assert os.environ["HF_HUB_OFFLINE"] == "0"
    assert main(["models", "--available"]) == 0
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    out = capsys.readouterr().out
    assert "stabilityai/stable-audio-3-medium  [stable-audio-3]" in out and "licence: " in out
