"""The outbound sender against tests/fake_graph.py and the real local database.

Each test parks every queued message it did not create (next_attempt_at = infinity, restored
afterwards), so the sender only sees the test's own messages.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from app.config import Config, ConfigError
from app.db import make_pool
from app.graph import (
    InvalidMessage,
    OutboundMessage,
    SendError,
    Sent,
    Unknown,
    checked_payload,
    classify_response,
    parse_retry_after,
)
from app.sender import Sender, TokenBucket
from app.webhook import sign
from fake_graph import FakeGraph, Reply, meta_error

ROOT = Path(__file__).resolve().parent.parent
ALICE = "00000000-0000-4000-a000-00000000a11c"
TOM = "447700900123"


# -- pure parts ---------------------------------------------------------------------------------
MSG_ID = uuid.UUID("11111111-2222-4333-8444-555555555555")
TEXT_PAYLOAD = {
    "messaging_product": "whatsapp",
    "recipient_type": "individual",
    "to": TOM,
    "type": "text",
    "text": {"body": "From Alice Hart via ZenRent:\nHello", "preview_url": False},
    "biz_opaque_callback_data": str(MSG_ID),
}


def _msg(kind: str = "text", **payload: object) -> OutboundMessage:
    return OutboundMessage(id=MSG_ID, to_phone=TOM, kind=kind, attempt_count=1, payload={**TEXT_PAYLOAD, **payload})


def test_the_payload_from_sql_is_posted_unchanged():
    assert checked_payload(_msg()) == TEXT_PAYLOAD
    components = [{"type": "body", "parameters": [{"type": "text", "text": "Alice Hart"}]}]
    template = {"name": "rent_reminder", "language": {"code": "en_GB"}, "components": components}
    assert checked_payload(_msg("template", type="template", template=template))["template"] == template
    buttons = {"type": "button", "body": {"text": "Who?"}, "action": {"buttons": []}}
    assert checked_payload(_msg("interactive", type="interactive", interactive=buttons))["interactive"] == buttons


@pytest.mark.parametrize(
    "bad",
    [
        dict(text={"body": "  "}),
        dict(text=None),
        dict(type="sms"),
        dict(to="447700900999"),  # not the claimed recipient
        dict(messaging_product="sms"),
        dict(biz_opaque_callback_data=None),  # a crash could not be reconciled
        dict(type="template", template={"name": "x"}),
    ],
)
def test_unsendable_payloads_are_refused_before_any_request(bad):
    kind = bad["type"] if bad.get("type") in ("template",) else "text"
    with pytest.raises(InvalidMessage):
        checked_payload(_msg(kind, **bad))


MEDIA_ID = "1037543291543636"
CAPTION = "From Alice Hart via ZenRent:\nThe signed inventory"


def _media(kind: str, obj: object, claim: str = "media", **payload: object) -> OutboundMessage:
    """A landlord's file as private.outbound_payload builds it: sent by Meta's media id."""
    body = {k: v for k, v in TEXT_PAYLOAD.items() if k != "text"}
    return OutboundMessage(MSG_ID, TOM, claim, 1, {**body, "type": kind, kind: obj, **payload})


def test_media_payloads_from_sql_are_posted_unchanged():
    for kind in ("image", "video", "document"):
        msg = _media(kind, {"id": MEDIA_ID, "caption": CAPTION})
        assert checked_payload(msg) == msg.payload
        assert checked_payload(_media(kind, {"id": MEDIA_ID})) == {**msg.payload, kind: {"id": MEDIA_ID}}
    voice = _media("audio", {"id": MEDIA_ID})  # audio takes no caption
    assert checked_payload(voice)["audio"] == {"id": MEDIA_ID}
    reply = _media("image", {"id": MEDIA_ID}, context={"message_id": "wamid.X"})
    assert checked_payload(reply)["context"] == {"message_id": "wamid.X"}


@pytest.mark.parametrize(
    "msg",
    [
        _media("image", {"id": ""}),
        _media("image", {"id": "   "}),
        _media("image", {}),
        _media("document", {"id": 1037543291543636}),
        _media("image", None),
        _media("image", {"link": "https://example.com/x.jpg"}),  # never a link Meta would fetch
        _media("image", {"id": MEDIA_ID, "link": "https://example.com/x.jpg"}),
        _media("document", {"id": MEDIA_ID, "filename": "../../x.pdf"}),
        _media("document", {"id": MEDIA_ID, "caption": 5}),
        _media("audio", {"id": MEDIA_ID, "caption": CAPTION}),  # Meta refuses captions on audio
        _media("sticker", {"id": MEDIA_ID}),  # only ever received
        _media("text", {"body": "From Alice Hart via ZenRent:\nHi"}),  # a media claim must carry a file
        _media("image", {"id": MEDIA_ID}, claim="text"),  # a file under a text claim
        _media("image", {"id": MEDIA_ID}, claim="image"),
        _media("image", {"id": MEDIA_ID}, to="447700900999"),  # the existing checks hold for files too
        _media("image", {"id": MEDIA_ID}, biz_opaque_callback_data=None),
        _media("image", {"id": MEDIA_ID}, messaging_product="sms"),
    ],
)
def test_unsendable_media_payloads_are_refused_before_any_request(msg):
    with pytest.raises(InvalidMessage):
        checked_payload(msg)


def test_graph_answers_are_classified():
    ok = classify_response(200, {}, {"messaging_product": "whatsapp", "messages": [{"id": "wamid.X"}]})
    assert ok == Sent("wamid.X")
    assert isinstance(classify_response(200, {}, {"messages": []}), Unknown)  # accepted? then never retried

    def err(status, code, headers=None):
        return classify_response(
            status, headers or {}, {"error": {"message": f"(#{code}) t", "code": code, "error_data": {"details": "d"}}}
        )

    throttled = err(429, 130429, {"Retry-After": "7"})
    assert (throttled.retryable, throttled.throttled, throttled.retry_after_seconds) == (True, True, 7)
    assert err(400, 80007).throttled and err(400, 80007).retryable
    assert err(400, 130429).throttled
    pair = err(400, 131056)
    assert pair.retryable and not pair.throttled  # only this recipient backs off
    window = err(400, 131047)
    assert not window.retryable and window.code == 131047 and "send a template" in window.message
    assert err(500, 131000).retryable and err(503, 2).retryable
    assert classify_response(502, {}, None) == SendError(502, "HTTP 502", None, retryable=True, http_status=502)
    permanent = err(400, 100)
    assert (
        not permanent.retryable and permanent.code == 100 and permanent.title == "(#100) t" and permanent.message == "d"
    )
    assert not err(400, 131026).retryable
    auth = err(401, 190)
    assert auth.retryable and auth.throttled  # a bad token must not fail the whole queue


def test_retry_after_parsing():
    assert parse_retry_after("12") == 12
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("99999") == 3600
    now = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after("Wed, 25 Nov 2026 12:00:30 GMT", now=now) == 30


def test_token_bucket_paces_and_pauses():
    t = [0.0]
    bucket = TokenBucket(rate=10, clock=lambda: t[0])
    assert bucket._try_take() == (True, 0.0, False)
    taken, wait_s, pausing = bucket._try_take()
    assert not taken and wait_s == pytest.approx(0.1) and not pausing
    t[0] = 0.1
    assert bucket._try_take()[0]
    bucket.pause(2.0)
    taken, wait_s, pausing = bucket._try_take()
    assert not taken and pausing and wait_s == pytest.approx(2.0)
    t[0] = 2.1
    assert bucket._try_take()[0]  # one token after the pause, not a burst of 20
    assert not bucket._try_take()[0]
    cancel = threading.Event()
    cancel.set()
    bucket.pause(5)
    assert bucket.acquire(cancel=cancel) is False  # shutdown during a back-off pause
    assert bucket.acquire(max_pause=1.0) is False  # a pause too long to wait through


def test_sender_settings_are_validated():
    dev = {"ZR_ENV": "development"}
    assert Config.from_env({**dev, "ZR_SENDER_RATE": "20"}).sender_rate == 20.0
    for bad in ({"ZR_SENDER_RATE": "0"}, {"ZR_SENDER_CONCURRENCY": "0"}, {"ZR_SENDER_STUCK_TIMEOUT_S": "0"}):
        with pytest.raises(ConfigError, match="ZR_SENDER_"):
            Config.from_env({**dev, **bad})


# -- database fixtures ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def admin(config) -> Iterator[psycopg.Connection]:
    with psycopg.connect(config.database_url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute(
            "select public.configure_whatsapp(jsonb_build_object('phone_number_id', %s::text))",
            [config.phone_number_id],
        )
        yield conn


@pytest.fixture(scope="module")
def conversation(admin, config) -> str:
    """Alice's conversation with Tom, with Tom writing just now (the 24 h window is open)."""
    wamid = f"wamid.SENDERTEST{uuid.uuid4().hex}"
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340500",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "442045770000",
                                "phone_number_id": config.phone_number_id,
                            },
                            "contacts": [{"profile": {"name": "Tom Baker"}, "wa_id": TOM}],
                            "messages": [
                                {
                                    "from": TOM,
                                    "id": wamid,
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": "Hello, is someone coming today?"},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    with admin.transaction():
        admin.execute("set local role service_role")
        summary = admin.execute(
            "select public.ingest_whatsapp_webhook(%s::jsonb) as s", [json.dumps(payload)]
        ).fetchone()["s"]
    (m,) = summary["messages"]
    assert m["routing_status"] == "delivered" and m["landlord_id"] == ALICE
    return m["conversation_id"]


class Queue:
    """Queues messages as Alice (through her RPCs), and parks everything else that is queued."""

    def __init__(self, admin: psycopg.Connection, conversation: str):
        self.admin, self.conversation, self.ids = admin, conversation, []
        self.parked = admin.execute(
            "with p as (select id, next_attempt_at from public.whatsapp_messages where status = 'queued' for update) "
            "update public.whatsapp_messages m set next_attempt_at = 'infinity' from p where m.id = p.id "
            "returning p.id, p.next_attempt_at"
        ).fetchall()

    def _as_alice(self, sql: str, params: list) -> str:
        with self.admin.transaction():
            self.admin.execute("set local role authenticated")
            self.admin.execute(
                "select set_config('request.jwt.claims', %s, true)",
                [json.dumps({"sub": ALICE, "role": "authenticated"})],
            )
            new_id = str(self.admin.execute(sql, params).fetchone()["id"])
        self.ids.append(new_id)
        return new_id

    def text(self, body: str) -> str:
        return self._as_alice("select public.send_whatsapp_message(%s, %s) as id", [self.conversation, body])

    def template(self, name: str, language: str, params: list[str]) -> str:
        return self._as_alice(
            "select public.send_whatsapp_template(%s, %s, %s, %s::jsonb) as id",
            [self.conversation, name, language, json.dumps(params)],
        )

    def system_reply(self, phone: str, body: str) -> str:
        """ZenRent's own reply to a phone (no landlord), queued the way routing queues it."""
        new_id = str(
            self.admin.execute("select private.queue_system_reply(%s, %s, 'test') as id", [phone, body]).fetchone()[
                "id"
            ]
        )
        self.ids.append(new_id)
        return new_id

    def row(self, message_id: str) -> dict:
        return self.admin.execute("select * from public.whatsapp_messages where id = %s", [message_id]).fetchone()

    def make_due(self, message_id: str) -> None:
        """Skip the database's backoff wait (the schedule itself is checked where it matters)."""
        self.admin.execute("update public.whatsapp_messages set next_attempt_at = now() where id = %s", [message_id])

    def cleanup(self) -> None:
        self.admin.execute(
            "update public.whatsapp_messages set status = 'failed', error_title = 'test cleanup' "
            "where id = any(%s::uuid[]) and status in ('queued', 'sending')",
            [self.ids],
        )
        for p in self.parked:
            self.admin.execute(
                "update public.whatsapp_messages set next_attempt_at = %s where id = %s "
                "and next_attempt_at = 'infinity'",
                [p["next_attempt_at"], p["id"]],
            )


@pytest.fixture()
def queue(admin, conversation) -> Iterator[Queue]:
    q = Queue(admin, conversation)
    yield q
    q.cleanup()


@pytest.fixture()
def fake(config) -> Iterator[FakeGraph]:
    server = FakeGraph(config.access_token, config.phone_number_id, config.graph_api_version).start()
    yield server
    server.stop()


@pytest.fixture()
def sender_config(config, fake) -> Config:
    return replace(
        config,
        graph_api_base=fake.base_url,
        sender_rate=1000.0,
        sender_idle_s=0.05,
        sender_http_timeout_s=5.0,
        db_pool_max=12,
    )


@pytest.fixture()
def make_sender(sender_config) -> Iterator:
    made: list[tuple[Sender, object]] = []

    def make(**overrides) -> Sender:
        cfg = replace(sender_config, **overrides)
        pool = make_pool(cfg, open_now=True, name="sender-test")
        s = Sender(cfg, pool)
        made.append((s, pool))
        return s

    yield make
    for s, pool in made:
        s.close()
        pool.close()


def drain(sender: Sender) -> None:
    while sender.run_once():
        pass


# -- request shape ----------------------------------------------------------------------------------
def test_text_request_shape_prefix_and_result(fake, queue, make_sender, config):
    mid = queue.text("The engineer comes on Thursday at 10.")
    make_sender().run_once()
    (req,) = fake.for_message(mid)
    assert req.path == f"/{config.graph_api_version}/{config.phone_number_id}/messages"
    assert req.headers["authorization"] == f"Bearer {config.access_token}"
    assert req.headers["content-type"] == "application/json"
    assert req.body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TOM,
        "type": "text",
        "text": {"body": "From Alice Hart via ZenRent:\nThe engineer comes on Thursday at 10.", "preview_url": False},
        "biz_opaque_callback_data": mid,
    }
    row = queue.row(mid)
    assert row["status"] == "sent" and row["wamid"].startswith("wamid.FAKE") and row["attempt_count"] == 1


def test_template_request_shape(fake, queue, make_sender):
    mid = queue.template("rent_reminder", "en_GB", ["Flat 1", "1 December"])
    make_sender().run_once()
    (req,) = fake.for_message(mid)
    assert req.body["type"] == "template" and req.body["to"] == TOM
    assert req.body["template"] == {
        "name": "rent_reminder",
        "language": {"code": "en_GB"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": t} for t in ("Alice Hart", "Flat 1", "1 December")],
            }
        ],
    }
    assert req.body["biz_opaque_callback_data"] == mid
    assert queue.row(mid)["status"] == "sent"


# -- rate limit -----------------------------------------------------------------------------------------
def test_rate_limit_is_respected(fake, queue, make_sender):
    # 40 different recipients, so that 8 threads send in parallel and only the bucket holds them back.
    ids = [queue.system_reply(f"4477009{i:05d}", f"Notice {i}") for i in range(40)]
    sender = make_sender(sender_rate=20.0, sender_concurrency=8, sender_batch_size=8)
    drain(sender)
    times = sorted(r.at for r in fake.requests)
    assert len(times) == 40 and {r.callback for r in fake.requests} == set(ids)
    assert times[-1] - times[0] >= 1.85  # 39 gaps of 1/20 s = 1.95 s
    # And never more than ~20 in any one-second window. The times are when the fake Graph API
    # received each request: the bucket releases one every 50 ms (capacity 1, no burst), but on a
    # loaded 2-core machine two requests can arrive bunched, so a window may hold one more (22).
    # Without the bucket, 8 threads would put all 40 into well under a second.
    assert max(sum(1 for t in times if s <= t < s + 1.0) for s in times) <= 22
    assert all(queue.row(i)["status"] == "sent" for i in ids)


# -- Meta's errors --------------------------------------------------------------------------------------------
def test_429_backs_off_then_the_message_is_retried(fake, queue, make_sender):
    first, second = queue.text("one"), queue.text("two")
    fake.script(
        meta_error(
            429,
            130429,
            "(#130429) Rate limit hit",
            "Cloud API message throughput has been reached.",
            headers={"Retry-After": "1"},
        )
    )
    sender = make_sender(sender_concurrency=1)
    before = datetime.now(UTC)
    sender.run_once()
    reqs = sorted(fake.requests, key=lambda r: r.at)
    assert [r.callback for r in reqs] == [first, second]
    assert reqs[1].at - reqs[0].at >= 0.95  # everything waited out Retry-After
    row = queue.row(first)
    assert row["status"] == "queued" and row["error_code"] == 130429 and row["attempt_count"] == 1
    assert (row["next_attempt_at"] - before).total_seconds() >= 1  # the database schedules the retry after it
    assert queue.row(second)["status"] == "sent"
    queue.make_due(first)
    sender.run_once()
    assert len(fake.for_message(first)) == 2 and queue.row(first)["status"] == "sent"


def test_a_long_back_off_hands_claimed_messages_back_instead_of_holding_them(fake, queue, make_sender):
    first, second = queue.text("one"), queue.text("two")
    fake.script(meta_error(429, 80007, "(#80007) Rate limit issues", headers={"Retry-After": "120"}))
    sender = make_sender(sender_concurrency=1)
    started = time.monotonic()
    sender.run_once()
    assert time.monotonic() - started < 5  # did not sit on `second` for two minutes
    assert [r.callback for r in fake.requests] == [first]
    now = datetime.now(UTC)
    for mid in (first, second):
        row = queue.row(mid)
        assert row["status"] == "queued" and (row["next_attempt_at"] - now).total_seconds() >= 115
    assert "long rate-limit back-off" in queue.row(second)["error_title"]
    assert sender.bucket.paused_for() > 100


def test_131047_fails_at_once_with_a_template_hint(fake, queue, make_sender):
    mid = queue.text("Are you home?")
    fake.script(
        meta_error(
            400,
            131047,
            "(#131047) Re-engagement message",
            "Message failed to send because more than 24 hours have passed since the customer last "
            "replied to this number.",
        )
    )
    sender = make_sender()
    sender.run_once()
    row = queue.row(mid)
    assert row["status"] == "failed" and row["error_code"] == 131047
    assert "send a template" in row["error_title"] and "send a template" in row["error_details"]["message"]
    sender.run_once()
    assert len(fake.for_message(mid)) == 1


def test_5xx_is_retried_then_succeeds(fake, queue, make_sender):
    mid = queue.text("Boiler update")
    fake.script(meta_error(500, 131000, "(#131000) Something went wrong"), Reply(503, {}))
    sender = make_sender()
    for expected_status in ("queued", "queued", "sent"):
        sender.run_once()
        row = queue.row(mid)
        assert row["status"] == expected_status
        if expected_status == "queued":
            assert row["next_attempt_at"] > datetime.now(UTC)  # backoff, not an immediate retry
            queue.make_due(mid)
    assert len(fake.for_message(mid)) == 3 and row["attempt_count"] == 3 and row["wamid"]


def test_5xx_gives_up_after_the_maximum_attempts(fake, queue, make_sender, admin):
    max_attempts = admin.execute("select outbound_max_attempts as n from private.whatsapp_settings").fetchone()["n"]
    mid = queue.text("Will never arrive")
    fake.responder = lambda rec: meta_error(503, 2, "(#2) Service temporarily unavailable")
    sender = make_sender()
    for _ in range(max_attempts):
        sender.run_once()
        queue.make_due(mid) if queue.row(mid)["status"] == "queued" else None
    row = queue.row(mid)
    assert row["status"] == "failed" and row["attempt_count"] == max_attempts and row["error_code"] == 2
    assert len(fake.for_message(mid)) == max_attempts
    sender.run_once()
    assert len(fake.for_message(mid)) == max_attempts


def test_network_error_before_sending_is_retried(queue, make_sender):
    mid = queue.text("Hello?")
    sender = make_sender(graph_api_base="http://127.0.0.1:9")  # nothing listens: connection refused
    sender.run_once()
    row = queue.row(mid)
    assert row["status"] == "queued" and row["attempt_count"] == 1 and "network error" in row["error_title"]


def test_permanent_4xx_fails_at_once_with_metas_code_and_title(fake, queue, make_sender):
    mid = queue.text("Hi")
    fake.script(
        meta_error(400, 131026, "(#131026) Message undeliverable", "Receiver is incapable of receiving this message")
    )
    sender = make_sender()
    sender.run_once()
    sender.run_once()
    row = queue.row(mid)
    assert row["status"] == "failed" and row["error_code"] == 131026 and "Message undeliverable" in row["error_title"]
    assert len(fake.for_message(mid)) == 1


def test_timeout_after_sending_is_never_retried(fake, queue, make_sender, admin):
    mid = queue.text("Maybe delivered")
    fake.hold()  # the request reaches Meta but no answer comes back in time
    sender = make_sender(sender_http_timeout_s=0.5)
    try:
        sender.run_once()
    finally:
        fake.release()
    row = queue.row(mid)
    assert row["status"] == "sending" and row["wamid"] is None
    sender.run_once()
    assert len(fake.for_message(mid)) == 1  # not re-sent
    admin.execute("update public.whatsapp_messages set claimed_at = now() - interval '10 minutes' where id = %s", [mid])
    assert sender.reconcile() >= 1
    assert queue.row(mid)["status"] == "needs_review"


# -- crashes and shutdown --------------------------------------------------------------------------------
def _spawn_sender(config: Config, fake: FakeGraph) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": config.database_url,
        "GRAPH_API_BASE": fake.base_url,
        "GRAPH_API_VERSION": config.graph_api_version,
        "WHATSAPP_PHONE_NUMBER_ID": config.phone_number_id,
        "WHATSAPP_ACCESS_TOKEN": config.access_token,
        "ZR_SENDER_IDLE_S": "0.05",
        "ZR_SENDER_RATE": "1000",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "app.sender"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _status_webhook(client, config: Config, wamid: str, message_id: str, status: str) -> dict:
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340500",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "442045770000",
                                "phone_number_id": config.phone_number_id,
                            },
                            "statuses": [
                                {
                                    "id": wamid,
                                    "status": status,
                                    "timestamp": str(int(time.time())),
                                    "recipient_id": TOM,
                                    "biz_opaque_callback_data": message_id,
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    body = json.dumps(payload).encode()
    resp = client.post(
        "/webhooks/whatsapp",
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, config.app_secret)},
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def test_kill_between_claim_and_completion_never_sends_twice(fake, queue, make_sender, admin, client, config):
    # Both are claimed together; one recipient's messages go out one after the other, so when the
    # sender dies the first has reached Meta (no answer recorded) and the second was never posted.
    accepted, unsent = queue.text("Accepted by Meta, then the sender died"), queue.text("Claimed, never posted")
    fake.hold()
    proc = _spawn_sender(config, fake)
    try:
        fake.wait_for(1, timeout=15)
        time.sleep(0.2)
        proc.kill()
        proc.wait(10)
    finally:
        fake.release()
        if proc.poll() is None:
            proc.kill()
    assert [queue.row(m)["status"] for m in (accepted, unsent)] == ["sending", "sending"]
    assert len(fake.for_message(accepted)) == 1 and len(fake.for_message(unsent)) == 0

    # A new sender does not re-send what the dead one had claimed.
    survivor = make_sender()
    assert survivor.run_once() == 0
    assert len(fake.requests) == 1

    # Meta's status webhook names our id: the message is reconciled with its wamid.
    summary = _status_webhook(client, config, "wamid.RECONCILED" + uuid.uuid4().hex, accepted, "delivered")
    assert summary["statuses"][0]["applied"] is True
    row = queue.row(accepted)
    assert row["status"] == "delivered" and row["wamid"].startswith("wamid.RECONCILED")
    # No word from Meta about the other one: after the timeout a person checks it; it is never re-sent.
    admin.execute(
        "update public.whatsapp_messages set claimed_at = now() - interval '10 minutes' where id = any(%s::uuid[])",
        [[accepted, unsent]],
    )
    assert survivor.reconcile() >= 1
    assert queue.row(unsent)["status"] == "needs_review" and queue.row(accepted)["status"] == "delivered"
    survivor.run_once()
    assert len(fake.requests) == 1


def test_one_recipients_messages_go_out_in_queue_order(fake, queue, make_sender):
    ids = [queue.text(f"Part {i} of 6") for i in range(6)]
    make_sender(sender_concurrency=8, sender_batch_size=8).run_once()
    assert [r.callback for r in sorted(fake.requests, key=lambda r: r.at)] == ids


def test_sigterm_finishes_the_message_in_flight_then_exits(fake, queue, config):
    mid = queue.text("Sent during shutdown")
    fake.hold()
    proc = _spawn_sender(config, fake)
    try:
        fake.wait_for(1, timeout=15)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert proc.poll() is None  # still finishing the request in flight
        fake.release()
        out, _ = proc.communicate(timeout=15)
    finally:
        fake.release()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out.decode()
    row = queue.row(mid)
    assert row["status"] == "sent" and row["wamid"].startswith("wamid.FAKE")
    assert len(fake.for_message(mid)) == 1
    log = out.decode()
    assert "event=sender.signal signal=SIGTERM" in log and "event=sender.stopped" in log
    assert "Sent during shutdown" not in log and config.access_token not in log
