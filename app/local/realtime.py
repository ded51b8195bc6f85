"""A LOCAL TEST STAND-IN for Supabase Realtime (Broadcast on private channels). Not Realtime; never deploy it.

Supabase's Realtime server (an Elixir/Phoenix application) cannot be installed on these
machines, yet the landlord client's live inbox (app/client/realtime.py) must be proven end to
end, over a real websocket, through supabase-py's own Realtime client, under RLS. This module
serves the part of Realtime's websocket protocol that client uses, with Realtime's semantics,
on `ws://127.0.0.1:54330/realtime/v1/websocket?apikey=...&vsn=1.0.0` (scripts/realtime):

* Phoenix channels, serializer vsn 1.0.0 (JSON objects `{topic, event, payload, ref}`):
  `heartbeat` on topic `phoenix`, `phx_join` with `{config: {broadcast, presence, private,
  postgres_changes}, access_token}`, `access_token` (a refreshed token), `phx_leave`,
  `broadcast`; replies `phx_reply {status: ok|error, response}`; a refused join answers
  `{reason: "<Code>: <message>"}` as Realtime does; a channel shut down by the server gets a
  `system` message `{extension, status: error, message, channel}` and then `phx_close`.
* Broadcast from the database: every row committed into realtime.messages (realtime.send(),
  realtime.broadcast_changes()) is pushed to every socket joined to its topic with the same
  private flag, as `broadcast {type: broadcast, event, payload, meta: {id}}` with a null ref.
  Rows with a binary payload are skipped (a vsn 1.0.0 socket cannot carry them; Realtime skips
  them too). Client broadcasts fan out to the other sockets on the topic once the write check
  passes (`self`/`ack` honoured).

Security model, as in Realtime:

* The socket's `apikey` (query) must be a valid JWT: HS256/384/512 with ZR_JWT_SECRET (with
  ZR_ENV=development only, which scripts/realtime sets, the Supabase CLI's local secret by
  default: the service's rule, app.config.secret_from_env), claims `role` and `exp` required, `exp` in the future;
  otherwise the upgrade is answered 401 `{"error": ...}`. A join uses the channel's
  `access_token` (or the apikey) verified the same way; when it expires the channel is shut down.
* A PRIVATE channel is authorized by the SQL Realtime runs (lib/realtime/tenants/authorization.ex),
  on a pooled connection as `postgres` (BYPASSRLS, member of the API roles: the local stand-in
  for Realtime's own administrative connection), in a transaction that is always rolled back:
  read: insert a probe row per extension (`broadcast`, and `presence` when enabled) into
  realtime.messages with the channel's topic, then `set_config('role', <jwt role>, true)`,
  `realtime.topic`, `request.jwt.claims`, `request.jwt.claim.sub`, `request.jwt.claim.role`,
  `request.headers`, then `select id from realtime.messages where id = any(<probes>)`: a probe
  that comes back is read permission. write (on the first client broadcast): the same settings,
  then the probe insert under a savepoint; 42501 means no write permission. A join whose read
  check finds nothing is refused `Unauthorized: You do not have permissions to read from this
  Channel topic: <topic>`. Postgres RLS decides everything; this process filters nothing itself.
  Unlike Realtime, only the roles anon, authenticated and service_role are ever set.
* A PUBLIC channel (`private: false`) is not authorized, as in Realtime, and receives only rows
  sent with private = false.

Bounded: at most `max_connections` sockets, `max_channels_per_socket` channels each, frames of
`max_frame_bytes`, `max_outbox` undelivered frames per socket (a slower socket is closed), an
idle socket (no frame, not even a heartbeat) closed after `idle_timeout_s`, authorization on a
pool of `auth_pool_size` connections with a statement timeout. Loopback addresses only.

How new rows are heard: supabase/local/realtime.sql (local only) NOTIFYs each new row's id on
channel `realtime_local_messages`; the real server reads the WAL (logical replication) instead.
Rows committed while the stand-in is not listening are not delivered later (Realtime's
replication slot would keep them).

Not served (refused, never half-supported): Postgres Changes (`postgres_changes` in a join),
Presence, broadcast replay, the REST broadcast endpoint, serializer 2.0.0.

Run: `scripts/realtime` (or `python -m app.local.realtime --port 0` for a free port).
See docs/realtime.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..config import default_database_url
from ..logging_setup import configure_logging, log_event
from .tokens import jwt_secret

log = logging.getLogger("app.local.realtime")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 54330
WEBSOCKET_PATH = "/realtime/v1/websocket"
PHOENIX_TOPIC = "phoenix"
TOPIC_PREFIX = "realtime:"
NOTIFY_CHANNEL = "realtime_local_messages"  # supabase/local/realtime.sql
VSN = "1.0.0"
#: JWT role claim -> Postgres role. Nothing else is ever passed to set_config('role', ...).
API_ROLES = ("anon", "authenticated", "service_role")
_HS_ALGORITHMS = ["HS256", "HS384", "HS512"]
_LOOPBACK_NAMES = ("localhost", "::1")


def is_loopback(host: str) -> bool:
    return host in _LOOPBACK_NAMES or host.startswith("127.")


# -- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RealtimeConfig:
    """Where the stand-in connects, how it verifies tokens and its bounds. See `from_env`."""

    database_url: str
    jwt_secret: str
    max_connections: int = 100
    max_channels_per_socket: int = 100  # Realtime's default max_channels_per_client
    max_frame_bytes: int = 1024 * 1024
    max_outbox: int = 1000
    idle_timeout_s: float = 60.0  # Phoenix's websocket timeout: a heartbeat is due every 25-30 s
    auth_pool_size: int = 4
    auth_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if len(self.jwt_secret) < 32:
            raise ValueError("the JWT secret must be at least 32 characters")
        if min(self.max_connections, self.max_channels_per_socket, self.max_outbox, self.auth_pool_size) < 1:
            raise ValueError("every bound must be positive")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RealtimeConfig:
        """ZR_REALTIME_DATABASE_URL, else DATABASE_URL (postgres, as scripts/db makes it); ZR_JWT_SECRET
        (the CLI's local secret only with ZR_ENV=development)."""
        env = dict(os.environ if env is None else env)
        return cls(
            database_url=env.get("ZR_REALTIME_DATABASE_URL") or default_database_url(env),
            jwt_secret=jwt_secret(env),
        )


# -- tokens ------------------------------------------------------------------------------------


class TokenError(Exception):
    """A refused token: Realtime's error code (for join replies) and its message."""

    def __init__(self, code: str, message: str, http_message: str | None = None):
        super().__init__(message)
        self.code, self.message = code, message
        self.http_message = http_message or message

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.message}"


def verify_token(token: str | None, secret: str, now: float | None = None) -> dict[str, Any]:
    """The claims of a token Realtime would accept (RealtimeWeb.JwtVerification + authorize_conn)."""
    if not isinstance(token, str) or not token:
        raise TokenError("MissingAPIKey", "API key is missing or not a valid string", "API key is missing")
    token = "".join(token.split())
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=_HS_ALGORITHMS,
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False},
        )
    except jwt.InvalidAlgorithmError:
        raise TokenError(
            "JwtSignerError", "Failed to generate JWT signer, check your JWT secret or JWKS configuration"
        ) from None
    except jwt.InvalidSignatureError:
        raise TokenError("JwtSignatureError", "Failed to validate JWT signature") from None
    except jwt.InvalidTokenError:
        raise TokenError("MalformedJWT", "The token provided is not a valid JWT") from None
    if not isinstance(claims, dict) or "role" not in claims or "exp" not in claims:
        raise TokenError("InvalidJWTToken", "Fields `role` and `exp` are required in JWT")
    current = int(time.time() if now is None else now)
    exp, iat = claims["exp"], claims.get("iat")
    if not isinstance(exp, int | float) or isinstance(exp, bool) or exp <= current:
        ago = current - int(exp) if isinstance(exp, int | float) else 0
        raise TokenError("InvalidJWTToken", f"Token has expired {ago} seconds ago", "Token has expired")
    if iat is not None and (not isinstance(iat, int | float) or isinstance(iat, bool)):
        raise TokenError("MalformedJWT", "The token provided is not a valid JWT")
    return claims


# -- authorization: the SQL Realtime runs ----------------------------------------------------------


@dataclass
class Policies:
    """What RLS on realtime.messages allows on one topic; None = not checked yet."""

    broadcast_read: bool | None = None
    broadcast_write: bool | None = None
    presence_read: bool | None = None
    presence_write: bool | None = None

    @property
    def can_read(self) -> bool:
        return bool(self.broadcast_read or self.presence_read)


@dataclass(frozen=True)
class AuthContext:
    """Realtime's Authorization struct: who asks, for which topic (without the realtime: prefix)."""

    topic: str
    claims: Mapping[str, Any]
    headers: Mapping[str, str]

    @property
    def role(self) -> str | None:
        role = self.claims.get("role")
        return role if isinstance(role, str) and role in API_ROLES else None

    @property
    def sub(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) else None


_CONTEXT_SQL = (
    "select set_config('role', %s, true), set_config('realtime.topic', %s, true),"
    " set_config('request.jwt.claims', %s, true), set_config('request.jwt.claim.sub', %s, true),"
    " set_config('request.jwt.claim.role', %s, true), set_config('request.headers', %s, true)"
)
_PROBE_SQL = "insert into realtime.messages (id, topic, extension) values (%s, %s, %s)"
_READ_SQL = "select id from realtime.messages where id = any(%s)"


class Authorizer:
    """Runs Realtime's read and write checks on a small pool; every transaction is rolled back."""

    def __init__(self, pool: AsyncConnectionPool[Any], timeout_s: float):
        self.pool = pool
        self.timeout_s = timeout_s

    async def _set_context(self, conn: psycopg.AsyncConnection[Any], ctx: AuthContext) -> None:
        claims = json.dumps(dict(ctx.claims), separators=(",", ":"))
        headers = json.dumps(dict(ctx.headers), separators=(",", ":"))
        await conn.execute(_CONTEXT_SQL, [ctx.role, ctx.topic, claims, ctx.sub, ctx.role, headers])

    async def read(self, ctx: AuthContext, extensions: Sequence[str]) -> dict[str, bool]:
        """Probe rows inserted as the pool's own role, then read back as the user: RLS select policies."""
        if ctx.role is None:
            return dict.fromkeys(extensions, False)
        probes = {ext: uuid.uuid4() for ext in extensions}
        async with self._connection() as conn, conn.transaction(force_rollback=True):
            await conn.execute("select set_config('statement_timeout', %s, true)", [f"{int(self.timeout_s * 1000)}"])
            for ext, probe in probes.items():
                await conn.execute(_PROBE_SQL, [probe, ctx.topic, ext])
            await self._set_context(conn, ctx)
            cur = await conn.execute(_READ_SQL, [list(probes.values())])
            seen = {row[0] for row in await cur.fetchall()}
        return {ext: probe in seen for ext, probe in probes.items()}

    async def write(self, ctx: AuthContext, extensions: Sequence[str]) -> dict[str, bool]:
        """A probe insert as the user under a savepoint: RLS insert policies (42501 = not allowed)."""
        if ctx.role is None:
            return dict.fromkeys(extensions, False)
        allowed: dict[str, bool] = {}
        async with self._connection() as conn, conn.transaction(force_rollback=True):
            await conn.execute("select set_config('statement_timeout', %s, true)", [f"{int(self.timeout_s * 1000)}"])
            await self._set_context(conn, ctx)
            for ext in extensions:
                try:
                    async with conn.transaction():  # a savepoint, as Realtime's Repo.insert(mode: :savepoint)
                        await conn.execute(_PROBE_SQL, [uuid.uuid4(), ctx.topic, ext])
                    allowed[ext] = True
                except pg_errors.InsufficientPrivilege:
                    allowed[ext] = False
        return allowed

    def _connection(self) -> Any:
        """A pooled connection; PoolTimeout (raised on entering) means the pool is exhausted."""
        return self.pool.connection(timeout=self.timeout_s)


# -- frames ------------------------------------------------------------------------------------


def frame(topic: str, event: str, payload: Mapping[str, Any], ref: str | None = None) -> dict[str, Any]:
    """One message as Phoenix's V1 JSON serializer writes it (no join_ref)."""
    return {"topic": topic, "event": event, "payload": dict(payload), "ref": ref}


def reply(topic: str, ref: str | None, status: str, response: Mapping[str, Any]) -> dict[str, Any]:
    return frame(topic, "phx_reply", {"status": status, "response": dict(response)}, ref)


def broadcast_frame(topic: str, event: str, payload: Any, message_id: str) -> dict[str, Any]:
    """A realtime.messages row as Realtime pushes it (UserBroadcast.convert_to_json_broadcast)."""
    inner = {"event": event, "payload": payload, "type": "broadcast", "meta": {"id": message_id}}
    return frame(TOPIC_PREFIX + topic, "broadcast", inner)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _object(value: Any) -> dict[str, Any]:
    """A JSON object from a client, or {} for anything else."""
    return value if isinstance(value, dict) else {}


# -- channels, sockets and the hub ---------------------------------------------------------------


@dataclass(eq=False)
class Channel:
    """One joined topic on one socket."""

    session: Session
    topic: str  # as joined: "realtime:<sub topic>"
    join_ref: str | None
    private: bool
    access_token: str
    claims: dict[str, Any]
    self_broadcast: bool = False
    ack_broadcast: bool = False
    presence_enabled: bool = False
    policies: Policies | None = None
    expiry: asyncio.TimerHandle | None = field(default=None, repr=False)

    @property
    def sub_topic(self) -> str:
        return self.topic[len(TOPIC_PREFIX) :]

    @property
    def key(self) -> tuple[str, bool]:
        return self.sub_topic, self.private

    def context(self) -> AuthContext:
        return AuthContext(self.sub_topic, self.claims, self.session.headers)

    @property
    def extensions(self) -> list[str]:
        return ["broadcast", "presence"] if self.presence_enabled else ["broadcast"]


class Hub:
    """Which channels listen to which (topic, private) pair; fans frames out to them."""

    def __init__(self) -> None:
        self._channels: dict[tuple[str, bool], set[Channel]] = {}

    def add(self, channel: Channel) -> None:
        self._channels.setdefault(channel.key, set()).add(channel)

    def remove(self, channel: Channel) -> None:
        members = self._channels.get(channel.key)
        if members is not None:
            members.discard(channel)
            if not members:
                del self._channels[channel.key]

    def publish(self, topic: str, private: bool, message: dict[str, Any], exclude: Channel | None = None) -> int:
        """Queue `message` on every channel joined to (topic, private) but `exclude`; how many."""
        members = [c for c in self._channels.get((topic, private), ()) if c is not exclude]
        text = json.dumps(message, separators=(",", ":"))
        for channel in members:
            channel.session.push_text(text)
        return len(members)

    def __len__(self) -> int:
        return sum(len(m) for m in self._channels.values())


class Session:
    """One websocket: its Phoenix channels, an outbox drained by a writer task, an idle timeout."""

    def __init__(self, server: RealtimeServer, ws: ServerConnection, apikey: str, headers: dict[str, str]):
        self.server, self.ws, self.apikey, self.headers = server, ws, apikey, headers
        self.config = server.config
        self.channels: dict[str, Channel] = {}
        self.outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=self.config.max_outbox)
        self.overflowed = False

    # -- sending -----------------------------------------------------------------------------
    def push(self, message: dict[str, Any]) -> None:
        self.push_text(json.dumps(message, separators=(",", ":")))

    def push_text(self, text: str) -> None:
        if self.overflowed:
            return
        try:
            self.outbox.put_nowait(text)
        except asyncio.QueueFull:
            self.overflowed = True
            log_event(log, "realtime.socket_overflow", level=logging.WARNING, limit=self.config.max_outbox)
            self.server.spawn(self.ws.close(code=1013, reason="too many undelivered messages"))

    async def _write_loop(self) -> None:
        while True:
            text = await self.outbox.get()
            await self.ws.send(text)

    # -- the socket's life ---------------------------------------------------------------------
    async def run(self) -> None:
        writer = asyncio.create_task(self._write_loop())
        try:
            while not self.overflowed:
                try:
                    raw = await asyncio.wait_for(self.ws.recv(), timeout=self.config.idle_timeout_s)
                except TimeoutError:
                    log_event(log, "realtime.socket_idle", timeout_s=self.config.idle_timeout_s)
                    await self.ws.close(code=1000, reason="idle")
                    break
                message = _decode(raw)
                if message is None:
                    await self.ws.close(code=1007, reason="not a Phoenix V1 JSON message")
                    break
                await self.handle(message)
        except ConnectionClosed:
            pass
        finally:
            for channel in list(self.channels.values()):
                self._drop(channel)
            writer.cancel()

    async def handle(self, message: dict[str, Any]) -> None:
        topic, event, ref = message["topic"], message["event"], message.get("ref")
        payload = message["payload"]
        channel = self.channels.get(topic)
        if topic == PHOENIX_TOPIC and event == "heartbeat":
            self.push(reply(PHOENIX_TOPIC, ref, "ok", {}))
        elif event == "phx_join":
            await self.join(topic, payload, ref, message.get("join_ref"))
        elif channel is None:
            # Phoenix.Socket: leaving a topic never joined is fine; anything else is unmatched.
            if event == "phx_leave":
                self.push(reply(topic, ref, "ok", {}))
            else:
                self.push(reply(topic, ref, "error", {"reason": "unmatched topic"}))
        elif event == "phx_leave":
            self.push(reply(topic, ref, "ok", {}))
            self.close_channel(channel)
        elif event == "access_token":
            await self.refresh_token(channel, payload)
        elif event == "broadcast":
            await self.client_broadcast(channel, payload, ref)
        elif event == "presence":
            self.push(reply(topic, ref, "error", {"reason": "Presence is not served by the local Realtime stand-in"}))
        else:
            log_event(log, "realtime.unexpected_event", topic=topic, client_event=event)

    # -- joining -------------------------------------------------------------------------------
    async def join(self, topic: str, payload: dict[str, Any], ref: str | None, join_ref: str | None) -> None:
        refusal = await self._join(topic, payload, join_ref or ref)
        if refusal is not None:
            log_event(log, "realtime.join_refused", topic=topic, reason=refusal)
            self.push(reply(topic, ref, "error", {"reason": refusal}))
            return
        log_event(log, "realtime.joined", topic=topic, private=self.channels[topic].private)
        self.push(reply(topic, ref, "ok", {"postgres_changes": []}))

    async def _join(self, topic: str, payload: dict[str, Any], join_ref: str | None) -> str | None:
        """None when joined, else the reason Realtime would give."""
        if not topic.startswith(TOPIC_PREFIX):
            return "unmatched topic"
        if topic == TOPIC_PREFIX:
            return "TopicNameRequired: You must provide a topic name"
        if topic in self.channels:  # Phoenix closes the earlier join of the same topic
            self.close_channel(self.channels[topic])
        if len(self.channels) >= self.config.max_channels_per_socket:
            return "ChannelRateLimitReached: Too many channels"
        config = _object(payload.get("config"))
        unsupported = _unsupported(config)
        if unsupported:
            return f"UnsupportedByStandIn: {unsupported} is not served by the local Realtime stand-in"
        token = _str_or_none(payload.get("access_token")) or _str_or_none(payload.get("user_token"))
        if token is None or token.startswith("sb_"):
            token = self.apikey
        try:
            claims = verify_token(token, self.config.jwt_secret)
        except TokenError as exc:
            return exc.reason
        broadcast, presence = _object(config.get("broadcast")), _object(config.get("presence"))
        channel = Channel(
            session=self,
            topic=topic,
            join_ref=join_ref,
            private=config.get("private") is True,
            access_token=token,
            claims=claims,
            self_broadcast=broadcast.get("self") is True,
            ack_broadcast=broadcast.get("ack") is True,
            presence_enabled=presence.get("enabled") is True,
        )
        if channel.private:
            refusal = await self._authorize_read(channel)
            if refusal is not None:
                return refusal
        self.channels[topic] = channel
        self.server.hub.add(channel)
        self._schedule_expiry(channel)
        return None

    async def _authorize_read(self, channel: Channel) -> str | None:
        try:
            read = await self.server.authorizer.read(channel.context(), channel.extensions)
        except PoolTimeout:
            return "IncreaseConnectionPool: Please increase your connection pool size"
        except psycopg.Error as exc:
            log_event(log, "realtime.rls_policy_error", level=logging.ERROR, sqlstate=exc.sqlstate, error=str(exc))
            read = {}
        channel.policies = Policies(broadcast_read=read.get("broadcast"), presence_read=read.get("presence"))
        if not channel.policies.can_read:
            return f"Unauthorized: You do not have permissions to read from this Channel topic: {channel.sub_topic}"
        return None

    def _schedule_expiry(self, channel: Channel) -> None:
        if channel.expiry is not None:
            channel.expiry.cancel()
        delay = max(0.0, float(channel.claims["exp"]) - time.time())
        channel.expiry = asyncio.get_running_loop().call_later(delay, self._expire, channel)

    def _expire(self, channel: Channel) -> None:
        if self.channels.get(channel.topic) is channel:
            self.shutdown(channel, "Token has expired 0 seconds ago")

    # -- a refreshed token -----------------------------------------------------------------------
    async def refresh_token(self, channel: Channel, payload: dict[str, Any]) -> None:
        """Realtime's handle_in("access_token"): re-verify, re-authorize, or shut the channel down."""
        token = payload.get("access_token")
        if token is None or not isinstance(token, str) or token.startswith("sb_") or token == channel.access_token:
            return
        try:
            claims = verify_token(token, self.config.jwt_secret)
        except TokenError as exc:
            self.shutdown(channel, exc.message)
            return
        channel.access_token, channel.claims = token, claims
        if channel.private:
            channel.policies = None
            refusal = await self._authorize_read(channel)
            if refusal is not None:
                self.shutdown(channel, refusal.split(": ", 1)[1])
                return
        self._schedule_expiry(channel)
        log_event(log, "realtime.token_refreshed", topic=channel.topic)

    # -- a client's broadcast ------------------------------------------------------------------
    async def client_broadcast(self, channel: Channel, payload: dict[str, Any], ref: str | None) -> None:
        if channel.private and not await self._may_write(channel):
            log_event(log, "realtime.broadcast_refused", topic=channel.topic)
            return
        exclude = None if channel.self_broadcast else channel
        self.server.hub.publish(channel.sub_topic, channel.private, frame(channel.topic, "broadcast", payload), exclude)
        if channel.ack_broadcast:
            self.push(reply(channel.topic, ref, "ok", {}))

    async def _may_write(self, channel: Channel) -> bool:
        policies = channel.policies or Policies()
        if policies.broadcast_write is None:
            try:
                write = await self.server.authorizer.write(channel.context(), ["broadcast"])
            except (PoolTimeout, psycopg.Error) as exc:
                log_event(log, "realtime.write_check_failed", level=logging.ERROR, error=type(exc).__name__)
                return False
            policies.broadcast_write = write["broadcast"]
            channel.policies = policies
        return bool(policies.broadcast_write)

    # -- leaving ---------------------------------------------------------------------------------
    def shutdown(self, channel: Channel, message: str) -> None:
        """Realtime's shutdown_response: a system error message, then the channel closes."""
        log_event(log, "realtime.channel_shutdown", topic=channel.topic, reason=message)
        system = {"extension": "system", "status": "error", "message": message, "channel": channel.sub_topic}
        self.push(frame(channel.topic, "system", system))
        self.close_channel(channel)

    def close_channel(self, channel: Channel) -> None:
        self._drop(channel)
        self.push(frame(channel.topic, "phx_close", {}, channel.join_ref))

    def _drop(self, channel: Channel) -> None:
        if self.channels.get(channel.topic) is channel:
            del self.channels[channel.topic]
        self.server.hub.remove(channel)
        if channel.expiry is not None:
            channel.expiry.cancel()


def _unsupported(config: Mapping[str, Any]) -> str | None:
    if config.get("postgres_changes"):
        return "Postgres Changes"
    broadcast = config.get("broadcast")
    if isinstance(broadcast, dict) and broadcast.get("replay") is not None:
        return "Broadcast replay"
    return None


def _decode(raw: str | bytes) -> dict[str, Any] | None:
    """A V1 message {topic, event, payload, ref[, join_ref]}, or None when it is not one."""
    if isinstance(raw, bytes):
        return None
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    if not isinstance(message.get("topic"), str) or not isinstance(message.get("event"), str):
        return None
    if not isinstance(message.get("payload"), dict):
        return None
    for key in ("ref", "join_ref"):
        if message.get(key) is not None and not isinstance(message[key], str):
            return None
    return message


# -- hearing realtime.messages -----------------------------------------------------------------------


_ROW_SQL = (
    "select id::text, topic, event, payload, private, binary_payload is not null"
    " from realtime.messages where id = %s::uuid"
)


class MessageListener:
    """LISTENs for new realtime.messages rows and hands each to the hub, in commit order."""

    def __init__(self, server: RealtimeServer):
        self.server = server
        self.listening = asyncio.Event()

    async def run(self) -> None:
        backoff = 0.5
        while True:
            try:
                await self._listen()
            except (psycopg.Error, OSError) as exc:
                self.listening.clear()
                log_event(log, "realtime.listener_down", level=logging.WARNING, error=type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.server.config.database_url, autocommit=True) as conn:
            await conn.execute(f"listen {NOTIFY_CHANNEL}")
            self.listening.set()
            log_event(log, "realtime.listening", channel=NOTIFY_CHANNEL)
            async for notify in conn.notifies():
                await self.deliver(notify.payload)

    async def deliver(self, message_id: str) -> None:
        async with self.server.pool.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(_ROW_SQL, [message_id])
            row = await cur.fetchone()
        if row is None:
            return
        rid, topic, event, payload, private, binary = row
        if binary or payload is None or event is None or private is None:
            log_event(log, "realtime.message_skipped", id=rid, binary=binary)
            return
        sent = self.server.hub.publish(topic, private, broadcast_frame(topic, event, payload, rid))
        log_event(log, "realtime.message_delivered", id=rid, broadcast_event=event, private=private, sockets=sent)


# -- the server ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Accepted:
    apikey: str
    headers: dict[str, str]


class RealtimeServer:
    """The stand-in. `start()` runs it on a thread of its own (tests); `serve_forever()` in the foreground."""

    def __init__(self, config: RealtimeConfig | None = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT):
        if not is_loopback(host):
            raise ValueError(f"the local Realtime stand-in listens on loopback addresses only, not {host!r}")
        self.config = config or RealtimeConfig.from_env()
        self.host, self.port = host, port
        self.hub = Hub()
        self._accepted: weakref.WeakKeyDictionary[ServerConnection, _Accepted] = weakref.WeakKeyDictionary()
        self._sessions: set[Session] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.pool: AsyncConnectionPool[Any]
        self.authorizer: Authorizer
        self.listener: MessageListener

    @property
    def url(self) -> str:
        """The base URL a Supabase client takes (it adds /realtime/v1/websocket itself)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def sockets(self) -> int:
        return len(self._sessions)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the handshake ---------------------------------------------------------------------------
    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        if parts.path.rstrip("/") != WEBSOCKET_PATH:
            return _json_response(connection, 404, "Not found")
        query = parse_qs(parts.query)
        vsn = (query.get("vsn") or [VSN])[0]
        if vsn != VSN:
            return _json_response(connection, 400, f"the local Realtime stand-in speaks vsn={VSN} only")
        if len(self._sessions) + len(self._accepted) >= self.config.max_connections:
            return _json_response(connection, 429, "Too many connected users")
        apikey = request.headers.get("x-api-key") or next(iter(query.get("apikey") or []), None)
        try:
            verify_token(apikey, self.config.jwt_secret)
        except TokenError as exc:
            log_event(log, "realtime.connect_refused", reason=exc.code)
            return _json_response(connection, 401, exc.http_message)
        assert apikey is not None
        self._accepted[connection] = _Accepted(apikey, _x_headers(request.headers))
        return None

    async def handler(self, connection: ServerConnection) -> None:
        accepted = self._accepted.pop(connection)
        session = Session(self, connection, accepted.apikey, accepted.headers)
        self._sessions.add(session)
        log_event(log, "realtime.socket_open", sockets=len(self._sessions))
        try:
            await session.run()
        finally:
            self._sessions.discard(session)
            log_event(log, "realtime.socket_closed", sockets=len(self._sessions))

    # -- running -------------------------------------------------------------------------------
    async def serve(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set."""
        self.pool = AsyncConnectionPool(
            self.config.database_url,
            min_size=1,
            max_size=self.config.auth_pool_size,
            open=False,
            name="zenrent-local-realtime",
            kwargs={"autocommit": True},  # checks open their own (always rolled back) transactions
        )
        await self.pool.open(wait=True, timeout=10)
        self.authorizer = Authorizer(self.pool, self.config.auth_timeout_s)
        self.listener = MessageListener(self)
        listener = asyncio.create_task(self.listener.run())
        try:
            async with serve(
                self.handler,
                self.host,
                self.port,
                process_request=self.process_request,
                max_size=self.config.max_frame_bytes,
                compression=None,
            ) as server:
                self._bound(server)
                await asyncio.wait_for(self.listener.listening.wait(), timeout=10)
                self._ready.set()
                await stop.wait()
        finally:
            listener.cancel()
            await self.pool.close()

    def _bound(self, server: Server) -> None:
        sockname = next(iter(server.sockets)).getsockname()
        self.port = int(sockname[1])
        log_event(log, "realtime.started", url=f"ws://{self.host}:{self.port}{WEBSOCKET_PATH}", note="local stand-in")

    def start(self) -> RealtimeServer:
        """Run on a daemon thread with its own event loop; returns once it listens (or raises)."""
        self._thread = threading.Thread(target=self._run_thread, name="local-realtime", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            raise RuntimeError("the local Realtime stand-in did not start") from self._error
        if not self._ready.is_set():
            raise RuntimeError("the local Realtime stand-in did not start within 30 s")
        return self

    def _run_thread(self) -> None:
        try:
            asyncio.run(self._thread_main())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()

    async def _thread_main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await self.serve(self._stop)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> RealtimeServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _json_response(connection: ServerConnection, status: int, message: str) -> Response:
    response = connection.respond(status, json.dumps({"error": message}))
    del response.headers["Content-Type"]  # respond() says text/plain; Realtime answers JSON
    response.headers["Content-Type"] = "application/json"
    return response


def _x_headers(headers: Headers) -> dict[str, str]:
    """The x-* headers of the upgrade request: what Realtime puts in request.headers."""
    return {k.lower(): v for k, v in headers.raw_items() if k.lower().startswith("x-") and k.lower() != "x-api-key"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/realtime",
        description="Local TEST STAND-IN for Supabase Realtime (Broadcast on private channels; never deployed).",
    )
    parser.add_argument("--host", default=os.environ.get("ZR_REALTIME_HOST", DEFAULT_HOST))
    parser.add_argument("--port", type=int, default=int(os.environ.get("ZR_REALTIME_PORT", DEFAULT_PORT)))
    args = parser.parse_args(argv)
    if not is_loopback(args.host):
        parser.error("the local Realtime stand-in listens on loopback addresses only")
    configure_logging()
    server = RealtimeServer(RealtimeConfig.from_env(), args.host, args.port)

    async def run() -> None:
        import signal

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await server.serve(stop)

    asyncio.run(run())
    log_event(log, "realtime.stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
