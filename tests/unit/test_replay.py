"""A session's event log for Last-Event-ID (mcp/replay.py)."""

from __future__ import annotations

import pytest

from paygate.mcp.replay import STANDALONE, EventLog, parse_event_id


def ids(frames: list[bytes]) -> list[str]:
    return [f.split(b"\n")[0].removeprefix(b"id: ").decode() for f in frames]


def test_a_resume_gets_only_that_streams_events_after_the_id() -> None:
    log = EventLog()
    post = log.open_stream()
    for n in range(3):
        log.record(STANDALONE, {"n": n})
        log.record(post, {"p": n})
    assert ids(log.resume(STANDALONE, 1)[0]) == ["0-2", "0-3"]
    missed, follow = log.resume(post, 2)
    assert ids(missed) == [f"{post}-3"] and follow is not None
    log.record(post, {"answer": True})
    log.close_stream(post)
    assert follow.get_nowait() is not None and follow.get_nowait() is None  # the answer, then the end
    assert log.resume(post, 0)[1] is None  # answered: a later resume is the replay alone


def test_a_newer_resume_takes_a_stream_over_from_the_older_one() -> None:
    log = EventLog()
    post = log.open_stream()
    _, first = log.resume(post, 0)
    _, second = log.resume(post, 0)
    assert first is not None and second is not None and first.get_nowait() is None
    log.drop_follower(post, first)  # the older one leaving does not unhook the newer
    log.record(post, {"x": 1})
    assert second.get_nowait() is not None


def test_the_log_is_bounded_by_count_and_bytes() -> None:
    by_count = EventLog(max_events=3)
    for n in range(10):
        by_count.record(STANDALONE, {"n": n})
    assert ids(by_count.resume(STANDALONE, 0)[0]) == ["0-8", "0-9", "0-10"]
    by_bytes = EventLog(max_bytes=300)
    for _ in range(10):
        by_bytes.record(STANDALONE, {"blob": "x" * 100})
    assert len(by_bytes.resume(STANDALONE, 0)[0]) == 2


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("0-5", (0, 5)),
        (" 12-0 ", (12, 0)),
        ("5", None),
        ("a-1", None),
        ("1-b", None),
        ("-1-2", None),
        ("1-" + "9" * 50, None),
        ("", None),
    ],
)
def test_event_ids_are_parsed_strictly(raw: str, parsed: tuple[int, int] | None) -> None:
    assert parse_event_id(raw) == parsed
