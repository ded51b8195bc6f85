"""The local Storage stand-in (app/local/storage.py) through supabase-py's Storage client (storage3)
and raw HTTP, against the real local database: what the whatsapp-media bucket's RLS policies let
each caller do, the bucket's limits, signed URLs, remove and move, and Storage's error shapes.

Objects are made under a fresh folder per test and removed afterwards; a test bucket with small
limits is created and dropped by this module (as postgres, which may create buckets as on hosted).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import psycopg
import pytest
from psycopg.rows import dict_row
from storage3 import SyncStorageClient
from storage3.exceptions import StorageApiError

from app.config import ConfigError
from app.local.serving import require_loopback
from app.local.storage import StorageConfig, StorageServer
from app.local.tokens import LOCAL_JWT_SECRET, LOCAL_SERVICE_ROLE_KEY, mint_token
from conftest import DATABASE_URL

BUCKET = "whatsapp-media"
SMALL = "zr-test-small"
ALICE = "00000000-0000-4000-a000-00000000a11c"
BOB = "00000000-0000-4000-a000-000000000b0b"
SUPPORT = "00000000-0000-4000-a000-000000005a55"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4


@pytest.fixture(scope="module")
def admin() -> Iterator[psycopg.Connection]:
    with psycopg.connect(DATABASE_URL, autocommit=True, row_factory=dict_row) as conn:
        conn.execute(
            "insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)"
            " values (%s, %s, false, 1024, '{image/*,text/plain}') on conflict (id) do nothing",
            [SMALL, SMALL],
        )
        yield conn
        with conn.transaction():
            conn.execute("set local storage.allow_delete_query = 'true'")
            conn.execute("delete from storage.objects where bucket_id = %s", [SMALL])
            conn.execute("delete from storage.buckets where id = %s", [SMALL])


@pytest.fixture(scope="module")
def server(admin, tmp_path_factory) -> Iterator[StorageServer]:
    config = StorageConfig.from_env({"ZR_ENV": "development", "DATABASE_URL": DATABASE_URL})
    root = tmp_path_factory.mktemp("storage")
    with StorageServer(StorageConfig(config.database_url, config.jwt_secret, root=root), port=0) as srv:
        yield srv


def client(server: StorageServer, token: str | None) -> SyncStorageClient:
    headers = {"apikey": LOCAL_SERVICE_ROLE_KEY if token == LOCAL_SERVICE_ROLE_KEY else "anon"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return SyncStorageClient(server.url + "/storage/v1/", headers, http_client=httpx.Client(headers=headers))


@pytest.fixture(scope="module")
def service(server):
    return client(server, LOCAL_SERVICE_ROLE_KEY).from_(BUCKET)


@pytest.fixture(scope="module")
def alice(server):
    return client(server, mint_token(ALICE, email="alice@zenrent.test")).from_(BUCKET)


@pytest.fixture(scope="module")
def bob(server):
    return client(server, mint_token(BOB, email="bob@zenrent.test")).from_(BUCKET)


@pytest.fixture(scope="module")
def support(server):
    token = mint_token(SUPPORT, app_metadata={"provider": "email", "role": "support"})
    return client(server, token).from_(BUCKET)


@pytest.fixture()
def folder(service, admin) -> Iterator[str]:
    """A fresh conversation folder of Alice's; everything in it is removed afterwards."""
    name = f"{ALICE}/{uuid.uuid4()}"
    yield name
    left = admin.execute(
        "select name from storage.objects where bucket_id = %s and name like %s", [BUCKET, name + "/%"]
    ).fetchall()
    if left:
        service.remove([r["name"] for r in left])


def row(admin, name: str, bucket: str = BUCKET) -> dict | None:
    return admin.execute("select * from storage.objects where bucket_id = %s and name = %s", [bucket, name]).fetchone()


def files(server: StorageServer) -> set[str]:
    return {p.name for p in Path(server.app.blobs.root).iterdir()}


def api_error(excinfo: pytest.ExceptionInfo[StorageApiError]) -> tuple[str, str]:
    return str(excinfo.value.status), excinfo.value.code


# -- uploads ----------------------------------------------------------------------------------------
def test_service_role_uploads_and_the_row_is_storages(service, admin, server, folder):
    name = f"{folder}/photo.jpg"
    service.upload(name, JPEG, {"content-type": "image/jpeg"})
    r = row(admin, name)
    assert r["path_tokens"] == name.split("/") and r["owner"] is None and r["owner_id"] is None
    meta = r["metadata"]
    assert meta["size"] == len(JPEG) and meta["mimetype"] == "image/jpeg" and meta["cacheControl"] == "max-age=3600"
    assert meta["eTag"] == f'"{hashlib.md5(JPEG).hexdigest()}"' and r["version"] in files(server)
    assert service.download(name) == JPEG
    info = service.info(name)
    assert info["size"] == len(JPEG) and info["content_type"] == "image/jpeg" and service.exists(name)
    assert not service.exists(f"{folder}/nothing.jpg")


def test_upload_without_upsert_refuses_an_existing_name_and_upsert_replaces_it(service, admin, server, folder):
    name = f"{folder}/doc.txt"
    service.upload(name, b"one", {"content-type": "text/plain"})
    first = row(admin, name)["version"]
    with pytest.raises(StorageApiError) as exc:
        service.upload(name, b"two", {"content-type": "text/plain"})
    assert api_error(exc) == ("409", "Duplicate")
    service.upload(name, b"three", {"content-type": "text/plain", "upsert": "true"})
    assert service.download(name) == b"three"
    assert first not in files(server)  # the replaced version's file is gone


def test_a_landlord_writes_only_under_their_outbound_folder(alice, admin, server):
    ok = f"{ALICE}/outbound/{uuid.uuid4()}.jpg"
    alice.upload(ok, JPEG, {"content-type": "image/jpeg"})
    assert row(admin, ok)["owner"] is not None and str(row(admin, ok)["owner"]) == ALICE
    before = files(server)
    for refused in (f"{ALICE}/{uuid.uuid4()}/x.jpg", f"{BOB}/outbound/{uuid.uuid4()}.jpg", f"held/{uuid.uuid4()}.jpg"):
        with pytest.raises(StorageApiError) as exc:
            alice.upload(refused, JPEG, {"content-type": "image/jpeg"})
        assert api_error(exc) == ("403", "Unauthorized")
        assert "row-level security" in exc.value.message and row(admin, refused) is None
    assert files(server) == before  # nothing written for a refused upload
    assert alice.remove([ok])[0]["name"] == ok


def test_bucket_limits_are_enforced_as_storage_does(server, admin):
    small = client(server, LOCAL_SERVICE_ROLE_KEY).from_(SMALL)
    name = f"limits/{uuid.uuid4()}"
    with pytest.raises(StorageApiError) as exc:
        small.upload(f"{name}.jpg", b"x" * 1025, {"content-type": "image/jpeg"})
    assert api_error(exc) == ("413", "Payload too large") and row(admin, f"{name}.jpg", SMALL) is None
    small.upload(f"{name}.jpg", b"x" * 1024, {"content-type": "image/jpeg"})  # exactly the limit
    small.upload(f"{name}.png", b"png", {"content-type": "image/png"})  # image/* matches any image
    with pytest.raises(StorageApiError) as exc:
        small.upload(f"{name}.pdf", b"%PDF", {"content-type": "application/pdf"})
    assert api_error(exc) == ("415", "invalid_mime_type") and "application/pdf" in exc.value.message
    raw = httpx.post(
        f"{server.url}/storage/v1/object/{SMALL}/{name}.bin",
        content=b"y" * 2000,
        headers={"Authorization": f"Bearer {LOCAL_SERVICE_ROLE_KEY}", "Content-Type": "text/plain"},
    )
    assert raw.status_code == 400 and raw.json()["statusCode"] == "413"  # a raw body, too


def test_dot_segments_and_bad_characters_are_invalid_keys(server):
    headers = {"Authorization": f"Bearer {LOCAL_SERVICE_ROLE_KEY}"}
    for name in (f"{ALICE}/a/%2E%2E/b.jpg", "held/..%2F..%2Fescape.jpg", "held/tab%09.jpg"):
        r = httpx.post(
            f"{server.url}/storage/v1/object/{BUCKET}/{name}",
            files={"file": ("x.jpg", JPEG, "image/jpeg")},
            headers=headers,
        )
        assert r.status_code == 400 and r.json()["code"] == "InvalidKey", name


# -- reads under RLS ----------------------------------------------------------------------------------
def test_landlords_read_their_own_media_only(service, alice, bob, support, server, folder):
    name = f"{folder}/photo.jpg"
    service.upload(name, JPEG, {"content-type": "image/jpeg"})
    assert alice.download(name) == JPEG
    for reader in (bob, support):
        for attempt in (lambda r=reader: r.download(name), lambda r=reader: r.create_signed_url(name, 60)):
            with pytest.raises(StorageApiError) as exc:
                attempt()
            assert api_error(exc) == ("404", "not_found")  # as if it did not exist
    anonymous = httpx.get(f"{server.url}/storage/v1/object/{BUCKET}/{name}")
    assert anonymous.status_code == 400 and anonymous.json()["message"] == "Bucket not found"
    forged = jwt.encode({"sub": ALICE, "role": "authenticated"}, "x" * 40, algorithm="HS256")
    with pytest.raises(StorageApiError) as exc:
        client(server, forged).from_(BUCKET).create_signed_url(name, 60)
    assert api_error(exc) == ("403", "Unauthorized")


def test_support_reads_held_media_and_landlords_do_not(service, alice, support):
    name = f"held/{uuid.uuid4()}.jpg"
    service.upload(name, JPEG, {"content-type": "image/jpeg"})
    try:
        assert support.download(name) == JPEG
        with pytest.raises(StorageApiError):
            alice.download(name)
    finally:
        service.remove([name])


# -- signed URLs ---------------------------------------------------------------------------------------
def test_signed_urls_download_until_they_expire_and_only_their_object(service, alice, server, folder):
    name = f"{folder}/photo.jpg"
    service.upload(name, JPEG, {"content-type": "image/jpeg"})
    signed = alice.create_signed_url(name, 60)["signedURL"]
    got = httpx.get(signed)
    assert got.status_code == 200 and got.content == JPEG and got.headers["content-type"] == "image/jpeg"
    token = signed.split("token=")[1]
    other = httpx.get(f"{server.url}/storage/v1/object/sign/{BUCKET}/{folder}/other.jpg?token={token}")
    assert other.status_code == 400 and other.json()["code"] == "InvalidSignature"
    now = int(time.time())
    expired = jwt.encode(
        {"url": f"{BUCKET}/{name}", "scope": "download", "iat": now - 120, "exp": now - 60},
        LOCAL_JWT_SECRET,
        algorithm="HS256",
    )
    late = httpx.get(f"{server.url}/storage/v1/object/sign/{BUCKET}/{name}?token={expired}")
    assert late.status_code == 400 and late.json()["code"] == "ExpiredToken"
    upload_scoped = jwt.encode(
        {"url": f"{BUCKET}/{name}", "scope": "upload", "exp": now + 60}, LOCAL_JWT_SECRET, algorithm="HS256"
    )
    wrong = httpx.get(f"{server.url}/storage/v1/object/sign/{BUCKET}/{name}?token={upload_scoped}")
    assert wrong.status_code == 400 and wrong.json()["code"] == "InvalidSignature"
    for bad in (0, "soon", True):
        r = httpx.post(
            f"{server.url}/storage/v1/object/sign/{BUCKET}/{name}",
            json={"expiresIn": bad},
            headers={"Authorization": f"Bearer {LOCAL_SERVICE_ROLE_KEY}"},
        )
        assert r.status_code == 400 and r.json()["statusCode"] == "400", bad


def test_the_operation_is_set_for_policies(admin, server):
    """A policy can tell signing from downloading: storage.operation() is set per request."""
    bucket = f"zr-test-ops-{uuid.uuid4().hex[:8]}"
    policy = f"test {bucket}: alice may only sign"
    admin.execute("insert into storage.buckets (id, name) values (%s, %s)", [bucket, bucket])
    admin.execute(
        f'create policy "{policy}" on storage.objects for select to authenticated'
        f" using (bucket_id = '{bucket}' and storage.allow_only_operation('object.sign'))"
    )
    try:
        client(server, LOCAL_SERVICE_ROLE_KEY).from_(bucket).upload("a.txt", b"hi", {"content-type": "text/plain"})
        mine = client(server, mint_token(ALICE)).from_(bucket)
        assert httpx.get(mine.create_signed_url("a.txt", 60)["signedURL"]).content == b"hi"
        with pytest.raises(StorageApiError):
            mine.download("a.txt")  # storage.object.get_authenticated: not allowed by the policy
    finally:
        admin.execute(f'drop policy "{policy}" on storage.objects')
        with admin.transaction():
            admin.execute("set local storage.allow_delete_query = 'true'")
            admin.execute("delete from storage.objects where bucket_id = %s", [bucket])
            admin.execute("delete from storage.buckets where id = %s", [bucket])


# -- remove and move ---------------------------------------------------------------------------------
def test_remove_deletes_only_what_rls_lets_the_caller_delete(service, alice, bob, admin, server, folder):
    theirs = f"{folder}/photo.jpg"
    outbound = f"{ALICE}/outbound/{uuid.uuid4()}.jpg"
    service.upload(theirs, JPEG, {"content-type": "image/jpeg"})
    alice.upload(outbound, JPEG, {"content-type": "image/jpeg"})
    assert bob.remove([theirs, outbound]) == []  # nothing of Bob's: nothing removed
    assert alice.remove([theirs]) == []  # Alice may read it, not delete it (only her outbound/)
    version = row(admin, outbound)["version"]
    assert [o["name"] for o in alice.remove([outbound])] == [outbound]
    assert row(admin, outbound) is None and version not in files(server)
    assert row(admin, theirs) is not None


def test_move_from_held_to_a_landlords_folder(service, alice, support, admin, server, folder):
    held = f"held/{uuid.uuid4()}.jpg"
    target = f"{folder}/moved.jpg"
    service.upload(held, JPEG, {"content-type": "image/jpeg"})
    with pytest.raises(StorageApiError):
        alice.move(held, f"{ALICE}/outbound/stolen.jpg")  # she cannot even see held/
    old_version = row(admin, held)["version"]
    assert service.move(held, target) == {
        "message": "Successfully moved",
        "Id": str(row(admin, target)["id"]),
        "Key": target,
    }
    assert row(admin, held) is None and old_version not in files(server)
    assert alice.download(target) == JPEG
    with pytest.raises(StorageApiError) as exc:
        service.move(held, target)
    assert api_error(exc) == ("404", "not_found")


def test_the_stand_in_follows_the_rule_for_secrets():
    with pytest.raises(ConfigError, match="ZR_JWT_SECRET"):
        StorageConfig.from_env({"DATABASE_URL": DATABASE_URL})  # ZR_ENV unset: production rules
    config = StorageConfig.from_env({"ZR_ENV": "development", "DATABASE_URL": DATABASE_URL})
    assert config.jwt_secret == LOCAL_JWT_SECRET and "supabase_storage_admin" in config.database_url


def test_unknown_routes_and_hosts(server):
    r = httpx.get(f"{server.url}/storage/v1/bucket")
    assert r.status_code == 404 and r.json()["statusCode"] == "404"
    with pytest.raises(ValueError, match="loopback"):
        require_loopback("0.0.0.0")
    assert require_loopback("127.0.0.1") and require_loopback("::1") and require_loopback("localhost")
