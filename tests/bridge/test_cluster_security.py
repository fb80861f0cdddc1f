"""Who may join the model workers' cluster: loopback alone, or a token and TLS (bridge/security.py),
and the refusals of ``loopbridge worker`` and ``serve --cluster`` before anything starts."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from loopbridge.bridge.cli import main
from loopbridge.bridge.security import (
    CLUSTER_TLS_FILES,
    ClusterSecurity,
    SecurityError,
    check_cluster_host,
    cluster_host,
    default_cluster_token,
)


def tls_folder(root: Path, missing: str | None = None) -> Path:
    folder = root / "tls"
    folder.mkdir()
    for name in CLUSTER_TLS_FILES:
        if name != missing:
            (folder / name).write_text("-----BEGIN-----\n")
    return folder


def token_file(root: Path) -> Path:
    path = root / "token"
    path.write_text("0123456789abcdef\n")
    return path


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_needs_nothing(host: str) -> None:
    check_cluster_host(host, ClusterSecurity(), "host")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_beyond_loopback_needs_a_token_and_tls(host: str, tmp_path: Path) -> None:
    with pytest.raises(SecurityError, match=r"--cluster-token FILE and --cluster-tls DIR"):
        check_cluster_host(host, ClusterSecurity(), "host")
    with pytest.raises(SecurityError, match=r"give --cluster-tls DIR \("):
        check_cluster_host(host, ClusterSecurity.load(token_file(tmp_path), None), "host")
    check_cluster_host(host, ClusterSecurity.load(token_file(tmp_path), tls_folder(tmp_path)), "host")


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(SecurityError, match=r"node.key missing"):
        ClusterSecurity.load(None, tls_folder(tmp_path, missing="node.key"))
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(SecurityError, match=r"cluster-token=.*empty.* is not accepted"):
        ClusterSecurity.load(empty, None)


def test_the_environment_turns_on_token_auth_and_tls_and_turns_off_usage_stats(tmp_path: Path) -> None:
    env = ClusterSecurity.load(token_file(tmp_path), tls_folder(tmp_path)).environment()
    assert env["RAY_USAGE_STATS_ENABLED"] == "0" and env["RAY_AUTH_MODE"] == "token"
    assert env["RAY_AUTH_TOKEN_PATH"] == str((tmp_path / "token").resolve())
    assert env["RAY_USE_TLS"] == "1" and env["RAY_TLS_SERVER_KEY"].endswith("node.key")
    assert ClusterSecurity().environment()["RAY_AUTH_MODE"] == "disabled"


def test_the_default_token_is_made_once_for_this_user_only(tmp_path: Path) -> None:
    path = default_cluster_token(tmp_path / "ray")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_text()
    assert len(first.strip()) == 64
    assert default_cluster_token(tmp_path / "ray").read_text() == first


def test_cluster_addresses() -> None:
    assert cluster_host("local") == "127.0.0.1"
    assert cluster_host("192.168.1.20:6379") == "192.168.1.20"
    assert cluster_host("[::1]:6379") == "::1"


@pytest.mark.parametrize("argv, message", [
    (["worker", "--head", "--host", "0.0.0.0"], "host='0.0.0.0' reaches beyond this machine"),
    (["worker", "--join", "192.168.1.20:6379"], "join='192.168.1.20' reaches beyond this machine"),
    (["serve", "--cluster", "192.168.1.20:6379"], "cluster='192.168.1.20' reaches beyond this machine"),
    (["serve", "--replicas", "2"], "replicas=2 is not accepted without --cluster"),
    (["serve", "--cluster-token", "token"], "cluster-token and cluster-tls are not accepted without --cluster"),
])
def test_refused_before_anything_starts(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
