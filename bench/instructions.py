"""Instructions per routed message, under callgrind: a measure of the routing hot path's CPU that does not
depend on what else the machine is doing (wall-clock ratios on 2 shared cores vary by ~30 %).

scripts/bench-instructions [--at COMMIT] [--messages N]: on its own cluster (ZR_DB_PORT, default 55999,
started by scripts/db), builds the 100k-tenant world once per schema (the migrations of the work tree, or
of COMMIT: a design step's gain is the difference between two commits), keeps it as a template, copies
it, stops the server and runs N routing calls of each case (into an existing conversation, the first of a
new one) through `postgres --single` under `valgrind --tool=callgrind`. Prints, and writes to
bench/results/instructions.json under the commit, the instructions of PostgresMain divided by N (the
per-session set-up included once: N = 400 puts it under 3 %).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from bench.harness.paths import RESULTS, ROOT
from bench.harness.profile import make_profile
from bench.harness.results import machine, now
from bench.harness.scratch import Scratch, server_url, with_database
from bench.harness.worlds import build_world

TEMPLATE = "zr_instructions"  # + the commit's short hash
RUN = "zr_instructions_run"
BODIES = ["Hi, the boiler is making a strange noise again.", "Rent sent this morning, thanks!", "Ok", "Thanks"]
META = '{"display_phone_number": "447700000000", "phone_number_id": "100000000000001"}'


def driver(case: str, n: int, existing: int) -> str:
    """n route_inbound_message calls for single-user mode (-j: statements end with ';' and a blank line):
    phones drawn from the world's pools (bench/sql/world_finish.sql), each new phone used once."""
    rng = random.Random(42)
    out = []
    for i in range(n):
        src = (
            f"from bench.existing_phones p where p.n = {rng.randint(1, existing)}"
            if case == "existing"
            else f"from bench.new_phones p where p.n = {1000 + i}"
        )
        out.append(
            "select public.route_inbound_message(jsonb_build_object('from', p.phone, 'id', 'wamid.I"
            f"{case}{i}', 'timestamp', extract(epoch from now())::bigint::text, 'type', 'text', 'text', "
            f"jsonb_build_object('body', '{rng.choice(BODIES)}')), jsonb_build_object('profile', "
            f"jsonb_build_object('name', 'T'), 'wa_id', p.phone), '{META}'::jsonb) {src};\n"
        )
    return "\n".join(out)


def run(cmd: list[str], **kw: object) -> None:
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]


class ScratchAt(Scratch):
    """A scratch database made from the migrations of another tree (a commit's, unpacked by git archive)."""

    def __init__(self, server: str, name: str, tree: Path):
        super().__init__(server, name)
        self.tree = tree

    def create(self) -> None:
        self.create_platform()
        cmd = ["supabase", "db", "push", "--db-url", self.url, "--include-all", "--yes"]
        out = subprocess.run(cmd, cwd=self.tree, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError("supabase db push failed:\n" + out.stdout + out.stderr)


def build_template(server: str, commit: str | None, name: str) -> None:
    world = make_profile(False, 1.0).small
    if commit is None:
        build_world(Scratch(server, name), world)
        return
    with tempfile.TemporaryDirectory() as tree:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", commit, "supabase"], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", tree], input=archive.stdout, check=True)
        build_world(ScratchAt(server, name, Path(tree)), world)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/bench-instructions", description=__doc__.splitlines()[0])
    ap.add_argument("--at", default=None, help="measure the schema of this commit (default: the work tree's)")
    ap.add_argument("--messages", type=int, default=400)
    ap.add_argument("--rebuild", action="store_true", help="generate the world again")
    args = ap.parse_args(argv)
    commit = None
    if args.at:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.at], capture_output=True, text=True)
        if rev.returncode != 0:
            raise SystemExit(f"unknown commit {args.at!r}")
        commit = rev.stdout.strip()
    label = commit or "work tree"
    template = f"{TEMPLATE}_{commit or 'worktree'}"
    server = server_url()
    admin = with_database(server, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        have = conn.execute("select 1 from pg_database where datname = %s", [template]).fetchone()
    if args.rebuild or not have:
        build_template(server, commit, template)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"drop database if exists {RUN} with (force)")
        conn.execute(f"create database {RUN} template {template}")
    with psycopg.connect(with_database(server, RUN), autocommit=True) as conn:
        row = conn.execute("select count(*) from bench.existing_phones").fetchone()
        existing = int(row[0]) if row else 0
    data_dir = os.environ["ZR_DB_DIR"]
    run([str(ROOT / "scripts" / "db"), "stop"], stdout=subprocess.DEVNULL)
    result: dict[str, object] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.chmod(tmp, 0o777)
            for case in ("existing", "new"):
                sql, out = Path(tmp) / f"{case}.sql", Path(tmp) / f"{case}.cg"
                sql.write_text(driver(case, args.messages, existing))
                os.chmod(sql, 0o644)
                postgres = str(Path(os.environ["ZR_PG_BIN"]) / "postgres")
                cmd = (
                    f"valgrind --tool=callgrind --callgrind-out-file={out} {postgres} --single -j -D {data_dir} "
                    f"-c shared_buffers=256MB {RUN} < {sql} > {tmp}/{case}.out 2>&1"
                )
                run(["su", "postgres", "-s", "/bin/bash", "-c", cmd] if os.geteuid() == 0 else ["bash", "-c", cmd])
                delivered = (Path(tmp) / f"{case}.out").read_text().count('"routing_status": "delivered"')
                if delivered != args.messages:
                    raise SystemExit(f"{case}: {delivered} of {args.messages} messages delivered: see the driver")
                annotate = subprocess.run(
                    ["callgrind_annotate", "--inclusive=yes", str(out)], capture_output=True, text=True, check=True
                ).stdout
                m = re.search(r"^\s*([\d,]+) \([ \d.]+%\)\s+\S*:PostgresMain\b", annotate, re.M)
                if not m:
                    raise SystemExit("PostgresMain not found in callgrind's output")
                per = int(m.group(1).replace(",", "")) / args.messages
                result[case] = round(per)
                print(f"{label}: {case}: {per / 1e6:.2f} M instructions per routed message")
    finally:
        run([str(ROOT / "scripts" / "db"), "start"], stdout=subprocess.DEVNULL)
    path = RESULTS / "instructions.json"
    saved = json.loads(path.read_text()) if path.exists() else {"runs": []}
    subject = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%s", commit or "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    saved["runs"] = [r for r in saved["runs"] if r["label"] != label] + [
        {"label": label, "subject": subject[:120], "measured_at": now(), "messages": args.messages, **result}
    ]
    saved["machine"] = machine(server)
    path.write_text(json.dumps(saved, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
