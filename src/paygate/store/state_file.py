"""The state file on disk: one gateway at a time, readable by its owner only.

One process per state file. Each gateway serves from its own in-memory copy of
the key records, so two on one file would each spend from their own balances
(together overspending). `StateFileLock` takes an exclusive `flock` on
`<state file>.lock` for as long as the store is open, and writes its pid there;
a second opener gets `StateFileInUse` naming the file and that pid. The kernel
drops the lock when the process ends, however it ends (`kill -9` included).
A separate lock file, not the database: SQLite's own locks are `fcntl` locks
on the database, which some file systems (NFS) merge with `flock`.

Owner-only. The database holds webhook signing secrets: it, its `-wal` and
`-shm` (SQLite gives them the database's mode) and the lock file are created
0600, and a directory the gateway creates for them 0700. Files found readable
or writable by others are tightened to their owner's bits at start, with a warning.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("paygate.store")

LOCK_SUFFIX = ".lock"
SIDE_SUFFIXES = ("-wal", "-shm", "-charges", LOCK_SUFFIX)  # -charges: store/charge_journal.py
FILE_MODE = 0o600
DIR_MODE = 0o700


class StateFileInUse(RuntimeError):
    """Another process holds the state file."""


def _holder(fd: int) -> str:
    """Who holds the lock, from the pid it wrote: `process 1234`, or `another process`."""
    with contextlib.suppress(OSError, ValueError):
        pid = int(os.pread(fd, 32, 0).decode().strip())
        return f"process {pid}"
    return "another process"


def in_use_message(path: Path, holder: str) -> str:
    return (
        f"state file {path} is in use by {holder} (another paygate-mcp): two gateways on one state file "
        "would each spend from their own copy of the balances. Stop that one or give this one another "
        "--state-file. Several gateways share one store through Redis (`--redis-url`, docs/redis.md), "
        "never through one SQLite file."
    )


class StateFileLock:
    """The exclusive lock on one state file, held from `acquire` to `release`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.lock_path = self.path.with_name(self.path.name + LOCK_SUFFIX)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Make the directory (0700) if missing, take the lock or raise `StateFileInUse`, then create the
        database file 0600 if missing and tighten the modes of the files already there."""
        make_private_dirs(self.path.parent)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise StateFileInUse(in_use_message(self.path, holder)) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.close(
            os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        )  # SQLite takes a new empty file
        tighten([self.path, *(self.path.with_name(self.path.name + s) for s in SIDE_SUFFIXES)])

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor drops the lock

    def __del__(self) -> None:  # a store dropped unclosed (a failed start) must not keep the file locked
        self.release()


def check_free(path: str | Path) -> None:
    """Raise `StateFileInUse` if another process holds `path` now (a check before binding the port)."""
    lock = StateFileLock(path)
    lock.acquire()
    lock.release()


def make_private_dirs(directory: Path) -> None:
    """Create `directory` and any missing parent, each 0700; existing ones are left as they are."""
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        if directory.parent == directory:
            break
        directory = directory.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=DIR_MODE)


def tighten(paths: list[Path]) -> None:
    """Take group and other bits off the files that have them; one warning line for all."""
    changed: list[str] = []
    for path in paths:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            os.chmod(path, mode & 0o700)
            changed.append(f"{path.name} {mode:04o}")
    if changed:
        log.warning(
            "state files were open to other users (%s): now owner-only (%s holds webhook secrets)",
            ", ".join(changed),
            paths[0],
        )
