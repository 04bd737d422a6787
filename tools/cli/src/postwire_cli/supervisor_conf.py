"""The supervisord configuration ``postwire dev`` runs."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from .bootstrap import DEMO_TENANT

SERVICES: tuple[str, ...] = (
    "gateway", "provider-ingest", "email-dispatcher", "sms-dispatcher", "whatsapp-dispatcher",
    "webhook-fanout", "reporting", "smtp",
)
"""Programs ``postwire-<name>``; each serves /readyz on its HTTP port (``smtp``: the gateway's SMTP
submission listener, SMTP on ``smtp_port``)."""


def _env(values: dict[str, str]) -> str:
    def quote(v: str) -> str:
        # supervisord splits with a non-POSIX shlex: no backslash escapes, so a value holding double
        # quotes (SECRET_KEYS' JSON) goes in single quotes.
        v = v.replace("%", "%%")
        return f"'{v}'" if '"' in v and "'" not in v else '"' + v + '"'
    return ",".join(f"{k}={quote(v)}" for k, v in values.items())


def whatsapp_env(ports: dict[str, int], secrets: dict[str, str],
                 env: Mapping[str, str]) -> dict[str, str]:
    """The WhatsApp sandbox of ``make run``: the channel on, the sandbox's signed notifications to
    this provider-ingest, inbound messages on unknown numbers to the demo tenant. A value the operator
    exported (e.g. a real ``WHATSAPP_APP_SECRET``) wins; ``WHATSAPP_PHONE_NUMBER_ID`` and
    ``WHATSAPP_ACCESS_TOKEN`` reach the services from the environment as they are."""
    defaults = {
        "WHATSAPP_CLOUD_API_ENABLED": "true",
        "WHATSAPP_APP_SECRET": secrets["whatsapp_app_secret"],
        "WHATSAPP_VERIFY_TOKEN": secrets["whatsapp_verify_token"],
        "WHATSAPP_SANDBOX_WEBHOOK_URL":
            f"http://127.0.0.1:{ports['provider-ingest']}/v1/webhooks/whatsapp",
        "WHATSAPP_DEFAULT_TENANT_ID": DEMO_TENANT,
    }
    return {name: env.get(name) or value for name, value in defaults.items()}


def render(*, state: Path, bin_dir: Path, ports: dict[str, int], amqp_url: str, mongodb_url: str,
           mongo_port: int | None, secrets: dict[str, str], smtp_port: int = 2587,
           env: Mapping[str, str] | None = None) -> str:
    """supervisord.conf text: SecantusDB first (when embedded), then every service, all restarted."""
    logs = state / "logs"
    common = {
        "AMQP_URL": amqp_url, "MONGODB_URL": mongodb_url, "HTTP_HOST": "127.0.0.1",
        "SMS_DLR_TOKEN": secrets["sms_dlr_token"],
        "SMS_INBOUND_TOKEN": secrets.get("sms_inbound_token", secrets["sms_dlr_token"]),
        "SMS_PROVIDER_SECRET": secrets.get("sms_provider_secret", secrets["sms_dlr_token"]),
        "SECRET_KEYS": json.dumps([secrets["secret_key"]]),
        "SMS_DLR_CALLBACK_URL": f"http://127.0.0.1:{ports['provider-ingest']}/v1/webhooks/sms/dlr",
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "EMAIL_TRACKING_SECRET": secrets["email_tracking_secret"],
        "EMAIL_TRACKING_BASE_URL": f"http://127.0.0.1:{ports['provider-ingest']}",
        "EMAIL_FEEDBACK_SECRET": secrets["email_feedback_secret"],
        "EMAIL_FEEDBACK_URL": f"http://127.0.0.1:{ports['provider-ingest']}/v1/webhooks/email/feedback",
        **whatsapp_env(ports, secrets, os.environ if env is None else env),
    }
    out = [
        "[supervisord]", "nodaemon=true", f"logfile={logs / 'supervisord.log'}",
        f"pidfile={state / 'supervisord.pid'}", f"childlogdir={logs}", "loglevel=warn", "",
        "[unix_http_server]", f"file={state / 'supervisor.sock'}", "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
        "[supervisorctl]", f"serverurl=unix://{state / 'supervisor.sock'}", "",
    ]
    if mongo_port is not None:
        # --standalone: no replica-set persona, so no oplog entry per write (about a quarter of an
        # update's server CPU; docs/performance.md, change 21). Postwire needs neither transactions
        # nor change streams; production's MongoDB is a replica set and the code is the same.
        out += [
            "[program:mongodb]",
            f"command={bin_dir / 'secantusd-py'} --host 127.0.0.1 --port {mongo_port} "
            f"--storage-path {state / 'data' / 'mongodb'} --log-level WARNING --standalone",
            "priority=1", "autorestart=true", "startsecs=1", "startretries=100",
            "stopsignal=TERM", "stopwaitsecs=30", f"stdout_logfile={logs / 'mongodb.log'}",
            "redirect_stderr=true", "",
        ]
    for name in SERVICES:
        env = {**common, "HTTP_PORT": str(ports[name]), "SERVICE_NAME": name}
        if name == "smtp":
            env["SMTP_PORT"] = str(smtp_port)
        out += [
            f"[program:{name}]",
            f"command={bin_dir / ('postwire-' + name)}",
            f"environment={_env(env)}",
            "priority=10", "autorestart=true", "startsecs=1", "startretries=1000",
            "stopsignal=TERM", "stopwaitsecs=30", "stopasgroup=true", "killasgroup=true",
            f"stdout_logfile={logs / (name + '.log')}", "redirect_stderr=true",
            "stdout_logfile_maxbytes=20MB", "stdout_logfile_backups=2", "",
        ]
    return "\n".join(out)
