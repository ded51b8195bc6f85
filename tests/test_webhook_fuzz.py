"""Fuzz the webhook with correctly signed bodies: the answer is never a 5xx and never an error log.

Hypothesis builds the bodies: random JSON of every shape (strings with NULs, bidi controls and
lone surrogates, huge numbers, deep nesting), Meta-shaped envelopes around random values,
mutations of the real payloads in tests/payloads/ (keys dropped, values of the wrong type,
far-future timestamps, `from` like "123456", duplicated items), number literals Python and
Postgres disagree about, and bytes that are not JSON. Every body is signed with the app secret
and posted to the Flask test client against the real database.

Bounded and reproducible: a fixed number of examples, derandomized (the same examples on every
run), no example database. The payloads' phones are swapped for 4479990xxxxx (no tenant has
them) and what the module stored in the database is removed afterwards.
"""

from __future__ import annotations

import copy
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row

from app.service import create_app
from app.webhook import MAX_JSON_DEPTH, SIGNATURE_HEADER, WABA_OBJECT, sign

PAYLOADS = Path(__file__).resolve().parent / "payloads"
URL = "/webhooks/whatsapp"
FUZZ_PHONE_PREFIX = "4479990"
RUN = uuid.uuid4().hex[:8]  # wamids of this run, so that a second run is not all duplicates

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# -- the real payloads, made safe to deliver again and again ------------------------------------------------
PHONE_KEYS = ("from", "wa_id", "recipient_id")


def _fuzz_phones(node: Any) -> Any:
    """Every tenant phone becomes a 4479990xxxxx phone that no tenant has."""
    if isinstance(node, dict):
        return {
            k: (
                FUZZ_PHONE_PREFIX + v[-5:]
                if k in PHONE_KEYS and isinstance(v, str) and v.isdigit()
                else _fuzz_phones(v)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_fuzz_phones(v) for v in node]
    return node


def _keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield k
            yield from _keys(v)
    elif isinstance(node, list):
        for v in node:
            yield from _keys(v)


REAL = {p.stem: _fuzz_phones(json.loads(p.read_text())) for p in sorted(PAYLOADS.glob("*.json"))}
META_KEYS = sorted({k for payload in REAL.values() for k in _keys(payload)})
CENTRAL = REAL["message_text"]["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"]

# -- strategies ---------------------------------------------------------------------------------------
SPECIAL_CHARS = '\x00\u202e\u202d\u2066\u2067\u2068\u2069\u200e\u200f\u061c\ufeff\ud800\udfff\U0001f600\\"\n'
SPECIAL_STRINGS = ["", " ", "123456", "+44 7700 900123", "wamid.", WABA_OBJECT, "messages", "text", "interactive"]
NUMBER_LITERALS = ["1e400", "-1e99999", "1e-99999", "1E+308", "-0", "0.0000000000000000000001", "9" * 5000, "1" * 100]

strings = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.sampled_from(SPECIAL_CHARS), max_size=8),
    st.sampled_from(SPECIAL_STRINGS),
)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**60), max_value=10**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 2**63, -(2**63) - 1, 10**300, 1.7976931348623157e308, 5e-324, -0.0]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, strings)
keys = st.one_of(strings, st.sampled_from(META_KEYS))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=25,
)
far_timestamps = st.one_of(
    st.sampled_from(["99999999999", "999999999999", "9999999999999", "253402300800", "-1", "0", "1e10", "", "now"]),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.integers(min_value=10**11, max_value=10**12 - 1).map(str),
)
bad_phones = st.one_of(
    st.sampled_from(["123456", "", "+", "0", "00", "+44", "4" * 30, "447999000001\x00", "\u202e447999000001"]),
    st.integers(),
    strings,
    st.none(),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


def _parent(root: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        root = root[key]
    return root


def _set_every(node: Any, names: tuple[str, ...], value: Any) -> None:
    if isinstance(node, dict):
        for k in list(node):
            if k in names:
                node[k] = copy.deepcopy(value)
            else:
                _set_every(node[k], names, value)
    elif isinstance(node, list):
        for v in node:
            _set_every(v, names, value)


def _suffix_wamids(node: Any, suffix: str) -> Any:
    if isinstance(node, dict):
        return {
            k: (v + suffix if isinstance(v, str) and v.startswith("wamid.") else _suffix_wamids(v, suffix))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_suffix_wamids(v, suffix) for v in node]
    return node


MUTATIONS = ("drop", "retype", "timestamps", "phones", "special_text", "duplicate")


@st.composite
def mutated_payloads(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from(sorted(REAL)))
    payload = _suffix_wamids(copy.deepcopy(REAL[name]), f".fuzz{RUN}.{draw(st.integers(0, 10**9))}")
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(payload))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(payload, path), path[-1]
        mutation = draw(st.sampled_from(MUTATIONS))
        if mutation == "drop":
            del parent[key]
        elif mutation == "retype":
            parent[key] = draw(json_values)
        elif mutation == "timestamps":
            _set_every(payload, ("timestamp",), draw(far_timestamps))
        elif mutation == "phones":
            _set_every(payload, ("from", "wa_id"), draw(bad_phones))
        elif mutation == "special_text":
            parent[key] = draw(strings) + draw(st.sampled_from(SPECIAL_CHARS)) + draw(strings)
        elif isinstance(parent, list):  # duplicate: the same item twice in one batch
            parent.append(copy.deepcopy(parent[key]))
    return json.dumps(payload).encode()


@st.composite
def envelopes(draw: st.DrawFn) -> bytes:
    """Meta's envelope for the central number around random messages, statuses and errors."""
    value: dict[str, Any] = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": CENTRAL}}
    for field in draw(st.lists(st.sampled_from(["messages", "statuses", "errors", "contacts"]), unique=True)):
        value[field] = draw(st.one_of(json_values, st.lists(st.dictionaries(keys, json_values, max_size=6))))
    change = {
        "field": draw(st.sampled_from(["messages", "messages", "message_template_status_update"])),
        "value": value,
    }
    return json.dumps({"object": WABA_OBJECT, "entry": [{"id": "1", "changes": [change]}]}).encode()


DEEP_WRAPS = ("%s", '{"object": "' + WABA_OBJECT + '", "entry": %s}', '{"object": "' + WABA_OBJECT + '", "x": %s}')


@st.composite
def deep_bodies(draw: st.DrawFn) -> bytes:
    """Nesting around the limit and far beyond it, built as text (json.dumps would recurse)."""
    depth = draw(st.one_of(st.integers(0, MAX_JSON_DEPTH + 2), st.integers(0, 3_000)))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ('{"messages":[', "]}")]))
    inner = opener * depth + json.dumps(draw(scalars)) + closer * depth
    return (draw(st.sampled_from(DEEP_WRAPS)) % inner).encode()


@st.composite
def number_literals(draw: st.DrawFn) -> bytes:
    """Numbers as text: ones Python and Postgres read differently, where a message has them."""
    literal = draw(st.sampled_from(NUMBER_LITERALS))
    message = {"from": FUZZ_PHONE_PREFIX + "00001", "id": f"wamid.fuzz{RUN}.{draw(st.integers(0, 10**9))}"}
    message.update({"timestamp": "@N", "type": "text", "text": {"body": "@N"}})
    value = {"metadata": {"phone_number_id": CENTRAL}, "messages": [message]}
    body = json.dumps({"object": WABA_OBJECT, "entry": [{"changes": [{"field": "messages", "value": value}]}]})
    spot = draw(st.sampled_from(['"timestamp": "@N"', '"body": "@N"']))
    return body.replace(spot, spot.replace('"@N"', literal)).encode()


bodies = st.one_of(
    mutated_payloads(),
    mutated_payloads(),
    envelopes(),
    json_values.map(lambda v: json.dumps(v).encode()),
    deep_bodies(),
    number_literals(),
    st.binary(max_size=64),
)


# -- fixtures -------------------------------------------------------------------------------------------
class ErrorLog(logging.Handler):
    """Every ERROR the service logs (an unexpected exception, a 5xx) while the module runs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def admin(config):
    with psycopg.connect(config.database_url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute("select public.configure_whatsapp(jsonb_build_object('phone_number_id', %s::text))", [CENTRAL])
        yield conn


@pytest.fixture(scope="module")
def fuzz_client(config, admin):
    started = admin.execute("select now() as t").fetchone()["t"]
    app = create_app(config)
    errors = ErrorLog()
    logging.getLogger("app").addHandler(errors)
    try:
        yield app.test_client(), errors
    finally:
        logging.getLogger("app").removeHandler(errors)
        app.extensions["zr_pool"].close()
        _remove_what_the_fuzz_stored(admin, started)


def _remove_what_the_fuzz_stored(admin, since: datetime) -> None:
    """Tests run one at a time: whatever was written since the module started is the fuzz's
    (dead letters stay: support's log of what could not be used)."""
    admin.execute("delete from realtime.messages where inserted_at >= %s", [since])
    admin.execute("delete from public.whatsapp_messages where created_at >= %s", [since])
    admin.execute("delete from public.whatsapp_conversations where created_at >= %s", [since])
    admin.execute("delete from private.pending_message_statuses where received_at >= %s", [since])
    admin.execute("delete from private.webhook_errors where received_at >= %s", [since])
    admin.execute("delete from private.phone_preferences where phone like %s", [FUZZ_PHONE_PREFIX + "%"])


# -- the property ----------------------------------------------------------------------------------------
@SETTINGS
@given(body=bodies)
def test_a_signed_body_never_gets_a_5xx_or_an_unhandled_exception(fuzz_client, config, body):
    client, errors = fuzz_client
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, config.app_secret)}
    resp = client.post(URL, data=body, headers=headers)
    assert resp.status_code < 500, (resp.status_code, resp.get_data(as_text=True)[:500], body[:300])
    assert resp.is_json
    answer = resp.get_json()
    if resp.status_code == 200:
        assert answer.get("dead_lettered") is True or answer.get("ignored") is True or "messages" in answer, answer
    else:
        assert set(answer["error"]) == {"code", "message", "hint"}
    assert errors.records == [], [r.getMessage() for r in errors.records]


def test_no_real_tenant_phone_is_fuzzed():
    phones = [v for payload in REAL.values() for k, v in _leaves(payload) if k in PHONE_KEYS and isinstance(v, str)]
    assert phones and all(p.startswith(FUZZ_PHONE_PREFIX) for p in phones if p.isdigit())
    assert {"from", "timestamp", "messages", "statuses", "entry"} <= set(META_KEYS)


def _leaves(node: Any, key: Any = None) -> Iterator[tuple[Any, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _leaves(v, key)
    else:
        yield key, node
