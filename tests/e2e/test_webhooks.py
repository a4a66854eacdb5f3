"""Webhook delivery through the real CLI to a real HTTP receiver: batching, signatures, retries, dead
letters, replay, pause/resume, restarts, the test endpoint, stats, log, health and metrics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from paygate.core.keys import hash_key
from paygate.webhooks import verify_signature
from tests.support import ECHO_COMMAND, Gateway, masked, running_gateway, wait_until, write_config
from tests.webhook_receiver import Receiver, receiving

SECRET = "whsec_e2e_secret"
FAST = {"webhookFlushSeconds": 0.2, "webhookRetryBaseSeconds": 0.1}


@contextmanager
def hooked(
    tmp_path: Path, receiver: Receiver, *args: str, config: dict[str, Any] | None = None, state_file: str = ":memory:"
) -> Iterator[Gateway]:
    cfg = write_config(tmp_path, {**FAST, **(config or {})})
    with running_gateway(
        "--server",
        ECHO_COMMAND,
        "--rate-limit",
        "0",
        "--webhook-url",
        receiver.url(),
        "--webhook-allow-private",
        "--config",
        cfg,
        *args,
        state_file=state_file,
    ) as gw:
        yield gw


def get(gw: Gateway, path: str, **params: Any) -> dict[str, Any]:
    resp = gw.client.get(path, headers=gw.admin(), params=params)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def post(gw: Gateway, path: str, body: Any = None) -> dict[str, Any]:
    resp = gw.client.post(path, headers=gw.admin(), json=body)
    assert resp.status_code in (200, 201), resp.text
    return dict(resp.json())


def calls(gw: Gateway, key: str, n: int) -> None:
    for i in range(n):
        assert "result" in gw.call_tool("echo", {"text": f"call {i}"}, key, msg_id=i)


def test_calls_and_admin_events_arrive_in_signed_batches_of_at_most_the_batch_size(tmp_path: Path) -> None:
    with receiving() as rcv, hooked(tmp_path, rcv, "--webhook-secret", SECRET) as gw:
        key = gw.create_key(100)
        calls(gw, key, 25)
        denied = gw.create_key(0)
        assert "error" in gw.call_tool("echo", {"text": "no credits"}, denied)
        wait_until(lambda: len(rcv.delivered_events()) >= 26, what="26 usage events")
        wait_until(lambda: len(rcv.delivered_admin(type_="key.created")) >= 2, what="two key.created events")
        for r in rcv.ok():
            assert len(r.events) + len(r.admin_events) <= 10
            assert r.headers["content-type"] == "application/json"
            assert verify_signature(r.body, r.headers["x-paygate-signature"], SECRET)
            assert not verify_signature(r.body, r.headers["x-paygate-signature"], "wrong secret")
            assert not verify_signature(r.body + b" ", r.headers["x-paygate-signature"], SECRET)
            assert "x-paygate-retry" not in r.headers
            for secret in (key, denied, hash_key(key), hash_key(denied), SECRET, gw.admin_key):
                assert secret.encode() not in r.body
        usage = rcv.delivered_events()
        mine = [e for e in usage if e["apiKey"] == masked(key)]
        assert len(mine) == 25 and len({e["id"] for e in mine}) == 25
        first = mine[0]
        assert first["keyName"] == "test" and first["tool"] == "echo" and first["creditsCharged"] == 1
        assert first["allowed"] is True and first["denyReason"] is None and first["timestamp"].endswith("Z")
        assert first["requestId"].startswith("req_") and first["durationMs"] >= 0
        refused = next(e for e in usage if e["apiKey"] == masked(denied))
        assert refused["allowed"] is False and refused["denyReason"] == "insufficient_credits"
        assert refused["creditsCharged"] == 0
        created = [e for e in rcv.delivered_admin(type_="key.created")]
        assert {e["metadata"]["keyMasked"] for e in created} == {masked(key), masked(denied)}
        assert {"id", "type", "timestamp", "actor", "metadata"} <= set(created[0])
        # the receiver records a POST before the gateway has read its answer, so the count may lag a moment
        wait_until(lambda: get(gw, "/webhooks/stats")["deliveredEvents"] >= 28, what="the deliveries counted")
        stats = get(gw, "/webhooks/stats")
        assert stats["failed"] == 0 and stats["batchSize"] == 10


def test_a_failing_receiver_is_retried_with_backoff_until_it_recovers(tmp_path: Path) -> None:
    with receiving() as rcv, hooked(tmp_path, rcv, "--webhook-secret", SECRET) as gw:
        rcv.fail_next(2, status=503)
        key = gw.create_key(10)
        wait_until(lambda: rcv.delivered_admin(type_="key.created"), what="key.created after two failures")
        assert [r.headers.get("x-paygate-retry") for r in rcv.requests[:3]] == [None, "1", "2"]
        assert [r.status for r in rcv.requests[:3]] == [503, 503, 200]
        assert rcv.requests[0].body == rcv.requests[2].body  # a retry sends the same bytes
        assert verify_signature(rcv.requests[2].body, rcv.requests[2].headers["x-paygate-signature"], SECRET)
        assert rcv.delivered_admin(type_="key.created")[0]["metadata"]["keyMasked"] == masked(key)
        wait_until(lambda: get(gw, "/webhooks/stats")["delivered"] == 1, what="the delivery counted")
        stats = get(gw, "/webhooks/stats")
        assert stats["failed"] == 2 and stats["retries"] == 2 and stats["pendingRetries"] == 0
        log = get(gw, "/webhooks/log")["entries"]
        assert [(e["attempt"], e["statusCode"], e["success"]) for e in log[:3]][::-1] == [
            (0, 503, False),
            (1, 503, False),
            (2, 200, True),
        ]
        assert log[-1]["error"] == "HTTP 503" and log[0]["error"] is None
        assert log[0]["url"] == f"http://127.0.0.1:{rcv.port}/***" and log[0]["eventTypes"] == ["key.created"]
        assert get(gw, "/webhooks/log", success="false")["count"] == 2
        assert get(gw, "/webhooks/log", limit=1)["count"] == 1
        assert get(gw, "/webhooks/log", since="2999-01-01T00:00:00Z")["count"] == 0


def test_dead_letters_after_max_retries_and_replay_by_index_then_all_delivers_them(tmp_path: Path) -> None:
    with receiving() as rcv, hooked(tmp_path, rcv, "--webhook-retries", "1") as gw:
        rcv.fail_next(1000)
        keys = [gw.create_key(1) for _ in range(3)]
        wait_until(lambda: get(gw, "/webhooks/stats")["deadLetterCount"] >= 1, what="a dead letter")
        wait_until(lambda: len(rcv.requests) >= 2, what="two attempts")
        first = get(gw, "/webhooks/dead-letter")["deadLetters"][0]
        assert first["index"] == 0 and first["attempts"] == 2 and first["lastStatusCode"] == 500
        assert first["lastError"] == "HTTP 500" and first["destination"] == "default"
        assert first["payload"]["adminEvents"][0]["type"] == "key.created"
        # let every batch die, then fix the receiver
        wait_until(
            lambda: (
                sum(d["eventCount"] for d in get(gw, "/webhooks/dead-letter")["deadLetters"]) >= 3
                and get(gw, "/webhooks/stats")["queuedBatches"] == 0
            ),
            what="all batches dead-lettered",
        )
        assert get(gw, "/admin/webhook-health")["status"] == "degraded"
        assert gw.client.get("/health").json()["webhooks"]["deadLetterCount"] >= 1
        rcv.fail_next(0)
        dead = get(gw, "/webhooks/dead-letter")
        replayed = post(gw, "/webhooks/replay", {"indices": [0]})
        assert replayed["replayed"] == 1 and replayed["remaining"] == dead["count"] - 1
        wait_until(lambda: len(rcv.ok()) == 1, what="the replayed batch")
        assert rcv.ok()[0].json() == first["payload"]
        if dead["count"] > 1:
            assert post(gw, "/webhooks/replay")["replayed"] == dead["count"] - 1
        wait_until(
            lambda: (
                {e["metadata"]["keyMasked"] for e in rcv.delivered_admin(type_="key.created")}
                == {masked(k) for k in keys}
            ),
            what="every key.created delivered",
        )
        assert get(gw, "/webhooks/dead-letter")["count"] == 0
        wait_until(lambda: gw.events("webhook.replayed") != [], what="webhook.replayed event")
        assert gw.client.delete("/webhooks/dead-letter", headers=gw.admin()).json() == {"cleared": 0}


def test_clearing_the_dead_letter_queue_empties_it(tmp_path: Path) -> None:
    with receiving() as rcv, hooked(tmp_path, rcv, "--webhook-retries", "0") as gw:
        rcv.fail_next(1000)
        gw.create_key(1)
        wait_until(lambda: get(gw, "/webhooks/dead-letter")["count"] >= 1, what="a dead letter")
        cleared = gw.client.delete("/webhooks/dead-letter", headers=gw.admin()).json()["cleared"]
        assert cleared >= 1 and get(gw, "/webhooks/dead-letter")["count"] in (0, 1)
        wait_until(lambda: gw.events("webhook.dead_letter_cleared") != [], what="the audit event")


def test_pause_buffers_events_and_resume_delivers_every_one(tmp_path: Path) -> None:
    with receiving() as rcv, hooked(tmp_path, rcv) as gw:
        paused = post(gw, "/webhooks/pause")
        assert paused["paused"] is True and paused["pausedAt"].endswith("Z")
        key = gw.create_key(100)
        calls(gw, key, 15)
        wait_until(lambda: get(gw, "/webhooks/stats")["bufferedEvents"] >= 16, what="16 buffered events")
        stats = get(gw, "/webhooks/stats")
        assert stats["paused"] is True and stats["pausedAt"] == paused["pausedAt"]
        assert get(gw, "/admin/webhook-health")["status"] == "paused"
        assert rcv.requests == []
        resumed = post(gw, "/webhooks/resume")
        assert resumed["paused"] is False and resumed["flushedEvents"] >= 16
        wait_until(lambda: len(rcv.delivered_events()) == 15, what="all 15 calls delivered")
        assert [e["apiKey"] for e in rcv.delivered_events()] == [masked(key)] * 15
        wait_until(lambda: rcv.delivered_admin(type_="webhook.pause") != [], what="webhook.pause delivered")
        wait_until(lambda: rcv.delivered_admin(type_="webhook.resume") != [], what="webhook.resume delivered")
        assert get(gw, "/admin/webhook-health")["status"] == "healthy"


def test_events_queued_while_the_receiver_is_down_are_delivered_after_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    rcv = Receiver()  # not started: connections are refused
    try:
        with hooked(tmp_path, rcv, config={"webhookRetryBaseSeconds": 30}, state_file=state) as gw:
            key = gw.create_key(100)
            calls(gw, key, 12)
            wait_until(lambda: get(gw, "/webhooks/stats")["failed"] >= 1, what="a failed attempt")
            assert gw.client.get("/health").json()["webhooks"]["pendingRetries"] == 1
            log = get(gw, "/webhooks/log")["entries"]
            assert log[0]["statusCode"] == 0 and log[0]["error"]
        rcv.start()
        with hooked(tmp_path, rcv, config={"webhookRetryBaseSeconds": 0.1}, state_file=state) as gw:
            wait_until(lambda: len(rcv.delivered_events()) >= 12, what="the 12 calls after the restart")
            assert {e["apiKey"] for e in rcv.delivered_events()} == {masked(key)}
            assert len({e["id"] for e in rcv.delivered_events()}) == 12
            assert rcv.delivered_admin(type_="key.created")[0]["metadata"]["keyMasked"] == masked(key)
            wait_until(
                lambda: (
                    get(gw, "/webhooks/stats")["bufferedEvents"] == 0
                    and get(gw, "/webhooks/stats")["queuedBatches"] == 0
                ),
                what="an empty queue",
            )
    finally:
        rcv.stop()


def test_a_pause_lasts_across_a_restart_and_shutdown_flushes_what_is_queued(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    with receiving() as rcv:
        with hooked(tmp_path, rcv, config={"webhookFlushSeconds": 3600}, state_file=state) as gw:
            key = gw.create_key(10)
            calls(gw, key, 3)
        # the flush interval is an hour: only the shutdown flush can have sent these
        assert len(rcv.delivered_events()) == 3
        with hooked(tmp_path, rcv, state_file=state) as gw:
            post(gw, "/webhooks/pause")
            calls(gw, key, 2)
        with hooked(tmp_path, rcv, state_file=state) as gw:
            assert get(gw, "/webhooks/stats")["paused"] is True
            assert get(gw, "/webhooks/stats")["bufferedEvents"] >= 2
            assert len(rcv.delivered_events()) == 3
            post(gw, "/webhooks/resume")
            wait_until(lambda: len(rcv.delivered_events()) == 5, what="the two paused calls")


def test_the_test_endpoint_sends_one_marked_signed_event_and_reports_the_outcome(tmp_path: Path) -> None:
    with receiving() as rcv, hooked(tmp_path, rcv, "--webhook-secret", SECRET) as gw:
        result = post(gw, "/webhooks/test", {"message": "hello from e2e"})
        assert result["success"] is True and result["statusCode"] == 200 and result["responseTime"] >= 0
        assert result["url"] == f"http://127.0.0.1:{rcv.port}/***" and "error" not in result
        sent = rcv.requests[0]
        assert sent.headers["x-paygate-test"] == "1"
        assert verify_signature(sent.body, sent.headers["x-paygate-signature"], SECRET)
        event = sent.admin_events[0]
        assert event["type"] == "webhook.test" and event["metadata"]["message"] == "hello from e2e"
        assert post(gw, "/webhooks/test")["success"] is True
        rcv.fail_next(1, status=404)
        failed = post(gw, "/webhooks/test")
        assert failed["success"] is False and failed["statusCode"] == 404 and failed["error"] == "HTTP 404"
        rcv.stop()
        down = post(gw, "/webhooks/test")
        assert down["success"] is False and down["statusCode"] == 0 and down["error"]
        assert len(gw.events("webhook.test")) == 4


def test_without_a_webhook_url_the_test_endpoint_is_400_and_health_has_no_webhooks(tmp_path: Path) -> None:
    with running_gateway("--server", ECHO_COMMAND) as gw:
        resp = gw.client.post("/webhooks/test", headers=gw.admin())
        assert resp.status_code == 400 and "No webhook URL" in resp.json()["error"]
        assert "webhooks" not in gw.client.get("/health").json()
        health = get(gw, "/admin/webhook-health")
        assert health["configured"] is False and health["status"] == "not_configured"
        assert set(health["delivery"]) >= {
            "totalDelivered",
            "totalFailed",
            "totalRetries",
            "pendingRetries",
            "deadLetterCount",
            "bufferedEvents",
            "paused",
            "pausedAt",
            "successRate",
        }


def test_health_webhook_health_and_metrics_report_delivery(tmp_path: Path) -> None:
    with receiving() as rcv, hooked(tmp_path, rcv) as gw:
        assert gw.client.get("/health").json()["webhooks"] == {"pendingRetries": 0, "deadLetterCount": 0}
        assert gw.client.get("/info").json()["features"]["webhooks"] is True
        gw.create_key(1)
        # The receiver records a POST before it answers: wait for the gateway to have seen the answer.
        wait_until(
            lambda: get(gw, "/admin/webhook-health")["delivery"]["totalDelivered"] >= 1,
            what="a delivery the gateway counted",
        )
        health = get(gw, "/admin/webhook-health")
        assert rcv.ok() != [] and health["configured"] is True and health["status"] == "healthy"
        assert health["delivery"]["totalDelivered"] >= 1 and health["delivery"]["successRate"] == 100.0
        assert health["generatedAt"].endswith("Z")
        metrics = gw.client.get("/metrics").text
        assert 'paygate_webhook_deliveries_total{result="success"}' in metrics
        assert 'paygate_webhook_deliveries_total{result="failure"} 0.0' in metrics
        assert "paygate_webhook_queue_depth 0.0" in metrics and "paygate_webhook_dead_letters 0.0" in metrics
        viewer = post(gw, "/admin/keys", {"name": "viewer", "role": "viewer"})["key"]
        for path in (
            "/webhooks/stats",
            "/webhooks/log",
            "/webhooks/dead-letter",
            "/admin/webhook-health",
            "/webhooks/filters",
        ):
            assert gw.client.get(path, headers={"X-Admin-Key": viewer}).status_code == 200, path
        for path in ("/webhooks/pause", "/webhooks/resume", "/webhooks/replay", "/webhooks/test"):
            assert gw.client.post(path, headers={"X-Admin-Key": viewer}).status_code == 403, path
        assert gw.client.get("/webhooks/stats").status_code == 401
