"""``postwire send sms --csv FILE``: bulk SMS through the batch endpoint, up to 1,000 rows a request.

Columns (a header row is required): ``to``, ``body``, ``senderId`` (else ``--sender-id``), ``flow``,
``externalId`` and ``metadata.<name>``; snake_case spellings work too. The server validates every row;
the summary lists each refused row with its line number and reason, and the exit code is 1 when any row
was refused. With ``--idempotency-key K`` the n-th batch carries ``K:n``, so running the same file again
after an interruption resends nothing that was already accepted.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from postwire_client import PostwireError

from .api import UsageError, connect, default_sender, describe

MAX_BATCH = 1000
COLUMNS = {"to": "to", "body": "body", "senderid": "senderId", "sender_id": "senderId",
           "flow": "flow", "externalid": "externalId", "external_id": "externalId"}


@dataclass(frozen=True)
class Row:
    line: int
    item: dict[str, Any]


@dataclass(frozen=True)
class Reject:
    line: int
    to: str
    error: str
    message: str
    field: str | None


@dataclass
class Summary:
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    rejects: list[Reject] = field(default_factory=list)
    stopped_at_line: int | None = None
    error: str | None = None


def _columns(path: Path, names: list[str] | None) -> dict[str, str]:
    """Header cell → request field (``metadata.x`` → ``metadata.x``); unknown columns are ignored."""
    if not names:
        raise UsageError(f"{path}: no header row (columns to, body, senderId, …)")
    mapping: dict[str, str] = {}
    ignored: list[str] = []
    for name in names:
        key = (name or "").strip()
        if key.lower().startswith("metadata.") and len(key) > len("metadata."):
            mapping[name] = "metadata." + key[len("metadata."):]
        elif key.lower() in COLUMNS:
            mapping[name] = COLUMNS[key.lower()]
        else:
            ignored.append(key)
    missing = {"to", "body"} - set(mapping.values())
    if missing:
        raise UsageError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    if ignored:
        sys.stderr.write(f"postwire: ignoring column(s) {', '.join(ignored)}\n")
    return mapping


def read_rows(path: Path, sender: str | None) -> Iterator[Row]:
    """The file's rows as batch items (empty cells left out, so the server's defaults apply)."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        mapping = _columns(path, list(reader.fieldnames or []))
        for record in reader:
            item: dict[str, Any] = {}
            for column, target in mapping.items():
                value = (record.get(column) or "").strip()
                if not value:
                    continue
                if target.startswith("metadata."):
                    item.setdefault("metadata", {})[target[len("metadata."):]] = value
                else:
                    item[target] = value
            if not item:
                continue  # a blank line
            if sender and "senderId" not in item:
                item["senderId"] = sender
            yield Row(reader.line_num, item)


def _count(path: Path, sender: str | None) -> int:
    return sum(1 for _ in read_rows(path, sender))


def _chunks(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def send_csv(args: argparse.Namespace) -> int:
    """Send every row; print the summary; 0 only when every row was accepted."""
    if not 1 <= args.batch_size <= MAX_BATCH:
        raise UsageError(f"--batch-size must be 1 to {MAX_BATCH}")
    sender = args.sender_id or default_sender(args)
    path: Path = args.csv
    total = _count(path, sender)
    summary = Summary(rows=total)
    if total == 0:
        raise UsageError(f"{path}: no rows to send")
    console = Console(stderr=True)
    with connect(args) as client, Progress(TextColumn("[progress.description]{task.description}"),
                                           BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                           console=console, transient=False) as progress:
        task = progress.add_task("Sending SMS", total=total)
        for number, chunk in enumerate(_chunks(read_rows(path, sender), args.batch_size)):
            key = f"{args.idempotency_key}:{number}" if args.idempotency_key else None
            try:
                result = client.sms.batch([row.item for row in chunk], idempotency_key=key)
            except PostwireError as exc:
                summary.stopped_at_line = chunk[0].line
                summary.error = describe(exc)
                break
            summary.accepted += result.accepted
            summary.rejected += result.rejected
            for outcome in result.results:
                if not outcome.success:
                    row = chunk[outcome.index]
                    summary.rejects.append(Reject(
                        line=row.line, to=str(row.item.get("to", "")), error=outcome.error or "error",
                        message=outcome.message or "", field=outcome.field))
            progress.advance(task, len(chunk))
    _report(summary, as_json=args.json)
    return 0 if summary.rejected == 0 and summary.error is None else 1


def _report(summary: Summary, *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(asdict(summary), indent=2) + "\n")
        return
    out = [f"accepted {summary.accepted}, rejected {summary.rejected} of {summary.rows} rows"]
    if summary.rejects:
        out.append("rejected rows:")
        for r in summary.rejects:
            where = f" (field {r.field})" if r.field else ""
            out.append(f"  line {r.line}: to={r.to or '-'}: {r.error}: {r.message}{where}")
    if summary.error is not None:
        unsent = summary.rows - summary.accepted - summary.rejected
        out.append(f"stopped at line {summary.stopped_at_line} ({unsent} rows not sent): {summary.error}")
    sys.stdout.write("\n".join(out) + "\n")
