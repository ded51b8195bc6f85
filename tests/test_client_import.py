"""The landlord client is a deploy unit of its own: it imports without Flask, gunicorn or psycopg_pool.

A subprocess installs a meta-path finder that refuses those packages (as if they were not
installed), imports app.client and uses it without a network.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BLOCKED = ("flask", "werkzeug", "gunicorn", "psycopg_pool", "psycopg", "prometheus_client")

PROGRAM = textwrap.dedent(
    """
    import importlib.abc
    import sys

    BLOCKED = set(sys.argv[1].split(","))


    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: the landlord client must not import it")
            return None


    sys.meta_path.insert(0, Refuse())

    import asyncio

    import jwt

    import app.client
    from app.client import AsyncLandlordClient, LandlordClient, MessageEvent, WindowClosed, error_class, parse_event

    uid = "00000000-0000-4000-a000-00000000a11c"
    token = jwt.encode({"sub": uid, "role": "authenticated"}, "x" * 32)
    with LandlordClient("http://127.0.0.1:9", "anon-key", token) as client:  # nothing is sent
        assert client.realtime_topic == "landlord:" + uid, client.realtime_topic


    async def live() -> str:
        async with await AsyncLandlordClient.create("http://127.0.0.1:9", "anon-key", token) as client:
            return client.channel().topic  # nothing is sent before subscribe()


    assert asyncio.run(live()) == "landlord:" + uid
    event = parse_event("resolved", {"id": uid, "routing_status": "delivered"})
    assert type(event).__name__ == "ResolvedEvent" and not isinstance(event, MessageEvent)
    assert error_class("55000", "window_closed") is WindowClosed
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not loaded, loaded
    print("ok")
    """
)


def test_client_imports_without_the_service_dependencies() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM, ",".join(BLOCKED)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_the_blocker_really_blocks() -> None:
    """The same program fails when it imports the service: the finder is not a no-op."""
    program = PROGRAM.replace("import app.client\n", "import app.client\nimport app.service\n", 1)
    proc = subprocess.run(
        [sys.executable, "-c", program, ",".join(BLOCKED)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "flask is blocked" in proc.stderr
