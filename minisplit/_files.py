"""Atomic file writes, shared by networks (io), histories, checkpoints and the command line."""

from __future__ import annotations

import errno
import os
import secrets
import shutil


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


def write_text_atomic(path, text: str) -> None:
    """Write ``text`` as UTF-8 to ``path`` atomically (:func:`write_atomic`)."""
    data = text.encode("utf-8")
    write_atomic(path, lambda f: f.write(data))


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


def _exchange(a, b) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False if
    the system cannot."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):  # old kernel or file system
        return False
    raise OSError(err, os.strerror(err), os.fspath(b))


def replace_directory(staging, target) -> None:
    """Make the directory ``target`` hold exactly what ``staging`` holds, as one step.

    Where the system allows (Linux), the two are exchanged atomically and the old contents
    deleted after: a reader sees the whole old folder or the whole new one, never a mix.
    Elsewhere ``target`` is renamed aside, ``staging`` renamed onto it, the old one
    deleted; a crash between the two renames leaves both complete folders on disk.
    ``staging`` and ``target`` must be on one file system (siblings, say).
    """
    staging, target = os.fspath(staging), os.fspath(target)
    if not os.path.exists(target):
        os.rename(staging, target)
    elif _exchange(staging, target):
        shutil.rmtree(staging)  # now the old contents
    else:
        aside = f"{target}.old-{secrets.token_hex(4)}"
        os.rename(target, aside)
        os.rename(staging, target)
        shutil.rmtree(aside)
    fsync_directory(os.path.dirname(os.path.abspath(target)))
