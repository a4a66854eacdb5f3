"""A real `redis-server` for the tests: started on a free loopback port in its own directory, stopped
(and its files removed) by whoever started it. Tests that use one are e2e: it is a process.

`RedisServer.restart()` stops it the way a crash would (SIGKILL) or cleanly (SHUTDOWN), and starts it
again on the same port over the same directory, so AOF durability can be shown.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.support import _require_e2e, free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    def __init__(
        self,
        directory: Path,
        *,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        password: str | None = None,
    ) -> None:
        self.directory = directory
        self.port = free_port()
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.password = password  # `--requirepass`: every client must AUTH
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.url_of(0)

    def url_of(self, db: int) -> str:
        """The URL of database `db`, with the password when the server requires one."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    def start(self, *, loaded: bool = True) -> None:
        """Start it; return once it answers PING, or (`loaded=False`) once it answers at all, which may be
        `LOADING` while it reads its files back."""
        _require_e2e("redis-server")
        args = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            self.appendfsync,
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            *(("--requirepass", self.password) if self.password else ()),
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_timeout=1.0)
        deadline = time.monotonic() + 10.0
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.exceptions.BusyLoadingError:
                    if not loaded:
                        return
                    time.sleep(0.02)
                except redis.exceptions.RedisError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self, *, crash: bool = False) -> None:
        process = self.process
        if process is None:
            return
        self.process = None
        if process.poll() is None:
            process.send_signal(signal.SIGKILL if crash else signal.SIGTERM)  # SIGTERM: a clean SHUTDOWN
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def restart(self, *, crash: bool = False, loaded: bool = True) -> None:
        self.stop(crash=crash)
        self.start(loaded=loaded)

    def loading(self) -> bool:
        """Whether it is still reading its data back after a start (answering `LOADING`)."""
        with self.client() as client:
            try:
                client.ping()
            except redis.exceptions.BusyLoadingError:
                return True
        return False

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis.from_url(self.url_of(db), socket_timeout=5.0)


@contextmanager
def running_redis(
    *, appendonly: bool = False, appendfsync: str = "everysec", password: str | None = None
) -> Iterator[RedisServer]:
    directory = Path(tempfile.mkdtemp(prefix="paygate-redis-"))
    server = RedisServer(directory, appendonly=appendonly, appendfsync=appendfsync, password=password)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
