"""A PyMongo command listener that notes the commands sent to one collection, for tests that prove
how many round trips, and which kind, a piece of code makes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.collection import AsyncCollection


class CollectionCommands(monitoring.CommandListener):
    """The commands sent to ``collection``, in order: ``names`` (``insert``, ``update``,
    ``findAndModify``, ``find``, …) and, beside each, the command itself (``commands``)."""

    def __init__(self, collection: str) -> None:
        self.collection = collection
        self.names: list[str] = []
        self.commands: list[Mapping[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command.get(event.command_name) == self.collection:
            self.names.append(event.command_name)
            self.commands.append(event.command)

    def clear(self) -> None:
        self.names.clear()
        self.commands.clear()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@contextlib.asynccontextmanager
async def watched(mongodb_url: str, database: str, collection: str
                  ) -> AsyncIterator[tuple[AsyncCollection[dict[str, Any]], CollectionCommands]]:
    """``collection`` of ``database`` on a client of its own whose commands to it are noted."""
    commands = CollectionCommands(collection)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True,
                                                                event_listeners=[commands])
    try:
        yield client[database][collection], commands
    finally:
        await client.close()
