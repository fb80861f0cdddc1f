"""Paths from the network: honoured only inside the folders the user allowed.

Audio crosses the wire as bytes. A path names a file on the engine's machine, and a client may
name one (``audio_prompt_path``, over ZeroMQ or OSC) only inside a folder the user allowed when
starting the engine: the store, the inbox (where a front end on this machine copies a file it
wants the engine to read) and the folders of ``loopbridge serve --allow-path``. The check is made
on the path with every symlink resolved, so a link inside an allowed folder that points out of it
is refused, and the file is then opened along that resolved path without following a link that
appeared since. A path outside is refused with one message whether or not anything is there, so a
client cannot learn what exists elsewhere on the machine.

The command line reads whatever file its user names: it is the user (``OrderBuilder(allowed=None)``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from loopbridge.engine.errors import AudioReadError, RequestError

#: the inbox's folder name, beside the store (in the data folder unless ``--store`` moves the store)
INBOX_NAME = "inbox"
#: what a refused path is told, whether or not a file is there
OUTSIDE = ("an absolute path to a file inside a folder this engine allows: its inbox (the `inbox` of its hello "
           "reply), its store, or a folder given to `loopbridge serve --allow-path`; send other audio as bytes")


class AllowedFolders:
    """The folders whose files network clients may name (each resolved once, when the engine starts)."""

    def __init__(self, folders: Iterable[str | Path]) -> None:
        self.folders = tuple(dict.fromkeys(Path(folder).expanduser().resolve() for folder in folders))

    def resolve(self, field: str, value: str) -> tuple[Path, Path]:
        """``(path, folder)``: ``value`` with every symlink resolved, and the allowed folder it lies in.

        Raises :class:`RequestError` naming ``field``, with one message for every path outside the
        allowed folders (relative, with ``..``, a link out, missing or present alike).
        """
        refused = RequestError(field, value, OUTSIDE)
        try:
            path = Path(value).expanduser()
            if not path.is_absolute() or ".." in path.parts:
                raise refused
            real = path.resolve()  # not strict: a missing file resolves too, and gets the same answer
        except (OSError, RuntimeError, ValueError):  # a link loop, a NUL byte, no home folder
            raise refused from None
        for folder in self.folders:
            if real.is_relative_to(folder):
                return real, folder
        raise refused

    def open(self, field: str, value: str, what: str = "audio prompt") -> tuple[int, Path]:
        """An open descriptor (read-only) of the regular file ``value`` names inside an allowed folder,
        and its resolved path. The caller closes it.

        Raises :class:`RequestError` (see :meth:`resolve`) and :class:`AudioReadError` (starting with
        ``what``) for a path inside an allowed folder that is not a readable regular file.
        """
        real, folder = self.resolve(field, value)
        try:
            fd = _open_beneath(folder, real)
        except OSError as exc:
            raise AudioReadError(f"{what} {str(real)!r} is not a readable file") from exc
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise AudioReadError(f"{what} {str(real)!r} is not a readable file")
        except BaseException:
            os.close(fd)
            raise
        return fd, real


def _open_beneath(folder: Path, real: Path) -> int:
    """Open ``real`` (inside ``folder``) read-only, one component at a time from ``folder``, following
    no symlink: a link swapped in after :meth:`AllowedFolders.resolve` fails to open instead of leading
    out. Non-blocking, so a FIFO does not hang the engine. Where the system cannot open relative to a
    folder (Windows), the resolved path is opened as it is."""
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    if not nofollow or os.open not in os.supports_dir_fd:
        return os.open(real, flags)
    parts = real.relative_to(folder).parts
    if not parts:
        raise IsADirectoryError(str(real))
    directory = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    fd = os.open(folder, directory)
    try:
        for part in parts[:-1]:
            inner = os.open(part, directory | nofollow, dir_fd=fd)
            os.close(fd)
            fd = inner
        return os.open(parts[-1], flags | nofollow, dir_fd=fd)
    finally:
        os.close(fd)


__all__ = ["INBOX_NAME", "OUTSIDE", "AllowedFolders"]
