"""Atomic file writes, shared by networks (io), histories and checkpoints."""

from __future__ import annotations

import os
import secrets


def write_atomic(path, write) -> None:
    """Write a file so that ``path`` holds either its old or its complete new contents.

    ``write(f)`` fills a temporary ``.<name>.<random>.tmp`` in the same directory
    (``os.replace`` is atomic only within one file system), which is flushed,
    fsynced and ``os.replace``-d onto ``path``; the directory is then fsynced so
    the rename survives a power cut. The temporary file is removed if anything
    fails before the replace (KeyboardInterrupt included).

    Parameters
    ----------
    path : str or os.PathLike
        Used exactly as given; its directory must exist.
    write : callable
        ``f -> None`` writing the bytes to the binary file object ``f``.
    """
    path = os.fspath(path)
    directory, base = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{base}.{secrets.token_hex(8)}.tmp")
    # O_EXCL: never write through someone else's file; mode 0o666 lets the umask decide
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    fsync_directory(directory)


def fsync_directory(directory) -> None:
    """Make renames inside ``directory`` durable (POSIX); a no-op where impossible."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # the data is in place; durability of the name is best effort
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
