"""The supervisord configuration ``postwire dev`` runs."""

from __future__ import annotations

from pathlib import Path

SERVICES: tuple[str, ...] = (
    "gateway", "provider-ingest", "email-dispatcher", "sms-dispatcher", "whatsapp-dispatcher",
    "webhook-fanout", "reporting",
)


def _env(values: dict[str, str]) -> str:
    def quote(v: str) -> str:
        return '"' + v.replace("%", "%%").replace('"', '\\"') + '"'
    return ",".join(f"{k}={quote(v)}" for k, v in values.items())


def render(*, state: Path, bin_dir: Path, ports: dict[str, int], amqp_url: str, mongodb_url: str,
           mongo_port: int | None, secrets: dict[str, str]) -> str:
    """supervisord.conf text: SecantusDB first (when embedded), then every service, all restarted."""
    logs = state / "logs"
    common = {
        "AMQP_URL": amqp_url, "MONGODB_URL": mongodb_url, "HTTP_HOST": "127.0.0.1",
        "SMS_DLR_TOKEN": secrets["sms_dlr_token"],
        "SMS_DLR_CALLBACK_URL": f"http://127.0.0.1:{ports['provider-ingest']}/v1/webhooks/sms/dlr",
        "WEBHOOK_ALLOW_PRIVATE": "true",
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
        out += [
            "[program:mongodb]",
            f"command={bin_dir / 'secantusd-py'} --host 127.0.0.1 --port {mongo_port} "
            f"--storage-path {state / 'data' / 'mongodb'} --log-level WARNING",
            "priority=1", "autorestart=true", "startsecs=1", "startretries=100",
            "stopsignal=TERM", "stopwaitsecs=30", f"stdout_logfile={logs / 'mongodb.log'}",
            "redirect_stderr=true", "",
        ]
    for name in SERVICES:
        env = {**common, "HTTP_PORT": str(ports[name]), "SERVICE_NAME": name}
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
