"""A landlord's live inbox: Supabase Realtime Broadcast on private channels, with supabase-py's async client.

    client = await AsyncLandlordClient.create(SUPABASE_URL, SUPABASE_ANON_KEY, access_token)
    inbox = client.channel()                          # landlord:<your uid>, private
    inbox.on_broadcast("message", on_message)         # on_message(MessageEvent), sync or async
    await inbox.subscribe()                           # SubscriptionRefused if RLS says no
    await client.set_auth(refreshed_token)            # before the old token expires
    await inbox.unsubscribe()
    await client.close()

Built on `supabase.acreate_client`: the same socket, protocol and reconnection as any
supabase-py app. The database decides who hears what: a private channel is joined only if RLS
on realtime.messages lets the token's user read its topic (docs/realtime.md), so this class
filters nothing itself. Works unchanged against a hosted project and against the local
stand-in (scripts/realtime).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, overload
from uuid import UUID

import httpx
import jwt
from realtime import AsyncRealtimeChannel, RealtimeChannelOptions, RealtimeSubscribeStates
from realtime.types import BroadcastPayload
from supabase.lib.client_options import DEFAULT_HEADERS

from supabase import AsyncClient, AsyncClientOptions, acreate_client

from .errors import LandlordClientError
from .events import (
    SUPPORT_TOPIC,
    ConversationEvent,
    HeldEvent,
    MessageEvent,
    MessageStatusEvent,
    RealtimeEvent,
    ResolvedEvent,
    landlord_topic,
    parse_event,
)

log = logging.getLogger("app.client.realtime")

#: A callback gets the typed event; it may be a plain function or a coroutine function.
Callback = Callable[[Any], Awaitable[None] | None]
StatusCallback = Callable[[str, str | None], None]


class RealtimeSubscriptionError(LandlordClientError):
    """A channel could not be joined. `code` is Realtime's error code (e.g. ``Unauthorized``)."""

    def __init__(self, topic: str, reason: str):
        code, _, message = reason.partition(": ")
        super().__init__(None, reason, details=code if message else None)
        self.topic, self.reason = topic, reason
        self.code = code if message else None


class SubscriptionRefused(RealtimeSubscriptionError):
    """Realtime refused the join: the token's user may not read this private topic, or the token is bad."""


class SubscriptionTimedOut(RealtimeSubscriptionError):
    """No answer to the join in time (Realtime unreachable or overloaded)."""


def _claims(access_token: str) -> dict[str, Any]:
    """The token's claims, read without verifying (Realtime verifies it): only for defaults."""
    claims = jwt.decode(access_token, options={"verify_signature": False})
    return claims if isinstance(claims, dict) else {}


class LiveChannel:
    """One topic on the client's socket. Register callbacks, then `subscribe()`."""

    def __init__(self, client: AsyncLandlordClient, channel: AsyncRealtimeChannel, topic: str, private: bool):
        self._client, self._channel = client, channel
        self.topic, self.private = topic, private
        self._status_callbacks: list[StatusCallback] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def is_joined(self) -> bool:
        return self._channel.is_joined

    # -- callbacks ------------------------------------------------------------------------------
    @overload
    def on_broadcast(self, event: Literal["message"], callback: Callable[[MessageEvent], Any]) -> LiveChannel: ...
    @overload
    def on_broadcast(
        self, event: Literal["message_status"], callback: Callable[[MessageStatusEvent], Any]
    ) -> LiveChannel: ...
    @overload
    def on_broadcast(
        self, event: Literal["conversation"], callback: Callable[[ConversationEvent], Any]
    ) -> LiveChannel: ...
    @overload
    def on_broadcast(self, event: Literal["held"], callback: Callable[[HeldEvent], Any]) -> LiveChannel: ...
    @overload
    def on_broadcast(self, event: Literal["resolved"], callback: Callable[[ResolvedEvent], Any]) -> LiveChannel: ...
    @overload
    def on_broadcast(self, event: str, callback: Callable[[RealtimeEvent], Any]) -> LiveChannel: ...

    def on_broadcast(self, event: str, callback: Callable[[Any], Any]) -> LiveChannel:
        """Call `callback(typed_event)` for each broadcast named `event` ("*": every event).

        Known events arrive as their dataclass (MessageEvent, ...), others as RawEvent. A
        callback that raises is logged and does not stop the stream; a coroutine function is
        run as a task.
        """
        self._channel.on_broadcast(event, lambda payload: self._dispatch(callback, payload))
        return self

    def on_status(self, callback: StatusCallback) -> LiveChannel:
        """`callback(state, reason)` on later changes: CLOSED (the server shut the channel, e.g.
        an expired token or revoked permission), CHANNEL_ERROR (it will rejoin), TIMED_OUT."""
        self._status_callbacks.append(callback)
        return self

    def _dispatch(self, callback: Callable[[Any], Any], broadcast: BroadcastPayload) -> None:
        event = parse_event(broadcast["event"], broadcast.get("payload") or {})
        try:
            result = callback(event)
        except Exception:  # an application callback must not end the socket's listener
            log.exception("event=realtime.callback_failed topic=%s", self.topic)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("event=realtime.callback_failed topic=%s", self.topic, exc_info=task.exception())

    # -- joining and leaving ---------------------------------------------------------------------
    async def subscribe(self) -> LiveChannel:
        """Join the topic; returns once Realtime accepted. Raises SubscriptionRefused (with
        Realtime's reason) or SubscriptionTimedOut; either way the channel is removed."""
        first: asyncio.Future[tuple[RealtimeSubscribeStates, Exception | None]] = (
            asyncio.get_running_loop().create_future()
        )

        def on_state(state: RealtimeSubscribeStates, error: Exception | None) -> None:
            if not first.done():
                first.set_result((state, error))
            else:
                self._notify_status(state, error)

        await self._channel.subscribe(on_state)
        state, error = first.result() if first.done() else (RealtimeSubscribeStates.TIMED_OUT, None)
        if state == RealtimeSubscribeStates.SUBSCRIBED:
            log.info("event=realtime.subscribed topic=%s private=%s", self.topic, self.private)
            return self
        await self._client._remove(self)  # stop supabase-py from rejoining a refused topic
        if state == RealtimeSubscribeStates.TIMED_OUT:
            raise SubscriptionTimedOut(self.topic, "TimedOut: no answer to the join")
        raise SubscriptionRefused(self.topic, _reason(error))

    async def unsubscribe(self) -> None:
        """Leave the topic (the socket closes when no channel is left)."""
        await self._client._remove(self)

    def _notify_status(self, state: RealtimeSubscribeStates, error: Exception | None) -> None:
        reason = _reason(error) if error is not None else None
        log.info("event=realtime.channel_state topic=%s state=%s", self.topic, state.value)
        for callback in self._status_callbacks:
            try:
                callback(state.value, reason)
            except Exception:  # an application callback must not end the socket's listener
                log.exception("event=realtime.status_callback_failed topic=%s", self.topic)


def _reason(error: Exception | None) -> str:
    """Realtime's `reason` (supabase-py wraps the error payload's JSON in an Exception)."""
    text = str(error) if error is not None else ""
    try:
        payload = json.loads(text)
    except ValueError:
        return text or "refused"
    if isinstance(payload, dict) and isinstance(payload.get("reason"), str):
        return str(payload["reason"])
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return str(payload["message"])
    return text


class AsyncLandlordClient:
    """A signed-in user's Realtime connection. Create with `await AsyncLandlordClient.create(...)`."""

    def __init__(self, sb: AsyncClient, http: httpx.AsyncClient, access_token: str):
        self._sb, self._http = sb, http
        self._channels: dict[str, LiveChannel] = {}
        self._use_token(access_token)

    @classmethod
    async def create(
        cls, url: str, key: str, access_token: str, *, timeout_s: float = 30.0, heartbeat_s: int = 25
    ) -> AsyncLandlordClient:
        """`url` and `key`: the project's URL and anon (publishable) key; `access_token`: the user's JWT.

        Nothing is sent until a channel subscribes. `heartbeat_s`: Phoenix heartbeat interval
        (supabase-py sends one at least every 15 s).
        """
        http = httpx.AsyncClient(timeout=timeout_s, follow_redirects=True)
        options = AsyncClientOptions(
            headers={**DEFAULT_HEADERS, "Authorization": f"Bearer {access_token}"},
            auto_refresh_token=False,
            persist_session=False,
            httpx_client=http,
            realtime={"hb_interval": heartbeat_s},
        )
        sb = await acreate_client(url, key, options)
        client = cls(sb, http, access_token)
        # The Realtime client starts with the anon key as its token; joins must carry the user's.
        await sb.realtime.set_auth(access_token)
        return client

    @classmethod
    async def from_env(
        cls, access_token: str, env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> AsyncLandlordClient:
        """SUPABASE_URL and SUPABASE_ANON_KEY (or SUPABASE_KEY) from the environment."""
        env = os.environ if env is None else env
        url = env.get("SUPABASE_URL")
        key = env.get("SUPABASE_ANON_KEY") or env.get("SUPABASE_KEY")
        if not url or not key:
            raise ValueError("set SUPABASE_URL and SUPABASE_ANON_KEY")
        return await cls.create(url, key, access_token, **kwargs)

    def _use_token(self, access_token: str) -> None:
        claims = _claims(access_token)
        sub = claims.get("sub")
        self.user_id = UUID(str(sub)) if sub else None
        app_metadata = claims.get("app_metadata")
        self.is_support = isinstance(app_metadata, dict) and app_metadata.get("role") == "support"

    @property
    def supabase(self) -> AsyncClient:
        """The underlying supabase-py async client (same token), for anything this class does not cover."""
        return self._sb

    @property
    def topic(self) -> str:
        """This user's own inbox topic: ``landlord:<uid>``."""
        if self.user_id is None:
            raise LandlordClientError(None, "the access token has no sub: it names no landlord topic")
        return landlord_topic(self.user_id)

    @property
    def support_topic(self) -> str:
        return SUPPORT_TOPIC

    def channel(self, topic: str | None = None, *, private: bool = True) -> LiveChannel:
        """A channel on `topic` (default: this landlord's own inbox). Private unless said otherwise:
        every ZenRent topic is private, and a public channel hears only public broadcasts."""
        topic = self.topic if topic is None else topic
        existing = self._channels.get(topic)
        if existing is not None:
            if existing.private != private:
                kind = "private" if existing.private else "public"
                raise ValueError(f"this client already has a {kind} channel on {topic}")
            return existing
        params: RealtimeChannelOptions = {
            "config": {
                "broadcast": {"ack": False, "self": False},
                "presence": {"key": "", "enabled": False},
                "private": private,
            }
        }
        live = LiveChannel(self, self._sb.channel(topic, params), topic, private)
        self._channels[topic] = live
        return live

    async def set_auth(self, access_token: str) -> None:
        """Use a refreshed access token: joined channels send it to Realtime, which re-checks RLS
        and shuts a channel down (CLOSED) if the new token may no longer read it."""
        self._use_token(access_token)
        await self._sb.realtime.set_auth(access_token)
        # As supabase-py does on its own auth events: later REST calls carry the new token.
        self._sb.options.headers["Authorization"] = f"Bearer {access_token}"
        self._sb._postgrest = None

    async def _remove(self, live: LiveChannel) -> None:
        if self._channels.get(live.topic) is live:
            del self._channels[live.topic]
        await self._sb.remove_channel(live._channel)

    async def close(self) -> None:
        """Leave every channel, close the socket and the HTTP connections."""
        self._channels.clear()
        try:
            await self._sb.remove_all_channels()
        finally:
            await self._sb.realtime.close()
            await self._http.aclose()

    async def __aenter__(self) -> AsyncLandlordClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


__all__ = [
    "AsyncLandlordClient",
    "LiveChannel",
    "RealtimeSubscriptionError",
    "SubscriptionRefused",
    "SubscriptionTimedOut",
]
