"""WhatsApp Cloud API media, as the media worker (app/media.py) uses it.

* `retrieve(media_id)`: GET /{version}/{media_id}?phone_number_id=... with the bearer token ->
  `MediaInfo` (url, mime_type, sha256, file_size, id). The url is valid for about 5 minutes.
* `download(info, cap, into)`: GET that url with the bearer token, streamed into a file, aborted
  as soon as it passes `cap` bytes; returns the size and the SHA-256 of what arrived.
* `upload(file, filename, mime_type)`: POST /{version}/{phone_number_id}/media (multipart) -> media
  id, for the files a landlord sends (the worker's `upload` jobs); the message then goes out by id.

Every refusal is a `MediaFailure` with a stable code (the `media_error` a message ends with) and
whether trying again later can help. Meta's error codes:
https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import requests

from .graph import AUTH_CODES, PAIR_RATE_LIMIT, THROTTLE_CODES, TRANSIENT_CODES, parse_retry_after
from .media_types import base_mime_type as base_mime_type  # re-exported: the worker's and the tests' name for it

MEDIA_GONE = 131052  # "Media download error": Meta no longer has (or never had) the media
OBJECT_MISSING = (100, 33)  # (code, error_subcode): the media id does not exist or is not ours
_CHUNK = 64 * 1024
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}\Z")


class MediaFailure(Exception):
    """A media job attempt that did not succeed. `code` is stable (docs/media.md); `retryable`
    says whether the job should come back later; `throttled` asks the whole worker to pause."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        retryable: bool,
        retry_after_seconds: int | None = None,
        throttled: bool = False,
        http_status: int | None = None,
        meta_code: int | None = None,
    ):
        super().__init__(f"{code}: {detail}")
        self.code, self.detail, self.retryable = code, detail, retryable
        self.retry_after_seconds, self.throttled = retry_after_seconds, throttled
        self.http_status, self.meta_code = http_status, meta_code


def permanent(code: str, detail: str, **kwargs: Any) -> MediaFailure:
    return MediaFailure(code, detail, retryable=False, **kwargs)


def retryable(code: str, detail: str, **kwargs: Any) -> MediaFailure:
    return MediaFailure(code, detail, retryable=True, **kwargs)


@dataclass(frozen=True)
class MediaInfo:
    """Graph's answer to Retrieve Media URL."""

    id: str
    url: str
    mime_type: str
    sha256: str | None
    file_size: int | None

    @classmethod
    def from_json(cls, media_id: str, body: Any) -> MediaInfo:
        if not isinstance(body, Mapping) or not isinstance(body.get("url"), str) or not body["url"]:
            raise retryable("graph_unavailable", "Retrieve Media URL answered without a url")
        size = body.get("file_size")  # a number, or a string of digits (Meta sends both)
        return cls(
            id=str(body.get("id") or media_id),
            url=body["url"],
            mime_type=str(body.get("mime_type") or ""),
            sha256=str(body["sha256"]) if body.get("sha256") else None,
            file_size=int(size) if isinstance(size, int) or (isinstance(size, str) and size.isdigit()) else None,
        )


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    sha256: bytes  # the raw digest of the bytes that arrived


def digest_matches(expected: str, digest: bytes) -> bool:
    """Meta gives SHA-256 as hex (Retrieve Media URL) or base64 (webhooks); either must match."""
    value = expected.strip()
    if _HEX_SHA256.match(value):
        return hmac.compare_digest(value.lower(), digest.hex())
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            if hmac.compare_digest(decode(value + "=" * (-len(value) % 4)), digest):
                return True
        except (binascii.Error, ValueError):
            continue
    return False


def _meta_error(body: Any) -> Mapping[str, Any]:
    error = body.get("error") if isinstance(body, Mapping) else None
    return error if isinstance(error, Mapping) else {}


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit()) else None


def classify_graph_error(status: int, headers: Mapping[str, str], body: Any) -> MediaFailure:
    """What an error answer to Retrieve Media URL means for the job."""
    err = _meta_error(body)
    code, subcode = _int(err.get("code")), _int(err.get("error_subcode"))
    detail = str(err.get("message") or f"HTTP {status}")
    retry_after = parse_retry_after(headers.get("Retry-After"))
    extra: dict[str, Any] = {"http_status": status, "meta_code": code}
    if status == 429 or code in THROTTLE_CODES or code == PAIR_RATE_LIMIT:
        return retryable("throttled", detail, retry_after_seconds=retry_after, throttled=True, **extra)
    if status == 404 or code == MEDIA_GONE or (code, subcode) == OBJECT_MISSING:
        return permanent("gone", detail, **extra)
    if status == 401 or code in AUTH_CODES:
        # The token is wrong or expired: every job would fail alike; pause and keep them for later.
        detail = f"{detail} (check WHATSAPP_ACCESS_TOKEN)"
        return retryable("auth", detail, retry_after_seconds=retry_after or 60, throttled=True, **extra)
    if status >= 500 or code in TRANSIENT_CODES:
        return retryable("graph_unavailable", detail, retry_after_seconds=retry_after, **extra)
    return permanent("graph_error", detail, **extra)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class GraphMediaClient:
    """Retrieve, download and upload WhatsApp media with the bearer token. Thread-safe (one
    requests.Session per thread). The token is sent to the Graph API and to the download hosts
    only (`download_hosts`, plus the Graph API's own host), over HTTPS unless on loopback."""

    def __init__(
        self,
        base: str,
        version: str,
        phone_number_id: str,
        access_token: str,
        *,
        download_hosts: Iterable[str] = ("lookaside.fbsbx.com",),
        timeout_s: float = 30.0,
        connect_timeout_s: float = 5.0,
    ):
        self.base = f"{base.rstrip('/')}/{version}"
        self.phone_number_id = phone_number_id
        self._headers = {"Authorization": f"Bearer {access_token}"}
        self._timeout = (connect_timeout_s, timeout_s)
        self._hosts = {h.lower() for h in download_hosts} | {(urlsplit(base).hostname or "").lower()}
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    # -- Retrieve Media URL -------------------------------------------------------------------
    def retrieve(self, media_id: str) -> MediaInfo:
        try:
            resp = self._session().get(
                f"{self.base}/{media_id}",
                params={"phone_number_id": self.phone_number_id},
                headers=self._headers,
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            raise retryable("network", f"Retrieve Media URL: {type(exc).__name__}") from None
        body = _json_or_none(resp)
        if resp.status_code != 200:
            raise classify_graph_error(resp.status_code, resp.headers, body)
        return MediaInfo.from_json(media_id, body)

    # -- Download Media -----------------------------------------------------------------------
    def check_url(self, url: str) -> None:
        """The bearer token goes to Meta's download hosts only (untrusted_url otherwise)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        secure = parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(host))
        if not secure or host not in self._hosts:
            raise retryable("untrusted_url", f"media URL on {parts.scheme}://{host} is not an allowed download host")

    def download(self, info: MediaInfo, cap: int, into: Path, deadline: float | None = None) -> Downloaded:
        """Stream the media into `into`; too_large past `cap` bytes (nothing kept), url_expired when
        the URL no longer works (fetch a new one), network on a broken transfer."""
        self.check_url(info.url)
        try:
            with self._session().get(info.url, headers=self._headers, timeout=self._timeout, stream=True) as resp:
                if resp.status_code in (401, 403, 404, 410):
                    raise retryable("url_expired", f"download answered HTTP {resp.status_code}")
                if resp.status_code != 200:
                    raise classify_graph_error(resp.status_code, resp.headers, _json_or_none(resp))
                return self._save(resp, cap, into, deadline)
        except requests.RequestException as exc:
            into.unlink(missing_ok=True)
            raise retryable("network", f"download: {type(exc).__name__}") from None

    @staticmethod
    def _save(resp: requests.Response, cap: int, into: Path, deadline: float | None) -> Downloaded:
        declared = _int(resp.headers.get("Content-Length"))
        if declared is not None and declared > cap:
            raise permanent("too_large", f"{declared} bytes declared, the cap is {cap}")
        digest, size = hashlib.sha256(), 0
        try:
            with into.open("wb") as out:
                for chunk in resp.iter_content(_CHUNK):
                    size += len(chunk)
                    if size > cap:
                        raise permanent("too_large", f"more than {cap} bytes")
                    if deadline is not None and time.monotonic() > deadline:
                        raise retryable("timeout", "the download took too long")
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException:
            into.unlink(missing_ok=True)
            raise
        if declared is not None and size != declared:
            into.unlink(missing_ok=True)
            raise retryable("network", f"download ended after {size} of {declared} bytes")
        return Downloaded(into, size, digest.digest())

    # -- Upload Media -------------------------------------------------------------------------
    def upload(self, file: BinaryIO, filename: str, mime_type: str) -> str:
        """POST a file to /{phone_number_id}/media; returns the media id for a message."""
        try:
            resp = self._session().post(
                f"{self.base}/{self.phone_number_id}/media",
                data={"messaging_product": "whatsapp", "type": mime_type},
                files={"file": (filename, file, mime_type)},
                headers=self._headers,
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            raise retryable("network", f"Upload Media: {type(exc).__name__}") from None
        body = _json_or_none(resp)
        if resp.status_code != 200 or not isinstance(body, Mapping) or not body.get("id"):
            raise classify_graph_error(resp.status_code if resp.status_code != 200 else 502, resp.headers, body)
        return str(body["id"])

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()


def _json_or_none(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None
