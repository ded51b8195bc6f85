"""A LOCAL TEST STAND-IN for Supabase Storage's HTTP API. Not the Storage server; never deploy it.

The Storage server cannot be installed on these machines, yet the media worker (app/media.py)
must be proven end to end through supabase-py's Storage client (storage3), and a landlord's app
must be shown to read its own media and nobody else's, under RLS. This module serves the part of
Storage's API that storage3 uses here, with Storage's semantics, on `/storage/v1/object/...`
(scripts/storage):

* upload: `POST /object/{bucket}/{name}` (`x-upsert: true` to replace) and `PUT` (always
  replaces), multipart/form-data as storage3 sends it (field `file`, its Content-Type the MIME
  type; `cacheControl`, `metadata`) or a raw body with Content-Type -> `{"Id", "Key"}`;
* download: `GET /object/{bucket}/{name}` and `/object/authenticated/{bucket}/{name}` with the
  caller's token; `GET /object/sign/{bucket}/{name}?token=...` with a signed URL's token;
* object info: `GET /object/info/{bucket}/{name}` (storage3's `info()` and `exists()`);
* signed URLs: `POST /object/sign/{bucket}/{name}` `{"expiresIn": seconds}` -> `{"signedURL"}`;
* remove: `DELETE /object/{bucket}` `{"prefixes": [names]}` -> the deleted rows;
* move: `POST /object/move` `{"bucketId", "sourceKey", "destinationKey", "destinationBucket"?}`.

Anything else is a 404 in Storage's error shape. Files live on disk under a directory of their
own (a temporary one unless ZR_STORAGE_ROOT names one), one file per object version; their
metadata rows live in storage.objects (supabase/local/storage.sql), as with the real server.

Security model, as in Storage (src/http/plugins/jwt.ts, src/internal/database/postgres/scope.ts,
src/storage/object.ts, src/storage/uploader.ts in supabase/storage):

* The caller is who the `Authorization: Bearer <jwt>` says, verified with HS256 and ZR_JWT_SECRET
  (with ZR_ENV=development only, the Supabase CLI's local secret: app.config's rule). Routes that
  Storage marks allowInvalidJwt (GET object, GET info) treat a missing or bad token as anon;
  every other route refuses it. The `role` claim must be anon, authenticated or service_role.
* Every check of the caller's rights is SQL on storage.objects under RLS, in a transaction on a
  connection made as supabase_storage_admin (the owner of the tables, as the real server logs
  in) after Storage's scope: `set_config('role', <JWT role>)`, `request.jwt.claim.role`,
  `request.jwt`, `request.jwt.claim.sub`, `request.jwt.claims`, `request.headers`,
  `request.method`, `request.path`, `storage.operation` (e.g. 'storage.object.upload') and
  `storage.allow_delete_query`, all transaction-local. Upload and move are tested the way
  Storage tests them: the INSERT (or upsert) / UPDATE runs under RLS and is rolled back, then
  the file is written and the row committed with the server's own rights. Download, info and
  signing SELECT the row under RLS; remove DELETEs under RLS and drops only what came back. The
  service role bypasses RLS because Postgres says so (service_role is BYPASSRLS), not because
  this process skips a check. This process filters nothing itself.
* Bucket limits as Storage applies them: the bucket's file_size_limit (bytes, also capped by
  ZR_STORAGE_FILE_SIZE_LIMIT, Storage's global limit) -> EntityTooLarge; allowed_mime_types
  ('type/subtype' or 'type/*') -> InvalidMimeType; object names must match Storage's key
  characters, and `.`/`..` segments are refused as Storage's file backend refuses them.
* Signed URLs carry an HS256 token `{url: "<bucket>/<name>", scope: "download", iat, exp}`
  signed with the same secret, checked for scope, path and expiry on download.
* Errors are Storage's: HTTP 400 (500 for internal errors) with `{"statusCode": "<Storage's
  status>", "code", "error", "message"}`, e.g. an object the caller may not see is
  `{"statusCode": "404", "error": "not_found", "message": "Object not found"}`.

Run: `scripts/storage` (or `python -m app.local.storage --port 0` for a free port). Loopback only.
See docs/storage.md.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

import jwt
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout
from werkzeug.datastructures import FileStorage, Headers
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import wrap_file

from ..config import default_database_url
from ..logging_setup import configure_logging, log_event
from .dataapi import authenticator_url
from .serving import LocalServer
from .tokens import jwt_secret

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("app.local.storage")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 54325
PREFIX = "/storage/v1/object"
#: JWT role claim -> Postgres role. Nothing else is ever passed to set_config('role', ...).
API_ROLES = {"anon": "anon", "authenticated": "authenticated", "service_role": "service_role"}
SERVICE_ROLE = "service_role"
#: Storage's object key characters (src/storage/limits.ts, isValidKey).
_VALID_KEY = re.compile(r"[A-Za-z0-9_/!.*'() &$=@;:+,?-]+\Z")
_VERSION = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-5][0-9a-f]{3}-[089ab][0-9a-f]{3}-[0-9a-f]{12}\Z", re.I)
_BEARER = re.compile(r"^Bearer\s+", re.I)
_MAX_JWT_EXPIRY_S = (2**53 - 1) // 1000
_CHUNK = 64 * 1024
SIGNED_URL_SCOPE_DOWNLOAD = "download"


# -- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StorageConfig:
    """Where the stand-in connects, how it verifies tokens and where it keeps files."""

    database_url: str  # as supabase_storage_admin, the tables' owner (supabase/local/storage.sql)
    jwt_secret: str
    root: Path | None = None  # None: a temporary directory, removed when the stand-in closes
    file_size_limit: int = 100 * 1024 * 1024  # Storage's global upload limit (bytes)
    max_json_bytes: int = 1024 * 1024
    pool_min: int = 1
    pool_max: int = 10
    pool_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if len(self.jwt_secret) < 32:
            raise ValueError("the JWT secret must be at least 32 characters")
        if self.file_size_limit < 1:
            raise ValueError("file_size_limit must be positive")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StorageConfig:
        """ZR_STORAGE_DATABASE_URL, or DATABASE_URL with the login role swapped for
        ZR_STORAGE_DB_USER (default supabase_storage_admin) / ZR_STORAGE_DB_PASSWORD (default
        postgres, as supabase/local/storage.sql creates it); ZR_JWT_SECRET; ZR_STORAGE_ROOT;
        ZR_STORAGE_FILE_SIZE_LIMIT (bytes)."""
        env = dict(os.environ if env is None else env)
        url = env.get("ZR_STORAGE_DATABASE_URL") or authenticator_url(
            default_database_url(env),
            env.get("ZR_STORAGE_DB_USER", "supabase_storage_admin"),
            env.get("ZR_STORAGE_DB_PASSWORD", "postgres"),
        )
        root = env.get("ZR_STORAGE_ROOT")
        return cls(
            database_url=url,
            jwt_secret=jwt_secret(env),
            root=Path(root) if root else None,
            file_size_limit=int(env.get("ZR_STORAGE_FILE_SIZE_LIMIT", str(cls.file_size_limit))),
        )


# -- errors ------------------------------------------------------------------------------------


class StorageError(Exception):
    """An answer in Storage's error shape: HTTP 400 (500 for internal errors), the real status in the body."""

    def __init__(self, status: int, code: str, message: str, error: str | None = None, http_status: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.error = error or code
        self.http_status = http_status or (500 if status == 500 else 400)

    def body(self) -> dict[str, str]:
        return {"statusCode": str(self.status), "code": self.code, "error": self.error, "message": self.message}


def no_such_bucket() -> StorageError:
    return StorageError(404, "NoSuchBucket", "Bucket not found", "Bucket not found")


def no_such_key() -> StorageError:
    return StorageError(404, "NoSuchKey", "Object not found", "not_found")


def access_denied(message: str = "Access denied") -> StorageError:
    return StorageError(403, "AccessDenied", message, "Unauthorized")


def entity_too_large() -> StorageError:
    return StorageError(413, "EntityTooLarge", "The object exceeded the maximum allowed size", "Payload too large")


def invalid_mime_type(mime_type: str) -> StorageError:
    return StorageError(415, "InvalidMimeType", f"mime type {mime_type} is not supported", "invalid_mime_type")


def invalid_key(key: str, reason: str = "") -> StorageError:
    return StorageError(400, "InvalidKey", f"Invalid key: {key}" + (f" {reason}" if reason else ""))


def invalid_request(message: str) -> StorageError:
    return StorageError(400, "InvalidRequest", message, "Bad Request")


def route_not_found(method: str, path: str) -> StorageError:
    return StorageError(404, "NotFound", f"Route {method}:{path} not found", "Not Found", http_status=404)


def from_pg_error(exc: psycopg.Error) -> StorageError:
    """Storage's DBError.fromDBError for the codes that can happen here."""
    code = exc.sqlstate or ""
    message = exc.diag.message_primary or str(exc)
    if code == "42501":
        return access_denied(
            "new row violates row-level security policy" if "row-level security" in message else message
        )
    if code == "23505":
        return StorageError(409, "ResourceAlreadyExists", "The resource already exists", "Duplicate")
    if code == "57014":
        return StorageError(544, "DatabaseTimeout", "Timeout while waiting for the database", http_status=500)
    return StorageError(500, "DatabaseError", f"database error, code: {code or 'unknown'}")


# -- who is calling --------------------------------------------------------------------------


@dataclass(frozen=True)
class Auth:
    role: str  # one of API_ROLES
    claims: dict[str, Any]
    token: str = ""
    authenticated: bool = True  # Storage's request.isAuthenticated: a token that verified

    @property
    def owner(self) -> str | None:
        sub = self.claims.get("sub")
        return str(sub) if sub else None


ANON = Auth("anon", {"role": "anon"}, authenticated=False)
SUPERUSER = Auth(SERVICE_ROLE, {"role": SERVICE_ROLE})  # the server's own rights (asSuperUser)


def authenticate(headers: Headers | Mapping[str, str], secret: str, allow_invalid: bool) -> Auth:
    """The caller, as Storage's JWT plugin decides it (Authorization header only)."""
    token = _BEARER.sub("", headers.get("Authorization") or "").strip()
    if not token and allow_invalid:
        return ANON
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_aud": False, "require": []})
    except jwt.InvalidTokenError as exc:
        if allow_invalid:
            return ANON
        raise access_denied(str(exc) or "invalid JWT") from None
    role = claims.get("role") if isinstance(claims, dict) else None
    if not isinstance(role, str) or role not in API_ROLES:
        if allow_invalid:
            return ANON
        raise access_denied("Access denied: Invalid role")
    return Auth(API_ROLES[role], claims, token)


# -- object names and MIME types ---------------------------------------------------------------


def must_be_valid_key(key: str) -> str:
    """Storage's mustBeValidKey, plus its file backend's refusal of `.`/`..` segments."""
    if not key or not _VALID_KEY.match(key):
        raise invalid_key(key)
    if key.startswith("/") or any(part in (".", "..") for part in key.split("/")):
        raise invalid_key(key, "contains dot path segment")
    return key


def validate_mime_type(mime_type: str, allowed: Iterable[str]) -> None:
    """Storage's validateMimeType: 'type/subtype' must equal an allowed one, or match 'type/*'."""
    parts = mime_type.split("/")
    if len(parts) < 2:
        raise invalid_mime_type(mime_type)
    kind, sub = parts[0], parts[1]
    for entry in allowed:
        allowed_parts = entry.split("/")
        if len(allowed_parts) >= 2 and allowed_parts[0] == kind and allowed_parts[1] in ("*", sub):
            return
    raise invalid_mime_type(mime_type)


def _owner_columns(owner: str | None) -> tuple[str | None, str | None]:
    """(owner uuid or None, owner_id text), as Storage fills them."""
    return (owner if owner and _UUID.match(owner) else None), owner


# -- files -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    version: str
    size: int
    md5: str


class BlobStore:
    """One file per object version under `root`, named by the version (a uuid this process makes):
    no object name ever becomes a path on disk."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, version: str | None) -> Path | None:
        return self.root / version if version and _VERSION.match(version) else None

    def write(self, stream: IO[bytes], limit: int) -> Written:
        """Copy a stream into a new version; EntityTooLarge (and nothing kept) past `limit` bytes."""
        version = str(uuid.uuid4())
        final = self.root / version
        partial = self.root / f"{version}.part"
        md5, size = hashlib.md5(usedforsecurity=False), 0
        try:
            with partial.open("wb") as out:
                while chunk := stream.read(_CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise entity_too_large()
                    md5.update(chunk)
                    out.write(chunk)
            partial.replace(final)
        finally:
            partial.unlink(missing_ok=True)
        return Written(version, size, md5.hexdigest())

    def open(self, version: str | None) -> IO[bytes] | None:
        path = self.path(version)
        try:
            return path.open("rb") if path else None
        except FileNotFoundError:
            return None

    def rename(self, old: str | None, new: str) -> None:
        source, target = self.path(old), self.path(new)
        if source is None or target is None or not source.exists():
            raise no_such_key()
        source.replace(target)

    def remove(self, version: str | None) -> None:
        path = self.path(version)
        if path is not None:
            path.unlink(missing_ok=True)


# -- the database ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What the Storage server puts in a request's transaction before it touches storage.objects."""

    auth: Auth
    method: str
    path: str
    operation: str
    headers: dict[str, str] = field(default_factory=dict)


def apply_scope(conn: psycopg.Connection[Any], scope: Scope) -> None:
    """Storage's setScope: the caller's role and request GUCs, transaction-locally."""
    role = API_ROLES[scope.auth.role]
    conn.execute(
        "select set_config('role', %s, true), set_config('request.jwt.claim.role', %s, true),"
        " set_config('request.jwt', %s, true), set_config('request.jwt.claim.sub', %s, true),"
        " set_config('request.jwt.claims', %s, true), set_config('request.headers', %s, true),"
        " set_config('request.method', %s, true), set_config('request.path', %s, true),"
        " set_config('storage.operation', %s, true), set_config('storage.allow_delete_query', 'true', true)",
        [
            role,
            role,
            scope.auth.token,
            scope.auth.owner or "",
            json.dumps(scope.auth.claims, separators=(",", ":")),
            json.dumps(scope.headers, separators=(",", ":")),
            scope.method,
            scope.path,
            scope.operation,
        ],
    )


class _Rollback(Exception):
    """Ends a permission test: what it wrote is rolled back (Storage's testPermission)."""


_BUCKET_SQL = "select id, public, file_size_limit, allowed_mime_types from storage.buckets where id = %s limit 1"
_FIND_SQL = (
    "select id, name, bucket_id, version, metadata, user_metadata, created_at, updated_at"
    " from storage.objects where name = %s and bucket_id = %s limit 1"
)
_INSERT_SQL = (
    "insert into storage.objects (bucket_id, name, owner, owner_id, metadata, user_metadata, version)"
    " values (%s, %s, %s, %s, %s, %s, %s)"
)
_UPSERT_SQL = (
    _INSERT_SQL + " on conflict (name, bucket_id) do update set metadata = excluded.metadata,"
    " user_metadata = excluded.user_metadata, version = excluded.version,"
    " owner = coalesce(excluded.owner, storage.objects.owner), owner_id = coalesce(excluded.owner_id,"
    " storage.objects.owner_id) returning id"
)
#: A caller without a (uuid) sub leaves the owner columns as they are, as Storage omits undefined columns.
_MOVE_SQL = (
    "update storage.objects set name = %s, bucket_id = %s, version = %s, owner = coalesce(%s::uuid, owner),"
    " owner_id = coalesce(%s, owner_id) where bucket_id = %s and name = %s returning id, name"
)
_DELETE_SQL = (
    "delete from storage.objects o where o.bucket_id = %s and o.name = any(%s::text[])"
    " returning o.version, to_jsonb(o) - 'path_tokens' as row"
)


class Database:
    """Transactions as the caller (under RLS) or with the server's own rights."""

    def __init__(self, config: StorageConfig, pool: ConnectionPool[psycopg.Connection[Any]] | None = None):
        self.pool = pool or ConnectionPool(
            conninfo=config.database_url,
            min_size=config.pool_min,
            max_size=config.pool_max,
            timeout=config.pool_timeout_s,
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "connect_timeout": 5,
                "application_name": "zenrent-local-storage",
            },
            check=ConnectionPool.check_connection,
            open=False,
            name="zenrent-local-storage",
        )
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close()

    @contextlib.contextmanager
    def transaction(self, scope: Scope) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self.pool.connection() as conn, conn.transaction():
                apply_scope(conn, scope)
                yield conn
        except StorageError:
            raise
        except PoolTimeout:
            raise StorageError(500, "DatabaseError", "Timed out acquiring a database connection") from None
        except psycopg.Error as exc:
            raise from_pg_error(exc) from None

    def test_permission(self, scope: Scope, work: Callable[[psycopg.Connection[Any]], object]) -> None:
        """Run `work` under the caller's rights, then roll it back: errors are what RLS said."""
        with contextlib.suppress(_Rollback), self.transaction(scope) as conn:
            work(conn)
            raise _Rollback

    def bucket(self, scope: Scope, bucket_id: str) -> dict[str, Any]:
        with self.transaction(_as_superuser(scope)) as conn:
            row = conn.execute(_BUCKET_SQL, [bucket_id]).fetchone()
        if row is None:
            raise no_such_bucket()
        return dict(row)

    def find(self, scope: Scope, bucket_id: str, name: str) -> dict[str, Any]:
        with self.transaction(scope) as conn:
            row = conn.execute(_FIND_SQL, [name, bucket_id]).fetchone()
        if row is None:
            raise no_such_key()
        return dict(row)


def _as_superuser(scope: Scope) -> Scope:
    return Scope(SUPERUSER, scope.method, scope.path, scope.operation, scope.headers)


# -- requests ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    stream: IO[bytes]
    mime_type: str
    cache_control: str
    user_metadata: Any
    declared_length: int | None


def _json_body(request: Request, limit: int) -> dict[str, Any]:
    raw = request.get_data(cache=False)
    if len(raw) > limit:
        raise entity_too_large()
    try:
        body = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (UnicodeDecodeError, ValueError):
        raise invalid_request("Body is not valid JSON") from None
    if not isinstance(body, dict):
        raise invalid_request("body must be object")
    return body


def _positive_int(value: Any, what: str) -> int:
    """Storage validates with ajv, which coerces numeric strings (storage3 sends expiresIn as one)."""
    if isinstance(value, bool):
        raise invalid_request(f"body/{what} must be integer")
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,15}", value.strip()):
        value = int(value)
    if not isinstance(value, int):
        raise invalid_request(f"body/{what} must be integer")
    if value < 1:
        raise invalid_request(f"body/{what} must be >= 1")
    return value


def read_upload(request: Request, limit: int, allowed_mime_types: list[str] | None) -> Upload:
    """The file of an upload request, as Storage's fileUploadFromRequest reads it."""
    content_type = request.headers.get("Content-Type", "")
    if content_type.startswith("multipart/form-data"):
        request.max_content_length = limit + 1024 * 1024  # the file plus boundaries and small fields
        try:
            part: FileStorage | None = request.files.get("file") or next(iter(request.files.values()), None)
            form = request.form
        except RequestEntityTooLarge:
            raise entity_too_large() from None
        if part is None:
            raise invalid_request("No content provided")
        mime_type = form.get("contentType") or part.mimetype or "application/octet-stream"
        cache_time = form.get("cacheControl")
        cache_control = f"max-age={cache_time}" if cache_time else "no-cache"
        raw_metadata = form.get("metadata") or form.get("userMetadata")
        stream: IO[bytes] = part.stream
    else:
        mime_type = content_type or "application/octet-stream"
        cache_control = request.headers.get("Cache-Control", "no-cache")
        raw_metadata = None
        if request.content_length is not None and request.content_length > limit:
            raise entity_too_large()
        stream = request.stream
    if allowed_mime_types:
        validate_mime_type(mime_type, allowed_mime_types)
    user_metadata = None
    if raw_metadata:
        with contextlib.suppress(ValueError):
            user_metadata = json.loads(raw_metadata)
    return Upload(stream, mime_type, cache_control, user_metadata, request.content_length)


def _object_metadata(written: Written, upload: Upload) -> dict[str, Any]:
    """What Storage keeps in storage.objects.metadata after an upload."""
    return {
        "eTag": f'"{written.md5}"',
        "size": written.size,
        "mimetype": upload.mime_type,
        "cacheControl": upload.cache_control,
        "lastModified": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "contentLength": written.size,
        "httpStatusCode": 200,
    }


def _json_default(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":"), default=_json_default),
        status=status,
        headers=dict(headers or {}),
        content_type="application/json; charset=utf-8",
    )


def _request_headers(headers: Headers) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in headers.items():
        key = key.lower()
        if key != "cookie":
            out[key] = f"{out[key]}, {value}" if key in out else value
    return out


# -- the WSGI application ----------------------------------------------------------------------


#: One endpoint: (request, the caller's scope, the path segments after /object/ and the route's own).
Handler = Callable[[Request, Scope, list[str]], Response]


class StorageApi:
    """The WSGI application. Thread-safe: shared state is the connection pool and the file directory."""

    def __init__(self, config: StorageConfig, database: Database | None = None):
        self.config = config
        self._own_root = config.root is None
        self.blobs = BlobStore(config.root or Path(tempfile.mkdtemp(prefix="zr-storage-")))
        self.db = database or Database(config)
        self._locks = [threading.Lock() for _ in range(64)]
        # (method, first segment after /object/ or None for "any bucket") -> (handler, operation, allow_invalid_jwt)
        self._routes: dict[tuple[str, str | None], tuple[Handler, str, bool]] = {
            ("POST", "sign"): (self.sign, "storage.object.sign", False),
            ("GET", "sign"): (self.signed_download, "storage.object.get_signed", True),
            ("POST", "move"): (self.move, "storage.object.move", False),
            ("GET", "authenticated"): (self.download, "storage.object.get_authenticated", False),
            ("GET", "info"): (self.info, "object.get_authenticated_info", True),
            ("GET", None): (self.download, "storage.object.get_authenticated", True),
            ("POST", None): (self.upload, "storage.object.upload", False),
            ("PUT", None): (self.upload, "storage.object.upload_update", False),
            ("DELETE", None): (self.remove, "storage.object.delete_many", False),
        }

    def close(self) -> None:
        self.db.close()
        if self._own_root:
            shutil.rmtree(self.blobs.root, ignore_errors=True)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        started = time.monotonic()
        auth_role = None
        try:
            handler, operation, allow_invalid, rest = self._route(request)
            auth = authenticate(request.headers, self.config.jwt_secret, allow_invalid)
            auth_role = auth.role
            scope = Scope(auth, request.method, request.path, operation, _request_headers(request.headers))
            response = handler(request, scope, rest)
        except StorageError as err:
            response = _json(err.http_status, err.body())
        except Exception:
            log.exception("%s", "event=storage.bug")
            bug = StorageError(500, "InternalError", "Internal Server Error", "Internal")
            response = _json(bug.http_status, bug.body())
        log_event(
            log,
            "storage.request",
            method=request.method,
            path=request.path,
            role=auth_role,
            status=response.status_code,
            ms=int((time.monotonic() - started) * 1000),
        )
        return response(environ, start_response)

    # -- routing ---------------------------------------------------------------------------
    def _route(self, request: Request) -> tuple[Handler, str, bool, list[str]]:
        path = request.path
        if not path.startswith(PREFIX + "/"):
            raise route_not_found(request.method, path)
        parts = path[len(PREFIX) + 1 :].split("/")
        first = parts[0] if parts else ""
        special = self._routes.get((request.method, first))
        if special is not None and (first == "move" or len(parts) >= 3):
            handler, operation, allow_invalid = special
            return handler, operation, allow_invalid, parts[1:]
        generic = self._routes.get((request.method, None))
        if generic is None or not first or (request.method == "DELETE") != (len(parts) == 1):
            raise route_not_found(request.method, path)
        handler, operation, allow_invalid = generic
        return handler, operation, allow_invalid, parts

    @staticmethod
    def _bucket_and_name(rest: list[str]) -> tuple[str, str]:
        bucket, name = rest[0], "/".join(rest[1:])
        if not bucket or not name:
            raise invalid_request("bucket and object name are required")
        return bucket, name

    @contextlib.contextmanager
    def _object_lock(self, bucket: str, name: str) -> Iterator[None]:
        """Storage's waitObjectLock: one completion at a time per object (this process only; striped)."""
        with self._locks[hash((bucket, name)) % len(self._locks)]:
            yield

    # -- upload ----------------------------------------------------------------------------
    def upload(self, request: Request, scope: Scope, rest: list[str]) -> Response:
        bucket_id, name = self._bucket_and_name(rest)
        upsert = request.method == "PUT" or request.headers.get("x-upsert") == "true"
        bucket = self.db.bucket(scope, bucket_id)
        limit = min(self.config.file_size_limit, bucket["file_size_limit"] or self.config.file_size_limit)
        upload = read_upload(request, limit, bucket["allowed_mime_types"])
        must_be_valid_key(name)
        owner, owner_id = _owner_columns(scope.auth.owner)
        probe = {"mimetype": upload.mime_type, "contentLength": upload.declared_length}
        user_metadata = Jsonb(upload.user_metadata) if upload.user_metadata is not None else None
        params = [bucket_id, name, owner, owner_id, Jsonb(probe), user_metadata, "1"]
        self.db.test_permission(scope, lambda conn: conn.execute(_UPSERT_SQL if upsert else _INSERT_SQL, params))
        written = self.blobs.write(upload.stream, limit)
        try:
            object_id, replaced = self._complete_upload(scope, bucket_id, name, written, upload)
        except BaseException:
            self.blobs.remove(written.version)
            raise
        if replaced and replaced != written.version:
            self.blobs.remove(replaced)
        return _json(200, {"Id": object_id, "Key": f"{bucket_id}/{name}"})

    def _complete_upload(
        self, scope: Scope, bucket_id: str, name: str, written: Written, upload: Upload
    ) -> tuple[str, str | None]:
        owner, owner_id = _owner_columns(scope.auth.owner)
        params = [
            bucket_id,
            name,
            owner,
            owner_id,
            Jsonb(_object_metadata(written, upload)),
            Jsonb(upload.user_metadata if upload.user_metadata is not None else {}),  # Storage stores {} then
            written.version,
        ]
        with self._object_lock(bucket_id, name), self.db.transaction(_as_superuser(scope)) as conn:
            current = conn.execute(_FIND_SQL + " for update", [name, bucket_id]).fetchone()
            row = conn.execute(_UPSERT_SQL, params).fetchone()
        assert row is not None  # an upsert always returns its row
        return str(row["id"]), (current or {}).get("version")

    # -- download and info ---------------------------------------------------------------------
    def _visible_object(self, scope: Scope, bucket_id: str, name: str) -> dict[str, Any]:
        """Storage's GET object: without a valid token only a public bucket answers; a private
        bucket's object is read under the caller's RLS, a public one's with the server's rights."""
        bucket = self.db.bucket(scope, bucket_id)
        if not scope.auth.authenticated and not bucket["public"]:
            raise no_such_bucket()
        return self.db.find(_as_superuser(scope) if bucket["public"] else scope, bucket_id, name)

    def download(self, request: Request, scope: Scope, rest: list[str]) -> Response:
        bucket_id, name = self._bucket_and_name(rest)
        return self._serve(request, self._visible_object(scope, bucket_id, name))

    def info(self, request: Request, scope: Scope, rest: list[str]) -> Response:
        if rest and rest[0] == "authenticated":
            if not scope.auth.authenticated:
                raise access_denied("Access denied: JWT is not authenticated")
            rest = rest[1:]
        bucket_id, name = self._bucket_and_name(rest)
        obj = self._visible_object(scope, bucket_id, name)
        meta = obj["metadata"] or {}
        return _json(
            200,
            {
                "id": obj["id"],
                "name": obj["name"],
                "version": obj["version"],
                "bucket_id": obj["bucket_id"],
                "size": meta.get("size"),
                "content_type": meta.get("mimetype"),
                "cache_control": meta.get("cacheControl"),
                "etag": meta.get("eTag"),
                "metadata": obj["user_metadata"],
                "last_modified": obj["updated_at"],
                "created_at": obj["created_at"],
            },
        )

    def _serve(self, request: Request, obj: dict[str, Any], expires: str | None = None) -> Response:
        handle = self.blobs.open(obj["version"])
        if handle is None:
            raise no_such_key()
        meta = obj["metadata"] or {}
        headers = {
            "Content-Type": str(meta.get("mimetype") or "application/octet-stream"),
            "Content-Length": str(os.fstat(handle.fileno()).st_size),
            "Cache-Control": str(meta.get("cacheControl") or "no-cache"),
            "ETag": str(meta.get("eTag") or ""),
        }
        if meta.get("lastModified"):
            headers["Last-Modified"] = str(meta["lastModified"])
        if expires:
            headers["Expires"] = expires
        download = request.args.get("download")
        if download is not None:
            filename = download or obj["name"].rsplit("/", 1)[-1]
            headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename, safe='')}"
        return Response(wrap_file(request.environ, handle), status=200, headers=headers, direct_passthrough=True)

    # -- signed URLs -----------------------------------------------------------------------------
    def sign(self, request: Request, scope: Scope, rest: list[str]) -> Response:
        bucket_id, name = self._bucket_and_name(rest)
        body = _json_body(request, self.config.max_json_bytes)
        if "expiresIn" not in body:
            raise invalid_request("body must have required property 'expiresIn'")
        expires_in = _positive_int(body["expiresIn"], "expiresIn")
        now = int(time.time())
        if now + expires_in > _MAX_JWT_EXPIRY_S:
            raise invalid_request("body/expiresIn is too large")
        self.db.find(scope, bucket_id, name)  # the caller must be able to read it (RLS)
        url = f"{bucket_id}/{name}"
        claims = {"url": url, "scope": SIGNED_URL_SCOPE_DOWNLOAD, "iat": now, "exp": now + expires_in}
        token = jwt.encode(claims, self.config.jwt_secret, algorithm="HS256")
        return _json(200, {"signedURL": f"/object/sign/{url}?token={token}"})

    def signed_download(self, request: Request, scope: Scope, rest: list[str]) -> Response:
        bucket_id, name = self._bucket_and_name(rest)
        token = request.args.get("token")
        if not token:
            raise invalid_request("querystring must have required property 'token'")
        payload = self._verify_signed_token(token, f"{bucket_id}/{name}")
        obj = self.db.find(_as_superuser(scope), bucket_id, name)
        expires = datetime.fromtimestamp(int(payload["exp"]), UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
        return self._serve(request, obj, expires)

    def _verify_signed_token(self, token: str, url: str) -> dict[str, Any]:
        try:
            payload = jwt.decode(
                token, self.config.jwt_secret, algorithms=["HS256"], options={"verify_exp": False, "require": ["exp"]}
            )
        except jwt.InvalidTokenError as exc:
            raise StorageError(400, "InvalidJWT", str(exc) or "Invalid JWT") from None
        scope = payload.get("scope")
        if not (scope == SIGNED_URL_SCOPE_DOWNLOAD or (scope is None and "upsert" not in payload)):
            raise StorageError(400, "InvalidSignature", "Token is not scoped for download")
        if payload.get("url") != url:
            raise StorageError(400, "InvalidSignature", "Invalid signature")
        if not isinstance(payload.get("exp"), int) or payload["exp"] < time.time():
            raise StorageError(400, "ExpiredToken", "The provided token has expired.")
        return dict(payload)

    # -- remove and move ---------------------------------------------------------------------------
    def remove(self, request: Request, scope: Scope, rest: list[str]) -> Response:
        bucket_id = rest[0]
        body = _json_body(request, self.config.max_json_bytes)
        prefixes = body.get("prefixes")
        if not isinstance(prefixes, list) or not prefixes or not all(isinstance(p, str) for p in prefixes):
            raise invalid_request("body/prefixes must be a non-empty array of strings")
        if len(prefixes) > 1000:
            raise invalid_request("Bulk object requests are limited to 1000 objects per request.")
        with self.db.transaction(scope) as conn:
            rows = conn.execute(_DELETE_SQL, [bucket_id, prefixes]).fetchall()
        for row in rows:
            self.blobs.remove(row["version"])
        return _json(200, [row["row"] for row in rows])

    def move(self, request: Request, scope: Scope, rest: list[str]) -> Response:
        body = _json_body(request, self.config.max_json_bytes)
        source_bucket, source, destination = body.get("bucketId"), body.get("sourceKey"), body.get("destinationKey")
        if not all(isinstance(v, str) and v for v in (source_bucket, source, destination)):
            raise invalid_request("body must have required properties 'bucketId', 'sourceKey', 'destinationKey'")
        assert isinstance(source_bucket, str) and isinstance(source, str) and isinstance(destination, str)
        target_bucket = body.get("destinationBucket") or source_bucket
        if not isinstance(target_bucket, str):
            raise invalid_request("body/destinationBucket must be string")
        must_be_valid_key(destination)
        new_version = str(uuid.uuid4())
        owner, owner_id = _owner_columns(scope.auth.owner)
        params = [destination, target_bucket, new_version, owner, owner_id, source_bucket, source]

        def probe(conn: psycopg.Connection[Any]) -> None:
            if conn.execute(_FIND_SQL, [source, source_bucket]).fetchone() is None:
                raise no_such_key()
            if conn.execute(_MOVE_SQL, params).fetchone() is None:
                raise no_such_key()

        self.db.test_permission(scope, probe)
        with self._object_lock(target_bucket, destination), self.db.transaction(_as_superuser(scope)) as conn:
            current = conn.execute(_FIND_SQL + " for update", [source, source_bucket]).fetchone()
            if current is None:
                raise no_such_key()
            row = conn.execute(_MOVE_SQL, params).fetchone()
            self.blobs.rename(current["version"], new_version)
        assert row is not None
        return _json(200, {"message": "Successfully moved", "Id": str(row["id"]), "Key": row["name"]})


# -- serving -----------------------------------------------------------------------------------


def by_prefix(apps: Mapping[str, WSGIApplication]) -> WSGIApplication:
    """One WSGI application that hands each request to the app whose path prefix it has, like
    the Supabase CLI's gateway on :54321 (/rest/v1/ -> the Data API, /storage/v1/ -> Storage)."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        for prefix, target in apps.items():
            if path.startswith(prefix):
                return target(environ, start_response)
        missing = route_not_found(environ.get("REQUEST_METHOD", "GET"), path)
        return _json(404, missing.body())(environ, start_response)

    return app


class StorageServer(LocalServer):
    """The stand-in on a threaded werkzeug server; port 0 picks a free port (tests). `also` mounts
    other local stand-ins by path prefix on the same port (e.g. {"/rest/v1/": DataApi(...)})."""

    thread_name = "local-storage"

    def __init__(
        self,
        config: StorageConfig | None = None,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        also: Mapping[str, WSGIApplication] | None = None,
    ):
        self.app = StorageApi(config or StorageConfig.from_env())
        wsgi: WSGIApplication = by_prefix({**(also or {}), "/storage/v1/": self.app}) if also else self.app
        super().__init__(wsgi, self.app, host, port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/storage",
        description="Local TEST STAND-IN for Supabase Storage's API (the Storage server is not installable here).",
    )
    parser.add_argument("--host", default=os.environ.get("ZR_STORAGE_HOST", DEFAULT_HOST))
    parser.add_argument("--port", type=int, default=int(os.environ.get("ZR_STORAGE_PORT", DEFAULT_PORT)))
    parser.add_argument(
        "--with-dataapi",
        action="store_true",
        help="also serve the Data API stand-in's /rest/v1/ on the same port (one SUPABASE_URL for supabase-py)",
    )
    args = parser.parse_args(argv)
    configure_logging()
    also: dict[str, WSGIApplication] = {}
    closers: list[Callable[[], None]] = []
    if args.with_dataapi:
        from .dataapi import DataApi, DataApiConfig

        dataapi = DataApi(DataApiConfig.from_env())
        also["/rest/v1/"], closers = dataapi, [dataapi.close]
    server = StorageServer(StorageConfig.from_env(), args.host, args.port, also)
    log_event(
        log,
        "storage.started",
        url=server.url + "/storage/v1/",
        root=server.app.blobs.root,
        note="local test stand-in, not the Storage server",
    )
    try:
        server.serve_until_terminated()
    finally:
        for close in closers:
            close()
        log_event(log, "storage.stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
