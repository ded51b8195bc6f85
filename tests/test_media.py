"""The media worker (app/media.py) against tests/fake_graph.py, the local Storage stand-in and the
real local database, through the media-job contract (claim_media_jobs, complete_media_job,
fail_media_job; locally the temporary migration 20261129170000).

Each test parks every media job it did not create (next_attempt_at = infinity, restored
afterwards), so the worker only sees the test's own jobs. Media messages come in through
ingest_whatsapp_webhook as the service role (the end-to-end test through the webhook itself).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row
from storage3.exceptions import StorageApiError

from app.client import LandlordClient
from app.config import SUPABASE_CLI_SERVICE_ROLE_KEY, ConfigError
from app.db import make_pool
from app.graph_media import (
    GraphMediaClient,
    MediaFailure,
    MediaInfo,
    base_mime_type,
    classify_graph_error,
    digest_matches,
)
from app.local.dataapi import DataApi, DataApiConfig
from app.local.storage import StorageConfig, StorageServer
from app.local.tokens import LOCAL_ANON_KEY, LOCAL_SERVICE_ROLE_KEY, mint_token
from app.media import MEDIA_TYPES, MediaConfig, MediaJob, MediaWorker, Stored, checked_object_path
from app.webhook import sign
from conftest import DATABASE_URL
from fake_graph import FakeGraph

ROOT = Path(__file__).resolve().parent.parent
ALICE = "00000000-0000-4000-a000-00000000a11c"
BOB = "00000000-0000-4000-a000-000000000b0b"
TOM = "447700900123"  # Alice's tenant: his messages are delivered to her
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF" + os.urandom(4096)
MiB = 1024 * 1024


# -- pure parts ---------------------------------------------------------------------------------
def test_object_paths_are_ids_only():
    good = [f"{ALICE}/{uuid.uuid4()}/{uuid.uuid4()}.jpg", f"held/{uuid.uuid4()}.pdf"]
    assert [checked_object_path(p) for p in good] == good
    for bad in (
        None,
        "",
        "../x.pdf",
        "held/../x.pdf",
        f"{ALICE}/../../etc/passwd.pdf",
        "/abs/a/b.jpg",
        f"{ALICE}/c/d/e.jpg",
        "held/inventory flat 1.pdf",
        "held/.hidden.pdf",
        f"{ALICE}/c/x.jpg/",
        "held/x",
    ):
        with pytest.raises(MediaFailure) as exc:
            checked_object_path(bad)
        assert exc.value.code == "invalid_path" and not exc.value.retryable, bad


def test_sha256_in_either_of_metas_encodings():
    digest = hashlib.sha256(b"abc").digest()
    assert digest_matches(digest.hex(), digest) and digest_matches(digest.hex().upper(), digest)
    assert digest_matches(base64.b64encode(digest).decode(), digest)
    assert digest_matches(base64.urlsafe_b64encode(digest).decode().rstrip("="), digest)
    assert not digest_matches(hashlib.sha256(b"abd").hexdigest(), digest)
    assert not digest_matches("not a hash", digest) and not digest_matches("", digest)


def test_graph_answers_are_classified():
    def err(status, code, subcode=None, headers=None):
        body = {"error": {"message": f"(#{code}) x", "code": code, "error_subcode": subcode}}
        return classify_graph_error(status, headers or {}, body)

    gone = err(404, 131052)
    assert (gone.code, gone.retryable) == ("gone", False)
    assert err(400, 100, 33).code == "gone"  # the media id does not exist (or is not ours)
    throttled = err(429, 4, headers={"Retry-After": "30"})
    assert (throttled.code, throttled.retryable, throttled.throttled, throttled.retry_after_seconds) == (
        "throttled",
        True,
        True,
        30,
    )
    assert err(400, 80007).throttled and err(400, 131056).throttled
    assert (err(500, 2).code, err(500, 2).retryable) == ("graph_unavailable", True)
    assert err(401, 190).code == "auth" and err(401, 190).retryable
    assert (err(400, 100).code, err(400, 100).retryable) == ("graph_error", False)
    assert base_mime_type("audio/ogg; codecs=opus") == "audio/ogg" and base_mime_type(None) == ""
    info = MediaInfo.from_json("1", {"url": "https://x", "mime_type": "image/jpeg", "file_size": "303833"})
    assert info.file_size == 303833 and info.sha256 is None


def test_the_token_goes_to_metas_download_hosts_only():
    client = GraphMediaClient("https://graph.facebook.com", "v21.0", "1", "token")
    client.check_url("https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1")
    client.check_url("https://graph.facebook.com/x")
    for url in ("http://lookaside.fbsbx.com/a", "https://evil.example/a", "https://lookaside.fbsbx.com.evil.example/"):
        with pytest.raises(MediaFailure) as exc:
            client.check_url(url)
        assert exc.value.code == "untrusted_url"
    local = GraphMediaClient("http://127.0.0.1:8089", "v21.0", "1", "token")
    local.check_url("http://127.0.0.1:8089/whatsapp_business/attachments/?mid=1")


def test_media_config_follows_the_rule_for_secrets():
    dev = MediaConfig.from_env({"ZR_ENV": "development"})
    assert dev.service_role_key == SUPABASE_CLI_SERVICE_ROLE_KEY and dev.supabase_url == "http://127.0.0.1:54325"
    with pytest.raises(ConfigError) as exc:
        MediaConfig.from_env({"ZR_ENV": "production"})
    for name in ("SUPABASE_SERVICE_ROLE_KEY", "WHATSAPP_ACCESS_TOKEN", "DATABASE_URL", "SUPABASE_URL"):
        assert name in str(exc.value)
    prod = {
        "DATABASE_URL": "postgresql://x/y",
        "SUPABASE_URL": "https://p.supabase.co",
        "WHATSAPP_ACCESS_TOKEN": "t" * 40,
        "SUPABASE_SERVICE_ROLE_KEY": SUPABASE_CLI_SERVICE_ROLE_KEY,
    }
    with pytest.raises(ConfigError, match="public development value: SUPABASE_SERVICE_ROLE_KEY"):
        MediaConfig.from_env(prod)
    config = MediaConfig.from_env({**prod, "SUPABASE_SERVICE_ROLE_KEY": "k" * 40, "ZR_MEDIA_RATE": "5"})
    assert config.rate == 5 and config.supabase_url == "https://p.supabase.co"
    with pytest.raises(ConfigError, match="ZR_MEDIA_RATE"):
        MediaConfig.from_env({"ZR_ENV": "development", "ZR_MEDIA_RATE": "0"})


def test_the_worker_refuses_to_start_without_zr_env():
    env = {k: v for k, v in os.environ.items() if k not in ("ZR_ENV", "WHATSAPP_ACCESS_TOKEN")}
    done = subprocess.run(
        [sys.executable, "-m", "app.media"],
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "event=media.config_error" in done.stderr
    assert "SUPABASE_SERVICE_ROLE_KEY" in done.stderr


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
    storage = StorageConfig.from_env(env)
    dataapi = DataApi(DataApiConfig.from_env(env))
    root = tmp_path_factory.mktemp("media-storage")
    server = StorageServer(replace(storage, root=root), port=0, also={"/rest/v1/": dataapi})
    with server:
        yield server
    dataapi.close()


@pytest.fixture()
def fake(config) -> Iterator[FakeGraph]:
    server = FakeGraph(config.access_token, config.phone_number_id, config.graph_api_version).start()
    yield server
    server.stop()


class Jobs:
    """Media messages made through ingestion, and every other job parked meanwhile."""

    def __init__(self, admin: psycopg.Connection, config: Any):
        self.admin, self.config, self.messages = admin, config, []
        self.parked = admin.execute(
            "with p as (select id, next_attempt_at from private.media_jobs where done_at is null for update) "
            "update private.media_jobs j set next_attempt_at = 'infinity' from p where j.id = p.id "
            "returning p.id, p.next_attempt_at"
        ).fetchall()

    def payload(self, kind: str, media: dict[str, Any], phone: str = TOM) -> tuple[dict[str, Any], str]:
        wamid = f"wamid.MEDIATEST{uuid.uuid4().hex}"
        message = {"from": phone, "id": wamid, "timestamp": str(int(time.time())), "type": kind, kind: media}
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "442045770000", "phone_number_id": self.config.phone_number_id},
            "contacts": [{"profile": {"name": "Tom Baker"}, "wa_id": phone}],
            "messages": [message],
        }
        change = {"field": "messages", "value": value}
        body = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340500", "changes": [change]}]}
        return body, wamid

    def ingest(self, kind: str, media: dict[str, Any], phone: str = TOM) -> dict[str, Any]:
        body, wamid = self.payload(kind, media, phone)
        with self.admin.transaction():
            self.admin.execute("set local role service_role")
            self.admin.execute("select public.ingest_whatsapp_webhook(%s::jsonb)", [json.dumps(body)])
        return self.by_wamid(wamid)

    def by_wamid(self, wamid: str) -> dict[str, Any]:
        row = self.admin.execute("select * from public.whatsapp_messages where wamid = %s", [wamid]).fetchone()
        self.messages.append(row["id"])
        return row

    def image(
        self,
        fake: FakeGraph,
        data: bytes = JPEG,
        phone: str = TOM,
        webhook_sha256: str | None = None,
        graph_mime: str = "image/jpeg",
        **how: Any,
    ) -> tuple[dict[str, Any], str]:
        """A tenant's image/jpeg message whose media the fake serves (`how`: see fake_graph.Media);
        the webhook carries the bytes' SHA-256 in base64, as Meta's webhooks do."""
        media_id = fake.add_media(data, graph_mime, **how)
        sha = webhook_sha256 or base64.b64encode(hashlib.sha256(data).digest()).decode()
        return self.ingest("image", {"mime_type": "image/jpeg", "sha256": sha, "id": media_id}, phone), media_id

    def message(self, message_id: Any) -> dict[str, Any]:
        return self.admin.execute("select * from public.whatsapp_messages where id = %s", [message_id]).fetchone()

    def jobs(self, message_id: Any) -> list[dict[str, Any]]:
        return self.admin.execute(
            "select * from private.media_jobs where message_id = %s order by id", [message_id]
        ).fetchall()

    def make_due(self, message_id: Any) -> None:
        self.admin.execute(
            "update private.media_jobs set next_attempt_at = now() where message_id = %s and done_at is null",
            [message_id],
        )

    def cleanup(self) -> None:
        self.admin.execute(
            "update private.media_jobs set done_at = now(), claimed_at = null where message_id = any(%s::uuid[])"
            " and done_at is null",
            [self.messages],
        )
        for p in self.parked:
            self.admin.execute(
                "update private.media_jobs set next_attempt_at = %s where id = %s and next_attempt_at = 'infinity'",
                [p["next_attempt_at"], p["id"]],
            )


@pytest.fixture()
def jobs(admin, config) -> Iterator[Jobs]:
    j = Jobs(admin, config)
    yield j
    j.cleanup()


@pytest.fixture()
def media_config(config, fake, gateway, tmp_path) -> MediaConfig:
    return MediaConfig(
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
        tmp_dir=str(tmp_path),
    )


@pytest.fixture()
def make_worker(media_config) -> Iterator:
    made: list[tuple[MediaWorker, Any]] = []

    def make(**overrides: Any) -> MediaWorker:
        cfg = replace(media_config, **overrides)
        pool = make_pool(cfg.pool_config(), open_now=True, name="media-test")
        worker = MediaWorker(cfg, pool)
        made.append((worker, pool))
        return worker

    yield make
    for worker, pool in made:
        worker.close()
        pool.close()


def stored_object(admin, path: str) -> dict[str, Any] | None:
    return admin.execute(
        "select * from storage.objects where bucket_id = 'whatsapp-media' and name = %s", [path]
    ).fetchone()


def service_download(gateway: StorageServer, path: str) -> bytes:
    r = httpx.get(
        f"{gateway.url}/storage/v1/object/whatsapp-media/{path}",
        headers={"Authorization": f"Bearer {LOCAL_SERVICE_ROLE_KEY}"},
    )
    assert r.status_code == 200, r.text
    return r.content


def assert_failed(jobs: Jobs, message_id: Any, code: str) -> None:
    m = jobs.message(message_id)
    assert (m["media_status"], m["media_error"], m["media_path"]) == ("failed", code, None)
    (job,) = jobs.jobs(message_id)
    assert job["done_at"] is not None and job["last_error"] == code  # not retried


def assert_retry_scheduled(jobs: Jobs, message_id: Any, code: str, at_least_s: float = 0.0) -> dict[str, Any]:
    m = jobs.message(message_id)
    assert m["media_status"] == "pending" and m["media_path"] is None
    (job,) = jobs.jobs(message_id)
    assert job["done_at"] is None and job["claimed_at"] is None and job["last_error"] == code
    assert job["next_attempt_at"] >= datetime.now(UTC) + timedelta(seconds=at_least_s)
    return job


# -- downloads ----------------------------------------------------------------------------------------
def test_an_image_is_stored_at_the_path_the_claim_gives(jobs, fake, make_worker, admin, gateway, config):
    m, media_id = jobs.image(fake)
    assert m["media_status"] == "pending" and m["routing_status"] == "delivered"
    worker = make_worker()
    assert worker.run_once() == 1
    path = f"{ALICE}/{m['conversation_id']}/{m['id']}.jpg"
    m = jobs.message(m["id"])
    assert (m["media_status"], m["media_path"], m["media_size"], m["media_error"]) == ("stored", path, len(JPEG), None)
    assert service_download(gateway, path) == JPEG
    obj = stored_object(admin, path)
    assert obj["metadata"]["mimetype"] == "image/jpeg" and obj["metadata"]["size"] == len(JPEG)
    retrieve, download = fake.media_requests(media_id)
    assert retrieve.path.startswith(f"/{config.graph_api_version}/{media_id}?phone_number_id={config.phone_number_id}")
    assert retrieve.headers["authorization"] == download.headers["authorization"] == f"Bearer {config.access_token}"
    assert download.path.startswith("/whatsapp_business/attachments/")
    assert (worker.stats.claimed, worker.stats.stored, worker.stats.bytes) == (1, 1, len(JPEG))
    assert worker.run_once() == 0  # done once, never again


def test_oversize_is_refused_before_or_while_downloading(jobs, fake, make_worker, admin, config):
    declared, _ = jobs.image(fake, data=b"\xff\xd8" + bytes(6 * MiB))  # Graph says 6 MiB: never downloaded
    lying, lying_id = jobs.image(fake, data=b"\xff\xd8" + bytes(6 * MiB), file_size=1000)
    worker = make_worker()
    worker.run_once()
    for m in (declared, lying):
        assert_failed(jobs, m["id"], "too_large")
    (only,) = fake.media_requests(declared["media_id"])
    assert only.path.split("?")[0] == f"/{config.graph_api_version}/{declared['media_id']}"
    assert len(fake.media_requests(lying_id)) == 2  # it tried, and stopped past the cap
    assert (
        admin.execute("select count(*) as n from storage.objects where name like %s", [f"%{lying['id']}%"]).fetchone()[
            "n"
        ]
        == 0
    )
    assert worker.stats.failed["too_large"] == 2


def test_each_type_has_metas_cap(jobs, fake, make_worker):
    assert {k: v.cap for k, v in MEDIA_TYPES.items()} == {
        "image": 5 * MiB,
        "sticker": 500 * 1024,
        "audio": 16 * MiB,
        "video": 16 * MiB,
        "document": 100 * MiB,
    }
    big_sticker = b"RIFF" + bytes(600 * 1024)
    media_id = fake.add_media(big_sticker, "image/webp", file_size=10)
    m = jobs.ingest("sticker", {"mime_type": "image/webp", "sha256": fake.sha256_of(media_id), "id": media_id})
    voice_id = fake.add_media(os.urandom(2048), "audio/ogg; codecs=opus")
    opus = "audio/ogg; codecs=opus"
    v = jobs.ingest("audio", {"mime_type": opus, "sha256": fake.sha256_of(voice_id), "id": voice_id})
    make_worker().run_once()
    assert_failed(jobs, m["id"], "too_large")
    assert jobs.message(v["id"])["media_path"].endswith(".ogg")  # a voice note, stored as audio/ogg


def test_a_sha256_mismatch_fails_the_media(jobs, fake, make_worker):
    other = hashlib.sha256(b"other").digest()
    wrong_in_webhook, _ = jobs.image(fake, webhook_sha256=base64.b64encode(other).decode())
    wrong_in_graph, _ = jobs.image(fake, sha256=other.hex())
    make_worker().run_once()
    assert_failed(jobs, wrong_in_webhook["id"], "sha256_mismatch")
    assert_failed(jobs, wrong_in_graph["id"], "sha256_mismatch")


def test_an_expired_url_is_fetched_again(jobs, fake, make_worker):
    m, media_id = jobs.image(fake, expired_urls=1)
    make_worker().run_once()
    assert jobs.message(m["id"])["media_status"] == "stored"
    kinds = ["download" if "attachments" in r.path else "retrieve" for r in fake.media_requests(media_id)]
    assert kinds == ["retrieve", "download", "retrieve", "download"]
    stubborn, stubborn_id = jobs.image(fake, expired_urls=10)
    make_worker().run_once()
    assert_retry_scheduled(jobs, stubborn["id"], "url_expired")
    assert len(fake.media_requests(stubborn_id)) == 6  # the first URL and two new ones, then back to the queue


def test_media_meta_no_longer_has_fails_as_gone(jobs, fake, make_worker):
    gone, _ = jobs.image(fake, gone=True)
    unknown = jobs.ingest("image", {"mime_type": "image/jpeg", "sha256": "x", "id": "4242424242"})
    make_worker().run_once()
    assert_failed(jobs, gone["id"], "gone")
    assert_failed(jobs, unknown["id"], "gone")  # Graph: 400, code 100 (object does not exist)


def test_graph_down_then_back(jobs, fake, make_worker):
    m, _ = jobs.image(fake, down=1)
    worker = make_worker()
    worker.run_once()
    assert_retry_scheduled(jobs, m["id"], "graph_unavailable", at_least_s=1)
    jobs.make_due(m["id"])
    worker.run_once()
    m = jobs.message(m["id"])
    assert m["media_status"] == "stored" and jobs.jobs(m["id"])[0]["attempt_count"] == 2


def test_graph_unreachable_then_back(jobs, fake, make_worker):
    m, _ = jobs.image(fake)
    make_worker(graph_api_base="http://127.0.0.1:9").run_once()  # nothing listens: connection refused
    assert_retry_scheduled(jobs, m["id"], "network")
    jobs.make_due(m["id"])
    make_worker().run_once()
    assert jobs.message(m["id"])["media_status"] == "stored"


def test_storage_unavailable_then_back(jobs, fake, make_worker, gateway):
    m, _ = jobs.image(fake)
    make_worker(supabase_url="http://127.0.0.1:9").run_once()
    assert_retry_scheduled(jobs, m["id"], "storage_unavailable")
    jobs.make_due(m["id"])
    make_worker().run_once()
    assert jobs.message(m["id"])["media_status"] == "stored"


def test_throttling_pauses_the_worker_and_respects_retry_after(jobs, fake, make_worker):
    fake.throttle_media(after_errors=1, block_s=3, code=4)
    gone, _ = jobs.image(fake, gone=True)
    worker = make_worker(concurrency=1, batch_size=1)
    worker.run_once()  # the error that sets off Meta's throttle
    assert_failed(jobs, gone["id"], "gone")
    m, _ = jobs.image(fake)
    worker.run_once()
    assert_retry_scheduled(jobs, m["id"], "throttled", at_least_s=1.5)
    assert worker.bucket.paused_for() > 1.5  # every Graph request of this worker waits
    assert worker.stats.failed["throttled"] == 1


def test_a_long_throttle_hands_claimed_jobs_back(jobs, fake, make_worker):
    fake.throttle_media(after_errors=1, block_s=120, code=80007)
    gone, _ = jobs.image(fake, gone=True)
    first, _ = jobs.image(fake)
    second, _ = jobs.image(fake)
    worker = make_worker(concurrency=1, batch_size=3)
    started = time.monotonic()
    worker.run_once()
    assert time.monotonic() - started < 10  # did not sit on the jobs for two minutes
    assert_failed(jobs, gone["id"], "gone")
    for m in (first, second):
        assert_retry_scheduled(jobs, m["id"], "throttled", at_least_s=100)


def test_a_worker_killed_mid_download_is_reclaimed(jobs, fake, media_config, make_worker, admin):
    m, media_id = jobs.image(fake, data=JPEG * 4, stall_after=1000)
    env = {
        **os.environ,
        "ZR_ENV": "development",
        "DATABASE_URL": media_config.database_url,
        "GRAPH_API_BASE": fake.base_url,
        "SUPABASE_URL": media_config.supabase_url,
        "ZR_MEDIA_IDLE_S": "0.05",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen([sys.executable, "-m", "app.media"], cwd=ROOT, env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not any("attachments" in r.path for r in fake.media_requests(media_id)):
            assert time.monotonic() < deadline, "the worker never started the download"
            time.sleep(0.05)
        time.sleep(0.2)  # the first bytes are in
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        fake.unstall()
    (job,) = jobs.jobs(m["id"])
    assert (
        job["claimed_at"] is not None and job["done_at"] is None and jobs.message(m["id"])["media_status"] == "pending"
    )
    worker = make_worker()
    assert worker.run_once() == 0  # still claimed: nobody takes it before the timeout
    admin.execute("update private.media_jobs set claimed_at = now() - interval '11 minutes' where id = %s", [job["id"]])
    fake.media[media_id].stall_after = None
    assert worker.run_once() == 1
    m = jobs.message(m["id"])
    assert m["media_status"] == "stored" and m["media_size"] == len(JPEG) * 4
    assert jobs.jobs(m["id"])[0]["attempt_count"] == 2


def test_a_mime_type_whatsapp_does_not_allow_is_refused(jobs, fake, make_worker):
    zip_id = fake.add_media(b"PK\x03\x04", "application/zip")
    zipped = jobs.ingest("document", {"mime_type": "application/zip", "filename": "a.zip", "sha256": "x", "id": zip_id})
    svg_id = fake.add_media(b"<svg/>", "image/svg+xml")
    svg = jobs.ingest("image", {"mime_type": "image/svg+xml", "sha256": "x", "id": svg_id})
    disguised, disguised_id = jobs.image(fake, graph_mime="application/x-msdownload")  # the webhook said image/jpeg
    make_worker().run_once()
    for m in (zipped, svg, disguised):
        assert_failed(jobs, m["id"], "mime_not_allowed")
    assert fake.media_requests(zip_id) == []  # refused before any request
    assert len(fake.media_requests(disguised_id)) == 1  # refused on Graph's word, before downloading


def test_a_document_filename_never_reaches_a_path(jobs, fake, make_worker, admin, gateway):
    pdf = b"%PDF-1.7\n" + os.urandom(1000)
    media_id = fake.add_media(pdf, "application/pdf")
    evil = "../../../../etc/passwd/..%2F../inventory.pdf"
    document = {"mime_type": "application/pdf", "filename": evil, "sha256": fake.sha256_of(media_id), "id": media_id}
    m = jobs.ingest("document", document)
    make_worker().run_once()
    m = jobs.message(m["id"])
    assert m["media_filename"] == evil  # kept as text for display, nothing more
    assert m["media_path"] == f"{ALICE}/{m['conversation_id']}/{m['id']}.pdf"
    assert service_download(gateway, m["media_path"]) == pdf
    names = [r["name"] for r in admin.execute("select name from storage.objects where bucket_id = 'whatsapp-media'")]
    assert not any(".." in n or "passwd" in n or "inventory" in n for n in names)
    assert all(p.name.count("-") == 4 for p in Path(gateway.app.blobs.root).iterdir())  # files are version uuids


def test_held_media_moves_to_the_landlords_folder_when_filed(jobs, fake, make_worker, admin, gateway):
    stranger = f"4479{uuid.uuid4().int % 10**8:08d}"
    m, _ = jobs.image(fake, phone=stranger)
    assert m["is_held"] and m["media_status"] == "pending"
    worker = make_worker()
    worker.run_once()
    held_path = f"held/{m['id']}.jpg"
    assert jobs.message(m["id"])["media_path"] == held_path
    support = mint_token("00000000-0000-4000-a000-000000005a55", app_metadata={"provider": "email", "role": "support"})
    r = httpx.get(
        f"{gateway.url}/storage/v1/object/whatsapp-media/{held_path}", headers={"Authorization": f"Bearer {support}"}
    )
    assert r.status_code == 200 and r.content == JPEG  # support sees held media
    conversation = admin.execute(
        "select private.file_held_message(%s, %s, '{}'::jsonb) as c", [m["id"], ALICE]
    ).fetchone()["c"]
    move = jobs.jobs(m["id"])[-1]
    assert (move["kind"], move["from_path"]) == ("move", held_path)
    worker.run_once()
    target = f"{ALICE}/{conversation}/{m['id']}.jpg"
    m = jobs.message(m["id"])
    assert (m["media_status"], m["media_path"], m["media_size"]) == ("stored", target, len(JPEG))
    assert stored_object(admin, held_path) is None and service_download(gateway, target) == JPEG
    admin.execute("update private.media_jobs set done_at = null, claimed_at = null where id = %s", [move["id"]])
    worker.run_once()  # a move done before a crash, done again: recognised, not an error
    assert jobs.jobs(m["id"])[-1]["done_at"] is not None and jobs.message(m["id"])["media_path"] == target


# -- end to end -----------------------------------------------------------------------------------------
def test_a_tenants_photo_reaches_the_landlords_app_and_no_one_elses(client, config, jobs, fake, make_worker, gateway):
    photo = b"\xff\xd8\xff\xe0" + os.urandom(50_000)
    media_id = fake.add_media(photo, "image/jpeg")
    sha = base64.b64encode(hashlib.sha256(photo).digest()).decode()
    image = {"caption": "Leak under the sink", "mime_type": "image/jpeg", "sha256": sha, "id": media_id}
    body, wamid = jobs.payload("image", image)
    raw = json.dumps(body).encode()
    answer = client.post(
        "/webhooks/whatsapp",
        data=raw,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(raw, config.app_secret)},
    )
    assert answer.status_code == 200
    m = jobs.by_wamid(wamid)
    assert make_worker().run_once() == 1

    alice = LandlordClient(gateway.url, LOCAL_ANON_KEY, mint_token(ALICE, email="alice@zenrent.test"))
    bob = LandlordClient(gateway.url, LOCAL_ANON_KEY, mint_token(BOB, email="bob@zenrent.test"))
    try:
        message = alice.get_message(m["id"])  # the landlord client, as an app uses it
        assert (message.media_status, message.media_size) == ("stored", len(photo))
        assert httpx.get(alice.media_url(message, expires_in=60)).content == photo  # identical bytes, signed URL
        assert alice.download_media(message) == photo
        row = {"media_path": message.media_path}
        assert bob.supabase.table("whatsapp_messages").select("id").eq("id", str(m["id"])).execute().data == []
        bobs = bob.supabase.storage.from_("whatsapp-media")
        for attempt in (
            lambda: bobs.create_signed_url(row["media_path"], 60),
            lambda: bobs.download(row["media_path"]),
        ):
            with pytest.raises(StorageApiError) as refused:
                attempt()
            assert (str(refused.value.status), refused.value.code) == ("404", "not_found")
    finally:
        alice.close()
        bob.close()


# -- outbound files -----------------------------------------------------------------------------------------
def test_upload_media_for_an_outbound_message(fake, config):
    graph = GraphMediaClient(fake.base_url, config.graph_api_version, config.phone_number_id, config.access_token)
    try:
        media_id = graph.upload(io.BytesIO(b"%PDF-1.7"), "invoice.pdf", "application/pdf")
        info = graph.retrieve(media_id)
        assert info.mime_type == "application/pdf" and info.file_size == 8
        (upload,) = [r for r in fake.requests if r.method == "POST"]
        assert upload.path == f"/{config.graph_api_version}/{config.phone_number_id}/media"
        assert b'name="messaging_product"' in upload.raw and b"whatsapp" in upload.raw
    finally:
        graph.close()


def test_a_job_kind_the_worker_does_not_know_is_kept_for_one_that_does(fake, make_worker):
    job = MediaJob(-1, "transcode", uuid.uuid4(), "1", "application/pdf", None, "document", None, None, 1)
    outcome = make_worker().process(job)
    assert isinstance(outcome, MediaFailure) and (outcome.code, outcome.retryable) == ("unsupported_job", True)
    assert fake.requests == []


def test_stored_outcome_is_what_run_once_completes(jobs, fake, make_worker):
    """process() is the unit a benchmark can drive: it returns what it recorded."""
    m, _ = jobs.image(fake)
    worker = make_worker()
    (job,) = worker.claim(1)
    outcome = worker.process(job)
    assert outcome == Stored(jobs.message(m["id"])["media_path"], len(JPEG))
