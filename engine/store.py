"""Content-addressed renders on disk, with an SQLite index for history and recall.

Layout under the store's root::

    index.sqlite                   renders, conformed files, request levels, audio prompts
    renders/ab/abcdef….wav         raw renders (float32 WAV at the model's rate), by render key
    conformed/12/1234….wav         tagged 24-bit WAVs, by conform key (render, tempo, bars, pitch, rate)
    prompts/cd/cdef….wav           audio prompts, by content digest, so a render can be recalled whole
    tmp/                           files being written; emptied when a store opens

Every file is written to ``tmp/`` first, flushed to disk and renamed into place; only then is its
index row inserted. A crash leaves at worst a stray file in ``tmp/`` (removed at the next open) or
a file without a row (removed by :meth:`RenderStore.repair`), never a partial file under its final
name nor a row naming a missing file. Several processes may share one store (SQLite WAL).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from .errors import StoreError
from .request import AudioPrompt, GenerateRequest, Kind, Render

_SCHEMA = """
CREATE TABLE IF NOT EXISTS renders (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    model_digest TEXT NOT NULL,
    prompt TEXT NOT NULL,
    kind TEXT NOT NULL,
    seed INTEGER NOT NULL,
    variation INTEGER NOT NULL,
    request_json TEXT NOT NULL,
    info_json TEXT NOT NULL,
    sample_rate INTEGER NOT NULL,
    channels INTEGER NOT NULL,
    frames INTEGER NOT NULL,
    path TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS renders_created ON renders (created_at);
CREATE TABLE IF NOT EXISTS conformed (
    key TEXT PRIMARY KEY,
    render_key TEXT NOT NULL REFERENCES renders (key) ON DELETE CASCADE,
    spec_json TEXT NOT NULL,
    kind TEXT NOT NULL,
    tempo_bpm REAL NOT NULL,
    beats REAL NOT NULL,
    root_note INTEGER,
    loop_start INTEGER,
    loop_end INTEGER,
    sample_rate INTEGER NOT NULL,
    filename TEXT NOT NULL,
    info_json TEXT NOT NULL,
    path TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS conformed_render ON conformed (render_key);
CREATE TABLE IF NOT EXISTS request_levels (
    group_key TEXT PRIMARY KEY,
    crest_db REAL NOT NULL,
    render_key TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS prompts (
    digest TEXT PRIMARY KEY,
    sample_rate INTEGER NOT NULL,
    path TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class HistoryEntry:
    """One row of the render history (newest first in :meth:`RenderStore.history`).

    ``music_key`` is the render's own musical key ("Am", "F#") as its latest conform detected it, before any
    shift to a song's key; None when it has none, or was never conformed with keys detected.
    ``key_confidence`` 0–1 goes with it.
    """

    key: str
    model: str
    prompt: str
    kind: str
    seed: int
    variation: int
    duration_s: float
    created_at: float
    request: Mapping[str, Any]
    info: Mapping[str, Any]
    music_key: str | None = None
    key_confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "model": self.model,
            "prompt": self.prompt,
            "kind": self.kind,
            "seed": self.seed,
            "variation": self.variation,
            "duration_s": self.duration_s,
            "created_at": self.created_at,
            "request": dict(self.request),
            "info": dict(self.info),
            "music_key": self.music_key,
            "key_confidence": self.key_confidence,
        }


@dataclass(frozen=True)
class StoredSample:
    """A conformed file in the store, described from the index without decoding its audio.

    ``path`` is absolute; ``filename`` the readable name to hand it out under; ``info`` how it was made.
    """

    key: str
    path: Path
    render_key: str
    kind: Kind
    tempo_bpm: float
    beats: float
    root_note: int | None
    loop_start: int | None
    loop_end: int | None
    sample_rate: int
    filename: str
    info: Mapping[str, Any]
    created_at: float

    @property
    def music_key(self) -> str | None:
        """The sound's musical key, canonical ("Am", "F#"), or None when it has none (drums, noise, a
        one-shot) or was conformed before keys were detected."""
        value = self.info.get("key")
        return str(value) if value else None

    @property
    def key_confidence(self) -> float | None:
        """How sure the key detection is of :attr:`music_key`, 0–1 (None without a key)."""
        value = self.info.get("key_confidence")
        return float(value) if value is not None and self.music_key is not None else None


def _detected_key(info_json: str | None) -> dict[str, Any]:
    """``music_key`` and ``key_confidence`` of a render, from its latest conform's info (JSON text or None)."""
    info = json.loads(info_json) if info_json else {}
    key = info.get("detected_key")
    confidence = info.get("key_confidence")
    return {"music_key": str(key) if key else None,
            "key_confidence": float(confidence) if key and confidence is not None else None}


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Kind):
        return value.value
    raise TypeError(f"cannot store {type(value).__name__} in the index")


class RenderStore:
    """The on-disk store. Thread-safe; one instance per process is enough.

    ``root`` is created if needed. Raises :class:`StoreError` when it cannot be created or the
    index cannot be opened.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        try:
            for sub in ("renders", "conformed", "prompts", "tmp"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"store folder {str(self.root)!r} cannot be created: {exc}") from exc
        self._local = threading.local()
        self._clear_tmp()
        try:
            self._db().executescript(_SCHEMA)  # executescript manages its own transaction
        except sqlite3.Error as exc:
            raise StoreError(f"store index in {str(self.root)!r} cannot be set up: {exc}") from exc

    # ---- connections and atomic files --------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(self.root / "index.sqlite", timeout=30.0, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute("PRAGMA foreign_keys=ON")
            except sqlite3.Error as exc:
                raise StoreError(f"store index {str(self.root / 'index.sqlite')!r} cannot be opened: {exc}") from exc
            db.row_factory = sqlite3.Row
            self._local.db = db
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def _clear_tmp(self) -> None:
        # Temp files are named after the writing process: only a dead process's leftovers go, so
        # engines sharing one store do not delete each other's writes in flight.
        for stray in (self.root / "tmp").iterdir():
            pid_text = stray.name.split(".", 1)[0]
            if pid_text.isdigit() and _process_alive(int(pid_text)):
                continue
            try:
                stray.unlink()
            except OSError:
                pass

    def _write_atomic(self, relpath: str, data: bytes) -> Path:
        """Write ``data`` to ``root/relpath`` so it appears whole or not at all."""
        final = self.root / relpath
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.root / "tmp" / f"{os.getpid()}.{uuid.uuid4().hex}.part"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException as exc:
            try:
                tmp.unlink()
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise StoreError(f"cannot write {str(final)!r}: {exc}") from exc
            raise
        return final

    @staticmethod
    def _shard(folder: str, key: str, suffix: str = ".wav") -> str:
        return f"{folder}/{key[:2]}/{key}{suffix}"

    # ---- audio prompts ------------------------------------------------------------------------

    def put_prompt(self, prompt: AudioPrompt) -> None:
        if self._db().execute("SELECT 1 FROM prompts WHERE digest=?", (prompt.digest,)).fetchone():
            return
        rel = self._shard("prompts", prompt.digest)
        self._write_atomic(rel, _float_wav_bytes(prompt.audio, prompt.sample_rate))
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO prompts (digest, sample_rate, path, created_at) VALUES (?,?,?,?)",
                (prompt.digest, prompt.sample_rate, rel, time.time()),
            )

    def get_prompt(self, digest: str) -> AudioPrompt | None:
        row = self._db().execute("SELECT path FROM prompts WHERE digest=?", (digest,)).fetchone()
        if row is None:
            return None
        audio, rate = _read_float_wav(self.root / row["path"])
        return AudioPrompt(audio=audio, sample_rate=rate)

    # ---- renders --------------------------------------------------------------------------------

    def has_render(self, key: str) -> bool:
        return self._db().execute("SELECT 1 FROM renders WHERE key=?", (key,)).fetchone() is not None

    def put_render(self, render: Render) -> None:
        """Store a render (a no-op when its key is already stored)."""
        if self.has_render(render.key):
            return
        request = render.request
        if request.audio_prompt is not None:
            self.put_prompt(request.audio_prompt)
        rel = self._shard("renders", render.key)
        self._write_atomic(rel, _float_wav_bytes(render.audio, render.sample_rate))
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO renders (key, model, model_digest, prompt, kind, seed, variation, "
                "request_json, info_json, sample_rate, channels, frames, path, created_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    render.key,
                    request.model,
                    render.model_digest,
                    request.prompt,
                    request.kind.value,
                    request.seed,
                    request.variation,
                    json.dumps(request.to_dict(), default=_json_default),
                    json.dumps(dict(render.info), default=_json_default),
                    render.sample_rate,
                    render.channels,
                    int(render.audio.shape[1]),
                    rel,
                    time.time(),
                ),
            )

    def get_render(self, key: str) -> Render | None:
        """The stored render with ``key``, or None. Its request is rebuilt from the index."""
        row = self._db().execute("SELECT * FROM renders WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        try:
            audio, rate = _read_float_wav(self.root / row["path"])
        except (OSError, RuntimeError) as exc:
            raise StoreError(f"render {key} is indexed but its file cannot be read: {exc}") from exc
        return Render(
            key=key,
            audio=audio,
            sample_rate=rate,
            request=self._request_from_json(row["request_json"]),
            model_digest=row["model_digest"],
            info=json.loads(row["info_json"]),
        )

    def render_request(self, key: str) -> tuple[GenerateRequest, dict[str, Any]] | None:
        """The request and model info of the stored render ``key``, from the index (its audio is not read)."""
        row = self._db().execute("SELECT request_json, info_json FROM renders WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        return self._request_from_json(row["request_json"]), json.loads(row["info_json"])

    def _request_from_json(self, text: str) -> GenerateRequest:
        data = json.loads(text)
        digest = data.pop("audio_prompt", None)
        data["audio_prompt"] = self.get_prompt(digest) if digest else None
        # a motion prompt is not kept (the render's key still names it); what it made is
        data.pop("motion_prompt", None)
        known = GenerateRequest.__dataclass_fields__
        return GenerateRequest(**{k: v for k, v in data.items() if k in known})

    def history(self, limit: int = 50, offset: int = 0, model: str | None = None) -> list[HistoryEntry]:
        """Renders, newest first."""
        # the render's own key, as the latest of its conforms detected it
        query = ("SELECT *, (SELECT c.info_json FROM conformed c WHERE c.render_key = renders.key "
                 "ORDER BY c.created_at DESC, c.rowid DESC LIMIT 1) AS conformed_info FROM renders")
        args: list[Any] = []
        if model is not None:
            query += " WHERE model=?"
            args.append(model)
        query += " ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?"
        args += [int(limit), int(offset)]
        return [
            HistoryEntry(
                **_detected_key(row["conformed_info"]),
                key=row["key"],
                model=row["model"],
                prompt=row["prompt"],
                kind=row["kind"],
                seed=row["seed"],
                variation=row["variation"],
                duration_s=row["frames"] / row["sample_rate"],
                created_at=row["created_at"],
                request=json.loads(row["request_json"]),
                info=json.loads(row["info_json"]),
            )
            for row in self._db().execute(query, args)
        ]

    def find_render(self, prefix: str) -> str | None:
        """The full key of the one render whose key starts with ``prefix`` (at least 6 hex digits)."""
        if len(prefix) < 6 or any(c not in "0123456789abcdef" for c in prefix):
            return None
        rows = self._db().execute("SELECT key FROM renders WHERE key LIKE ? LIMIT 2", (prefix + "%",)).fetchall()
        return rows[0]["key"] if len(rows) == 1 else None

    # ---- conformed files --------------------------------------------------------------------------

    def put_conformed(self, sample: StoredSample, wav_bytes: bytes, spec: Mapping[str, Any]) -> StoredSample:
        """Store ``wav_bytes``, the tagged WAV ``sample`` describes, under its key; returns the sample as
        stored (its ``path`` in the store, its ``created_at``)."""
        rel = self._shard("conformed", sample.key)
        path = self._write_atomic(rel, wav_bytes)
        created_at = time.time()
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO conformed (key, render_key, spec_json, kind, tempo_bpm, beats, root_note, "
                "loop_start, loop_end, sample_rate, filename, info_json, path, created_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    sample.key,
                    sample.render_key,
                    json.dumps(dict(spec), default=_json_default),
                    sample.kind.value,
                    sample.tempo_bpm,
                    sample.beats,
                    sample.root_note,
                    sample.loop_start,
                    sample.loop_end,
                    sample.sample_rate,
                    sample.filename,
                    json.dumps(dict(sample.info), default=_json_default),
                    rel,
                    created_at,
                ),
            )
        return dataclasses.replace(sample, path=path, created_at=created_at)

    def keep_request_level(self, group_key: str, crest_db: float, render_key: str) -> float:
        """Keep the true peak above loudness (dB) that sets the level of a request's loops (``group_key``:
        :meth:`~loopbridge.engine.request.GenerateRequest.level_group`), measured on ``render_key`` fitted to a song,
        unless the request has one already: the first kept stays. Returns the one kept."""
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO request_levels (group_key, crest_db, render_key, created_at) "
                       "VALUES (?,?,?,?)", (group_key, float(crest_db), render_key, time.time()))
            row = db.execute("SELECT crest_db FROM request_levels WHERE group_key=?", (group_key,)).fetchone()
        return float(row["crest_db"])

    def request_level(self, group_key: str) -> float | None:
        """The true peak above loudness (dB) kept by :meth:`keep_request_level` for ``group_key``, or None."""
        row = self._db().execute("SELECT crest_db FROM request_levels WHERE group_key=?", (group_key,)).fetchone()
        return None if row is None else float(row["crest_db"])

    def lookup(self, conform_keys: Sequence[str],
               render_keys: Sequence[str]) -> tuple[dict[str, StoredSample], set[str]]:
        """What the store holds for one job, in one read: the conformed files among ``conform_keys``
        (by key; a row whose file has gone missing counts as absent) and which of ``render_keys`` are
        stored."""
        samples: dict[str, StoredSample] = {}
        renders: set[str] = set()
        db = self._db()
        for chunk in _chunks(sorted(set(conform_keys))):
            rows = db.execute(f"SELECT * FROM conformed WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            for row in rows.fetchall():
                sample = self._stored_sample(row)
                if sample is not None:
                    samples[sample.key] = sample
        for chunk in _chunks(sorted(set(render_keys))):
            rows = db.execute(f"SELECT key FROM renders WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            renders.update(row["key"] for row in rows.fetchall())
        return samples, renders

    def latest_samples(self, limit: int = 1) -> list[StoredSample]:
        """The most recently conformed files, newest first (those whose file still exists)."""
        rows = self._db().execute(
            "SELECT * FROM conformed ORDER BY created_at DESC, rowid DESC LIMIT ?", (int(limit),)
        ).fetchall()
        return [s for s in (self._stored_sample(row) for row in rows) if s is not None]

    def _stored_sample(self, row: sqlite3.Row) -> StoredSample | None:
        path = self.root / row["path"]
        if not path.is_file():
            return None
        info = json.loads(row["info_json"])
        return StoredSample(
            key=row["key"],
            path=path,
            render_key=row["render_key"],
            kind=Kind(row["kind"]),
            tempo_bpm=row["tempo_bpm"],
            beats=row["beats"],
            root_note=row["root_note"],
            loop_start=row["loop_start"],
            loop_end=row["loop_end"],
            sample_rate=row["sample_rate"],
            filename=row["filename"],
            info=info,
            created_at=row["created_at"],
        )

    # ---- upkeep -------------------------------------------------------------------------------------

    def repair(self, min_age_s: float = 600.0) -> dict[str, int]:
        """Remove rows whose file is missing, and files no row names that are older than ``min_age_s``.

        The age guard keeps a file that another process has just renamed into place and is about
        to index. Returns the counts removed.
        """
        removed = {"rows": 0, "files": 0}
        named: set[str] = set()
        with self._transaction() as db:
            for table, key_col in (("renders", "key"), ("conformed", "key"), ("prompts", "digest")):
                for row in db.execute(f"SELECT {key_col} AS k, path FROM {table}").fetchall():
                    if (self.root / row["path"]).is_file():
                        named.add(row["path"])
                    else:
                        db.execute(f"DELETE FROM {table} WHERE {key_col}=?", (row["k"],))
                        removed["rows"] += 1
        for folder in ("renders", "conformed", "prompts"):
            for file in (self.root / folder).glob("*/*"):
                rel = file.relative_to(self.root).as_posix()
                if rel not in named and time.time() - file.stat().st_mtime >= min_age_s:
                    file.unlink(missing_ok=True)
                    removed["files"] += 1
        return removed

    def stats(self) -> dict[str, int]:
        db = self._db()
        return {
            "renders": db.execute("SELECT COUNT(*) FROM renders").fetchone()[0],
            "conformed": db.execute("SELECT COUNT(*) FROM conformed").fetchone()[0],
            "prompts": db.execute("SELECT COUNT(*) FROM prompts").fetchone()[0],
        }


def _chunks(keys: list[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(keys), size):
        yield keys[start : start + size]


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _float_wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.ascontiguousarray(audio.T), sample_rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def _read_float_wav(path: Path) -> tuple[np.ndarray, int]:
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return np.ascontiguousarray(audio.T), int(rate)
