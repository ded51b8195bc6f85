"""Profiles: how much data and how long each measurement runs (--quick, --scale)."""

from __future__ import annotations

import dataclasses

from bench.harness.numbers import human


@dataclasses.dataclass(frozen=True)
class World:
    """A generated data set: tenants and messages (bench/sql/world_*.sql)."""

    name: str
    tenants: int
    messages: int

    def label(self) -> str:
        return f"{human(self.tenants)} tenants / {human(self.messages)} messages"


@dataclasses.dataclass(frozen=True)
class Budget:
    """How long one pgbench run lasts: seconds (time-boxed, full runs) or transactions per client (quick runs)."""

    seconds: int = 0
    transactions: int = 0

    def warm(self) -> Budget:
        """The shorter run that warms caches and plan caches before a measured one."""
        if self.seconds:
            return Budget(seconds=max(1, self.seconds // 4))
        return Budget(transactions=max(10, self.transactions // 5))


@dataclasses.dataclass(frozen=True)
class Profile:
    mode: str  # "quick" or "full"
    scale: float
    small: World  # the 1x world (scale baseline)
    large: World  # the 10x world (headline figures)
    route: Budget  # each pgbench run of inbound routing and its baseline
    proposal_route: Budget  # the same in the proposals' steps
    inbox: Budget  # each inbox query
    lookup: Budget  # cache question parts
    upkeep: Budget  # each kind of change, with and without triggers
    breakdown_calls: int  # messages routed under auto_explain (cache question)
    mv_refreshes: int
    mv_concurrent_refreshes: int
    http_s: int
    http_workers: tuple[int, ...]
    backfill_rows: int
    flood_rows: int  # tenants (each with an active lease) a hostile landlord tries to add for one phone
    flood_s: int  # ... for at most this long
    flood_posts: int  # signed webhooks per phone (and as many direct ingest calls)
    flood_posts_s: int  # ... for at most this long per phone and way
    media_files: int  # photos the media worker downloads (fake Graph API -> Storage stand-in)
    media_file_bytes: int  # ... of this size each (under WhatsApp's 5 MiB for images)
    soak_s: int  # the soak's load phase (scripts/bench --soak-minutes N overrides it)
    soak_sample_s: float  # ... sampled this often
    partition_sizes: tuple[tuple[int, bool], ...]  # partitioning: (messages, narrow row) per size
    partition_query: Budget  # ... each query, per layout
    partition_insert: Budget  # ... each insert variant and client count, per layout
    clients: tuple[int, ...] = (1, 2, 4, 8)  # pgbench clients of inbound routing
    http_connections: int = 8  # wrk connections


def make_profile(quick: bool, scale: float) -> Profile:
    def world(name: str, tenants: int, messages: int) -> World:
        return World(name, max(200, int(tenants * scale)), max(2000, int(messages * scale)))

    if quick:
        return Profile(
            "quick",
            scale,
            world("small", 1_000, 10_000),
            world("large", 10_000, 100_000),
            route=Budget(transactions=100),
            proposal_route=Budget(transactions=100),
            inbox=Budget(transactions=150),
            lookup=Budget(transactions=200),
            upkeep=Budget(transactions=60),
            breakdown_calls=60,
            mv_refreshes=2,
            mv_concurrent_refreshes=1,
            http_s=2,
            http_workers=(2,),
            backfill_rows=max(1000, int(10_000 * scale)),
            flood_rows=max(1000, int(5_000 * scale)),
            flood_s=20,
            flood_posts=10,
            flood_posts_s=8,
            media_files=max(4, int(20 * scale)),
            media_file_bytes=2_000_000,
            soak_s=60,
            soak_sample_s=2.0,
            partition_sizes=((max(20_000, int(20_000 * scale)), False), (max(20_000, int(200_000 * scale)), True)),
            partition_query=Budget(transactions=60),
            partition_insert=Budget(transactions=60),
        )
    return Profile(
        "full",
        scale,
        world("small", 100_000, 1_000_000),
        world("large", 1_000_000, 10_000_000),
        route=Budget(seconds=10),
        proposal_route=Budget(seconds=8),
        inbox=Budget(seconds=5),
        lookup=Budget(seconds=8),
        upkeep=Budget(seconds=5),
        breakdown_calls=500,
        mv_refreshes=3,
        mv_concurrent_refreshes=2,
        http_s=10,
        http_workers=(2, 4),
        backfill_rows=max(1000, int(1_000_000 * scale)),
        flood_rows=max(1000, int(1_200_000 * scale)),
        flood_s=180,
        flood_posts=50,
        flood_posts_s=60,
        media_files=max(4, int(100 * scale)),
        media_file_bytes=5_000_000,
        soak_s=1800,
        soak_sample_s=10.0,
        # 100M full-width rows would need ~60 GB per layout: that size has the narrow row.
        partition_sizes=((max(20_000, int(10_000_000 * scale)), False), (max(20_000, int(100_000_000 * scale)), True)),
        partition_query=Budget(seconds=5),
        partition_insert=Budget(seconds=8),
    )
