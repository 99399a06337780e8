"""Atomic replacement of a SavedModel directory.

A save writes into a hidden temporary directory beside the target and moves it into place
at the end, so that a process killed at any moment leaves at the target either the previous
model, intact, or the complete new one:

* target absent: one ``rename(temp, target)``;
* target present: ``rename(target, aside)``, ``rename(temp, target)``, then the aside copy
  is removed.

POSIX offers no portable way to swap two directories in one step, so a crash can fall
between the two renames. The target is then missing while its aside copy exists;
:func:`recover` (run before every save and every load) puts the previous model back.

Temporary names are ``.{target name}.{kind}-{pid}-{random}`` with ``kind`` ``tmp`` (a new
model being written) or ``old`` (a previous model moved aside). The pid lets :func:`recover`
tell the leftovers of a dead process, which it removes, from the work of a live one, which
it leaves alone; the target name keeps saves to different paths in one directory apart.
Process ids are only meaningful on one host: on a directory shared between machines a
leftover of another host's process may be taken for live (and kept) or for dead.

The target is replaced as a path: if it is a symbolic link, the link itself is replaced by
the new directory (the directory it pointed to is left as it was).

A save that fails (an I/O error, a full disk, a read-only or forbidden directory, at any
step, the swap included) raises :class:`~reference_impl.errors.SaveFailedError` naming the
target, leaves the previous model in place and removes its temporary directory. Once the
new model is in place, failing to remove the aside copy only logs a warning: the next
:func:`recover` removes it.

Before the swap, :func:`atomic_directory` writes a checksum manifest of the new files
(:mod:`reference_impl.integrity`), so a later load can tell a damaged file from a good one.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import secrets
import shutil
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from reference_impl import integrity
from reference_impl.errors import SaveFailedError

__all__ = ["should_write", "atomic_directory", "recover"]

_log = logging.getLogger(__name__)

_TEMP_KIND = "tmp"
_ASIDE_KIND = "old"
_LEFTOVER = re.compile(
    r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>[0-9]+)-(?P<token>[0-9a-f]{8})$"
)

# Temporary paths this process is using right now. A leftover carrying our own pid is stale
# only when it is not in this set (a thread of ours may be mid-save).
_active_lock = threading.Lock()
_active: set[str] = set()

# How often to retry the swap when a concurrent save to the same target moves it under us.
_SWAP_ATTEMPTS = 50


@dataclass(frozen=True)
class _Leftover:
    path: Path
    kind: str
    pid: int


def _temp_name(target: Path, kind: str) -> Path:
    token = secrets.token_hex(4)
    return target.with_name(f".{target.name}.{kind}-{os.getpid()}-{token}")


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (on this host)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # Exists, owned by someone else.
        return True
    except OSError:
        return True  # Unknown: treat as alive, never delete another process's work.
    return True


def _in_use(leftover: _Leftover) -> bool:
    """Whether a live save may still be using ``leftover``."""
    if leftover.pid == os.getpid():
        with _active_lock:
            return os.fspath(leftover.path) in _active
    return _pid_alive(leftover.pid)


def _leftovers(target: Path) -> list[_Leftover]:
    """The temporary and aside paths belonging to ``target`` (not to other targets)."""
    try:
        entries = list(os.scandir(target.parent))
    except FileNotFoundError:
        return []
    found = []
    for entry in entries:
        match = _LEFTOVER.match(entry.name)
        if match and match["name"] == target.name:
            found.append(_Leftover(Path(entry.path), match["kind"], int(match["pid"])))
    return found


def _remove(path: Path) -> None:
    """Remove a file, link or directory tree; a path already gone is fine."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass  # Another process's recover() removed it first.


def _fsync_path(path: Path, directory: bool) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return  # Some file systems do not allow opening directories; nothing to sync.
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """Flush every file and directory under ``root`` to disk, children before parents."""
    for dirpath, _dirnames, filenames in os.walk(root, topdown=False):
        for filename in filenames:
            _fsync_path(Path(dirpath, filename), directory=False)
        _fsync_path(Path(dirpath), directory=True)


def recover(path: str | os.PathLike[str]) -> None:
    """Repair the state a crashed save may have left at ``path`` and clean its leftovers.

    If the target is missing and a dead process left a previous model aside (the crash fell
    between the two renames of a swap), that model is renamed back into place. Then the
    temporary and aside directories of dead processes for this target are removed.
    Leftovers of live processes and of other targets in the same directory are not touched.
    """
    target = Path(os.path.abspath(os.fspath(path)))
    stale = [leftover for leftover in _leftovers(target) if not _in_use(leftover)]
    asides = [leftover for leftover in stale if leftover.kind == _ASIDE_KIND]
    if asides and not os.path.lexists(target):
        # Normally there is one; if several, the most recently moved aside is the newest model.
        newest = max(asides, key=lambda leftover: _ctime(leftover.path))
        try:
            os.rename(newest.path, target)
        except FileNotFoundError:
            pass  # A concurrent recover() restored it.
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            # A concurrent save put a new model in place meanwhile; the aside is stale.
        else:
            _log.warning("Restored the previous model at %s after an interrupted save", target)
            _fsync_path(target.parent, directory=True)
            stale.remove(newest)
    for leftover in stale:
        _remove(leftover.path)


def _ctime(path: Path) -> float:
    try:
        return path.lstat().st_ctime
    except FileNotFoundError:
        return float("-inf")


def _ask(question: str) -> bool:
    """Ask a yes/no question on the terminal; anything but yes (EOF included) is no."""
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def should_write(path: str | os.PathLike[str], overwrite: bool) -> bool:
    """Decide whether a save may write to ``path``.

    Runs :func:`recover` first. Returns True when nothing is at ``path`` or ``overwrite`` is
    true. Otherwise asks on an interactive terminal and returns the answer; without a
    terminal it raises ``FileExistsError`` naming the path. This function never modifies
    the existing files.
    """
    try:
        recover(path)
    except OSError as exc:
        raise SaveFailedError(path, exc) from exc
    path_str = os.fspath(path)
    if not os.path.lexists(path_str) or overwrite:
        return True
    stdin = sys.stdin
    if stdin is not None and stdin.isatty():
        return _ask(f"'{path_str}' already exists. Overwrite it?")
    raise FileExistsError(
        errno.EEXIST,
        "A SavedModel path already exists and overwrite=False "
        "(stdin is not a terminal, so not asking)",
        path_str,
    )


def _swap_into_place(temp: Path, target: Path) -> None:
    """Move the complete directory ``temp`` to ``target``, replacing what is there."""
    for _ in range(_SWAP_ATTEMPTS):
        aside = None
        if os.path.lexists(target):
            aside = _temp_name(target, _ASIDE_KIND)
            with _active_lock:
                _active.add(os.fspath(aside))
            try:
                os.rename(target, aside)
            except FileNotFoundError:
                aside = None  # A concurrent save moved it first.
            except BaseException:
                with _active_lock:
                    _active.discard(os.fspath(aside))
                raise
        try:
            # A crash here leaves the target missing and ``aside`` present: recover().
            os.rename(temp, target)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR):
                # The move failed (an I/O error, say): put the previous model back.
                if aside is not None:
                    _put_back(aside, target)
                raise
            # A concurrent save to the same target won the race: its model now sits at
            # the target, so the one we moved aside is obsolete. Replace the winner's.
            if aside is not None:
                _remove(aside)
            continue
        finally:
            if aside is not None:
                with _active_lock:
                    _active.discard(os.fspath(aside))
        try:
            _fsync_path(target.parent, directory=True)
        finally:
            # The new model is in place: the previous one goes even if the sync failed.
            if aside is not None:
                _remove_leftover(aside)
        return
    raise FileExistsError(
        errno.EEXIST, f"'{target}' kept being replaced by concurrent saves", os.fspath(target)
    )


def _put_back(aside: Path, target: Path) -> None:
    """Undo ``rename(target, aside)``; if that fails too, recover() will do it later."""
    try:
        os.rename(aside, target)
    except OSError as exc:
        _log.warning(
            "Could not put the previous model back at %s (%s): the next save "
            "or load restores it from %s",
            target,
            exc,
            aside,
        )


def _remove_leftover(path: Path) -> None:
    """Remove the previous model moved aside; on failure leave it to the next recover()."""
    try:
        _remove(path)
    except OSError as exc:
        _log.warning("Could not remove %s (%s): the next save or load removes it", path, exc)


def _save_error(target: Path, exc: BaseException) -> BaseException:
    """The project's error for a failed write, or ``exc`` itself if it is not one."""
    if isinstance(exc, OSError) and not isinstance(exc, SaveFailedError):
        return SaveFailedError(target, exc)
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(exc, tf.errors.OpError):
        return SaveFailedError(target, exc)  # TensorFlow's C++ writes (checkpoint shards)
    return exc


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str], *, manifest: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces ``path`` when the block ends.

    The directory is created beside ``path`` (same file system, so the final move is a
    rename). On normal exit a checksum manifest of its files is written (unless ``manifest``
    is false; see :mod:`reference_impl.integrity`), everything is flushed to disk and the
    directory is swapped into place. If the block raises, the temporary directory is
    removed and ``path`` is left untouched.
    """
    target = Path(os.path.abspath(os.fspath(path)))
    temp = _temp_name(target, _TEMP_KIND)
    with _active_lock:
        _active.add(os.fspath(temp))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        recover(target)
        temp.mkdir()
        try:
            yield temp
            if manifest:
                integrity.write_manifest(temp)
            _fsync_tree(temp)
            _swap_into_place(temp, target)
        except BaseException:
            _remove_leftover(temp)
            raise
    except Exception as exc:
        error = _save_error(target, exc)
        if error is exc:
            raise
        raise error from exc
    finally:
        with _active_lock:
            _active.discard(os.fspath(temp))
