"""Run a provider call and the record of its answer as one step the consumer cannot cut in half.

A consumer's handler is cancelled when its RabbitMQ channel closes (a broker restart, a lost
connection). If that happens while a provider call is in flight, the call may still succeed, but the
handler never records the answer; the redelivered command then finds the call marked as started and,
to stay at most once, gives the message up as ``outcome_unknown``. ``run_to_completion`` runs the
step as its own task and shields it: the caller may be cancelled, the step goes on and records what
the provider said, and the redelivery finds the outcome (or, while the step still runs, a claim that
is held). ``finish_detached`` lets a stopping service wait for such steps before it closes its clients.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

_running: set[asyncio.Task[Any]] = set()


async def run_to_completion(step: Coroutine[Any, Any, T], *, name: str | None = None) -> T:
    """Await ``step`` like a plain ``await``, except that cancelling the caller does not cancel it."""
    task: asyncio.Task[T] = asyncio.get_running_loop().create_task(step, name=name)
    _running.add(task)
    task.add_done_callback(_running.discard)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            log.warning("handler cancelled during %s; letting it finish", task.get_name())
            task.add_done_callback(_report_detached)
        raise


def _report_detached(task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        log.error("%s was cancelled after its caller", task.get_name())
        return
    error = task.exception()  # nobody awaits it any more: retrieve it here
    if error is not None:
        log.warning("%s, finished after its caller was cancelled, failed: %r", task.get_name(),
                    error, exc_info=error)


def detached_count() -> int:
    """How many shielded steps are still running (their callers may be gone)."""
    return len(_running)


async def finish_detached(timeout: float) -> None:
    """Wait up to ``timeout`` seconds for every running step (called while a service stops)."""
    pending = set(_running)
    if not pending:
        return
    log.info("waiting for %d provider call(s) in flight", len(pending))
    _, left = await asyncio.wait(pending, timeout=timeout)
    if left:
        log.error("%d provider call(s) still in flight after %.0fs; exiting anyway", len(left),
                  timeout)
