"""Whether a store on disk is intact, checked without the store's own code."""

from __future__ import annotations

from pathlib import Path


def unreadable_store_files(root: Path) -> list[str]:
    """Keys of indexed renders and conformed files whose audio cannot be read (empty when the store is
    intact), read from the index with sqlite3 and the files with libsndfile: the store's own code is
    not what checks it."""
    import sqlite3

    import soundfile as sf

    bad = []
    with sqlite3.connect(root / "index.sqlite") as db:
        for table in ("renders", "conformed"):
            for key, path in db.execute(f"SELECT key, path FROM {table}").fetchall():
                try:
                    sf.info(str(root / path))
                except (OSError, RuntimeError, sf.LibsndfileError):
                    bad.append(key)
    return bad
