"""8. Flood of one phone: a hostile landlord adds tenants with a victim's phone through the Data API; then
signed webhooks for that phone (each with a neighbour's message in the same body) must still be stored
and answered quickly.

In a scratch database of its own (<database>_flood, from platform.sql and the migrations, dropped after):

1. Set up as postgres: the victims' landlord with three tenants (the flooded phone, the spread phone and a
   clean phone), a neighbour's landlord with one tenant, all with active leases; a hostile landlord with
   one property and 50 more hostile landlords with one property each. Each of the four tenants writes
   once first (straight to public.ingest_whatsapp_webhook), so their own landlord's link is confirmed, as
   a tenant's history confirms it.
2. The flood, as PostgREST runs a landlord's requests: login role authenticator, then per transaction
   authenticated's own settings (statement_timeout 8 s), `set local role authenticated` and the
   landlord's JWT claims. The hostile landlord adds tenants with the flooded phone, each with an active
   lease on its property: first a few one row per request (typed in by hand), then BATCH_ROWS rows per
   request (the tenants, then their leases) until flood_rows are attempted or flood_s is up. A refused
   request is recorded (the first refusal's SQLSTATE and detail) and the next one is tried. Then the
   spread: SPREAD_LANDLORDS hostile landlords add SPREAD_ROWS each for the spread phone, so routing work
   can be told apart by landlords and by rows.
3. The webhook: the service (app.service:create_app() under gunicorn, as webhook_http runs it) gets
   signed webhooks one after another, each carrying a message from the phone and one from the
   neighbour; then the same kind of bodies (fresh wamids) go straight to public.ingest_whatsapp_webhook
   as service_role with the service's statement timeout. Clean phone first, then spread, then flooded,
   each at most flood_posts times or flood_posts_s seconds. Last, one direct call for the flooded phone
   with a long timeout: what routing that phone costs the database.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple

import matplotlib.ticker
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow

from app.config import Config
from bench.benchmarks.webhook_http import APP_SECRET, SERVICE, WEBHOOK_PATH, signature
from bench.harness.benchmark import Benchmark, Context
from bench.harness.http import Gunicorn, post
from bench.harness.numbers import human, percentile, rnd
from bench.harness.plots import plt
from bench.harness.report import EMPTY_CELL, fmt, table
from bench.harness.results import Result, goal
from bench.harness.scratch import Scratch, with_database
from bench.harness.worlds import CENTRAL_NUMBER, CENTRAL_PHONE_NUMBER_ID

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

Connection = psycopg.Connection[TupleRow]

BATCH_ROWS = 1000  # rows per request in the flood
SINGLE_ROWS = 10  # rows added one per request before the batches
SPREAD_LANDLORDS = 50
SPREAD_ROWS = 5  # per landlord: the cap the fix allows by default
GUNICORN_WORKERS = 2  # scripts/run's default (ZR_WORKERS)
WARM_POSTS = 3  # per way, with the clean phone, not measured
UNCAPPED_TIMEOUT_S = 60
GOAL_MS = 50
PROGRESS_S = 15.0


def uid(kind: int, n: int) -> str:
    """A deterministic uuid: kind 1 landlord, 2 property, 3 tenant."""
    return f"f100d{kind:03x}-0000-4000-8000-{n:012x}"


class Phone(NamedTuple):
    key: str
    digits: str  # as WhatsApp sends `from` (and as routing stores it)
    typed: str  # as a landlord types it into tenants.phone
    tenant: str  # the genuine tenant's id
    landlord: str  # the genuine tenant's landlord


VICTIMS_LANDLORD, NEIGHBOURS_LANDLORD, HOSTILE = uid(1, 1), uid(1, 2), uid(1, 3)
SPREADERS = [uid(1, 100 + k) for k in range(SPREAD_LANDLORDS)]
FLOODED = Phone("flooded", "447700900101", "+44 7700 900101", uid(3, 1), VICTIMS_LANDLORD)
SPREAD = Phone("spread", "447700900102", "+44 7700 900102", uid(3, 2), VICTIMS_LANDLORD)
CLEAN = Phone("clean", "447700900103", "+44 7700 900103", uid(3, 3), VICTIMS_LANDLORD)
NEIGHBOUR = Phone("neighbour", "447700900104", "+44 7700 900104", uid(3, 4), NEIGHBOURS_LANDLORD)
MEASURED = (CLEAN, SPREAD, FLOODED)  # the order they are measured in
GENUINE = (FLOODED, SPREAD, CLEAN, NEIGHBOUR)


def service_timeout_ms() -> int:
    """The service's statement timeout (ZR_DB_STATEMENT_TIMEOUT_MS, inherited by gunicorn), for the direct calls too."""
    return Config.from_env().db_statement_timeout_ms


def hostile_property(landlord: str) -> str:
    return uid(2, 1000 + ([HOSTILE, *SPREADERS].index(landlord)))


def measure(ctx: Context) -> Result:
    scratch = Scratch(with_database(ctx.scratch.url, "postgres"), f"{ctx.scratch.name}_flood")
    log.info("    scratch database %s", scratch.name)
    try:
        scratch.create()
        scratch.execute("select public.configure_whatsapp(%s::jsonb)", [json.dumps(CENTRAL_NUMBER)])
        setup(scratch)
        confirm_links(scratch)
        result: Result = {"status": "ok", "database": scratch.name}
        with DataApi(scratch.url) as api:
            result["api"] = {"role": "authenticated", "statement_timeout": api.statement_timeout}
            result["flood"] = flood(api, ctx.profile.flood_rows, ctx.profile.flood_s)
            result["spread"] = spread(api)
        scratch.execute("analyze")  # what autovacuum does after a flood
        result["phones"] = {p.key: phone_facts(scratch, p) for p in MEASURED}
        result["webhook"] = measure_webhooks(ctx, scratch)
        return rnd(result)
    finally:
        scratch.drop()


# --- setup -----------------------------------------------------------------------------------


def setup(scratch: Scratch) -> None:
    """Landlords, properties, the genuine tenants and their leases, as postgres (triggers on)."""
    landlords = [
        (VICTIMS_LANDLORD, "Victims' Landlord"),
        (NEIGHBOURS_LANDLORD, "Neighbour's Landlord"),
        (HOSTILE, "Hostile Landlord"),
        *[(s, f"Hostile Landlord {k + 1}") for k, s in enumerate(SPREADERS)],
    ]
    properties = [(uid(2, k + 1), p.landlord, f"{k + 1} Victim Street") for k, p in enumerate(GENUINE)]
    properties += [(hostile_property(h), h, f"{k + 1} Hostile Street") for k, h in enumerate([HOSTILE, *SPREADERS])]
    with psycopg.connect(scratch.url) as conn, conn.cursor() as cur:
        cur.executemany(
            "insert into auth.users (id, aud, role, email) values (%s, 'authenticated', 'authenticated', %s)",
            [(i, f"{i}@flood.test") for i, _ in landlords],
        )
        cur.executemany(
            "insert into public.user_profiles (id, full_name, email, whatsapp_enabled, whatsapp_opted_in_at)"
            " values (%s, %s, %s, true, now())",
            [(i, name, f"{i}@flood.test") for i, name in landlords],
        )
        cur.executemany("insert into public.properties (id, user_id, address) values (%s, %s, %s)", properties)
        cur.executemany(
            "insert into public.tenants (id, user_id, name, phone) values (%s, %s, %s, %s)",
            [(p.tenant, p.landlord, f"Tenant {p.key}", p.typed) for p in GENUINE],
        )
        cur.executemany(
            "insert into public.leases (tenant_id, property_id, status, start_date)"
            " values (%s, %s, 'active', current_date - 400)",
            [(p.tenant, uid(2, k + 1)) for k, p in enumerate(GENUINE)],
        )


def confirm_links(scratch: Scratch) -> None:
    """Each genuine tenant writes once while their landlord is the phone's only candidate."""
    with Direct(scratch.url, service_timeout_ms()) as direct:
        for p in GENUINE:
            outcome, _ = direct.call(webhook_body([(p, f"wamid.FLOODHELLO{p.key}")]))
            if outcome != "ok":
                raise RuntimeError(f"the first message from the {p.key} phone was refused: {outcome}")
    statuses = dict(
        scratch.execute(
            "select wamid, routing_status from public.whatsapp_messages where wamid like 'wamid.FLOODHELLO%'"
        )
    )
    if set(statuses.values()) != {"delivered"}:
        raise RuntimeError(f"the genuine tenants' first messages were not delivered: {statuses}")


# --- the flood, through the Data API ---------------------------------------------------------


def authenticator_url(url: str) -> str:
    """The same database, reached as the login role PostgREST uses (app/local/dataapi.py's defaults)."""
    params = conninfo_to_dict(url)
    params.update(
        user=os.environ.get("ZR_DATAAPI_DB_USER", "authenticator"),
        password=os.environ.get("ZR_DATAAPI_DB_PASSWORD", "postgres"),
    )
    return make_conninfo("", **params)


class DataApi:
    """A landlord's requests as PostgREST runs them: one transaction each, as authenticated with the
    role's own settings and the landlord's JWT claims."""

    def __init__(self, url: str):
        self.conn: Connection = psycopg.connect(authenticator_url(url), autocommit=True)
        row = self.conn.execute("select rolconfig from pg_catalog.pg_roles where rolname = 'authenticated'").fetchone()
        self.settings = [s.partition("=")[::2] for s in ((row[0] if row else None) or [])]
        with self.request(HOSTILE) as conn:
            shown = conn.execute("show statement_timeout").fetchone()
        self.statement_timeout = shown[0] if shown else None

    def __enter__(self) -> DataApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def request(self, landlord: str) -> Iterator[Connection]:
        claims = {"sub": landlord, "role": "authenticated", "aud": "authenticated", "email": f"{landlord}@flood.test"}
        with self.conn.transaction():
            for name, value in self.settings:
                self.conn.execute("select set_config(%s, %s, true)", [name, value])
            self.conn.execute("set local role authenticated")
            self.conn.execute("select set_config('request.jwt.claims', %s, true)", [json.dumps(claims)])
            yield self.conn

    def add_tenants(self, landlord: str, phone: Phone, first: int, count: int) -> int:
        """POST /tenants then POST /leases (active, on the landlord's property): the rows both accepted.
        A refusal of either request raises; tenants already added stay without a lease."""
        tenants = [{"user_id": landlord, "name": f"Tenant {first + i}", "phone": phone.typed} for i in range(count)]
        with self.request(landlord) as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    "insert into public.tenants (user_id, name, phone)"
                    " select x.user_id, x.name, x.phone"
                    " from jsonb_to_recordset(%s::jsonb) as x(user_id uuid, name text, phone text) returning id",
                    [json.dumps(tenants)],
                ).fetchall()
            ]
        leases = [{"tenant_id": str(i), "property_id": hostile_property(landlord)} for i in ids]
        with self.request(landlord) as conn:
            conn.execute(
                "insert into public.leases (tenant_id, property_id, status, start_date)"
                " select x.tenant_id, x.property_id, 'active', current_date"
                " from jsonb_to_recordset(%s::jsonb) as x(tenant_id uuid, property_id uuid)",
                [json.dumps(leases)],
            )
        return len(ids)


class Tally:
    """Rows attempted, accepted and refused by one kind of request; the first refusal."""

    def __init__(self, rows_per_request: int):
        self.rows_per_request = rows_per_request
        self.attempted = self.accepted = self.refused = self.requests = 0
        self.seconds = 0.0
        self.request_s: list[float] = []
        self.first_refusal: Result | None = None

    def add(self, attempt: Callable[[], int], rows: int, first_row: int) -> None:
        """One request of `rows` rows, the first being row `first_row` (from 1) of the flood."""
        start = time.perf_counter()
        try:
            self.accepted += attempt()
        except psycopg.Error as exc:
            self.refused += rows
            if self.first_refusal is None:
                self.first_refusal = refusal(exc, first_row)
        elapsed = time.perf_counter() - start
        self.attempted += rows
        self.requests += 1
        self.seconds += elapsed
        self.request_s.append(elapsed)

    def result(self) -> Result:
        ordered = sorted(self.request_s)
        return {
            "rows_per_request": self.rows_per_request,
            "requests": self.requests,
            "attempted": self.attempted,
            "accepted": self.accepted,
            "refused": self.refused,
            "seconds": self.seconds,
            "rows_per_s": self.attempted / self.seconds if self.seconds else None,
            "request_ms": {
                "p50": 1000 * (percentile(ordered, 50) or 0),
                "max": 1000 * (ordered[-1] if ordered else 0),
            },
            "first_refusal": self.first_refusal,
        }


def refusal(exc: psycopg.Error, at_row: int) -> Result:
    """What a refused request was told; at_row: the request's first row (exact for one-row requests)."""
    diag = exc.diag
    return {
        "sqlstate": exc.sqlstate,
        "detail": diag.message_detail,
        "message": diag.message_primary,
        "at_row": at_row,
    }


def flood(api: DataApi, rows: int, seconds: int) -> Result:
    """The hostile landlord adds tenants with the flooded phone until `rows` are attempted or `seconds` are up."""
    single, batch = Tally(1), Tally(BATCH_ROWS)
    started = last_log = time.monotonic()
    stopped_by = "rows"
    attempted = 0
    while attempted < rows:
        now = time.monotonic()
        if now - started >= seconds:
            stopped_by = "time"
            break
        if now - last_log >= PROGRESS_S:
            last_log = now
            accepted = single.accepted + batch.accepted
            log.info("    flood: %s attempted, %s accepted, %.0f s", human(attempted), human(accepted), now - started)
        tally = single if attempted < SINGLE_ROWS else batch
        n = min(tally.rows_per_request, rows - attempted)
        tally.add(functools.partial(api.add_tenants, HOSTILE, FLOODED, attempted, n), n, attempted + 1)
        attempted += n
    total: Result = {
        "attempted": single.attempted + batch.attempted,
        "accepted": single.accepted + batch.accepted,
        "refused": single.refused + batch.refused,
        "seconds": time.monotonic() - started,
        "first_refusal": single.first_refusal or batch.first_refusal,
    }
    log.info(
        "    flood: %s rows attempted, %s accepted, %s refused in %.1f s (stopped by %s); first refusal %s",
        f"{total['attempted']:,}",
        f"{total['accepted']:,}",
        f"{total['refused']:,}",
        total["seconds"],
        stopped_by,
        describe_refusal(total["first_refusal"]),
    )
    return total | {
        "target_rows": rows,
        "time_cap_s": seconds,
        "stopped_by": stopped_by,
        "one_row_requests": single.result(),
        "batch_requests": batch.result(),
    }


def spread(api: DataApi) -> Result:
    """SPREAD_LANDLORDS hostile landlords add SPREAD_ROWS tenants each with the spread phone, one request each."""
    tally = Tally(SPREAD_ROWS)
    for k, landlord in enumerate(SPREADERS):
        first = k * SPREAD_ROWS
        tally.add(functools.partial(api.add_tenants, landlord, SPREAD, first, SPREAD_ROWS), SPREAD_ROWS, first + 1)
    r = tally.result() | {"landlords": SPREAD_LANDLORDS}
    log.info(
        "    spread: %d landlords x %d rows: %d accepted, %d refused; first refusal %s",
        SPREAD_LANDLORDS,
        SPREAD_ROWS,
        r["accepted"],
        r["refused"],
        describe_refusal(r["first_refusal"]),
    )
    return r


def describe_refusal(r: Result | None) -> str:
    if r is None:
        return "none"
    return f"{r['sqlstate']} {r['detail'] or ''} at row {r['at_row']:,}".replace("  ", " ")


def phone_facts(scratch: Scratch, phone: Phone) -> Result:
    """Tenants with the phone and the routing table's rows for it (None where the schema has no such table)."""
    tenants = scratch.execute(
        "select count(*), count(distinct user_id) from public.tenants where phone_e164 = %s", [phone.digits]
    )[0]
    facts: Result = {"phone": phone.digits, "tenants": tenants[0], "tenant_landlords": tenants[1]}
    try:
        rows, landlords = scratch.execute(
            "select count(*), count(distinct landlord_id) from private.tenant_landlord_routing where tenant_phone = %s",
            [phone.digits],
        )[0]
    except psycopg.Error as exc:  # the routing table's shape is the fix's to change
        log.info("    routing rows of the %s phone not counted: %s", phone.key, exc)
        rows = landlords = None
    return facts | {"routing_rows": rows, "candidate_landlords": landlords}


# --- the webhook -----------------------------------------------------------------------------


def webhook_body(items: list[tuple[Phone, str]], text: str = "Hi, the boiler is making a strange noise again.") -> str:
    """A webhook with one text message per (phone, wamid), in one change, as Meta batches them."""
    now = str(int(time.time()))
    value = {
        "messaging_product": "whatsapp",
        "metadata": CENTRAL_NUMBER,
        "contacts": [{"profile": {"name": f"Tenant {p.key}"}, "wa_id": p.digits} for p, _ in items],
        "messages": [
            {"from": p.digits, "id": wamid, "timestamp": now, "type": "text", "text": {"body": text}}
            for p, wamid in items
        ],
    }
    changes = [{"value": value, "field": "messages"}]
    return json.dumps(
        {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": changes}]},
        separators=(",", ":"),
    )


class Direct:
    """public.ingest_whatsapp_webhook as the service calls it: one transaction, service_role, a statement timeout."""

    def __init__(self, url: str, timeout_ms: int):
        self.conn: Connection = psycopg.connect(url, autocommit=True, options=f"-c statement_timeout={timeout_ms}")

    def __enter__(self) -> Direct:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    def call(self, body: str, timeout_ms: int | None = None) -> tuple[str, float]:
        """'ok' or the SQLSTATE of the refusal, and the seconds the call took."""
        start = time.perf_counter()
        try:
            with self.conn.transaction():
                self.conn.execute("set local role service_role")
                if timeout_ms is not None:
                    self.conn.execute("select set_config('statement_timeout', %s, true)", [str(timeout_ms)])
                self.conn.execute("select public.ingest_whatsapp_webhook(%s::jsonb)", [body])
            outcome = "ok"
        except psycopg.Error as exc:
            outcome = exc.sqlstate or type(exc).__name__
        return outcome, time.perf_counter() - start


def measure_webhooks(ctx: Context, scratch: Scratch) -> Result:
    profile = ctx.profile
    env = {
        "DATABASE_URL": scratch.url,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_PHONE_NUMBER_ID": CENTRAL_PHONE_NUMBER_ID,
        "ZR_ENV": "development",
    }
    http: Result = {}
    server = Gunicorn(SERVICE.target, GUNICORN_WORKERS, env, ctx.work / "gunicorn-flood.log")
    try:
        server.wait_ready(SERVICE.ready_path, SERVICE.ready)

        def send(body: str) -> tuple[str, float]:
            headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature(body.encode())}
            status, seconds = post(server.url + WEBHOOK_PATH, body.encode(), headers)
            return str(status), seconds

        series(scratch, "http", "warm", CLEAN, send, WARM_POSTS, profile.flood_posts_s)
        for p in MEASURED:
            http[p.key] = series(scratch, "http", p.key, p, send, profile.flood_posts, profile.flood_posts_s)
    finally:
        server.stop()
    direct: Result = {}
    timeout_ms = service_timeout_ms()
    with Direct(scratch.url, timeout_ms) as d:
        series(scratch, "direct", "warm", CLEAN, d.call, WARM_POSTS, profile.flood_posts_s)
        for p in MEASURED:
            direct[p.key] = series(scratch, "direct", p.key, p, d.call, profile.flood_posts, profile.flood_posts_s)
        body = webhook_body([(FLOODED, "wamid.FLOODUNCAPPED")])
        outcome, seconds = d.call(body, timeout_ms=UNCAPPED_TIMEOUT_S * 1000)
    uncapped = {"outcome": outcome, "ms": 1000 * seconds, "timeout_s": UNCAPPED_TIMEOUT_S}
    log.info(
        "    flooded phone, one direct call with a %d s timeout: %s in %.0f ms",
        UNCAPPED_TIMEOUT_S,
        outcome,
        1000 * seconds,
    )
    return {
        "http": http,
        "direct": direct,
        "direct_uncapped_flooded": uncapped,
        "service_statement_timeout_ms": timeout_ms,
        "gunicorn_workers": GUNICORN_WORKERS,
        "posts_per_phone": profile.flood_posts,
        "seconds_per_phone": profile.flood_posts_s,
    }


def series(
    scratch: Scratch,
    way: str,
    tag: str,
    phone: Phone,
    send: Callable[[str], tuple[str, float]],
    posts: int,
    seconds: int,
) -> Result:
    """Up to `posts` webhooks (the phone's message and the neighbour's) one after another, for at most `seconds`."""
    latencies: list[float] = []
    answers: collections.Counter[str] = collections.Counter()
    sent: list[tuple[str, str, str]] = []  # answer, the phone's wamid, the neighbour's
    started = time.monotonic()
    for i in range(posts):
        if i and time.monotonic() - started >= seconds:
            break
        mine, theirs = f"wamid.FLOOD{way}{tag}{i:05d}P", f"wamid.FLOOD{way}{tag}{i:05d}N"
        answer, elapsed = send(webhook_body([(phone, mine), (NEIGHBOUR, theirs)]))
        answers[answer] += 1
        latencies.append(1000 * elapsed)
        sent.append((answer, mine, theirs))
    stored = dict(
        scratch.execute(
            "select wamid, routing_status from public.whatsapp_messages where wamid = any(%s)",
            [[w for _, mine, theirs in sent for w in (mine, theirs)]],
        )
    )
    ok = {"200", "ok"}
    complete = sum(1 for answer, mine, theirs in sent if answer in ok and mine in stored and theirs in stored)
    ordered = sorted(latencies)
    r: Result = {
        "requests": len(sent),
        "answers": dict(sorted(answers.items())),
        "latency_ms": {"p50": percentile(ordered, 50), "p95": percentile(ordered, 95), "max": ordered[-1]},
        "seconds": time.monotonic() - started,
        "phone_stored": sum(1 for _, mine, _ in sent if mine in stored),
        "neighbour_stored": sum(1 for _, _, theirs in sent if theirs in stored),
        "phone_routing": dict(collections.Counter(stored[m] for _, m, _ in sent if m in stored)),
        "neighbour_routing": dict(collections.Counter(stored[t] for _, _, t in sent if t in stored)),
        "complete": complete,
        "complete_share": complete / len(sent),
    }
    if tag != "warm":
        log.info(
            "    %-6s %-8s %3d webhooks: %s, p50 %.1f p95 %.1f max %.1f ms; stored %d/%d phone, %d/%d neighbour",
            way,
            phone.key,
            r["requests"],
            ", ".join(f"{k} x{v}" for k, v in r["answers"].items()),
            r["latency_ms"]["p50"],
            r["latency_ms"]["p95"],
            r["latency_ms"]["max"],
            r["phone_stored"],
            r["requests"],
            r["neighbour_stored"],
            r["requests"],
        )
    return r


# --- goals, plot, report ---------------------------------------------------------------------


def goals(result: Result) -> list[Result] | None:
    if result.get("status") != "ok":
        return None
    flooded = result["webhook"]["http"]["flooded"]
    return [
        goal(
            f"webhook for the flooded phone answered and stored in < {GOAL_MS} ms (p95)",
            flooded["latency_ms"]["p95"],
            "<",
            GOAL_MS,
            "ms",
        ),
        goal(
            "flooded-phone webhooks answered 200 with both messages stored (share)",
            flooded["complete_share"],
            ">=",
            1,
            "",
        ),
    ]


def plot(result: Result) -> Figure | None:
    """p50 and p95 per phone, over HTTP and direct, on a log scale with the goal."""
    if result.get("status") != "ok":
        return None
    web = result["webhook"]
    fig, ax = plt.subplots(figsize=(8, 4))
    keys = [p.key for p in MEASURED]
    xs = range(len(keys))
    for k, (way, label) in enumerate((("http", "service (HTTP)"), ("direct", "ingest_whatsapp_webhook"))):
        for j, pct in enumerate(("p50", "p95")):
            offset = (2 * k + j - 1.5) * 0.2
            values = [web[way][key]["latency_ms"][pct] for key in keys]
            ax.bar([x + offset for x in xs], values, 0.2, label=f"{label} {pct}")
    ax.axhline(GOAL_MS, color="grey", lw=0.8, ls=":")
    ax.text(-0.4, GOAL_MS, f" goal {GOAL_MS} ms", va="bottom", fontsize=8, color="grey")
    phones = result["phones"]
    labels = [
        f"{key}\n{human(phones[key]['tenants'])} tenant(s), {phones[key]['tenant_landlords']} landlord(s)"
        for key in keys
    ]
    ax.set_xticks(list(xs), labels, fontsize=8)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set(ylabel="ms per webhook (2 messages)", title="Webhooks after the flood")
    ax.legend(fontsize=7)
    return fig


def refusal_cell(r: Result | None) -> str:
    if r is None:
        return EMPTY_CELL
    detail = f" `{r['detail']}`" if r.get("detail") else ""
    return f"{r['sqlstate']}{detail} (row {r['at_row']:,})"


def flood_table(r: Result) -> str:
    f, s = r["flood"], r["spread"]
    rows = [
        [
            "1 hostile landlord, flooded phone",
            t["rows_per_request"],
            t["requests"],
            t["attempted"],
            t["accepted"],
            t["refused"],
            refusal_cell(t["first_refusal"]),
            t["seconds"],
            t["rows_per_s"],
        ]
        for t in (f["one_row_requests"], f["batch_requests"])
    ]
    rows.append(
        [
            f"{s['landlords']} hostile landlords, spread phone",
            s["rows_per_request"],
            s["requests"],
            s["attempted"],
            s["accepted"],
            s["refused"],
            refusal_cell(s["first_refusal"]),
            s["seconds"],
            s["rows_per_s"],
        ]
    )
    header = [
        "who",
        "rows per request",
        "requests",
        "rows attempted",
        "rows accepted",
        "rows refused",
        "first refusal",
        "seconds",
        "rows/s",
    ]
    return table(header, rows)


def stored_cell(s: Result, who: str) -> str:
    n, routing = s[f"{who}_stored"], s[f"{who}_routing"]
    how = ", ".join(f"{k} {v}" for k, v in sorted(routing.items()))
    return f"{fmt(n == s['requests'])} ({n}/{s['requests']}{': ' + how if how else ''})"


def webhook_table(r: Result) -> str:
    rows = []
    for way, label in (("http", "service (HTTP)"), ("direct", "direct call")):
        for p in MEASURED:
            s, facts = r["webhook"][way][p.key], r["phones"][p.key]
            answers = ", ".join(f"{k} x{v}" for k, v in s["answers"].items())
            rows.append(
                [
                    p.key,
                    facts["tenants"],
                    facts["tenant_landlords"],
                    facts["routing_rows"],
                    facts["candidate_landlords"],
                    label,
                    answers,
                    s["latency_ms"]["p50"],
                    s["latency_ms"]["p95"],
                    s["latency_ms"]["max"],
                    stored_cell(s, "phone"),
                    stored_cell(s, "neighbour"),
                ]
            )
    header = [
        "phone",
        "tenants with it",
        "their landlords",
        "routing rows",
        "candidate landlords",
        "via",
        "answers",
        "p50 ms",
        "p95 ms",
        "max ms",
        "phone's message stored",
        "neighbour's message stored",
    ]
    return table(header, rows)


BENCHMARK = Benchmark(
    name="flood",
    measure=measure,
    goals=goals,
    plot=plot,
    report=lambda r: {"flood_table": flood_table, "webhook_table": webhook_table, "refusal_cell": refusal_cell},
)
