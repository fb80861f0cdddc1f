"""A local server answering the Hugging Face hub's file API, for pull tests (``HF_ENDPOINT`` points at it).

It serves what the hub client asks for, in the hub's own shapes, at ``main``, another branch or a
commit: a repository's information (``/api/models/OWNER/NAME/revision/REV``), its file tree
(``/api/models/OWNER/NAME/tree/REV``) and each file (``HEAD``/``GET /OWNER/NAME/resolve/REV/PATH``,
with ``X-Repo-Commit``, the git or LFS ``ETag``, ``Content-Length`` and ``Range`` requests answered
with 206). Refusals carry the hub's
``X-Error-Code`` header (``RepoNotFound``, ``RevisionNotFound``, ``GatedRepo``), which the client
turns into its typed errors. A gated repository answers 401 without a token and 403 with a token it
has not granted. A test can make the next ``GET`` of a file drop the connection after some bytes, stall
after some bytes until released, or fail with a server error.
Every request is logged (method, path, range, whether a token came, body bytes sent).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_LFS_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")


@dataclass
class HubRepo:
    repo_id: str
    files: dict[str, bytes]
    commit: str
    gated: bool = False
    granted_tokens: set[str] = field(default_factory=set)

    def is_lfs(self, path: str) -> bool:
        return path.endswith(_LFS_SUFFIXES)

    def etag(self, path: str) -> str:
        data = self.files[path]
        if self.is_lfs(path):
            return hashlib.sha256(data).hexdigest()
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Logged:
    method: str
    path: str
    range: str | None
    token: str | None
    status: int
    body_bytes: int


class HubServer:
    """The server on 127.0.0.1 (an ephemeral port) in a thread; ``url`` is its endpoint."""

    def __init__(self) -> None:
        self.repos: dict[str, HubRepo] = {}
        self.branches: dict[tuple[str, str], HubRepo] = {}  # (repository, branch) -> that branch's files
        self.log: list[Logged] = []
        self._drops: dict[tuple[str, str], int] = {}
        self._failures: dict[tuple[str, str], int] = {}
        self._stalls: dict[tuple[str, str], int] = {}
        self.stalled = threading.Event()  # set when a stalled GET has sent its bytes
        self.release = threading.Event()  # set to let stalled GETs end (the connection is then cut)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_HEAD(self) -> None:
                server._handle(self, "HEAD")

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def add_folder(self, repo_id: str, folder: Path, commit: str, gated: bool = False,
                   branch: str = "main") -> HubRepo:
        """Serve every file under ``folder`` as repository ``repo_id`` at ``commit``, which ``branch`` names
        (another branch than ``main`` is added to a repository served already)."""
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        repo = HubRepo(repo_id, files, commit, gated)
        if branch == "main":
            self.repos[repo_id] = repo
        else:
            self.branches[(repo_id, branch)] = repo
        return repo

    def drop_next_get(self, repo_id: str, path: str, after_bytes: int) -> None:
        """The next GET of ``path`` sends ``after_bytes`` of its body, then the connection is cut."""
        self._drops[(repo_id, path)] = after_bytes

    def stall_next_get(self, repo_id: str, path: str, after_bytes: int) -> None:
        """The next GET of ``path`` sends ``after_bytes`` of its body, then waits for :attr:`release`."""
        self._stalls[(repo_id, path)] = after_bytes

    def fail_next_get(self, repo_id: str, path: str, status: int = 500) -> None:
        """The next GET of ``path`` is answered ``status`` (a server error), once."""
        self._failures[(repo_id, path)] = status

    def requests(self, method: str | None = None, path_suffix: str = "") -> list[Logged]:
        with self._lock:
            return [r for r in self.log if (method is None or r.method == method) and r.path.endswith(path_suffix)]

    # ---- answering ----------------------------------------------------------------------------

    def _record(self, handler: BaseHTTPRequestHandler, method: str, status: int, body_bytes: int) -> None:
        auth = handler.headers.get("Authorization")
        token = auth.removeprefix("Bearer ").strip() if auth else None
        with self._lock:
            self.log.append(Logged(method, unquote(urlsplit(handler.path).path), handler.headers.get("Range"), token,
                                   status, body_bytes))

    def _error(self, handler: BaseHTTPRequestHandler, method: str, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        handler.send_response(status)
        if code:
            handler.send_header("X-Error-Code", code)
        handler.send_header("X-Error-Message", message)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if method == "GET":
            handler.wfile.write(body)
        self._record(handler, method, status, 0)

    def _json(self, handler: BaseHTTPRequestHandler, method: str, payload: object) -> None:
        body = json.dumps(payload).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if method == "GET":
            handler.wfile.write(body)
        self._record(handler, method, 200, len(body))

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        path = unquote(urlsplit(handler.path).path)
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 6:
            repo_id, kind, revision = "/".join(parts[2:4]), parts[4], parts[5]
            repo = self._repo(handler, method, repo_id, revision)
            if repo is None:
                return
            if kind == "revision":
                self._json(handler, method, {
                    "_id": repo_id, "id": repo_id, "modelId": repo_id, "sha": repo.commit, "private": False,
                    "gated": "manual" if repo.gated else False, "disabled": False, "tags": [], "downloads": 0,
                    "likes": 0, "siblings": [{"rfilename": name} for name in repo.files],
                })
            elif kind == "tree":
                self._json(handler, method, self._tree(repo))
            else:
                self._error(handler, method, 404, "EntryNotFound", f"no {kind} API here")
            return
        if len(parts) >= 5 and parts[2] == "resolve":
            repo_id, revision, file_path = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
            repo = self._repo(handler, method, repo_id, revision)
            if repo is not None:
                self._file(handler, method, repo, file_path)
            return
        self._error(handler, method, 404, "EntryNotFound", f"nothing at {path}")

    def _repo(self, handler: BaseHTTPRequestHandler, method: str, repo_id: str, revision: str) -> HubRepo | None:
        repo = self.repos.get(repo_id)
        if repo is None:
            self._error(handler, method, 404, "RepoNotFound", f"Repository Not Found for url: {handler.path}.")
            return None
        if revision in ("main", repo.commit):
            return repo
        for (branch_repo, branch), other in self.branches.items():
            if branch_repo == repo_id and revision in (branch, other.commit):
                return other
        self._error(handler, method, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return None

    def _tree(self, repo: HubRepo) -> list[dict[str, object]]:
        entries: list[dict[str, object]] = []
        folders: set[str] = set()
        for name, data in repo.files.items():
            parent = name.rpartition("/")[0]
            while parent and parent not in folders:
                folders.add(parent)
                entries.append({"type": "directory", "oid": hashlib.sha1(parent.encode()).hexdigest(), "size": 0,
                                "path": parent})
                parent = parent.rpartition("/")[0]
            git_oid = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            entry: dict[str, object] = {"type": "file", "oid": git_oid, "size": len(data), "path": name}
            if repo.is_lfs(name):
                entry["lfs"] = {"oid": repo.etag(name), "size": len(data), "pointerSize": 134}
            entries.append(entry)
        return entries

    def _file(self, handler: BaseHTTPRequestHandler, method: str, repo: HubRepo, file_path: str) -> None:
        if repo.gated:
            auth = handler.headers.get("Authorization")
            token = auth.removeprefix("Bearer ").strip() if auth else None
            if token is None:
                self._error(handler, method, 401, "GatedRepo",
                            f"Access to model {repo.repo_id} is restricted. You must have access to it and be "
                            "authenticated to access it. Please log in.")
                return
            if token not in repo.granted_tokens:
                self._error(handler, method, 403, "GatedRepo",
                            f"Access to model {repo.repo_id} is restricted and you are not in the authorized list. "
                            f"Visit https://huggingface.co/{repo.repo_id} to ask for access.")
                return
        if method == "GET":
            with self._lock:
                failure = self._failures.pop((repo.repo_id, file_path), None)
            if failure is not None:
                self._error(handler, method, failure, "", "Internal Error - We're working hard to fix this.")
                return
        data = repo.files.get(file_path)
        if data is None:
            self._error(handler, method, 404, "EntryNotFound", f"{file_path} does not exist on {repo.commit}")
            return
        start = 0
        wanted = handler.headers.get("Range")
        if wanted and wanted.startswith("bytes=") and method == "GET":
            start = int(wanted[len("bytes="):].split("-")[0])
        body = data[start:]
        handler.send_response(206 if start else 200)
        handler.send_header("X-Repo-Commit", repo.commit)
        handler.send_header("ETag", f'"{repo.etag(file_path)}"')
        if repo.is_lfs(file_path):
            handler.send_header("X-Linked-Etag", f'"{repo.etag(file_path)}"')
            handler.send_header("X-Linked-Size", str(len(data)))
        handler.send_header("Accept-Ranges", "bytes")
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if method == "HEAD":
            self._record(handler, method, 200, 0)
            return
        with self._lock:
            cut = self._drops.pop((repo.repo_id, file_path), None)
            stall = self._stalls.pop((repo.repo_id, file_path), None)
        if stall is not None:
            handler.wfile.write(body[:stall])
            handler.wfile.flush()
            self.stalled.set()
            self.release.wait(timeout=120)
            with contextlib.suppress(OSError):  # the client may have gone already
                handler.connection.shutdown(2)
            handler.close_connection = True
            self._record(handler, method, 206 if start else 200, stall)
            return
        if cut is not None and cut < len(body):
            handler.wfile.write(body[:cut])
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(2)  # SHUT_RDWR: the client sees the body end early
            self._record(handler, method, 206 if start else 200, cut)
            return
        handler.wfile.write(body)
        self._record(handler, method, 206 if start else 200, len(body))
