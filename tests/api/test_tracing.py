"""Request tracing (tracing/, traffic/tracing_stages.py): GET/POST/DELETE /admin/tracing, spans per call,
W3C traceparent continued from the client and sent to an HTTP backend, and OTLP export to a receiver."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.recording_backend import recording_backend
from tests.support import ECHO_COMMAND, write_config

CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"


@pytest.fixture(scope="module")
def gw() -> Iterator[InProcessGateway]:
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--tool-price", "add:3") as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def tracing_on(gw: InProcessGateway) -> Iterator[None]:
    assert configure(gw, {"enabled": True, "sampleRate": 1}).status_code == 200
    yield
    configure(gw, {"enabled": False, "sampleRate": 1, "maxTraces": 1000})
    gw.client.delete("/admin/tracing", headers=gw.admin())


def configure(gw: InProcessGateway, body: dict[str, Any]) -> Any:
    return gw.client.post("/admin/tracing", json=body, headers=gw.admin())


def traces(gw: InProcessGateway, **params: Any) -> list[dict[str, Any]]:
    resp = gw.client.get("/admin/tracing", params=params, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return list(resp.json()["traces"])


def test_a_call_is_traced_with_its_timing_credits_and_key(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    reply = gw.rpc("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}}, key=key)
    [trace] = traces(gw, tool="add")
    assert trace["credits"] == 3 and trace["outcome"] == "ok" and trace["denyReason"] is None
    assert trace["keyMasked"] and key not in str(trace)
    assert trace["requestId"] == reply.headers["x-request-id"]
    assert trace["durationMs"] >= trace["backendMs"] > 0
    assert abs(trace["gateMs"] + trace["backendMs"] - trace["durationMs"]) < 0.01
    assert len(trace["traceId"]) == 32 and trace["parentSpanId"] is None
    assert traces(gw, requestId=trace["requestId"]) == [trace]
    assert traces(gw, traceId=trace["traceId"]) == [trace]


def test_a_denied_call_is_traced_with_its_reason_and_no_backend_time(gw: InProcessGateway) -> None:
    poor = gw.create_key(1)
    gw.rpc("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}}, key=poor)
    [trace] = traces(gw, tool="add")
    assert trace["outcome"] == "denied" and trace["denyReason"] == "insufficient_credits"
    assert trace["credits"] == 0 and trace["backendMs"] == 0


def test_a_client_traceparent_is_continued_and_sampled_regardless_of_the_rate(gw: InProcessGateway) -> None:
    assert configure(gw, {"sampleRate": 0}).status_code == 200
    key = gw.create_key(10)
    gw.rpc("tools/call", {"name": "echo", "arguments": {"text": "a"}}, key=key)
    assert traces(gw) == []  # rate 0: not sampled
    header = {"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"}
    gw.rpc("tools/call", {"name": "echo", "arguments": {"text": "b"}}, key=key, headers=header)
    [trace] = traces(gw)
    assert trace["traceId"] == CLIENT_TRACE and trace["parentSpanId"] == CLIENT_SPAN
    bad = {"traceparent": "00-" + "0" * 32 + f"-{CLIENT_SPAN}-01"}  # an all-zero id is ignored
    gw.rpc("tools/call", {"name": "echo", "arguments": {"text": "c"}}, key=key, headers=bad)
    assert len(traces(gw)) == 1


def test_kept_traces_are_bounded_cleared_and_summarised(gw: InProcessGateway) -> None:
    assert configure(gw, {"maxTraces": 2}).status_code == 200
    key = gw.create_key(10)
    for text in ("a", "b", "c"):
        gw.rpc("tools/call", {"name": "echo", "arguments": {"text": text}}, key=key)
    shown = gw.client.get("/admin/tracing", headers=gw.admin()).json()
    assert shown["kept"] == 2 and shown["count"] == 2 and shown["p95Ms"] >= shown["p50Ms"] > 0
    assert "paygate_traces_recorded_total" in gw.client.get("/metrics").text
    cleared = gw.client.delete("/admin/tracing", headers=gw.admin())
    assert cleared.json() == {"removed": 2} and traces(gw) == []


@pytest.mark.parametrize("body", [{}, {"sampleRate": 1.5}, {"maxTraces": 0}, {"enabled": "yes"}, {"x": 1}])
def test_bad_settings_are_400_and_change_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    before = gw.client.get("/admin/tracing", headers=gw.admin()).json()
    assert configure(gw, body).status_code == 400
    after = gw.client.get("/admin/tracing", headers=gw.admin()).json()
    assert {k: after[k] for k in ("enabled", "sampleRate", "maxTraces")} == {
        k: before[k] for k in ("enabled", "sampleRate", "maxTraces")
    }


def test_viewers_read_and_only_admins_change(gw: InProcessGateway) -> None:
    made = gw.client.post("/admin/keys", headers=gw.admin(), json={"name": "trace viewer", "role": "viewer"})
    viewer = {"X-Admin-Key": made.json()["key"]}
    assert gw.client.get("/admin/tracing", headers=viewer).status_code == 200
    assert gw.client.post("/admin/tracing", headers=viewer, json={"enabled": False}).status_code == 403
    assert gw.client.delete("/admin/tracing", headers=viewer).status_code == 403


def test_the_settings_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0")
    with running_inprocess_gateway(*args, state_file=state, admin_key="admin-key-for-tracing") as first:
        assert configure(first, {"enabled": True, "sampleRate": 0.25}).status_code == 200
    with running_inprocess_gateway(*args, state_file=state, admin_key="admin-key-for-tracing") as second:
        shown = second.client.get("/admin/tracing", headers=second.admin()).json()
        assert shown["enabled"] is True and shown["sampleRate"] == 0.25


def test_an_http_backend_receives_the_calls_traceparent() -> None:
    with recording_backend() as backend, running_inprocess_gateway("--remote-url", backend.url) as gw:
        assert configure(gw, {"enabled": True}).status_code == 200
        key = gw.create_key(10)
        gw.rpc("tools/call", {"name": "shout", "arguments": {"text": "hi"}}, key=key)
        [trace] = traces(gw)
        [call] = [r for r in backend.requests if isinstance(r.body, dict) and r.body.get("method") == "tools/call"]
        assert call.headers["traceparent"] == f"00-{trace['traceId']}-{trace['spanId']}-01"
        listed = [r for r in backend.requests if isinstance(r.body, dict) and r.body.get("method") == "tools/list"]
        assert listed and all("traceparent" not in r.headers for r in listed)  # only traced calls carry one


class _Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP traces endpoint: decodes each export request with the protocol's own protobuf types."""

    received: list[ExportTraceServiceRequest] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        type(self).received.append(request)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_spans_are_exported_to_an_otlp_collector(tmp_path: Path) -> None:
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
        config = write_config(tmp_path, {"tracing": {"enabled": True, "otlpEndpoint": endpoint}})
        args = ("--server", ECHO_COMMAND, "--rate-limit", "0", "--tool-price", "add:3", "--config", config)
        with running_inprocess_gateway(*args) as gw:
            key = gw.create_key(10)
            gw.rpc("tools/call", {"name": "add", "arguments": {"a": 2, "b": 2}}, key=key)
            [trace] = traces(gw)
        # stopping the gateway flushed the batch processor: the span is at the receiver now
        spans = [s for r in _Receiver.received for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]
        [span] = spans
        assert span.name == "tools/call add" and span.trace_id.hex() == trace["traceId"]
        attributes = {a.key: a.value for a in span.attributes}
        assert attributes["paygate.credits"].int_value == 3
        assert attributes["paygate.key_id"].string_value == trace["keyMasked"] != key
        assert attributes["paygate.tool"].string_value == "add"
    finally:
        server.shutdown()
        server.server_close()
