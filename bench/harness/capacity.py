"""The capacity model of docs/scaling.md: what the measured per-message costs say one machine can do,
and what Meta's throughput tiers need. Every input is read from a benchmark's JSON; nothing here is
measured, and a missing input leaves its line out (the template says "not measured")."""

from __future__ import annotations

import math
from typing import Any

from bench.harness.results import Result

TIERS = (80, 1000)  # Cloud API throughput of one business number, messages/s, inbound and outbound together
STATUSES_PER_REPLY = 3  # sent, delivered, read
HEADROOM = 0.5  # plan CPUs at half load: bursts, vacuum, checkpoints, the inbox's own reads
CORES_MEASURED = 2  # the benchmark machine (bench/results/*.json "machine")
# Not measured here (stated assumptions of the storage line): the share of inbound messages that carry a
# photo or file, and its mean size once WhatsApp has compressed it.
MEDIA_SHARE = 0.10
MEDIA_MEAN_BYTES = 150_000


def core_ms(rate_per_s: float | None, busy_cores: float) -> float | None:
    """CPU time per operation when `busy_cores` cores were saturated at `rate_per_s` (an upper bound:
    the load generator's own CPU and any idle time are charged to the operation)."""
    if not rate_per_s:
        return None
    return 1000.0 * busy_cores / rate_per_s


def costs(found: dict[str, Result]) -> dict[str, Any]:
    """Core-milliseconds per operation, from the 2-client / 2-worker runs (both cores busy)."""
    out: dict[str, Any] = {}
    routing = (found.get("inbound_routing") or {}).get("worlds", {}).get("large")
    if routing:
        two = next((r for r in routing["runs"] if r["clients"] == CORES_MEASURED), None)
        if two:
            out["route_mixed"] = core_ms(two["routing"]["tps"], CORES_MEASURED)
            out["insert_floor"] = core_ms(two["baseline"]["tps"], CORES_MEASURED)
            for case in ("existing", "new"):
                if case in two:
                    out[f"route_{case}"] = core_ms(two[case]["tps"], CORES_MEASURED)
        out["bytes_per_message"] = routing.get("bytes_per_message")
    webhook = found.get("webhook_http") or {}
    pair = next((p for p in webhook.get("pairs", []) if p["workers"] == CORES_MEASURED), None)
    if pair:
        out["webhook_message"] = core_ms(pair["service_rps"], CORES_MEASURED)  # gunicorn + Postgres, whole machine
        out["ingest_message"] = core_ms(pair.get("direct_rps"), CORES_MEASURED)
        out["ingest_status"] = core_ms(pair.get("direct_status_rps"), CORES_MEASURED)
        if out["webhook_message"] and out["ingest_message"]:
            out["http_overhead"] = max(0.0, out["webhook_message"] - out["ingest_message"])
            if out["ingest_status"]:
                out["webhook_status"] = out["ingest_status"] + out["http_overhead"]
    return out


def tier_rows(c: dict[str, Any]) -> list[dict[str, Any]]:
    """For each tier and traffic mix: webhooks/s, sends/s and the cores they need at HEADROOM."""
    msg, status = c.get("webhook_message"), c.get("webhook_status")
    if not msg or not status:
        return []
    send = status  # one claim + one settle per reply: charged like one status webhook (not measured apart)
    rows = []
    for tier in TIERS:
        for mix, inbound_share in (("all inbound", 1.0), ("half replies", 0.5), ("all outbound", 0.0)):
            inbound = tier * inbound_share
            outbound = tier - inbound
            webhooks = inbound + STATUSES_PER_REPLY * outbound
            cpu_s = (inbound * msg + STATUSES_PER_REPLY * outbound * status + outbound * send) / 1000.0
            rows.append(
                {
                    "tier": tier,
                    "mix": mix,
                    "inbound": inbound,
                    "outbound": outbound,
                    "webhooks": webhooks,
                    "busy_cores": cpu_s,
                    "cores": max(1, math.ceil(cpu_s / HEADROOM)),
                    "workers": max(2, math.ceil(cpu_s / HEADROOM)),  # sync workers: one request each, CPU-bound
                }
            )
    return rows


def storage(c: dict[str, Any]) -> dict[str, Any] | None:
    """Bytes per million routed messages in Postgres (measured) and in Storage (assumed media share)."""
    b = c.get("bytes_per_message")
    if not b:
        return None
    db = b["messages"] + b["details"] + b["conversations"]
    return {
        "db_gb_per_million": db * 1e6 / 1e9,
        "broadcast_gb_per_million": b["broadcasts"] * 1e6 / 1e9,
        "media_gb_per_million": MEDIA_SHARE * MEDIA_MEAN_BYTES * 1e6 / 1e9,
        "parts": b,
    }


PRODUCTION = ("gunicorn", "sender", "media worker", "postgres")  # soak processes that are deployed


def soak_cores(found: dict[str, Result]) -> dict[str, Any] | None:
    """What the soak's deployed processes used at the standard tier, in cores (mean over the run)."""
    soak = found.get("soak") or {}
    memory = (soak.get("summary") or {}).get("memory") or {}
    used = {k: v["cpu_pct"] / 100.0 for k, v in memory.items() if k.startswith(PRODUCTION) and "cpu_pct" in v}
    if not used:
        return None
    totals = soak.get("totals") or {}
    return {
        "cores": sum(used.values()),
        "by_process": used,
        "inbound_per_s": (soak.get("summary") or {}).get("inbound_per_s"),
        "replies": (totals.get("replies") or {}).get("queued"),
        "statuses": (totals.get("status_webhooks") or {}).get("ok"),
        "seconds": (soak.get("summary") or {}).get("load_s"),
    }


def model(found: dict[str, Result]) -> dict[str, Any]:
    c = costs(found)
    per_core = {k: 1000.0 / v for k, v in c.items() if isinstance(v, float) and v > 0}
    return {
        "costs": c,
        "per_core": per_core,
        "tiers": tier_rows(c),
        "storage": storage(c),
        "soak": soak_cores(found),
        "headroom": HEADROOM,
        "media_share": MEDIA_SHARE,
        "media_mean_bytes": MEDIA_MEAN_BYTES,
        "statuses_per_reply": STATUSES_PER_REPLY,
    }
