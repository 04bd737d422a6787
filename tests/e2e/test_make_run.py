"""As a new user would: a fresh copy of the repository, `make run`, the printed curl, Ctrl-C."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from postwire_testing.servers import rabbit_vhost
from postwire_testing.system import free_port_block

pytestmark = pytest.mark.e2e


def _fresh_copy(repo: Path, dest: Path) -> None:
    """Exactly the files a clone would have (tracked, plus new files git does not ignore)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=repo,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = repo / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def _wait_for_curl(proc: subprocess.Popen[str], timeout: float, seen: list[str]) -> str:
    """Read make's output (bounded) until the printed curl is complete; return it."""
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            seen.append(line)
            if line.startswith("  -d "):
                start = max(i for i, s in enumerate(seen) if s.startswith("curl "))
                return "".join(seen[start:])
        elif proc.poll() is not None:
            raise AssertionError("make run exited:\n" + "".join(seen))
        else:
            time.sleep(0.1)
    raise AssertionError("make run printed no curl in time:\n" + "".join(seen))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_fresh_clone_make_run_curl_delivers_then_sigterm_stops_everything(
    tmp_path: Path, repo_root: Path
) -> None:
    clone = tmp_path / "postwire"
    _fresh_copy(repo_root, clone)
    base, mongo = free_port_block(9), free_port_block(1)  # 8 HTTP ports and SMTP
    env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URL", "VIRTUAL_ENV")}
    seen: list[str] = []
    with rabbit_vhost(os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")) as amqp:
        env["AMQP_URL"] = amqp
        proc = subprocess.Popen(
            ["make", "run", f"RUN_ARGS=--base-port {base} --mongo-port {mongo}"], cwd=clone,
            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            curl = _wait_for_curl(proc, 300, seen)
            dev = json.loads((clone / ".postwire" / "dev.json").read_text())
            assert dev["api_key"].startswith("pw_test_") and dev["sender_id"] == "Postwire"
            assert dev["gateway"] == f"http://127.0.0.1:{base}"
            assert set(dev) >= {"gateway", "ingest", "api_key", "admin_key", "sender_id"}

            answer = subprocess.run(["bash", "-c", curl], capture_output=True, text=True,
                                    timeout=30, check=True).stdout
            message_id = json.loads(answer)["data"]["id"]
            auth = {"Authorization": f"Bearer {dev['api_key']}"}
            with httpx.Client(base_url=dev["gateway"], headers=auth, timeout=10) as client:
                deadline = time.monotonic() + 30
                while client.get(f"/v1/sms/{message_id}").json()["data"]["status"] != "DELIVERED":
                    assert time.monotonic() < deadline, "not DELIVERED within 30 s"
                    time.sleep(0.2)
                timeline = client.get(f"/v1/sms/{message_id}/timeline").json()["data"]
            assert [e["status"] for e in timeline] == ["QUEUED", "PROCESSING", "SENT", "DELIVERED"]
            assert [e["occurredAt"] for e in timeline] == sorted(e["occurredAt"] for e in timeline)
            assert timeline[2]["providerMessageId"] and timeline[3]["providerStatus"] == "DELIVRD"
            assert "stat:DELIVRD" in timeline[3]["raw"]

            ctl = [str(clone / ".venv" / "bin" / "supervisorctl"), "-c",
                   str(clone / ".postwire" / "supervisord.conf"), "pid", "all"]
            pids = [int(p) for p in subprocess.run(ctl, capture_output=True, text=True,
                                                   timeout=30).stdout.split()]
            assert len(pids) == 9  # seven services, the SMTP submission listener and SecantusDB
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=120)
    output = "".join(seen) + (proc.stdout.read() if proc.stdout else "")
    # make re-raises the SIGTERM it forwarded, so it reports -15; the launcher itself must have
    # stopped every service and exited cleanly.
    assert code in (0, -signal.SIGTERM), output
    assert "[postwire dev] stopped" in output, output
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)
