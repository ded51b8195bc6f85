"""Landlords send files: the landlord client (app/client) uploads to the landlord's outbound folder
and calls public.send_whatsapp_media; the media worker (app/media.py, `upload` jobs) puts the file
with the fake Graph API (tests/fake_graph.py); the sender (app/sender.py) sends it by Meta's media
id. Over the local stand-ins (Storage with the Data API beside it on one URL, as on hosted) and
the real local database (migration 20261129170100).

Each test parks every queued message and media job it did not make (next_attempt_at =
infinity, restored afterwards), so the worker and the sender only see the test's own.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row
from storage3.exceptions import StorageApiError

from app.client import (
    InvalidValue,
    LandlordClient,
    MessageTooLong,
    NotAllowed,
    NotFound,
    WindowClosed,
    from_storage_error,
)
from app.db import make_pool
from app.local.dataapi import DataApi, DataApiConfig
from app.local.storage import StorageConfig, StorageServer
from app.local.tokens import LOCAL_ANON_KEY, LOCAL_SERVICE_ROLE_KEY, mint_token
from app.media import MediaConfig, MediaWorker, checked_outbound_path
from app.media_types import EXTENSIONS, MEDIA_TYPES, SENDABLE_TYPES, media_type_of, sendable_kind
from app.sender import Sender
from conftest import DATABASE_URL
from fake_graph import FakeGraph, meta_error

ALICE = "00000000-0000-4000-a000-00000000a11c"
BOB = "00000000-0000-4000-a000-000000000b0b"
TOM = "447700900123"  # Alice's tenant; he writes at the start, so the 24-hour window is open
DAN = "447700900555"  # Alice's tenant who last wrote weeks ago (seed): the window is closed
SIGNATURE = "From Alice Hart via ZenRent:"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + os.urandom(20_000) + b"\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF" + os.urandom(8_000)
OGG = b"OggS\x00\x02" + os.urandom(4_000)


# -- pure parts ---------------------------------------------------------------------------------
def test_outbound_paths_and_the_name_meta_gets():
    name = f"{uuid.uuid4()}.pdf"
    assert checked_outbound_path(f"{ALICE}/outbound/{name}") == (f"{ALICE}/outbound/{name}", name)
    assert checked_outbound_path(f"{ALICE}/outbound/receipts/May rent (1).pdf")[1] == "May rent (1).pdf"
    for bad in (
        None,
        "",
        f"{ALICE}/outbound/",
        f"{ALICE}/outbound",
        f"{ALICE}/{uuid.uuid4()}/{name}",  # an inbound folder
        f"held/{name}",
        f"{ALICE}/outbound/../../{BOB}/outbound/{name}",
        f"{ALICE}/outbound/./{name}",
        f"{ALICE}/outbound//{name}",
        f"/{ALICE}/outbound/{name}",
        f'{ALICE}/outbound/a"; name="x.pdf',  # would break out of the multipart header
        f"{ALICE}/outbound/a\r\nX-Evil: 1.pdf",
        f"{ALICE}/outbound/a\\b.pdf",
    ):
        with pytest.raises(Exception) as exc:
            checked_outbound_path(bad)
        assert getattr(exc.value, "code", None) == "invalid_path" and not exc.value.retryable, bad


def test_media_types_agree_with_the_sql(db):
    every = sorted(EXTENSIONS)
    rows = db.execute(
        "select m, private.media_extension(m) as ext, private.media_type_of(m) as kind from unnest(%s::text[]) m",
        [every],
    ).fetchall()
    assert {r["m"]: r["ext"] for r in rows} == dict(EXTENSIONS)
    assert all(r["kind"] == media_type_of(r["m"]) for r in rows)
    allowed = db.execute("select allowed_mime_types as a from storage.buckets where id = 'whatsapp-media'").fetchone()[
        "a"
    ]
    assert sorted(allowed) == sorted(m for kind in MEDIA_TYPES.values() for m in kind.mime_types) == every
    sendable = {m for m in every if sendable_kind(m)}
    assert sendable == {m for t in SENDABLE_TYPES for m in MEDIA_TYPES[t].mime_types}
    assert sendable_kind("image/webp") is None and sendable_kind("application/zip") is None
    assert sendable_kind("audio/ogg; codecs=opus") == ("audio", MEDIA_TYPES["audio"])


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def admin(config) -> Iterator[psycopg.Connection]:
    with psycopg.connect(config.database_url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute(
            "select public.configure_whatsapp(jsonb_build_object('phone_number_id', %s::text))",
            [config.phone_number_id],
        )
        yield conn


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[StorageServer]:
    """The Storage stand-in with the Data API stand-in beside it: one SUPABASE_URL, as on hosted."""
    env = {"ZR_ENV": "development", "DATABASE_URL": DATABASE_URL}
    dataapi = DataApi(DataApiConfig.from_env(env))
    root = tmp_path_factory.mktemp("send-media-storage")
    server = StorageServer(replace(StorageConfig.from_env(env), root=root), port=0, also={"/rest/v1/": dataapi})
    with server:
        yield server
    dataapi.close()


@pytest.fixture(scope="module")
def conversation(admin, config) -> str:
    """Alice's conversation with Tom, Tom having just written (the 24-hour window is open)."""
    wamid = f"wamid.SENDMEDIA{uuid.uuid4().hex}"
    message = {"from": TOM, "id": wamid, "timestamp": str(int(time.time())), "type": "text", "text": {"body": "Hi"}}
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "442045770000", "phone_number_id": config.phone_number_id},
        "contacts": [{"profile": {"name": "Tom Baker"}, "wa_id": TOM}],
        "messages": [message],
    }
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340500", "changes": [{"field": "messages", "value": value}]}],
    }
    with admin.transaction():
        admin.execute("set local role service_role")
        summary = admin.execute("select public.ingest_whatsapp_webhook(%s::jsonb) as s", [json.dumps(body)]).fetchone()
    (m,) = summary["s"]["messages"]
    assert m["routing_status"] == "delivered" and m["landlord_id"] == ALICE
    return str(m["conversation_id"])


@pytest.fixture(scope="module")
def closed_conversation(admin) -> str:
    """Alice's conversation with Dan, who last wrote weeks ago (seed)."""
    row = admin.execute(
        "select c.id, private.service_window_open(c.id) as open from public.whatsapp_conversations c"
        " where c.landlord_id = %s and c.tenant_phone = %s",
        [ALICE, DAN],
    ).fetchone()
    assert row is not None and not row["open"]
    return str(row["id"])


class Parked:
    """Every queued message and pending media job that is not the test's, parked meanwhile."""

    def __init__(self, admin: psycopg.Connection):
        self.admin = admin
        self.messages = admin.execute(
            "with p as (select id, next_attempt_at from public.whatsapp_messages where status = 'queued' for update) "
            "update public.whatsapp_messages m set next_attempt_at = 'infinity' from p where m.id = p.id "
            "returning p.id, p.next_attempt_at"
        ).fetchall()
        self.jobs = admin.execute(
            "with p as (select id, next_attempt_at from private.media_jobs where done_at is null for update) "
            "update private.media_jobs j set next_attempt_at = 'infinity' from p where j.id = p.id "
            "returning p.id, p.next_attempt_at"
        ).fetchall()

    def restore(self, ours: list[Any]) -> None:
        self.admin.execute(
            "update public.whatsapp_messages set status = 'failed', error_title = 'test cleanup'"
            " where id = any(%s::uuid[]) and status in ('queued', 'sending')",
            [ours],
        )
        self.admin.execute(
            "update private.media_jobs set done_at = now(), claimed_at = null"
            " where message_id = any(%s::uuid[]) and done_at is null",
            [ours],
        )
        for p in self.messages:
            self.admin.execute(
                "update public.whatsapp_messages set next_attempt_at = %s"
                " where id = %s and next_attempt_at = 'infinity'",
                [p["next_attempt_at"], p["id"]],
            )
        for p in self.jobs:
            self.admin.execute(
                "update private.media_jobs set next_attempt_at = %s where id = %s and next_attempt_at = 'infinity'",
                [p["next_attempt_at"], p["id"]],
            )


class World:
    """The landlords' clients, the worker and the sender against the fake, and the database."""

    def __init__(self, admin: psycopg.Connection, config: Any, fake: FakeGraph, gateway: StorageServer):
        self.admin, self.fake, self.url, self.ours = admin, fake, gateway.url, []
        self.alice = LandlordClient(gateway.url, LOCAL_ANON_KEY, mint_token(ALICE, email="alice@zenrent.test"))
        self.bob = LandlordClient(gateway.url, LOCAL_ANON_KEY, mint_token(BOB, email="bob@zenrent.test"))
        media = MediaConfig(
            database_url=config.database_url,
            supabase_url=gateway.url,
            service_role_key=LOCAL_SERVICE_ROLE_KEY,
            access_token=config.access_token,
            environment="development",
            phone_number_id=config.phone_number_id,
            graph_api_base=fake.base_url,
            graph_api_version=config.graph_api_version,
            rate=1000.0,
            idle_s=0.05,
            http_timeout_s=5.0,
        )
        self._worker_pool = make_pool(media.pool_config(), open_now=True, name="send-media-worker")
        self.worker = MediaWorker(media, self._worker_pool)
        sending = replace(
            config, graph_api_base=fake.base_url, sender_rate=1000.0, sender_idle_s=0.05, sender_http_timeout_s=5.0
        )
        self._sender_pool = make_pool(sending, open_now=True, name="send-media-sender")
        self.sender = Sender(sending, self._sender_pool)
        self.parked = Parked(admin)

    def send(self, conversation: str, data: bytes, mime_type: str, caption: str | None = None, **kw: Any) -> str:
        message_id = str(self.alice.send_media(conversation, data, kw.pop("filename", "file"), mime_type, caption))
        self.ours.append(message_id)
        return message_id

    def rpc(self, client: LandlordClient, conversation: str, path: str) -> str:
        """send_whatsapp_media on a path of the test's choosing (the client always makes its own)."""
        message_id = str(client._rpc("send_whatsapp_media", {"conversation_id": conversation, "storage_path": path}))
        self.ours.append(message_id)
        return message_id

    def message(self, message_id: str) -> dict[str, Any]:
        return self.admin.execute("select * from public.whatsapp_messages where id = %s", [message_id]).fetchone()

    def jobs(self, message_id: str) -> dict[str, dict[str, Any]]:
        """The message's media jobs by kind (a sent file has its upload only: nothing to download)."""
        rows = self.admin.execute("select * from private.media_jobs where message_id = %s", [message_id]).fetchall()
        by_kind = {r["kind"]: r for r in rows}
        assert len(by_kind) == len(rows), rows
        return by_kind

    def job(self, message_id: str) -> dict[str, Any]:
        return self.jobs(message_id)["upload"]

    def object(self, path: str) -> dict[str, Any] | None:
        return self.admin.execute(
            "select * from storage.objects where bucket_id = 'whatsapp-media' and name = %s", [path]
        ).fetchone()

    def close(self) -> None:
        self.parked.restore(self.ours)
        for closing in (self.worker.close, self._worker_pool.close, self.sender.close, self._sender_pool.close):
            closing()
        self.alice.close()
        self.bob.close()


@pytest.fixture()
def fake(config) -> Iterator[FakeGraph]:
    server = FakeGraph(config.access_token, config.phone_number_id, config.graph_api_version).start()
    yield server
    server.stop()


@pytest.fixture()
def world(admin, config, fake, gateway) -> Iterator[World]:
    w = World(admin, config, fake, gateway)
    yield w
    w.close()


def refused(exc: pytest.ExceptionInfo[Any]) -> tuple[str | None, str | None]:
    return exc.value.sqlstate, exc.value.keyword


# -- end to end -----------------------------------------------------------------------------------
def test_a_landlords_pdf_goes_out_by_media_id_with_the_signed_caption(world, conversation, config):
    caption = "The signed inventory, as promised"
    mid = world.send(conversation, PDF, "application/pdf", caption, filename="Inventory March (final).pdf")
    m = world.message(mid)
    path = m["media_path"]
    name = path.rsplit("/", 1)[1]
    assert path == f"{ALICE}/outbound/{name}" and uuid.UUID(name.removesuffix(".pdf")) and name.endswith(".pdf")
    assert (m["status"], m["outbound_kind"], m["type"], m["media_status"]) == ("queued", "media", "document", "pending")
    assert (m["body"], m["landlord_signature"], m["media_size"]) == (caption, SIGNATURE, len(PDF))
    obj = world.object(path)
    assert obj["metadata"]["mimetype"] == "application/pdf" and str(obj["owner_id"]) == ALICE
    job = world.job(mid)
    assert (job["kind"], job["from_path"], job["mime_type"], job["media_type"]) == (
        "upload",
        path,
        "application/pdf",
        "document",
    )

    assert world.sender.run_once() == 0  # nothing to send before Meta has the file
    assert world.worker.run_once() == 1  # the upload: a landlord's file has no download job
    (upload,) = world.fake.uploads()
    assert upload.path == f"/{config.graph_api_version}/{config.phone_number_id}/media"
    assert upload.headers["authorization"] == f"Bearer {config.access_token}"
    assert PDF in upload.raw and b"Inventory" not in upload.raw  # the bytes, under the generated name only
    (media_id,) = world.fake.media
    sent_file = world.fake.media[media_id]
    assert (sent_file.data, sent_file.mime_type, sent_file.filename) == (PDF, "application/pdf", name)
    m = world.message(mid)
    assert (m["media_id"], m["media_status"], m["media_error"], m["status"]) == (media_id, "stored", None, "queued")
    assert (m["media_path"], m["media_size"]) == (path, len(PDF))
    assert all(j["done_at"] is not None and j["last_error"] is None for j in world.jobs(mid).values())

    assert world.sender.run_once() == 1
    (post,) = world.fake.for_message(mid)
    assert post.path == f"/{config.graph_api_version}/{config.phone_number_id}/messages"
    assert post.body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TOM,
        "type": "document",
        "document": {"id": media_id, "caption": f"{SIGNATURE}\n{caption}"},
        "biz_opaque_callback_data": mid,
    }
    m = world.message(mid)
    assert m["status"] == "sent" and m["wamid"].startswith("wamid.FAKE")
    seen = world.alice.get_message(mid)  # as the landlord's app sees it, and the file it sent
    assert (seen.status, seen.media_status, seen.media_path) == ("sent", "stored", path)
    assert world.alice.download_media(seen) == PDF


def test_a_photo_goes_out_with_its_caption_and_a_voice_note_without(world, conversation):
    photo = world.send(conversation, JPEG, "image/jpeg", "The new boiler")
    voice = world.send(conversation, OGG, "audio/ogg; codecs=opus", "ignored: audio takes no caption")
    assert world.message(photo)["media_path"].endswith(".jpg") and world.message(voice)["media_path"].endswith(".ogg")
    assert world.worker.run_once() == 2  # two uploads
    assert world.sender.run_once() == 2
    (image,) = world.fake.for_message(photo)
    (audio,) = world.fake.for_message(voice)
    photo_id, voice_id = world.message(photo)["media_id"], world.message(voice)["media_id"]
    assert image.body["type"] == "image" and image.body["image"] == {
        "id": photo_id,
        "caption": f"{SIGNATURE}\nThe new boiler",
    }
    assert audio.body["type"] == "audio" and audio.body["audio"] == {"id": voice_id}
    assert world.fake.media[voice_id].mime_type == "audio/ogg" and world.fake.media[voice_id].data == OGG
    assert world.message(photo)["status"] == world.message(voice)["status"] == "sent"


def test_a_caption_longer_than_whatsapp_allows_is_refused(world, conversation):
    with pytest.raises(MessageTooLong) as exc:
        world.send(conversation, JPEG, "image/jpeg", "x" * (1024 - len(SIGNATURE)))  # with the newline: 1,025
    assert refused(exc) == ("22023", "message_too_long")


# -- who may send what --------------------------------------------------------------------------------
def test_only_files_in_ones_own_outbound_folder_can_be_sent(world, conversation, admin):
    tom_photo = admin.execute(
        "select media_path from public.whatsapp_messages"
        " where landlord_id = %s and direction = 'incoming' and media_path is not null limit 1",
        [ALICE],
    ).fetchone()
    outside = [
        f"{ALICE}/{conversation}/{uuid.uuid4()}.jpg",  # her inbound folder
        f"held/{uuid.uuid4()}.jpg",
        f"{ALICE}/outbound/../{conversation}/{uuid.uuid4()}.jpg",
        f"{ALICE}/outbound/./x.jpg",
        f"{ALICE}/outboundx/x.jpg",
        f"/{ALICE}/outbound/x.jpg",
        "",
    ]
    if tom_photo is not None:
        outside.append(tom_photo["media_path"])  # a file a tenant sent her: it exists, and it is not hers to forward
    for path in outside:
        with pytest.raises(InvalidValue) as exc:
            world.rpc(world.alice, conversation, path)
        assert refused(exc) == ("22023", "invalid_value"), path
    with pytest.raises(NotFound) as missing:
        world.rpc(world.alice, conversation, f"{ALICE}/outbound/{uuid.uuid4()}.pdf")  # never uploaded
    assert refused(missing) == ("P0002", "not_found")
    with pytest.raises(StorageApiError) as storage:  # and Storage lets her write only there
        world.alice.supabase.storage.from_("whatsapp-media").upload(
            f"{ALICE}/{conversation}/{uuid.uuid4()}.pdf", PDF, {"content-type": "application/pdf"}
        )
    assert isinstance(from_storage_error(storage.value), NotAllowed)


def test_another_landlords_file_is_refused(world, conversation):
    bobs = f"{BOB}/outbound/{uuid.uuid4()}.pdf"
    world.bob.supabase.storage.from_("whatsapp-media").upload(bobs, PDF, {"content-type": "application/pdf"})
    assert world.object(bobs) is not None
    with pytest.raises(InvalidValue) as exc:
        world.rpc(world.alice, conversation, bobs)
    assert refused(exc) == ("22023", "invalid_value")
    with pytest.raises(StorageApiError) as storage:  # nor can she put a file in his folder
        world.alice.supabase.storage.from_("whatsapp-media").upload(
            f"{BOB}/outbound/{uuid.uuid4()}.pdf", PDF, {"content-type": "application/pdf"}
        )
    assert isinstance(from_storage_error(storage.value), NotAllowed)
    with pytest.raises(NotFound) as theirs:  # and Bob cannot send into her conversation
        world.rpc(world.bob, conversation, bobs)
    assert refused(theirs) == ("P0002", "not_found")


def test_a_closed_window_refuses_the_file_and_removes_the_upload(world, closed_conversation, admin):
    before = admin.execute(
        "select count(*) as n from storage.objects where bucket_id = 'whatsapp-media' and name like %s",
        [f"{ALICE}/outbound/%"],
    ).fetchone()["n"]
    with pytest.raises(WindowClosed) as exc:
        world.send(closed_conversation, PDF, "application/pdf", "Your deposit statement")
    assert refused(exc) == ("55000", "window_closed")
    after = admin.execute(
        "select count(*) as n from storage.objects where bucket_id = 'whatsapp-media' and name like %s",
        [f"{ALICE}/outbound/%"],
    ).fetchone()["n"]
    assert after == before  # the file did not stay behind


def test_the_client_refuses_what_whatsapp_cannot_send_before_uploading(world, conversation, fake):
    for data, mime in (
        (b"RIFF" + os.urandom(100), "image/webp"),  # a sticker: only ever received
        (b"PK\x03\x04", "application/zip"),
        (b"<svg/>", "image/svg+xml"),
        (b"", "application/pdf"),
        (b"\xff\xd8" + bytes(5 * 1024 * 1024), "image/jpeg"),  # over 5 MiB
    ):
        with pytest.raises(InvalidValue) as exc:
            world.send(conversation, data, mime)
        assert exc.value.sqlstate is None, mime
    assert world.ours == [] and fake.requests == []


# -- the worker's failures ---------------------------------------------------------------------------
def test_a_file_meta_refuses_fails_the_message(world, conversation):
    world.fake.script_uploads(meta_error(400, 131053, "(#131053) Media upload error", "Unsupported file"))
    mid = world.send(conversation, PDF, "application/pdf", "Statement")
    assert world.worker.run_once() == 1
    m = world.message(mid)
    assert (m["media_status"], m["media_error"], m["status"]) == ("failed", "graph_error", "failed")
    assert m["error_title"] == "the file could not be uploaded to WhatsApp: graph_error" and m["failed_at"]
    assert all(j["done_at"] is not None and j["last_error"] == "graph_error" for j in world.jobs(mid).values())
    assert world.sender.run_once() == 0 and world.fake.for_message(mid) == []
    seen = world.alice.get_message(mid)
    assert (seen.status, seen.media_status, seen.media_error) == ("failed", "failed", "graph_error")


def test_meta_down_then_back_the_file_still_goes_out(world, conversation):
    world.fake.script_uploads(meta_error(500, 2, "(#2) Service temporarily unavailable"))
    mid = world.send(conversation, JPEG, "image/jpeg")
    world.worker.run_once()
    m, job = world.message(mid), world.job(mid)
    assert (m["media_status"], m["status"], job["last_error"], job["done_at"]) == (
        "pending",
        "queued",
        "graph_unavailable",
        None,
    )
    world.admin.execute("update private.media_jobs set next_attempt_at = now() where id = %s", [job["id"]])
    assert world.worker.run_once() == 1 and world.sender.run_once() == 1
    assert world.message(mid)["status"] == "sent" and len(world.fake.uploads()) == 2
    m = world.message(mid)
    assert (m["status"], m["media_status"], m["media_error"]) == ("sent", "stored", None)


def test_a_file_deleted_before_it_was_uploaded_fails_as_gone(world, conversation):
    mid = world.send(conversation, PDF, "application/pdf")
    world.alice.supabase.storage.from_("whatsapp-media").remove([world.message(mid)["media_path"]])  # changed her mind
    world.worker.run_once()
    m = world.message(mid)
    assert (m["media_status"], m["media_error"], m["status"]) == ("failed", "gone", "failed")
    assert world.fake.uploads() == []


def test_a_sent_file_is_one_upload_job_and_never_a_download(world, conversation):
    """Downloads are for what tenants send (20261129170300): a landlord's file is one upload job,
    so a worker taking one job per batch uploads it first time and the sender sends it."""
    mid = world.send(conversation, JPEG, "image/jpeg", "Boiler")
    assert set(world.jobs(mid)) == {"upload"}
    world.worker.config = replace(world.worker.config, batch_size=1)
    assert world.worker.run_once() == 1 and world.worker.run_once() == 0
    assert world.sender.run_once() == 1
    (media_id,) = world.fake.media
    m = world.message(mid)
    assert (m["status"], m["media_status"], m["media_error"], m["media_id"]) == ("sent", "stored", None, media_id)
    assert world.worker.stats.failed == {}


def test_a_type_whatsapp_cannot_send_is_failed_by_the_worker(world, conversation):
    """The bucket takes stickers (image/webp, received ones); one uploaded by hand and sent as an
    image never reaches Meta."""
    path = f"{ALICE}/outbound/{uuid.uuid4()}.webp"
    world.alice.supabase.storage.from_("whatsapp-media").upload(
        path, b"RIFF" + os.urandom(64), {"content-type": "image/webp"}
    )
    mid = world.rpc(world.alice, conversation, path)
    assert world.message(mid)["type"] == "image"
    world.worker.run_once()
    m = world.message(mid)
    assert (m["media_status"], m["media_error"], m["status"]) == ("failed", "mime_not_allowed", "failed")
    assert world.fake.requests == []


def test_a_replaced_file_is_checked_again_before_it_goes(world, conversation):
    """Landlords may replace their outbound files: the worker reads the type and size Storage has now."""
    mid = world.send(conversation, JPEG, "image/jpeg")
    path = world.message(mid)["media_path"]
    big = b"\xff\xd8" + bytes(5 * 1024 * 1024 + 10)
    r = httpx.put(
        f"{world.url}/storage/v1/object/whatsapp-media/{path}",
        content=big,
        headers={
            "Authorization": f"Bearer {mint_token(ALICE, email='alice@zenrent.test')}",
            "apikey": LOCAL_ANON_KEY,
            "Content-Type": "image/jpeg",
        },
    )
    assert r.status_code == 200, r.text
    world.worker.run_once()
    m = world.message(mid)
    assert (m["media_status"], m["media_error"], m["status"]) == ("failed", "too_large", "failed")
    assert world.fake.requests == []
