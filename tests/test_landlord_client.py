"""The landlord client (app/client) end to end: supabase-py over real HTTP against the local Data
API stand-in, the real webhook (app/webhook.py, Flask test client, signed payloads), the real
sender (app/sender.py) posting to tests/fake_graph.py, and Postgres RLS deciding everything.

The module builds its own small world and removes it afterwards, so it neither depends on nor
disturbs the seed data: three landlords (two opted in, one not), a tenant phone shared by the
first two (a tenant renting from both), and phones that belong to the first landlord alone. All
phones are free numbers picked at random from Ofcom's drama range 07700 900600-900899.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from app.client import (
    Blocked,
    ConsentPending,
    EmptyBody,
    InvalidValue,
    LandlordClient,
    MessageTooLong,
    NoLandlordProfile,
    NotAllowed,
    NotAuthenticated,
    NotFound,
    NotOptedIn,
    TenantOptedOut,
    WindowClosed,
)
from app.db import make_pool
from app.local.dataapi import DataApiConfig, DataApiServer
from app.local.tokens import LOCAL_ANON_KEY, mint_token
from app.sender import Sender
from app.service import create_app
from app.webhook import sign
from fake_graph import FakeGraph

L1_NAME, L2_NAME, L3_NAME = "Nadia Ferreira", "Owen Mensah", "Ines Kowalczyk"


# -- the world ----------------------------------------------------------------------------------
@dataclass
class World:
    l1: str
    l2: str
    l3: str
    phones: dict[str, str]  # role -> E.164 digits
    tenants: dict[str, str] = field(default_factory=dict)  # role -> tenant id
    wamids: list[str] = field(default_factory=list)

    @property
    def landlords(self) -> list[str]:
        return [self.l1, self.l2, self.l3]


def _free_phones(admin, n: int) -> list[str]:
    rng = random.Random()
    taken = {
        r["p"]
        for r in admin.execute(
            "select phone_e164 as p from public.tenants where phone_e164 is not null "
            "union select tenant_phone from public.whatsapp_messages where tenant_phone is not null "
            "union select phone from private.phone_preferences "
            "union select tenant_phone from public.whatsapp_conversations"
        ).fetchall()
    }
    free = [p for p in (f"447700900{i}" for i in range(600, 900)) if p not in taken]
    assert len(free) >= n, "no free test phone numbers left in 07700 900600-900899"
    return rng.sample(free, n)


@pytest.fixture(scope="module")
def admin(config) -> Iterator[psycopg.Connection]:
    with psycopg.connect(config.database_url, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture(scope="module")
def world(admin) -> Iterator[World]:
    roles = ["shared", "story", "rules", "x1", "x2", "x3", "pages", "l3", "pick"]
    w = World(
        str(uuid.uuid4()),
        str(uuid.uuid4()),
        str(uuid.uuid4()),
        dict(zip(roles, _free_phones(admin, len(roles)), strict=True)),
    )
    try:
        for uid, name, enabled in ((w.l1, L1_NAME, True), (w.l2, L2_NAME, True), (w.l3, L3_NAME, False)):
            email = f"{name.split()[0].lower()}.{uid[:8]}@client-test.zenrent.test"
            admin.execute(
                "insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data) "
                "values (%s, 'authenticated', 'authenticated', %s, '{\"provider\":\"email\"}', %s)",
                [uid, email, json.dumps({"full_name": name})],
            )
            admin.execute(
                "insert into public.user_profiles (id, full_name, email, whatsapp_enabled, whatsapp_opted_in_at) "
                "values (%s, %s, %s, %s, case when %s then now() end)",
                [uid, name, email, enabled, enabled],
            )
        props = {}
        for uid in w.landlords:
            props[uid] = admin.execute(
                "insert into public.properties (user_id, address, city) values (%s, %s, 'Leeds') returning id::text",
                [uid, f"{uid[:4]} Test Street"],
            ).fetchone()["id"]
        owners = {
            "shared": w.l1,
            "shared2": w.l2,
            "pick": w.l1,
            "pick2": w.l2,
            "story": w.l1,
            "rules": w.l1,
            "x1": w.l1,
            "x2": w.l1,
            "x3": w.l1,
            "pages": w.l1,
            "l3": w.l3,
        }
        for role, owner in owners.items():
            phone = w.phones[{"shared2": "shared", "pick2": "pick"}.get(role, role)]
            typed = f"+44 7700 {phone[-6:]}"  # as a landlord types it
            tid = admin.execute(
                "insert into public.tenants (user_id, name, phone) values (%s, %s, %s) returning id::text",
                [owner, f"Tenant {role}", typed],
            ).fetchone()["id"]
            admin.execute(
                "insert into public.leases (tenant_id, property_id, status, start_date) "
                "values (%s, %s, 'active', '2025-01-01')",
                [tid, props[owner]],
            )
            w.tenants[role] = tid
        yield w
    finally:
        phones = list(w.phones.values())
        admin.execute(
            "delete from public.whatsapp_messages where tenant_phone = any(%s) or landlord_id = any(%s) "
            "or user_id = any(%s)",
            [phones, w.landlords, w.landlords],
        )
        admin.execute("delete from private.phone_preferences where phone = any(%s)", [phones])
        admin.execute("delete from private.pending_message_statuses where wamid = any(%s)", [w.wamids])
        admin.execute("delete from auth.users where id = any(%s)", [w.landlords])


@pytest.fixture(scope="module")
def api(config) -> Iterator[DataApiServer]:
    server = DataApiServer(
        DataApiConfig.from_env({"ZR_ENV": "development", "DATABASE_URL": config.database_url}), port=0
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def webhook(config):
    flask_app = create_app(config)
    flask_app.testing = True
    yield flask_app.test_client()
    flask_app.extensions["zr_pool"].close()


@pytest.fixture(scope="module")
def fake(config) -> Iterator[FakeGraph]:
    server = FakeGraph(config.access_token, config.phone_number_id, config.graph_api_version).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sender_pool(config):
    pool = make_pool(config, name="zenrent-client-test-sender")
    pool.open(wait=True, timeout=10)
    yield pool
    pool.close()


def landlord(api: DataApiServer, uid: str, **claims: Any) -> LandlordClient:
    return LandlordClient(api.url, LOCAL_ANON_KEY, mint_token(uid, **claims))


@pytest.fixture(scope="module")
def l1(api, world) -> Iterator[LandlordClient]:
    with landlord(api, world.l1) as client:
        yield client


@pytest.fixture(scope="module")
def l2(api, world) -> Iterator[LandlordClient]:
    with landlord(api, world.l2) as client:
        yield client


@pytest.fixture(scope="module")
def l3(api, world) -> Iterator[LandlordClient]:
    with landlord(api, world.l3) as client:
        yield client


# -- what a tenant's phone and Meta do ----------------------------------------------------------
def deliver(webhook, config, world: World, value: dict[str, Any]) -> dict[str, Any]:
    """POST one signed Cloud API webhook to the real webhook endpoint; returns its summary."""
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
                                **value,
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
    return resp.get_json()


def tenant_writes(
    webhook, config, world: World, phone: str, *texts: str, context: str | None = None, at: int | None = None
) -> list[dict[str, Any]]:
    """The tenant's phone sends texts (one webhook, same timestamp); returns the routing results."""
    messages = []
    for text in texts:
        wamid = f"wamid.CLIENTTEST{uuid.uuid4().hex}"
        world.wamids.append(wamid)
        msg: dict[str, Any] = {
            "from": phone,
            "id": wamid,
            "timestamp": str(at or int(time.time())),
            "type": "text",
            "text": {"body": text},
        }
        if context:
            msg["context"] = {"from": "442045770000", "id": context}
        messages.append(msg)
    summary = deliver(
        webhook, config, world, {"contacts": [{"profile": {"name": "A tenant"}, "wa_id": phone}], "messages": messages}
    )
    return summary["messages"]


def consent_token(admin, landlord: str, phone: str, answer: int = 0) -> str:
    """The option id of ZenRent's newest consent request about a landlord (0 yes, 1 no, 2 report):
    a reply button inside the 24-hour window, a template quick reply outside it."""
    row = admin.execute(
        "select m.interactive, m.template from public.whatsapp_messages m where m.landlord_id = %s "
        "and m.tenant_phone = %s and m.routing_status = 'system' order by m.created_at desc limit 1",
        [landlord, phone],
    ).fetchone()
    if row["interactive"]:
        return str(row["interactive"]["action"]["buttons"][answer]["reply"]["id"])
    buttons = [c for c in row["template"]["components"] if c["type"] == "button"]
    return str(buttons[answer]["parameters"][0]["payload"])


def tenant_taps(webhook, config, world: World, phone: str, token: str, *, quick_reply: bool = False) -> dict[str, Any]:
    """The tenant taps an option: an interactive button_reply, or a template's quick reply (type button)."""
    wamid = f"wamid.CLIENTTEST{uuid.uuid4().hex}"
    world.wamids.append(wamid)
    msg: dict[str, Any] = {"from": phone, "id": wamid, "timestamp": str(int(time.time()))}
    if quick_reply:
        msg |= {"type": "button", "button": {"payload": token, "text": "Yes, my landlord"}}
    else:
        msg |= {
            "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": token, "title": "Yes"}},
        }
    [result] = deliver(webhook, config, world, {"messages": [msg]})["messages"]
    return result


def meta_reports(
    webhook, config, world: World, wamid: str, phone: str, message_id: uuid.UUID, *statuses: tuple[str, int]
) -> dict[str, Any]:
    world.wamids.append(wamid)
    return deliver(
        webhook,
        config,
        world,
        {
            "statuses": [
                {
                    "id": wamid,
                    "status": status,
                    "timestamp": str(ts),
                    "recipient_id": phone,
                    "biz_opaque_callback_data": str(message_id),
                }
                for status, ts in statuses
            ]
        },
    )


def send_queued(config, pool, fake: FakeGraph, admin, *message_ids: uuid.UUID) -> None:
    """Run the real sender until the given messages are out; other queued rows are parked meanwhile."""
    mine = [str(m) for m in message_ids]
    parked = admin.execute(
        "with p as (select id, next_attempt_at from public.whatsapp_messages where status = 'queued' "
        "and id <> all(%s::uuid[]) for update) update public.whatsapp_messages m set next_attempt_at = 'infinity' "
        "from p where m.id = p.id returning p.id, p.next_attempt_at",
        [mine],
    ).fetchall()
    sender = Sender(replace(config, graph_api_base=fake.base_url), pool)
    try:
        for _ in range(20):
            if sender.run_once() == 0:
                break
    finally:
        sender.close()
        for p in parked:
            admin.execute(
                "update public.whatsapp_messages set next_attempt_at = %s where id = %s "
                "and next_attempt_at = 'infinity'",
                [p["next_attempt_at"], p["id"]],
            )
    for m in mine:
        assert len(fake.for_message(m)) == 1, f"message {m} was not posted exactly once"


def conversation_for(client: LandlordClient, phone: str):
    found = [c for c in client.list_conversations(status=None, limit=500).items if c.tenant_phone == phone]
    return found[0] if found else None


# -- the full story -----------------------------------------------------------------------------
def test_full_story_from_tenant_webhook_to_read_receipt(world, config, webhook, fake, sender_pool, admin, l1, l2):
    phone = world.phones["story"]
    unread_before = l1.unread_total()

    # 1. The tenant writes to the central number; the webhook files it under the only landlord.
    [routed] = tenant_writes(webhook, config, world, phone, "Hi Nadia, the kitchen tap is dripping again.")
    assert routed["routing_status"] == "delivered" and routed["landlord_id"] == world.l1

    # 2. The landlord's client lists it unread, first.
    first = l1.list_conversations(order="unread_first", limit=1).items[0]
    assert (first.tenant_phone, first.unread_count) == (phone, 1)
    assert first.last_message_preview == "Hi Nadia, the kitchen tap is dripping again."
    assert first.window_expires_at is not None
    assert l1.unread_total() == unread_before + 1
    newest = l1.list_messages(first.id, limit=1).items[0]
    assert (newest.direction, newest.is_from_tenant, newest.status) == ("incoming", True, "received")
    assert newest.body == "Hi Nadia, the kitchen tap is dripping again." and newest.wamid == routed["wamid"]
    assert conversation_for(l2, phone) is None  # the other landlord sees nothing of it

    # 3. Marks it read.
    l1.mark_read(first.id)
    assert l1.get_conversation(first.id).unread_count == 0
    assert l1.unread_total() == unread_before

    # 4. Replies: queued with the signature kept apart from the landlord's own text.
    text = "Thanks, a plumber will come tomorrow at 9."
    reply_id = l1.send_message(first.id, text)
    queued = l1.list_messages(first.id, limit=1).items[0]
    assert queued.id == reply_id and (queued.direction, queued.status, queued.body) == ("outgoing", "queued", text)
    assert queued.landlord_signature == f"From {L1_NAME} via ZenRent:"
    assert queued.text_as_sent == f"From {L1_NAME} via ZenRent:\n{text}"

    # 5. The sender posts it to (fake) Meta with the prefix.
    send_queued(config, sender_pool, fake, admin, reply_id)
    [posted] = fake.for_message(reply_id)
    assert posted.path == f"/{config.graph_api_version}/{config.phone_number_id}/messages"
    assert posted.body["to"] == phone and posted.body["type"] == "text"
    assert posted.body["text"]["body"] == f"From {L1_NAME} via ZenRent:\n{text}"
    sent = l1.get_message(reply_id)
    assert sent.status == "sent" and sent.wamid and sent.wamid.startswith("wamid.FAKE")

    # 6. Meta's status webhooks: delivered, then read (the second delivered late, out of order).
    now = int(time.time())
    meta_reports(
        webhook,
        config,
        world,
        sent.wamid,
        phone,
        reply_id,
        ("delivered", now + 1),
        ("read", now + 5),
        ("delivered", now + 9),
    )

    # 7. The client shows it read, with both times.
    shown = l1.list_messages(first.id, limit=1).items[0]
    assert shown.id == reply_id and shown.status == "read"
    assert int(shown.delivered_at.timestamp()) == now + 1 and int(shown.read_at.timestamp()) == now + 5
    conversation = l1.get_conversation(first.id)
    assert conversation.last_message_preview == text and conversation.unread_count == 0
    with pytest.raises(NotFound):
        l2.get_message(reply_id)


# -- two landlords, one tenant phone --------------------------------------------------------------
def test_shared_tenant_phone_each_landlord_sees_only_their_own(
    world, config, webhook, fake, sender_pool, admin, l1, l2
):
    phone = world.phones["shared"]

    # A message with no hint of which landlord it is for is held: neither sees it.
    [held] = tenant_writes(webhook, config, world, phone, "Hello, who is this for?")
    assert held["routing_status"] == "ambiguous" and held["landlord_id"] is None
    for client in (l1, l2):
        assert conversation_for(client, phone) is None
        assert client.supabase.table("whatsapp_messages").select("id").eq("id", held["message_id"]).execute().data == []

    # Each opens their own conversation with the same phone.
    c1 = l1.start_conversation(world.tenants["shared"])
    c2 = l2.start_conversation(world.tenants["shared2"])
    assert c1 != c2
    assert l1.start_conversation(world.tenants["shared"]) == c1  # idempotent
    assert {c.id for c in l1.list_conversations(status=None, limit=500).items} >= {c1}
    assert c2 not in {c.id for c in l1.list_conversations(status=None, limit=500).items}
    assert c1 not in {c.id for c in l2.list_conversations(status=None, limit=500).items}
    for client, other in ((l1, c2), (l2, c1)):
        with pytest.raises(NotFound):
            client.get_conversation(other)

    # The held message opened no window for either landlord (the window is per conversation):
    # the second landlord sends a template, and the tenant replies to it.
    with pytest.raises(WindowClosed):
        l2.send_message(c2, "Hi Daniel, your parking invoice is attached.")
    # Neither is confirmed by the tenant: starting the conversation sent ZenRent's consent request,
    # and a template waits for the tenant's Yes.
    with pytest.raises(ConsentPending) as pending:
        l2.send_template(c2, "invoice_ready", "en_GB", ["parking space 12"])
    assert (pending.value.sqlstate, pending.value.keyword) == ("55000", "consent_pending")
    tap = tenant_taps(webhook, config, world, phone, consent_token(admin, world.l2, phone))
    assert tap["routing_status"] == "system" and tap["landlord_id"] is None  # an answer to ZenRent, for nobody
    out = l2.send_template(c2, "invoice_ready", "en_GB", ["parking space 12"])
    send_queued(config, sender_pool, fake, admin, out)
    [posted] = fake.for_message(out)
    assert posted.body["template"]["components"][0]["parameters"][0]["text"] == L2_NAME
    wamid = l2.get_message(out).wamid
    [reply] = tenant_writes(webhook, config, world, phone, "Thanks Owen, paid.", context=wamid)
    assert reply["routing_status"] == "delivered" and reply["landlord_id"] == world.l2

    got = {m.id: m for m in l2.list_messages(c2).items}
    assert got[uuid.UUID(reply["message_id"])].body == "Thanks Owen, paid."
    assert got[out].outbound_kind == "template" and got[out].outgoing
    # Now the second landlord may write freely; the first still may not.
    assert isinstance(l2.send_message(c2, "Received, thank you!"), uuid.UUID)
    with pytest.raises(WindowClosed):
        l1.send_message(c1, "Hello from the other landlord")
    assert l2.get_conversation(c2).unread_count == 1
    assert l1.list_messages(c2).items == []
    # The first landlord's conversation holds only ZenRent's consent request about them, nothing from the tenant.
    assert [(m.direction, m.type) for m in l1.list_messages(c1).items] == [("outgoing", "interactive")]
    assert l1.get_conversation(c1).unread_count == 0

    # The first landlord cannot touch the second's conversation through any RPC, nor learn it exists.
    before = admin.execute(
        "select status, unread_count, updated_at from public.whatsapp_conversations where id = %s", [str(c2)]
    ).fetchone()
    count_before = admin.execute(
        "select count(*) as n from public.whatsapp_messages where conversation_id = %s", [str(c2)]
    ).fetchone()["n"]
    for attempt in (
        lambda: l1.mark_read(c2),
        lambda: l1.block(c2),
        lambda: l1.archive(c2),
        lambda: l1.send_message(c2, "hijack"),
        lambda: l1.send_template(c2, "rent_reminder", "en_GB"),
    ):
        with pytest.raises(NotFound) as err:
            attempt()
        assert (err.value.sqlstate, err.value.keyword) == ("P0002", "not_found")
        assert err.value.message == "conversation not found"  # the same answer as for no conversation at all
    assert (
        admin.execute(
            "select status, unread_count, updated_at from public.whatsapp_conversations where id = %s", [str(c2)]
        ).fetchone()
        == before
    )
    assert (
        admin.execute(
            "select count(*) as n from public.whatsapp_messages where conversation_id = %s", [str(c2)]
        ).fetchone()["n"]
        == count_before
    )
    raw = l1.supabase.table("whatsapp_messages").select("id,body")
    assert raw.eq("landlord_id", world.l2).execute().data == []
    assert l1.supabase.table("whatsapp_messages").select("id").eq("id", reply["message_id"]).execute().data == []
    assert l1.supabase.table("tenants").select("id").eq("id", world.tenants["shared2"]).execute().data == []
    with pytest.raises(NotFound):
        l1.start_conversation(world.tenants["shared2"])  # someone else's tenant: "not found"


# -- every refusal, typed -------------------------------------------------------------------------
def test_refusals_are_typed_exceptions_with_sqlstate_message_and_hint(world, config, webhook, api, admin, l1, l3):
    phone = world.phones["rules"]
    conv = l1.start_conversation(world.tenants["rules"])

    with pytest.raises(WindowClosed) as err:  # the tenant has never written: template needed
        l1.send_message(conv, "Hello!")
    assert (err.value.sqlstate, err.value.keyword) == ("55000", "window_closed")
    assert "send_whatsapp_template" in err.value.hint
    with pytest.raises(ConsentPending):  # nor a template, until the tenant confirms the landlord
        l1.send_template(conv, "rent_reminder", "en_GB", ["Flat 2", "1 December"])
    # The tenant never wrote, so ZenRent asked with its approved template; they tap its quick reply.
    tenant_taps(webhook, config, world, phone, consent_token(admin, world.l1, phone), quick_reply=True)
    template_id = l1.send_template(conv, "rent_reminder", "en_GB", ["Flat 2", "1 December"])
    template = l1.get_message(template_id)
    assert template.outbound_kind == "template" and template.status == "queued"
    assert [p["text"] for p in template.template["components"][0]["parameters"]] == [L1_NAME, "Flat 2", "1 December"]

    with pytest.raises(InvalidValue) as err:
        l1.send_template(conv, "Rent Reminder!", "en_GB")
    assert err.value.sqlstate == "22023"
    for bad, refusal in (("   ", EmptyBody), ("x" * 4096, MessageTooLong)):
        with pytest.raises(refusal) as err:
            l1.send_message(conv, bad)
        assert err.value.sqlstate == "22023"
    with pytest.raises(InvalidValue):
        l1.set_status(conv, "deleted")

    l1.block(conv)
    assert l1.get_conversation(conv).status == "blocked"
    with pytest.raises(Blocked):
        l1.send_template(conv, "rent_reminder", "en_GB")
    l1.unblock(conv)

    l1.archive(conv)
    assert conv not in {c.id for c in l1.list_conversations(status="active", limit=500).items}
    assert conv in {c.id for c in l1.list_conversations(status="archived", limit=500).items}
    tenant_writes(webhook, config, world, phone, "Sorry, missed your message")  # reopens, and opens the window
    reopened = l1.get_conversation(conv)
    assert (reopened.status, reopened.unread_count) == ("active", 1)
    assert isinstance(l1.send_message(conv, "No problem!"), uuid.UUID)

    tenant_writes(webhook, config, world, phone, "STOP")
    with pytest.raises(TenantOptedOut):
        l1.send_message(conv, "Are you there?")
    with pytest.raises(TenantOptedOut):
        l1.send_template(conv, "rent_reminder", "en_GB")
    tenant_writes(webhook, config, world, phone, "START")
    l1.send_message(conv, "Welcome back")

    state = l1.opt_out()
    assert state.whatsapp_enabled is False and state.cancelled_messages >= 1  # queued replies cancelled at once
    with pytest.raises(NotOptedIn):
        l1.send_message(conv, "Still there?")
    state = l1.opt_in()
    assert state.whatsapp_enabled is True and state.whatsapp_opted_in_at is not None

    assert l1.set_notifications(False).whatsapp_notifications_enabled is False
    assert l1.settings() == replace(state, whatsapp_notifications_enabled=False, cancelled_messages=0)
    assert l1.set_notifications(True).whatsapp_enabled is True

    with pytest.raises(NotFound):
        l1.send_message(uuid.uuid4(), "to nobody")
    with pytest.raises(NotFound):
        l1.get_conversation(uuid.uuid4())
    with pytest.raises(NotOptedIn) as err:
        l3.start_conversation(world.tenants["l3"])
    assert "set_whatsapp_opt_in" in err.value.hint
    with pytest.raises(NoLandlordProfile):  # a signed-in user with no landlord profile
        landlord(api, str(uuid.uuid4())).start_conversation(world.tenants["rules"])
    with pytest.raises(NotAllowed):  # webhook-facing RPCs are service_role only
        LandlordClient._execute(l1.supabase.rpc("ingest_whatsapp_webhook", {"payload": {}}))
    with pytest.raises(InvalidValue) as err:  # 22P02 from Postgres, through the raw supabase-py client
        LandlordClient._execute(l1.supabase.rpc("mark_conversation_read", {"conversation_id": "nope"}))
    assert err.value.sqlstate == "22P02"
    with pytest.raises(NotAuthenticated) as err:
        landlord(api, world.l1, now=int(time.time()) - 7200).list_conversations()
    assert err.value.sqlstate == "PGRST303"
    for bad_call in (
        lambda: l1.mark_read("not-a-uuid"),
        lambda: l1.list_conversations(status="deleted"),
        lambda: l1.list_conversations(limit=0),
        lambda: l1.list_messages(conv, cursor="garbage"),
    ):
        with pytest.raises(InvalidValue):
            bad_call()


# The mapping of (SQLSTATE, detail keyword) to classes is unit-tested in tests/test_client_errors.py.


# -- pagination -----------------------------------------------------------------------------------
def _all_pages(fetch, limit: int) -> list[Any]:
    items, cursor, pages = [], None, 0
    while True:
        page = fetch(limit=limit, cursor=cursor)
        assert len(page.items) <= limit
        items += page.items
        pages += 1
        if page.next_cursor is None:
            return items
        assert len(page.items) == limit and pages < 100
        cursor = page.next_cursor


def test_messages_are_paged_newest_first_with_ties_broken_by_id(world, config, webhook, admin, l1):
    phone = world.phones["pages"]
    at = int(time.time()) - 600
    tenant_writes(webhook, config, world, phone, "one", at=at - 60)
    tenant_writes(webhook, config, world, phone, "two", "three", "four", "five", "six", at=at)  # same second
    tenant_writes(webhook, config, world, phone, "seven", at=at + 60)
    conv = conversation_for(l1, phone)
    expected = [
        r["id"]
        for r in admin.execute(
            "select id from public.whatsapp_messages where conversation_id = %s order by sent_at desc, id desc",
            [str(conv.id)],
        ).fetchall()
    ]
    assert len(expected) == 7
    for limit in (1, 2, 3, 7, 50):
        got = _all_pages(lambda **kw: l1.list_messages(conv.id, **kw), limit)
        assert [m.id for m in got] == expected, limit
    assert got[0].body == "seven" and got[-1].body == "one"
    l1.mark_read(conv.id)


def test_conversations_are_paged_by_recency_or_unread_first(world, config, webhook, admin, l1):
    for role in ("x1", "x2", "x3"):
        l1.start_conversation(world.tenants[role])  # no messages yet: last_message_at is null
    tenant_writes(webhook, config, world, world.phones["x1"], "An old unread message", at=int(time.time()) - 3000)
    tenant_writes(webhook, config, world, world.phones["x2"], "New message for you")
    l1.archive(conversation_for(l1, world.phones["x3"]).id)

    def expected(statuses: list[str] | None, unread_first: bool) -> list[uuid.UUID]:
        rows = admin.execute(
            "select id from public.whatsapp_conversations where landlord_id = %s "
            "and (%s::text[] is null or status = any(%s::text[])) "
            "order by case when %s then unread_count > 0 end desc nulls last, "
            "last_message_at desc nulls last, id desc",
            [world.l1, statuses, statuses, unread_first],
        ).fetchall()
        return [r["id"] for r in rows]

    assert len(expected(None, False)) >= 4
    assert expected(None, True) != expected(None, False), "unread-first must differ from recency here"
    for status in (None, ["active"], ["active", "archived"], "archived"):
        statuses = [status] if isinstance(status, str) else status
        for order in ("recent", "unread_first"):
            want = expected(statuses, order == "unread_first")
            for limit in (1, 2, 5, 500):
                got = _all_pages(
                    lambda status=status, order=order, **kw: l1.list_conversations(status=status, order=order, **kw),
                    limit,
                )
                assert [c.id for c in got] == want, (status, order, limit)
    with pytest.raises(InvalidValue):  # a cursor belongs to one list
        page = l1.list_conversations(order="recent", limit=1)
        l1.list_conversations(order="unread_first", cursor=page.next_cursor)


# -- the rest of the surface ------------------------------------------------------------------------
def test_realtime_topic_and_env_configuration(api, world):
    client = LandlordClient.from_env(
        mint_token(world.l1), {"SUPABASE_URL": api.url, "SUPABASE_ANON_KEY": LOCAL_ANON_KEY}
    )
    assert client.user_id == uuid.UUID(world.l1)
    assert client.realtime_topic == f"landlord:{world.l1}"  # tests/test_realtime.py subscribes to it
    assert client.settings().whatsapp_enabled is True  # the env-built client really talks to the API
    with pytest.raises(ValueError):
        LandlordClient.from_env(mint_token(world.l1), {})


@pytest.mark.parametrize(
    ("table", "owner_column"),
    [
        ("user_profiles", "id"),
        ("properties", "user_id"),
        ("tenants", "user_id"),
        ("whatsapp_conversations", "landlord_id"),
        ("whatsapp_messages", "landlord_id"),
    ],
)
def test_the_clients_default_select_star_returns_only_own_rows(world, config, webhook, l1, l2, table, owner_column):
    """Through the client's own supabase-py handle, `select("*")` (what apps write first) answers
    with the landlord's rows only, and no routing metadata or raw element."""
    tenant_writes(webhook, config, world, world.phones["x3"], "A message so that every table has rows")
    for client, me in ((l1, world.l1), (l2, world.l2)):
        rows = client.supabase.table(table).select("*").execute().data
        assert all(r[owner_column] == me for r in rows), table
        assert not {"raw", "routing_metadata"} & {k for r in rows for k in r}
    assert l1.supabase.table(table).select("*").execute().data, f"{table}: the first landlord has rows to see"


# -- the picker, end to end over HTTP -------------------------------------------------------------
def test_a_shared_phone_tenant_picks_their_landlord_and_the_held_messages_follow(
    world, config, webhook, fake, sender_pool, admin, l1, l2
):
    """Two landlords claim one phone and the tenant confirmed neither: the tenant's messages are held,
    the picker goes out through the sender to (fake) Meta, the tenant taps a row, and the held
    messages appear in the chosen landlord's inbox, in order, and nowhere else."""
    phone = world.phones["pick"]
    now = int(time.time())
    held = tenant_writes(webhook, config, world, phone, "Is the bike shed mine too?", at=now - 60)
    held += tenant_writes(webhook, config, world, phone, "Hello?", at=now - 30)
    assert [h["routing_status"] for h in held] == ["ambiguous", "ambiguous"]
    picker = admin.execute(
        "select m.id from public.whatsapp_messages m join private.whatsapp_message_details d on d.message_id = m.id "
        "where m.tenant_phone = %s and d.routing_metadata ->> 'reason' = 'picker'",
        [phone],
    ).fetchall()
    assert len(picker) == 1  # one picker a day, however many messages are held
    send_queued(config, sender_pool, fake, admin, picker[0]["id"])
    [posted] = fake.for_message(picker[0]["id"])
    body = posted.body
    assert (body["to"], body["type"], body["interactive"]["type"]) == (phone, "interactive", "button")
    assert body["context"]["message_id"] == held[0]["wamid"]  # in reply to the first held message
    buttons = body["interactive"]["action"]["buttons"]
    first_names = sorted(n.split()[0] for n in (L1_NAME, L2_NAME))  # options in display-name order
    assert [b["reply"]["title"].split()[1] for b in buttons] == first_names
    assert all(len(b["reply"]["title"]) <= 20 and b["reply"]["id"].startswith("zr") for b in buttons)
    assert len(body["interactive"]["body"]["text"]) <= 1024
    chosen = next(
        b for b in buttons if L2_NAME.split()[0] in b["reply"]["title"]
    )  # the tenant picks the second landlord

    tap = tenant_taps(webhook, config, world, phone, chosen["reply"]["id"])
    assert tap["routing_status"] == "system"
    conv = conversation_for(l2, phone)
    assert conv is not None and conv.unread_count == 2
    inbox = [m.body for m in l2.list_messages(conv.id).items if m.is_from_tenant]
    assert inbox == ["Hello?", "Is the bike shed mine too?"]  # newest first, both held messages, in order
    assert conversation_for(l1, phone) is None  # the other landlord sees nothing
    assert l1.supabase.table("whatsapp_messages").select("id").eq("tenant_phone", phone).execute().data == []
    # The tenant's next message goes to the chosen landlord; an old option is no error.
    [nxt] = tenant_writes(webhook, config, world, phone, "Thanks")
    assert (nxt["routing_status"], nxt["landlord_id"]) == ("delivered", world.l2)
    again = tenant_taps(webhook, config, world, phone, "zr" + "0" * 32)
    assert again["routing_status"] == "system"
