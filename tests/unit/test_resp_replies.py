"""The charge writer's Redis replies (store/redis_backend/resp.py): errors that mean "not now" (loading,
busy, out of memory, failing over) are link errors the writer backs off from; any other error is a
ReplyError; values parse whole or wait for the rest."""

from __future__ import annotations

import pytest

from paygate.store.redis_backend.resp import NotServing, ReplyError, _Incomplete, _parse, encode


@pytest.mark.parametrize(
    "line",
    [
        b"-LOADING Redis is loading the dataset in memory\r\n",
        b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n",
        b"-OOM command not allowed when used memory > 'maxmemory'.\r\n",
        b"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n",
        b"-READONLY You can't write against a read only replica.\r\n",
        b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n",
    ],
)
def test_a_server_not_serving_now_is_a_link_error(line: bytes) -> None:
    value, end = _parse(bytearray(line), 0)
    assert isinstance(value, NotServing) and isinstance(value, ConnectionError)
    assert end == len(line) and str(value) == line[1:-2].decode()


@pytest.mark.parametrize(
    "line", [b"-ERR Error running script: attempt to compare nil\r\n", b"-NOSCRIPT No matching script.\r\n"]
)
def test_other_errors_are_reply_errors(line: bytes) -> None:
    value, _ = _parse(bytearray(line), 0)
    assert isinstance(value, ReplyError) and not isinstance(value, ConnectionError)


def test_values_parse_whole_and_wait_for_the_rest() -> None:
    reply = b"*3\r\n$5\r\nhello\r\n:42\r\n$-1\r\n"
    assert _parse(bytearray(reply), 0) == ([b"hello", 42, None], len(reply))
    with pytest.raises(_Incomplete):
        _parse(bytearray(reply[:-3]), 0)
    assert encode(("EVALSHA", b"ab", "0")) == b"*3\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n0\r\n"
