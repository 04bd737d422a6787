"""``postwire dev``: the whole system on one machine, supervised, with a demo tenant.

supervisord (not a hand-written supervisor) starts SecantusDB when ``MONGODB_URL`` is unset, then the
seven services, and restarts any that dies, as compose's restart policy or Kubernetes would. It runs in
its own session so a Ctrl-C reaches only this launcher, which then stops supervisord, which stops the
services gracefully (SIGTERM: in-flight messages finish or go back to their queue).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import httpx

from . import bootstrap
from .supervisor_conf import SERVICES, render

AMQP_DEFAULT = "amqp://guest:guest@127.0.0.1:5672/"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-dir", default=".postwire", help="config, logs, data, dev.json")
    p.add_argument("--base-port", type=int, default=8080,
                   help="gateway port; the other services take the next seven")
    p.add_argument("--smtp-port", type=int, default=0,
                   help="SMTP submission port (default: the port after the services' ports)")
    p.add_argument("--mongo-port", type=int, default=27027, help="embedded SecantusDB port")
    p.add_argument("--ready-timeout", type=float, default=120.0)


def _say(text: str) -> None:
    sys.stderr.write(f"[postwire dev] {text}\n")
    sys.stderr.flush()


def check_rabbitmq(url: str) -> str | None:
    """None when an AMQP connection opens, else the reason."""
    import aio_pika

    async def probe() -> None:
        connection = await aio_pika.connect(url, timeout=5)
        await connection.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # any failure is reported to the user verbatim
        return f"{type(exc).__name__}: {exc}"
    return None


def wait_ready(ports: dict[str, int], supervisord: subprocess.Popen[bytes], timeout: float,
               logs: Path) -> None:
    pending = dict(ports)
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while pending:
            if supervisord.poll() is not None:
                raise RuntimeError("supervisord exited during start-up; see " + str(logs))
            for name, port in list(pending.items()):
                try:
                    if client.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                        del pending[name]
                except httpx.HTTPError:
                    pass
            if pending and time.monotonic() > deadline:
                tails = "\n".join(_tail(logs / f"{n}.log") for n in pending)
                raise RuntimeError(f"not ready after {timeout:.0f}s: {', '.join(pending)}\n{tails}")
            time.sleep(0.25)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"--- {path.name}: no log"
    return f"--- {path.name}\n" + "\n".join(text)


def run(args: argparse.Namespace) -> int:
    state = Path(args.state_dir).resolve()
    for sub in ("logs", "data/mongodb"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    amqp_url = os.environ.get("AMQP_URL", AMQP_DEFAULT)
    problem = check_rabbitmq(amqp_url)
    if problem:
        _say(f"cannot connect to RabbitMQ at {amqp_url} (set AMQP_URL): {problem}")
        _say("start a local one with `rabbitmq-server -detached`, then run `make run` again")
        return 1
    embedded_mongo = not os.environ.get("MONGODB_URL")
    mongodb_url = os.environ.get("MONGODB_URL") or (
        f"mongodb://127.0.0.1:{args.mongo_port}/?retryWrites=false")
    secrets = bootstrap.load_secrets(state)
    ports = {name: args.base_port + i for i, name in enumerate(SERVICES)}
    smtp_port = args.smtp_port or args.base_port + len(SERVICES)
    conf = state / "supervisord.conf"
    conf.write_text(render(state=state, bin_dir=Path(sys.executable).parent, ports=ports,
                           amqp_url=amqp_url, mongodb_url=mongodb_url,
                           mongo_port=args.mongo_port if embedded_mongo else None,
                           secrets=secrets, smtp_port=smtp_port))
    _say(f"starting supervisord ({conf}); logs in {state / 'logs'}")
    supervisord = subprocess.Popen(
        [str(Path(sys.executable).with_name("supervisord")), "-c", str(conf)],
        start_new_session=True,
    )
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            _say(f"got {signal.Signals(signum).name}: stopping every service")
            if supervisord.poll() is None:
                supervisord.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        wait_ready(ports, supervisord, args.ready_timeout, state / "logs")
        if stopping:
            return _finish(supervisord)
        info = asyncio.run(bootstrap.demo(mongodb_url, state, ports, smtp_port))
    except Exception as exc:  # report, then stop what we started
        _say(f"start-up failed: {exc}")
        stop(signal.SIGTERM, None)
        _finish(supervisord)
        return 1
    _say("ready. Send an SMS with the demo test key:")
    sys.stdout.write(bootstrap.curl_example(info) + "\n")
    sys.stdout.flush()
    _say(f"demo keys written to {state / 'dev.json'}; Ctrl-C stops everything")
    return _finish(supervisord)


def _finish(supervisord: subprocess.Popen[bytes]) -> int:
    while True:
        try:
            code = supervisord.wait()
            break
        except KeyboardInterrupt:
            continue
    _say("stopped")
    return 0 if code in (0, -signal.SIGTERM) else code
