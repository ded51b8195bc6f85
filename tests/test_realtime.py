"""Live inbox end to end: a tenant's webhook -> Postgres -> realtime.messages -> the local Realtime
stand-in (app/local/realtime.py) -> supabase-py's own async Realtime client inside
AsyncLandlordClient (app/client/realtime.py). RLS on realtime.messages decides who may join which
topic; the stand-in runs Realtime's own authorization SQL.

Until the real migrations land, supabase/migrations/20261129160000_tmp_realtime_contract.sql
provides the contract's policy and a `message` broadcast on landlord:<id>; the support events are
sent here with realtime.send(), as the real triggers will.

The module builds its own landlords, support user and tenants (phones from Ofcom's drama range
07700 900900-900999, unused by the seed and by tests/test_landlord_client.py) and removes them.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from realtime import ChannelEvents, RealtimeAcknowledgementStatus
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from app.client import (
    AsyncLandlordClient,
    HeldEvent,
    MessageEvent,
    RawEvent,
    RealtimeEvent,
    SubscriptionRefused,
    landlord_topic,
)
from app.config import DEFAULT_DB_PORT
from app.local.realtime import RealtimeConfig, RealtimeServer, verify_token
from app.local.tokens import LOCAL_ANON_KEY, LOCAL_JWT_SECRET, LOCAL_SERVICE_ROLE_KEY, mint_token
from app.service import create_app
from app.webhook import sign

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")
#: What the contract allows in a `message` payload: nothing else may reach a landlord.
MESSAGE_KEYS = {
    "id",
    "conversation_id",
    "direction",
    "type",
    "body",
    "status",
    "sent_at",
    "is_from_tenant",
    "media_mime_type",
    "media_caption",
    "landlord_signature",
    "conversation",  # the conversation's list entry after the message (unread count, preview)
}
QUIET_S = 0.5  # how long "nothing arrives" is watched for


# -- the world ----------------------------------------------------------------------------------
@dataclass
class World:
    l1: str
    l2: str
    support: str
    phones: dict[str, str]  # landlord id -> the phone of their one tenant


@pytest.fixture(scope="module")
def admin(config) -> Iterator[psycopg.Connection]:
    with psycopg.connect(config.database_url, autocommit=True, row_factory=dict_row) as conn:
        yield conn


def _free_phones(admin, n: int) -> list[str]:
    taken = {
        r["p"]
        for r in admin.execute(
            "select phone_e164 as p from public.tenants where phone_e164 is not null "
            "union select tenant_phone from public.whatsapp_messages where tenant_phone is not null"
        ).fetchall()
    }
    free = [p for p in (f"447700900{i}" for i in range(900, 1000)) if p not in taken]
    assert len(free) >= n, "no free test phone numbers left in 07700 900900-900999"
    return free[:n]


def _create_user(admin, uid: str, name: str, *, support: bool = False) -> None:
    email = f"{name.split()[0].lower()}.{uid[:8]}@realtime-test.zenrent.test"
    app_meta = {"provider": "email", **({"role": "support"} if support else {})}
    admin.execute(
        "insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data) "
        "values (%s, 'authenticated', 'authenticated', %s, %s, %s)",
        [uid, email, json.dumps(app_meta), json.dumps({"full_name": name})],
    )
    if not support:
        admin.execute(
            "insert into public.user_profiles (id, full_name, email, whatsapp_enabled, whatsapp_opted_in_at) "
            "values (%s, %s, %s, true, now())",
            [uid, name, email],
        )


def _give_tenant(admin, landlord: str, phone: str) -> None:
    prop = admin.execute(
        "insert into public.properties (user_id, address, city) values (%s, %s, 'York') returning id",
        [landlord, f"{landlord[:4]} Live Street"],
    ).fetchone()["id"]
    tenant = admin.execute(
        "insert into public.tenants (user_id, name, phone) values (%s, 'Live tenant', %s) returning id",
        [landlord, f"+44 7700 {phone[-6:]}"],
    ).fetchone()["id"]
    admin.execute(
        "insert into public.leases (tenant_id, property_id, status, start_date) "
        "values (%s, %s, 'active', '2025-01-01')",
        [tenant, prop],
    )


@pytest.fixture(scope="module")
def world(admin) -> Iterator[World]:
    l1, l2, support = (str(uuid.uuid4()) for _ in range(3))
    phones = _free_phones(admin, 2)
    w = World(l1, l2, support, {l1: phones[0], l2: phones[1]})
    topics = [landlord_topic(l1), landlord_topic(l2), "support"]
    try:
        _create_user(admin, l1, "Rhea Live")
        _create_user(admin, l2, "Sam Live")
        _create_user(admin, support, "Sol Support", support=True)
        for landlord, phone in w.phones.items():
            _give_tenant(admin, landlord, phone)
        yield w
    finally:
        admin.execute(
            "delete from public.whatsapp_messages where tenant_phone = any(%s) or landlord_id = any(%s)",
            [phones, [l1, l2]],
        )
        admin.execute("delete from private.phone_preferences where phone = any(%s)", [phones])
        admin.execute("delete from auth.users where id = any(%s)", [[l1, l2, support]])
        admin.execute("delete from realtime.messages where topic = any(%s)", [topics])


@pytest.fixture(scope="module")
def rt(config) -> Iterator[RealtimeServer]:
    env = {"ZR_ENV": "development", "DATABASE_URL": config.database_url}
    server = RealtimeServer(RealtimeConfig.from_env(env), port=0).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def webhook(config):
    flask_app = create_app(config)
    flask_app.testing = True
    yield flask_app.test_client()
    flask_app.extensions["zr_pool"].close()


# -- helpers ------------------------------------------------------------------------------------
def run(coro: Awaitable[T], timeout: float = 30) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def tenant_writes(webhook, config, phone: str, text: str) -> dict[str, Any]:
    """A signed Cloud API webhook with one text from `phone`; the routing result of the message."""
    body = json.dumps(
        {
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
                                "contacts": [{"profile": {"name": "A tenant"}, "wa_id": phone}],
                                "messages": [
                                    {
                                        "from": phone,
                                        "id": f"wamid.LIVETEST{uuid.uuid4().hex}",
                                        "timestamp": str(int(time.time())),
                                        "type": "text",
                                        "text": {"body": text},
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()
    resp = webhook.post(
        "/webhooks/whatsapp",
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, config.app_secret)},
    )
    assert resp.status_code == 200, resp.get_json()
    [result] = resp.get_json()["messages"]
    return result


async def live(rt: RealtimeServer, token: str) -> AsyncLandlordClient:
    return await AsyncLandlordClient.create(rt.url, LOCAL_ANON_KEY, token)


async def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def send(admin, topic: str, event: str, payload: dict[str, Any], private: bool = True) -> None:
    """Broadcast from the database, as the real triggers will (realtime.send, as postgres)."""
    admin.execute("select realtime.send(%s::jsonb, %s, %s, %s)", [json.dumps(payload), event, topic, private])


# -- the contract, end to end --------------------------------------------------------------------
def test_a_tenant_message_reaches_its_landlord_within_a_second_and_no_one_else(rt, world, config, webhook, admin):
    async def scenario() -> tuple[list[RealtimeEvent], list[RealtimeEvent], float, dict[str, Any]]:
        mine: list[RealtimeEvent] = []
        theirs: list[RealtimeEvent] = []
        async with await live(rt, mint_token(world.l1)) as c1, await live(rt, mint_token(world.l2)) as c2:
            await c1.channel().on_broadcast("*", mine.append).subscribe()
            await c2.channel().on_broadcast("*", theirs.append).subscribe()
            assert (await asyncio.to_thread(webhook.get, "/healthz")).status_code == 200  # the pool is open
            t0 = time.monotonic()
            routed = await asyncio.to_thread(
                tenant_writes, webhook, config, world.phones[world.l1], "The boiler is making a noise."
            )
            assert await wait_for(lambda: any(isinstance(e, MessageEvent) for e in mine), timeout=1.0)
            elapsed = time.monotonic() - t0
            await asyncio.sleep(QUIET_S)
        return mine, theirs, elapsed, routed

    mine, theirs, elapsed, routed = run(scenario())
    assert (routed["routing_status"], routed["landlord_id"]) == ("delivered", world.l1)
    assert elapsed < 1.0, f"the landlord heard of the message after {elapsed:.3f}s"
    [event] = [e for e in mine if isinstance(e, MessageEvent)]
    assert event.id == uuid.UUID(routed["message_id"])
    assert (event.direction, event.is_from_tenant, event.type) == ("incoming", True, "text")
    assert event.body == "The boiler is making a noise." and event.conversation_id is not None
    assert theirs == [], "another landlord heard of the message"
    row = admin.execute(
        "select payload, private, extension from realtime.messages where topic = %s and event = 'message' "
        "and payload ->> 'id' = %s",
        [landlord_topic(world.l1), routed["message_id"]],
    ).fetchone()
    assert row["private"] is True and row["extension"] == "broadcast"
    assert set(row["payload"]) == MESSAGE_KEYS, "a broadcast payload carries only the contract's fields"


def test_joining_another_landlords_topic_is_refused(rt, world):
    async def scenario() -> SubscriptionRefused:
        async with await live(rt, mint_token(world.l2)) as c2:
            with pytest.raises(SubscriptionRefused) as refused:
                await c2.channel(landlord_topic(world.l1)).subscribe()
            await c2.channel().subscribe()  # the same client still joins its own topic
            return refused.value

    refused = run(scenario())
    assert refused.code == "Unauthorized"
    assert refused.reason == (
        f"Unauthorized: You do not have permissions to read from this Channel topic: landlord:{world.l1}"
    )


def test_anon_and_landlords_are_refused_what_is_not_theirs(rt, world):
    async def refusal(token: str, topic: str) -> str | None:
        async with await live(rt, token) as client:
            try:
                await client.channel(topic).subscribe()
            except SubscriptionRefused as exc:
                return exc.code
            return None

    assert run(refusal(LOCAL_ANON_KEY, landlord_topic(world.l1))) == "Unauthorized"
    assert run(refusal(LOCAL_ANON_KEY, "support")) == "Unauthorized"
    assert run(refusal(mint_token(world.l1), "support")) == "Unauthorized"
    expired = mint_token(world.l1, extra_claims={"exp": int(time.time()) - 30})
    assert run(refusal(expired, landlord_topic(world.l1))) == "InvalidJWTToken"
    forged = mint_token(world.l1, secret="not-the-project-secret-but-32-chars-long")
    assert run(refusal(forged, landlord_topic(world.l1))) == "JwtSignatureError"


def test_no_client_can_send_on_a_topic(rt, world):
    """A landlord's own broadcast is dropped by the write check (no insert policy); the same push
    from the service role (BYPASSRLS) goes through, so the refusal is the policy, not the test."""
    topic = landlord_topic(world.l1)
    config = {"broadcast": {"ack": True, "self": True}, "presence": {"key": "", "enabled": False}, "private": True}

    async def attempt(sender_token: str) -> tuple[bool, list[RealtimeEvent]]:
        heard: list[RealtimeEvent] = []
        acked = asyncio.Event()
        async with await live(rt, mint_token(world.l1)) as listener, await live(rt, sender_token) as sender:
            await listener.channel().on_broadcast("*", heard.append).subscribe()
            raw = sender.supabase.channel(topic, {"config": config})  # supabase-py's own channel, no wrapper
            await raw.subscribe()
            push = await raw.push(ChannelEvents.broadcast, {"type": "broadcast", "event": "message", "payload": {}})
            push.receive(RealtimeAcknowledgementStatus.Ok, lambda _: acked.set())
            await wait_for(lambda: acked.is_set() and bool(heard), timeout=1.0)
            await asyncio.sleep(QUIET_S)
        return acked.is_set(), heard

    assert run(attempt(mint_token(world.l1))) == (False, []), "a landlord could broadcast on their topic"
    acked, heard = run(attempt(LOCAL_SERVICE_ROLE_KEY))
    assert acked and [type(e) for e in heard] == [RawEvent], "the control push (service role) did not go through"


def test_support_hears_held_messages_and_unknown_events_pass_through_raw(rt, world, admin):
    held = {
        "id": str(uuid.uuid4()),
        "routing_status": "ambiguous",
        "tenant_phone": "447700900999",
        "sent_at": "2026-11-29T10:00:00+00:00",
        "preview": "Is this Rhea's number?",
    }

    async def scenario() -> list[RealtimeEvent]:
        heard: list[RealtimeEvent] = []
        token = mint_token(world.support, app_metadata={"provider": "email", "role": "support"})
        async with await live(rt, token) as client:
            assert client.is_support
            await client.channel(client.support_topic).on_broadcast("*", heard.append).subscribe()
            await asyncio.to_thread(send, admin, "support", "held", held)
            await asyncio.to_thread(send, admin, "support", "something_new", {"id": held["id"], "x": 1})
            await wait_for(lambda: len(heard) == 2, timeout=1.0)
        return heard

    heard = run(scenario())
    assert heard[0] == HeldEvent(
        id=uuid.UUID(held["id"]),
        routing_status="ambiguous",
        tenant_phone="447700900999",
        sent_at=HeldEvent.from_payload(held).sent_at,
        preview="Is this Rhea's number?",
    )
    assert heard[1] == RawEvent("something_new", {"id": held["id"], "x": 1})


def test_a_public_channel_never_hears_private_broadcasts(rt, world, admin):
    """Realtime does not authorize public channels: anyone may join `landlord:<id>` publicly. It
    hears only rows sent with private = false, which is why every ZenRent topic is private."""

    async def scenario() -> list[RealtimeEvent]:
        heard: list[RealtimeEvent] = []
        async with await live(rt, LOCAL_ANON_KEY) as anon:
            await anon.channel(landlord_topic(world.l1), private=False).on_broadcast("*", heard.append).subscribe()
            await asyncio.to_thread(send, admin, landlord_topic(world.l1), "message_status", {"id": "x"}, True)
            await asyncio.to_thread(send, admin, landlord_topic(world.l1), "public_note", {"n": 1}, False)
            await wait_for(lambda: bool(heard), timeout=1.0)
            await asyncio.sleep(QUIET_S)
        return heard

    heard = run(scenario())
    assert [(type(e), getattr(e, "event", None), getattr(e, "payload", {}).get("n")) for e in heard] == [
        (RawEvent, "public_note", 1)
    ]


def test_a_refreshed_token_is_rechecked_and_another_users_token_closes_the_channel(rt, world, admin):
    """supabase-py sends `access_token` on joined channels after set_auth; Realtime re-runs the read
    check with the new token and shuts the channel down (system error, phx_close) when it fails."""

    async def scenario() -> tuple[list[RealtimeEvent], list[tuple[str, str | None]]]:
        heard: list[RealtimeEvent] = []
        states: list[tuple[str, str | None]] = []
        async with await live(rt, mint_token(world.l1)) as client:
            inbox = client.channel().on_broadcast("*", heard.append).on_status(lambda s, r: states.append((s, r)))
            await inbox.subscribe()
            await client.set_auth(mint_token(world.l1, expires_in=7200))  # the same user, refreshed
            await asyncio.to_thread(send, admin, landlord_topic(world.l1), "still_here", {"n": 1})
            assert await wait_for(lambda: bool(heard), timeout=1.0)
            await client.set_auth(mint_token(world.l2))  # someone else's token on this socket
            await wait_for(lambda: any(s == "CLOSED" for s, _ in states), timeout=2.0)
            assert not inbox.is_joined
        return heard, states

    heard, states = run(scenario())
    assert [getattr(e, "event", None) for e in heard] == ["still_here"]
    assert states[0] == (
        "CHANNEL_ERROR",
        f"You do not have permissions to read from this Channel topic: landlord:{world.l1}",
    )
    assert states[-1] == ("CLOSED", None)


# -- the protocol as the real server speaks it -----------------------------------------------------
def _ws_url(rt: RealtimeServer, apikey: str | None = LOCAL_ANON_KEY, path: str = "/realtime/v1/websocket") -> str:
    query = f"?apikey={apikey}&vsn=1.0.0" if apikey else "?vsn=1.0.0"
    return rt.url.replace("http://", "ws://") + path + query


def test_phoenix_v1_frames_as_realtime_sends_them(rt, world):
    """Raw frames: heartbeats, an unmatched topic, a join (ok with postgres_changes: []), a refused
    join ({reason}), leave (ok, then phx_close with the join ref)."""
    topic = f"realtime:{landlord_topic(world.l1)}"
    join = {"config": {"broadcast": {"self": False}, "presence": {"enabled": False}, "private": True}}

    async def scenario() -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = []
        async with connect(_ws_url(rt)) as ws:

            async def exchange(message: dict[str, Any], replies: int = 1) -> None:
                await ws.send(json.dumps(message))
                for _ in range(replies):
                    frames.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))

            await exchange({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "1"})
            # supabase-py 2.34 sends its heartbeat with ref and join_ref null
            await exchange({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": None, "join_ref": None})
            await exchange({"topic": "elsewhere", "event": "broadcast", "payload": {}, "ref": "2"})
            await exchange(
                {"topic": topic, "event": "phx_join", "payload": join, "ref": "3", "join_ref": "3"}
            )  # anon key: refused
            token = {**join, "access_token": mint_token(world.l1)}
            await exchange({"topic": topic, "event": "phx_join", "payload": token, "ref": "4", "join_ref": "4"})
            await exchange({"topic": topic, "event": "phx_leave", "payload": {}, "ref": "5", "join_ref": "4"}, 2)
        return frames

    frames = run(scenario())
    assert frames == [
        {"topic": "phoenix", "event": "phx_reply", "payload": {"status": "ok", "response": {}}, "ref": "1"},
        {"topic": "phoenix", "event": "phx_reply", "payload": {"status": "ok", "response": {}}, "ref": None},
        {
            "topic": "elsewhere",
            "event": "phx_reply",
            "payload": {"status": "error", "response": {"reason": "unmatched topic"}},
            "ref": "2",
        },
        {
            "topic": topic,
            "event": "phx_reply",
            "payload": {
                "status": "error",
                "response": {
                    "reason": "Unauthorized: You do not have permissions to read from this Channel topic: "
                    + landlord_topic(world.l1)
                },
            },
            "ref": "3",
        },
        {
            "topic": topic,
            "event": "phx_reply",
            "payload": {"status": "ok", "response": {"postgres_changes": []}},
            "ref": "4",
        },
        {"topic": topic, "event": "phx_reply", "payload": {"status": "ok", "response": {}}, "ref": "5"},
        {"topic": topic, "event": "phx_close", "payload": {}, "ref": "4"},
    ]


@pytest.mark.parametrize(
    ("apikey", "path", "status", "error"),
    [
        (None, "/realtime/v1/websocket", 401, "API key is missing"),
        ("not-a-jwt", "/realtime/v1/websocket", 401, "The token provided is not a valid JWT"),
        (mint_token(str(uuid.uuid4()), extra_claims={"exp": 1}), "/realtime/v1/websocket", 401, "Token has expired"),
        (LOCAL_ANON_KEY, "/rest/v1/websocket", 404, "Not found"),
    ],
)
def test_the_upgrade_is_refused_as_realtime_refuses_it(rt, apikey, path, status, error):
    async def scenario() -> tuple[int, dict[str, Any]]:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(_ws_url(rt, apikey, path)):
                pass
        response = refused.value.response
        return response.status_code, json.loads(response.body)

    assert run(scenario()) == (status, {"error": error})


def test_tokens_are_verified_as_realtime_verifies_them():
    now = int(time.time())
    good = mint_token(str(uuid.uuid4()))
    assert verify_token(good, LOCAL_JWT_SECRET)["role"] == "authenticated"
    assert verify_token(f" {good[:20]}\n{good[20:]} ", LOCAL_JWT_SECRET)  # whitespace is stripped, as Realtime does
    cases = {
        "InvalidJWTToken": mint_token(str(uuid.uuid4()), extra_claims={"exp": now - 5}),
        "MalformedJWT": "a.b.c",
        "JwtSignatureError": mint_token(str(uuid.uuid4()), secret="another-secret-of-at-least-32-characters"),
    }
    for code, token in cases.items():
        with pytest.raises(Exception) as refused:
            verify_token(token, LOCAL_JWT_SECRET)
        assert getattr(refused.value, "code", None) == code, code
    import jwt as pyjwt

    no_exp = pyjwt.encode({"role": "anon"}, LOCAL_JWT_SECRET, algorithm="HS256")
    with pytest.raises(Exception, match="Fields `role` and `exp` are required in JWT"):
        verify_token(no_exp, LOCAL_JWT_SECRET)


def test_the_stand_in_listens_on_loopback_only():
    config = RealtimeConfig(database_url="postgresql://unused", jwt_secret=LOCAL_JWT_SECRET)
    with pytest.raises(ValueError, match="loopback"):
        RealtimeServer(config, host="0.0.0.0")


def test_realtime_script_serves_and_stops_on_sigterm(config):
    port = conninfo_to_dict(config.database_url).get("port", DEFAULT_DB_PORT)
    env = {**os.environ, "DATABASE_URL": config.database_url, "ZR_DB_PORT": str(port)}
    proc = subprocess.Popen(
        [str(ROOT / "scripts/realtime"), "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            match = re.search(r"url=(ws://127\.0\.0\.1:\d+/realtime/v1/websocket)", proc.stdout.readline())
            url = match.group(1) if match else None
        assert url, "scripts/realtime did not announce its URL"

        async def heartbeat() -> dict[str, Any]:
            async with connect(f"{url}?apikey={LOCAL_ANON_KEY}&vsn=1.0.0") as ws:
                await ws.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "1"}))
                return json.loads(await asyncio.wait_for(ws.recv(), 5))

        assert run(heartbeat())["payload"] == {"status": "ok", "response": {}}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        proc.stdout.close()
