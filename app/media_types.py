"""What WhatsApp carries as media: the MIME types of each message type, their size caps, and the
file extension the database names objects with. Standard library only: the media worker
(app/media.py) and the landlord client (app/client/) both read it, and neither imports the other.

The SQL side of the same facts: the bucket's `allowed_mime_types` and `private.media_extension()`
(migration 20261129170000), `private.media_type_of()` (20261129170100); tests/test_send_media.py
checks that they agree with this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

KiB, MiB = 1024, 1024 * 1024


@dataclass(frozen=True)
class MediaKind:
    cap: int  # bytes
    mime_types: frozenset[str]


#: What each WhatsApp message type may carry, and its size cap (Cloud API "Supported Media Types").
MEDIA_TYPES: Mapping[str, MediaKind] = {
    "image": MediaKind(5 * MiB, frozenset({"image/jpeg", "image/png"})),
    "sticker": MediaKind(500 * KiB, frozenset({"image/webp"})),
    "audio": MediaKind(16 * MiB, frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"})),
    "video": MediaKind(16 * MiB, frozenset({"video/mp4", "video/3gpp"})),
    "document": MediaKind(
        100 * MiB,
        frozenset(
            {
                "text/plain",
                "application/pdf",
                "application/vnd.ms-excel",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/msword",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.ms-powerpoint",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            }
        ),
    ),
}

#: The message types a landlord can send a file as (stickers are only ever received).
SENDABLE_TYPES = ("image", "video", "audio", "document")

#: The file extension of each MIME type, as private.media_extension() names objects.
EXTENSIONS: Mapping[str, str] = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "audio/aac": "aac",
    "audio/amr": "amr",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "audio/ogg": "ogg",
    "video/mp4": "mp4",
    "video/3gpp": "3gp",
    "text/plain": "txt",
    "application/pdf": "pdf",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-powerpoint": "ppt",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
}


def base_mime_type(value: str | None) -> str:
    """'audio/ogg; codecs=opus' -> 'audio/ogg': the type Storage and the bucket's allow-list compare."""
    return (value or "").split(";", 1)[0].strip().lower()


def media_type_of(mime_type: str | None) -> str:
    """image, video, audio or document: how WhatsApp sends a file of this MIME type (private.media_type_of)."""
    major = base_mime_type(mime_type).split("/", 1)[0]
    return major if major in ("image", "video", "audio") else "document"


def sendable_kind(mime_type: str | None) -> tuple[str, MediaKind] | None:
    """The message type and its rules a landlord's file of this MIME type goes out as; None when
    WhatsApp cannot send it (e.g. image/webp: a sticker, or application/zip)."""
    mime = base_mime_type(mime_type)
    media_type = media_type_of(mime)
    kind = MEDIA_TYPES[media_type]
    return (media_type, kind) if mime in kind.mime_types else None
