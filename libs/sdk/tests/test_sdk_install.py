"""The client installs on its own, as a customer installs it: no other postwire package comes with it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def test_the_client_installs_and_works_alone(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run([uv, "sync", "--frozen", "--no-dev", "--no-editable", "--quiet", "--package",
                    "postwire-client"], cwd=REPO, env=env, check=True, timeout=300)
    probe = (
        "import importlib.util as u, postwire_client as p\n"
        "others = [m for m in ('postwire_platform', 'postwire_contracts', 'postwire_gateway',"
        " 'postwire_testing', 'litestar', 'pymongo') if u.find_spec(m)]\n"
        "assert not others, others\n"
        "hook = p.Webhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')\n"
        "assert hook.sign('msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{\"test\": 2432232314}')"
        " == 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='\n"
        "with p.Postwire('pw_test_x', base_url='http://127.0.0.1:9') as c: assert c.sms\n"
    )
    subprocess.run([str(venv / "bin" / "python"), "-c", probe], check=True, timeout=120)
