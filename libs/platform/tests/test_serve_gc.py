"""A service started by ``serve`` leaves its startup objects out of later garbage collections
(``gc.freeze`` once the app has started): a real uvicorn process on a free port, asked over HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx

APP = """
import gc, sys
from litestar import Litestar, get
from postwire_platform.service import serve
from postwire_platform.settings import CommonSettings

seen = {}

async def before_freeze() -> None:
    seen["frozen_before"] = gc.get_freeze_count()

@get("/frozen")
async def frozen() -> dict[str, int]:
    return {"before": seen["frozen_before"], "now": gc.get_freeze_count()}

app = Litestar(route_handlers=[frozen], on_startup=[before_freeze])
serve(app, CommonSettings(http_port=int(sys.argv[1]), log_json=False, service_name="gc-test"))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_objects_made_to_start_are_frozen_once_the_app_has_started() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", APP, str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/frozen", timeout=2).json()
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "the service did not start"
                time.sleep(0.1)
        assert answer["before"] == 0  # the app's own startup ran before the freeze
        assert answer["now"] > 10_000  # modules, the app and its objects
    finally:
        proc.terminate()
        proc.wait(10)
