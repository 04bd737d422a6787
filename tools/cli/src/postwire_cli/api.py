"""What the API commands (``send``, ``messages``) share: the key, the base URL, output and errors.

The key comes from ``--api-key``, else ``POSTWIRE_API_KEY``, else the demo test key that ``postwire dev``
wrote to ``.postwire/dev.json``; the base URL from ``--base-url``, else ``POSTWIRE_BASE_URL``, else that
file's gateway, else ``http://127.0.0.1:8080``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from postwire_client import Postwire, PostwireError
from postwire_client.errors import APIError

DEFAULT_BASE_URL = "http://127.0.0.1:8080"

Command = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """A problem with the command line or the configuration (exit code 2)."""


def add_connection_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api-key", help="default: $POSTWIRE_API_KEY, else the key in .postwire/dev.json")
    p.add_argument("--base-url", help=f"default: $POSTWIRE_BASE_URL, else .postwire/dev.json's gateway, "
                                      f"else {DEFAULT_BASE_URL}")
    p.add_argument("--state-dir", default=".postwire",
                   help="where `postwire dev` keeps dev.json (default: .postwire)")


def dev_info(args: argparse.Namespace) -> dict[str, Any]:
    """``dev.json`` of a local ``postwire dev``, or {} when there is none."""
    path = Path(args.state_dir) / "dev.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def connect(args: argparse.Namespace) -> Postwire:
    """A client configured from the arguments, the environment and ``dev.json``, in that order."""
    dev = dev_info(args)
    key = args.api_key or os.environ.get("POSTWIRE_API_KEY") or dev.get("api_key")
    if not key:
        raise UsageError("no API key: pass --api-key, set POSTWIRE_API_KEY, or run `postwire dev`")
    base_url = (args.base_url or os.environ.get("POSTWIRE_BASE_URL") or dev.get("gateway")
                or DEFAULT_BASE_URL)
    return Postwire(str(key), base_url=str(base_url))


def default_sender(args: argparse.Namespace) -> str | None:
    """The demo sender id of ``postwire dev``, used when no ``--sender-id`` is given."""
    value = dev_info(args).get("sender_id")
    return str(value) if value else None


def pairs(values: list[str] | None, option: str) -> dict[str, str]:
    """``["k=v", …]`` as a dict; a value without ``=`` is a usage error naming ``option``."""
    out: dict[str, str] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"{option} takes NAME=VALUE, got {item!r}")
        out[name] = value
    return out


def emit(value: Any) -> None:
    """``value`` (a Struct, list or dict) as indented JSON on stdout, camelCase as on the API."""
    sys.stdout.write(json.dumps(msgspec.to_builtins(value), indent=2, ensure_ascii=False) + "\n")


def describe(exc: PostwireError) -> str:
    if isinstance(exc, APIError):
        field = f" (field {exc.field})" if exc.field else ""
        return f"{exc.status_code} {exc.error}: {exc.message}{field}"
    return exc.message


def run(command: Command, args: argparse.Namespace) -> int:
    """Run an API command: its exit code; 1 with the error on stderr when the API refused; 2 for usage."""
    try:
        return command(args)
    except UsageError as exc:
        sys.stderr.write(f"postwire: {exc}\n")
        return 2
    except PostwireError as exc:
        sys.stderr.write(f"postwire: error: {describe(exc)}\n")
        return 1
