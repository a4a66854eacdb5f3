"""Reading a config file for a hot reload (admin/reload.py) without trusting the path.

`POST /config/reload` may name any file (`configPath`): only an admin may, and the file must be a
regular file (not a directory, FIFO or device: a FIFO would block the reader), readable, and at most
`MAX_CONFIG_BYTES`. Errors say what is wrong with the file, never what it holds: a JSON error gives
line and column only, so pointing the gateway at a file of secrets reveals nothing of them.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

MAX_CONFIG_BYTES = 1_048_576  # a config file is a few KB; anything larger is not one
MAX_PATH_CHARS = 4096


class ConfigFileError(ValueError):
    """The file cannot be used; the message names the path and the problem, not the contents."""


def read_config_file(path: str, max_bytes: int = MAX_CONFIG_BYTES) -> dict[str, Any]:
    """The JSON object in the regular file at `path` (`~` expanded)."""
    if not path or len(path) > MAX_PATH_CHARS or "\x00" in path:
        raise ConfigFileError("configPath must be a file path of 1 to 4096 characters")
    where = str(Path(path).expanduser())
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below as not a regular file
        fd = os.open(where, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as exc:
        raise ConfigFileError(f"config file not found: {path}") from exc
    except IsADirectoryError as exc:
        raise ConfigFileError(f"config file is not a regular file: {path}") from exc
    except PermissionError as exc:
        raise ConfigFileError(f"config file is not readable: {path}") from exc
    except OSError as exc:
        raise ConfigFileError(f"config file cannot be opened: {path} ({exc.strerror})") from exc
    try:
        info = os.fstat(fd)  # of what was opened, not of what the path names now
        if not stat.S_ISREG(info.st_mode):
            raise ConfigFileError(f"config file is not a regular file: {path}")
        if info.st_size > max_bytes:
            raise ConfigFileError(f"config file is larger than {max_bytes} bytes: {path}")
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(max_bytes + 1)  # the file may grow after fstat
    except OSError as exc:
        raise ConfigFileError(f"config file cannot be read: {path} ({exc.strerror})") from exc
    finally:
        os.close(fd)
    if len(raw) > max_bytes:
        raise ConfigFileError(f"config file is larger than {max_bytes} bytes: {path}")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigFileError(f"config file {path} is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:  # msg + position only: never the document (`exc.doc`)
        where_in = f"line {exc.lineno} column {exc.colno}"
        raise ConfigFileError(f"config file {path} is not valid JSON: {exc.msg} ({where_in})") from None
    if not isinstance(data, dict):
        raise ConfigFileError(f"config file {path} must hold a JSON object")
    return data


Signature = tuple[int, int, int]


def _signature(path: str) -> Signature | None:
    try:
        info = os.stat(Path(path).expanduser())
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino


class FileWatch:
    """`--watch-config`: has the file changed (modification time, size, inode: an editor's rename counts)
    since it was last seen? A change is reported once it has held still for one more look, so a file
    written in several steps is read when it is complete; a file removed is not a change to reload."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.seen = _signature(path)
        self.pending: Signature | None = None

    def changed(self) -> bool:
        now = _signature(self.path)
        if now == self.seen:
            self.pending = None
            return False
        if now is not None and now != self.pending:  # first sight of this version: look once more
            self.pending = now
            return False
        self.seen, self.pending = now, None
        return now is not None
