"""Who may talk to the engine.

- Binds on loopback need nothing. Any other interface needs ZeroMQ CURVE keys (encryption, and
  the server proven to clients), unless the operator says ``--insecure`` outright.
- ``loopbridge keys DIR`` writes a server key pair and a client key pair in zmq's certificate
  format, and puts the client's public key in ``DIR/authorized/``. With ``authorized/`` present,
  only clients whose public keys are in it get through (checked by the engine's ZAP handler,
  :class:`ZapHandler`); without it, any client that knows the server's public key does.
- Every connection the ZeroMQ server admits, with keys or without, passes the ZAP handler, which
  gives it a fresh random id in its metadata (:data:`CONNECTION_PROPERTY`) and, under CURVE, the
  client's public key as its ``User-Id``. The server ties each job to both, never to the routing id
  a peer presents.
- OSC has no keys: beyond loopback, an allow-list of controller addresses (hosts or networks).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SERVER_KEY_NAME = "server"
CLIENT_KEY_NAME = "client"
AUTHORIZED_DIR = "authorized"

#: where libzmq asks a context's ZAP handler (RFC 27) whether to admit a connection
ZAP_ENDPOINT = "inproc://zeromq.zap.01"
#: the ZAP domain of the engine's sockets: with one set, libzmq asks the handler about NULL connections too
ZAP_DOMAIN = "loopbridge"
#: the metadata property the ZAP handler gives each connection it admits: a fresh random id, carried by
#: every message of that connection. A peer cannot set it: libzmq keeps the ZAP handler's properties
#: over any of the same name that the peer sends in its handshake.
CONNECTION_PROPERTY = "Loopbridge-Connection"
#: the metadata property libzmq fills with the ZAP handler's user id (here: the client's z85 public key)
USER_PROPERTY = "User-Id"


class SecurityError(Exception):
    """A bind or a key set-up that would be unsafe or cannot work; the message says what to do."""


# ---- where an endpoint listens ------------------------------------------------------------------------


def endpoint_host(endpoint: str) -> str | None:
    """The host of a ``tcp://HOST:PORT`` endpoint (None for ipc:// and inproc://)."""
    if not endpoint.startswith("tcp://"):
        return None
    rest = endpoint[len("tcp://"):]
    if rest.startswith("["):  # tcp://[::1]:5555
        return rest[1:rest.index("]")] if "]" in rest else rest
    host = rest.rsplit(":", 1)[0]
    return host.split(";")[-1]  # tcp://source;host:port binds to host


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an address) means this machine only."""
    if host in ("", "*", "0.0.0.0", "::"):
        return False
    if host == "localhost":
        return True
    try:
        return is_loopback_address(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False  # an interface name or an unknown host: treat it as reachable from outside
    return bool(infos) and all(is_loopback_address(ipaddress.ip_address(info[4][0])) for info in infos)


def is_loopback_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, IPv4 as a dual-stack (``[::]``) socket sees it too: ``::ffff:127.0.0.1``."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def is_loopback_endpoint(endpoint: str) -> bool:
    if endpoint.startswith(("ipc://", "inproc://")):
        return True  # not reachable over the network at all
    host = endpoint_host(endpoint)
    return host is not None and is_loopback_host(host)


def check_zmq_binds(endpoints: Iterable[str], keys: CurveKeys | None, insecure: bool) -> list[str]:
    """Raise SecurityError for a bind beyond loopback with neither keys nor ``insecure``.

    Returns warnings to print (an insecure bind beyond loopback).
    """
    warnings = []
    for endpoint in endpoints:
        if is_loopback_endpoint(endpoint):
            continue
        if keys is not None:
            continue
        if not insecure:
            raise SecurityError(
                f"{endpoint} listens beyond this machine: give CURVE keys with --keys DIR (make them with "
                "`loopbridge keys DIR`), or pass --insecure to accept unencrypted, unauthenticated clients"
            )
        warnings.append(f"{endpoint} accepts anyone who can reach it, unencrypted (--insecure)")
    return warnings


# ---- CURVE keys -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CurveKeys:
    """A server's CURVE key pair (z85 bytes) and, optionally, the folder of authorized client keys."""

    public: bytes
    secret: bytes
    authorized_dir: Path | None = None


def generate_keys(folder: str | Path) -> dict[str, Path]:
    """Write ``server.key``/``server.key_secret`` and ``client.key``/``client.key_secret`` in ``folder``,
    and the client's public key in ``folder/authorized/``. Existing key files are not overwritten
    (raises SecurityError).

    Secret files are created readable by their owner only (never written first and narrowed after), and
    the folders this makes (``folder`` when it is new, ``authorized/``) are its owner's only: whoever can
    write to ``authorized/`` decides who gets in.
    """
    import zmq

    folder = Path(folder).expanduser()
    targets = [folder / f"{name}{suffix}" for name in (SERVER_KEY_NAME, CLIENT_KEY_NAME)
               for suffix in (".key", ".key_secret")]
    existing = [str(t) for t in targets if t.exists() or t.is_symlink()]
    if existing:
        raise SecurityError(f"key files already exist: {', '.join(existing)}; remove them or choose another folder")
    if not folder.exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir(mode=0o700)
    (folder / AUTHORIZED_DIR).mkdir(mode=0o700, exist_ok=True)
    paths: dict[str, Path] = {}
    for name in (SERVER_KEY_NAME, CLIENT_KEY_NAME):
        public, secret = zmq.curve_keypair()
        paths[f"{name}_public"] = _write_certificate(folder / f"{name}.key", public)
        paths[f"{name}_secret"] = _write_certificate(folder / f"{name}.key_secret", public, secret)
    authorized = folder / AUTHORIZED_DIR / f"{CLIENT_KEY_NAME}.key"
    if authorized.exists() or authorized.is_symlink():
        authorized.unlink()  # the key of an earlier client pair, gone from the folder: this one replaces it
    paths["authorized"] = _write_certificate(authorized, public)
    return paths


def _write_certificate(path: Path, public: bytes, secret: bytes | None = None) -> Path:
    """A key file in zmq's certificate format (what ``zmq.auth.load_certificate`` reads), created with
    its final mode: 0600 when it holds a secret. Raises FileExistsError rather than write through an
    existing file or link."""
    kind = "Secret" if secret is not None else "Public"
    lines = [f"#   ****  Generated on {datetime.datetime.now():%Y-%m-%d %H:%M:%S} by loopbridge  ****",
             f"#   ZeroMQ CURVE {kind} Certificate",
             *(["#   Keep this file to yourself: it is readable by its owner only."] if secret is not None else []),
             "", "metadata", "curve", f'    public-key = "{public.decode("ascii")}"',
             *([f'    secret-key = "{secret.decode("ascii")}"'] if secret is not None else [])]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if secret is not None else 0o644)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def load_server_keys(folder: str | Path) -> CurveKeys:
    """The server key pair from ``folder`` (``server.key_secret``), with ``authorized/`` if present."""
    folder = Path(folder).expanduser()
    secret_file = folder / f"{SERVER_KEY_NAME}.key_secret"
    public, secret = _load_pair(secret_file, "the server's secret key")
    authorized = folder / AUTHORIZED_DIR
    return CurveKeys(public=public, secret=secret, authorized_dir=authorized if authorized.is_dir() else None)


def load_client_keys(path: str | Path) -> tuple[bytes, bytes]:
    """A client key pair from a ``*.key_secret`` file (or a folder holding ``client.key_secret``)."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / f"{CLIENT_KEY_NAME}.key_secret"
    return _load_pair(path, "the client's secret key")


def load_public_key(value: str | Path) -> bytes:
    """A public key: 40 z85 characters, a ``*.key`` file, or a folder holding ``server.key``."""
    text = str(value)
    if len(text) == 40 and not Path(text).exists():
        return text.encode("ascii")
    path = Path(text).expanduser()
    if path.is_dir():
        path = path / f"{SERVER_KEY_NAME}.key"
    import zmq.auth

    try:
        public, _ = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise SecurityError(f"server key {text!r} cannot be read: expected 40 z85 characters or a .key file ({exc})"
                            ) from exc
    if not public:
        raise SecurityError(f"{str(path)!r} holds no public key")
    return public


def _load_pair(path: Path, what: str) -> tuple[bytes, bytes]:
    import zmq.auth

    try:
        public, secret = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise SecurityError(f"{what} {str(path)!r} cannot be read ({exc}): make keys with `loopbridge keys DIR`"
                            ) from exc
    if not public or not secret:
        raise SecurityError(f"{str(path)!r} is not a secret key file: expected the *.key_secret file")
    return public, secret


# ---- ZAP: who gets in, and which connection a message came on ------------------------------------------


class ZapHandler:
    """Answers libzmq's ZAP requests (RFC 27) for the engine's sockets; the ZeroMQ server binds a REP
    socket at :data:`ZAP_ENDPOINT` in its context and hands each request to :meth:`answer`.

    ``keys`` None: the sockets speak NULL (loopback, or ``--insecure``) and every NULL connection is
    admitted. With keys: only CURVE connections are, and when ``keys.authorized_dir`` is given only
    clients whose public keys are in it (read once, here). Every admitted connection gets a fresh
    random :data:`CONNECTION_PROPERTY`; a CURVE connection's ``User-Id`` is its z85 public key.
    """

    def __init__(self, keys: CurveKeys | None) -> None:
        self.curve = keys is not None
        self.authorized: frozenset[bytes] | None = None
        if keys is not None and keys.authorized_dir is not None:
            self.authorized = load_authorized_keys(keys.authorized_dir)
        self.counters = {"admitted": 0, "refused": 0}

    def answer(self, request: list[bytes]) -> list[bytes]:
        """The reply frames to one ZAP request ``[version, request_id, domain, address, identity,
        mechanism, credentials...]``; a request that is not one is refused."""
        from zmq.utils import z85

        if len(request) < 6 or request[0] != b"1.0":
            self.counters["refused"] += 1
            request_id = request[1] if len(request) > 1 else b""
            return [b"1.0", request_id, b"500", b"not a ZAP 1.0 request", b"", b""]
        request_id, mechanism, credentials = request[1], request[5], request[6:]
        if mechanism == b"NULL" and not self.curve:
            user = b""
        elif mechanism == b"CURVE" and self.curve and len(credentials) == 1 and len(credentials[0]) == 32:
            user = z85.encode(credentials[0])
            if self.authorized is not None and user not in self.authorized:
                self.counters["refused"] += 1
                return [b"1.0", request_id, b"400", b"this client key is not authorized", b"", b""]
        else:
            self.counters["refused"] += 1
            return [b"1.0", request_id, b"400", b"mechanism " + mechanism[:16] + b" is not accepted", b"", b""]
        self.counters["admitted"] += 1
        connection = secrets.token_hex(12).encode("ascii")
        return [b"1.0", request_id, b"200", b"OK", user, _metadata({CONNECTION_PROPERTY: connection})]


def load_authorized_keys(folder: Path) -> frozenset[bytes]:
    """The z85 public keys of the ``*.key`` files in ``folder``. Raises SecurityError when it cannot be read."""
    import zmq.auth

    try:
        return frozenset(zmq.auth.load_certificates(str(folder)))
    except (OSError, ValueError) as exc:
        raise SecurityError(f"authorized keys in {str(folder)!r} cannot be read ({exc})") from exc


def _metadata(properties: dict[str, bytes]) -> bytes:
    """ZMTP metadata: per property a 1-byte name length, the name, a 4-byte value length, the value."""
    return b"".join(bytes([len(name)]) + name.encode("ascii") + struct.pack(">I", len(value)) + value
                    for name, value in properties.items())


# ---- OSC allow-list ----------------------------------------------------------------------------------------


class AllowList:
    """Controller addresses allowed to send OSC; loopback is always allowed.

    Built from text like ``"192.168.1.20, 10.0.0.0/24, phone.local"`` (names resolved once).
    """

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in entries:
            entry = entry.strip()
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            try:
                addresses = {info[4][0] for info in socket.getaddrinfo(entry, None)}
            except OSError as exc:
                raise SecurityError(f"OSC allow-list entry {entry!r} is neither an address, a network nor a "
                                    f"known host name: expected e.g. 192.168.1.20 or 10.0.0.0/24 ({exc})") from exc
            self.networks += [ipaddress.ip_network(a) for a in addresses]

    @classmethod
    def parse(cls, text: str | None) -> AllowList:
        return cls((text or "").split(","))

    def __bool__(self) -> bool:
        return bool(self.networks)

    def allows(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return False
        # a dual-stack socket ([::]) sees an IPv4 sender as ::ffff:a.b.c.d: read it as the IPv4 it is
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address.is_loopback or any(address in network for network in self.networks)


def check_osc_bind(host: str, allow: AllowList) -> None:
    """Raise SecurityError for an OSC bind beyond loopback without an allow-list."""
    if not is_loopback_host(host) and not allow:
        raise SecurityError(
            f"OSC on {host!r} listens beyond this machine: give the controllers allowed to send with "
            "--osc-allow ADDRESS[,ADDRESS...] (hosts or networks such as 192.168.1.0/24)"
        )


def parse_host_port(text: str, default_port: int) -> tuple[str, int]:
    """``HOST:PORT``, ``HOST`` or ``:PORT`` (IPv6 as ``[::1]:9000``); raises ValueError naming the text."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.lstrip(":")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif text.count(":") > 1:
        host, port_text = text, ""
    else:
        host, port_text = text, ""
    port = default_port
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"{text!r}: expected HOST:PORT with a port from 1 to 65535")
        port = int(port_text)
    return host or "127.0.0.1", port


# ---- the model workers' cluster (Ray) --------------------------------------------------------------------

#: where ``loopbridge worker --head`` listens by default (Ray's own default port)
DEFAULT_CLUSTER_PORT = 6379
#: the files a cluster's TLS folder holds: the certificate authority, this node's certificate and key
CLUSTER_TLS_FILES = ("ca.crt", "node.crt", "node.key")


@dataclass(frozen=True)
class ClusterSecurity:
    """How a Ray node or a gateway proves itself to the cluster: a shared token (Ray's token
    authentication) and TLS between every Ray process (a folder of :data:`CLUSTER_TLS_FILES`).

    Without either, the cluster is for this machine alone (loopback): Ray without a token lets anyone
    who reaches its ports run code.
    """

    token_file: Path | None = None
    tls_dir: Path | None = None

    @classmethod
    def load(cls, token_file: str | Path | None, tls_dir: str | Path | None) -> ClusterSecurity:
        """Check that the token file and the TLS folder's files exist; raises SecurityError naming what is missing."""
        token = Path(token_file).expanduser().resolve() if token_file is not None else None
        tls = Path(tls_dir).expanduser().resolve() if tls_dir is not None else None
        if token is not None and (not token.is_file() or not token.read_text(encoding="ascii").strip()):
            raise SecurityError(f"cluster-token={str(token_file)!r} is not accepted: expected a file holding the "
                                "cluster's token (make one: python -c 'import secrets; print(secrets.token_hex(32))')")
        if tls is not None:
            missing = [name for name in CLUSTER_TLS_FILES if not (tls / name).is_file()]
            if missing:
                raise SecurityError(f"cluster-tls={str(tls_dir)!r} is not accepted: expected a folder holding "
                                    f"{', '.join(CLUSTER_TLS_FILES)} ({', '.join(missing)} missing)")
        return cls(token, tls)

    @property
    def complete(self) -> bool:
        return self.token_file is not None and self.tls_dir is not None

    def environment(self) -> dict[str, str]:
        """Ray's settings for this process and the Ray processes it starts: token authentication and TLS
        where given (authentication off otherwise: Ray would write a token of its own under ~/.ray),
        and no usage statistics sent anywhere."""
        env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token" if self.token_file else "disabled"}
        if self.token_file is not None:
            env["RAY_AUTH_TOKEN_PATH"] = str(self.token_file)
        if self.tls_dir is not None:
            env.update(RAY_USE_TLS="1", RAY_TLS_CA_CERT=str(self.tls_dir / "ca.crt"),
                       RAY_TLS_SERVER_CERT=str(self.tls_dir / "node.crt"),
                       RAY_TLS_SERVER_KEY=str(self.tls_dir / "node.key"))
        return env


def default_cluster_token(folder: Path) -> Path:
    """``folder/auth_token``, made (a random token, readable by this user only) when it is missing.

    Ray binds its ports on every interface whatever address a node is given, so even a cluster for
    this machine alone runs with token authentication: nobody who reaches its ports without the
    token runs code on it.
    """
    path = folder / "auth_token"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(32) + "\n")
    return path


def check_cluster_host(host: str, security: ClusterSecurity, what: str) -> None:
    """Raise SecurityError when ``host`` (a Ray node's bind, or the head a gateway or worker joins) is
    beyond loopback without both a token and TLS: ``what`` names the option the user gave."""
    if is_loopback_host(host) or security.complete:
        return
    needed = [name for name, given in (("--cluster-token FILE", security.token_file),
                                        ("--cluster-tls DIR", security.tls_dir)) if given is None]
    raise SecurityError(
        f"{what}={host!r} reaches beyond this machine: a Ray cluster without a token and TLS runs code for anyone "
        f"who reaches it; give {' and '.join(needed)} (README: a two-box studio)")


def cluster_host(address: str) -> str:
    """The host of a cluster ``HOST:PORT`` address (``local``: loopback)."""
    if address == "local":
        return "127.0.0.1"
    host, _ = parse_host_port(address, DEFAULT_CLUSTER_PORT)
    return host
