"""Atomic file writes: every file the project writes goes to a temporary name in the same
folder and is renamed into place, so a crash leaves the old file or the new one, never half.

The temporary names carry the writer's pid (`.NAME.PID-RANDOM.tmp`); what a killed writer
left behind is removed by the next write of the same file, once that pid is gone.

No write may replace a file the running work depends on: the store (and its `-wal`,
`-shm`, `-journal`), the config file, a task file, a script. A run declares them with
`protected_files(...)`; every atomic write checks its target against them, and against
any SQLite database in use (one with a `-wal` or `-shm` beside it), before it writes a
byte. The run's own up-front check (workbench/outputs.py) refuses such a config first;
this is the second guard, for every writer (the TUI's too).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from workbench.errors import LeafeError

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path) as out:
        out.write(text)


def atomic_write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Stream rows as JSON lines; return how many were written."""
    count = 0
    with atomic_open(path) as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


@contextlib.contextmanager
def atomic_open(path: str | Path) -> Iterator[Any]:
    path = Path(path)
    refuse_protected(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    handle, temporary = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.chmod(temporary, 0o666 & ~current_umask())
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a staging folder beside `path`; on success it replaces `path` whole."""
    path = Path(path)
    refuse_protected(path, folder=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    staging = Path(tempfile.mkdtemp(prefix=temporary_prefix(path), suffix=".tmp", dir=path.parent))
    os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp's 0700, made what mkdir would give
    try:
        yield staging
        if path.exists():
            retired = staging.with_suffix(".old")
            os.replace(path, retired)
            os.replace(staging, path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# -- files no write may replace ---------------------------------------------------------

_protected: list[tuple[Path, str]] = []
_protected_lock = threading.Lock()


@contextlib.contextmanager
def protected_files(paths: Mapping[str | Path, str]) -> Iterator[None]:
    """While the block runs, no atomic write of this process replaces any of `paths`
    (path -> what it is, as the refusal names it) or a folder holding one."""
    entries = [(Path(path).resolve(), what) for path, what in paths.items()]
    with _protected_lock:
        _protected.extend(entries)
    try:
        yield
    finally:
        with _protected_lock:
            for entry in entries:
                _protected.remove(entry)


def refuse_protected(path: Path, *, folder: bool = False) -> None:
    """Raise `LeafeError` (one line) if writing `path` would replace a protected file."""
    with _protected_lock:
        protected = list(_protected)
    what = clash(path, protected, folder=folder)
    if what:
        raise LeafeError(f"refusing to write {path}: it is {what}; nothing was written")


def clash(path: str | Path, protected: Iterable[tuple[Path, str]], *, folder: bool = False) -> str | None:
    """What `path` would destroy if written: a protected file it is (by name or, for a
    hard link, by inode), a protected file inside it (`folder`: the write replaces the
    folder whole), or a SQLite database in use. None when the write is safe.

    Only stat() and exists(), never open(): opening and closing a store file would drop
    the SQLite locks this process holds on it (see README, Design)."""
    target = Path(path).resolve()
    for other, what in protected:
        if target == other or same_file(target, other):
            return what
        if folder and other.is_relative_to(target):
            return f"a folder holding {what} ({other})"
    for suffix in ("-wal", "-shm"):
        if target.with_name(target.name + suffix).exists():
            return "a SQLite database in use"
    for suffix in SQLITE_SIDE_FILES:
        if target.name.endswith(suffix) and target.with_name(target.name[: -len(suffix)]).is_file():
            return f"a SQLite database's {suffix[1:]} file"
    return None


def same_file(first: Path, second: Path) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:  # either is missing: not the same existing file
        return False


# `.NAME.` then the pid, a dash, tempfile's random letters, and .tmp (.old: a folder being replaced).
LEFTOVER = re.compile(r"(\d+)-[a-z0-9_]+\.(?:tmp|old)")


def current_umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


def temporary_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}-"


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def remove_leftovers(path: Path) -> None:
    """Remove temporary files and folders that a killed writer of `path` left beside it."""
    prefix = f".{path.name}."
    try:
        siblings = [entry.name for entry in os.scandir(path.parent) if entry.name.startswith(prefix)]
    except OSError:
        return
    for name in siblings:
        match = LEFTOVER.fullmatch(name[len(prefix):])
        if match is None or int(match.group(1)) == os.getpid() or not process_gone(int(match.group(1))):
            continue
        leftover = path.parent / name
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
