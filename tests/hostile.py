"""Hostile clients for the soak test (tests/e2e/test_security_soak.py): what a stranger can do without a key.

Each runs on asyncio until `stop` is set, from its own loopback source address (127.0.0.N: Linux routes all of
127/8 to lo, so per-address limits see each attacker as a different client). They count what they saw in
`Tally`; none of them waits on a fixed sleep to decide anything, the pauses only pace the attack.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Tally:
    opened: Counter[str] = field(default_factory=Counter)
    closed_by_server: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)  # connect failed or closed before any answer
    statuses: Counter[str] = field(default_factory=Counter)  # "attack:status"


async def _connect(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0), limit=1 << 20)


async def _closed(reader: asyncio.StreamReader) -> bool:
    """Read what the server sends until it closes; True once it has."""
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            return True


def _close(writer: asyncio.StreamWriter) -> None:
    if not writer.is_closing():
        writer.close()


async def _hold(name: str, port: int, source: str, tally: Tally, stop: asyncio.Event, feed: bytes, pace: float) -> None:
    """One connection at a time: open, send `feed` a byte per `pace` seconds (nothing when empty), until the
    server closes it; then open the next."""
    while not stop.is_set():
        try:
            reader, writer = await _connect(port, source)
        except OSError:
            tally.refused[name] += 1
            await asyncio.sleep(0.05)
            continue
        tally.opened[name] += 1
        closing = asyncio.ensure_future(_closed(reader))
        try:
            position = 0
            while not stop.is_set() and not closing.done():
                if feed:
                    writer.write(feed[position % len(feed) : position % len(feed) + 1])
                    position += 1
                await asyncio.wait([closing], timeout=pace)
            if closing.done():
                tally.closed_by_server[name] += 1
        except OSError:
            tally.closed_by_server[name] += 1
        finally:
            closing.cancel()
            _close(writer)


async def idle(port: int, source: str, n: int, tally: Tally, stop: asyncio.Event) -> None:
    """n connections that never send a byte."""
    await asyncio.gather(*(_hold("idle", port, source, tally, stop, b"", 0.5) for _ in range(n)))


async def slowloris(port: int, source: str, n: int, tally: Tally, stop: asyncio.Event) -> None:
    """n connections each dribbling an endless request header, a byte every 100 ms."""
    feed = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Pad: " + b"a" * 4000
    await asyncio.gather(*(_hold("slowloris", port, source, tally, stop, feed, 0.1) for _ in range(n)))


async def big_header(port: int, source: str, n: int, tally: Tally, stop: asyncio.Event) -> None:
    """n connections pushing one unfinished header as fast as the server takes it."""

    async def one() -> None:
        chunk = b"a" * 65536
        while not stop.is_set():
            try:
                reader, writer = await _connect(port, source)
            except OSError:
                tally.refused["big_header"] += 1
                await asyncio.sleep(0.05)
                continue
            tally.opened["big_header"] += 1
            try:
                writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
                sent = 0
                while not stop.is_set() and sent < 50 * 1_048_576:
                    writer.write(chunk)
                    await asyncio.wait_for(writer.drain(), 5)
                    sent += len(chunk)
                await asyncio.wait_for(_closed(reader), 5)
                tally.closed_by_server["big_header"] += 1
            except (OSError, TimeoutError):
                tally.closed_by_server["big_header"] += 1
            finally:
                _close(writer)
            await asyncio.sleep(0.05)

    await asyncio.gather(*(one() for _ in range(n)))


async def _post(port: int, source: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    reader, writer = await _connect(port, source)
    try:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(
            f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Accept: application/json, text/event-stream\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n{head}\r\n".encode()
            + body
        )
        raw = await asyncio.wait_for(reader.read(), 30)
    finally:
        _close(writer)
    status = int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0
    return status, raw


async def amplifier(port: int, source: str, batch: int, tally: Tally, stop: asyncio.Event) -> None:
    """Batches of tools/list, one at a time: one of `batch` entries, then one of 18,000 (just under the 1 MB
    body limit), far over any sane count."""
    sizes = [batch, 18_000]
    round_ = 0
    while not stop.is_set():
        size = sizes[round_ % 2]
        round_ += 1
        entries = [{"jsonrpc": "2.0", "id": i, "method": "tools/list"} for i in range(size)]
        body = json.dumps(entries, separators=(",", ":")).encode()
        try:
            status, _ = await _post(port, source, body, {})
            tally.statuses[f"amplifier{size}:{status}"] += 1
        except (OSError, TimeoutError):
            tally.refused["amplifier"] += 1
            await asyncio.sleep(0.05)


async def session_flood(port: int, source: str, tally: Tally, stop: asyncio.Event) -> None:
    """Anonymous initialize, then a GET /mcp stream held open on the new session, over and over."""
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}},
    }
    held: list[asyncio.StreamWriter] = []
    try:
        while not stop.is_set():
            try:
                status, raw = await _post(port, source, json.dumps(init).encode(), {})
            except (OSError, TimeoutError):
                tally.refused["session_flood"] += 1
                await asyncio.sleep(0.05)
                continue
            tally.statuses[f"initialize:{status}"] += 1
            session = next(
                (
                    line.split(b":", 1)[1].strip().decode()
                    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
                    if line.lower().startswith(b"mcp-session-id:")
                ),
                None,
            )
            if session is None:
                await asyncio.sleep(0.05)  # refused (rate limit): pace, then try again
                continue
            try:
                _, writer = await _connect(port, source)
            except OSError:
                tally.refused["session_flood"] += 1
                continue
            writer.write(
                f"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                f"Mcp-Session-Id: {session}\r\n\r\n".encode()
            )
            held.append(writer)
            tally.opened["stream"] += 1
    finally:
        for writer in held:
            _close(writer)
