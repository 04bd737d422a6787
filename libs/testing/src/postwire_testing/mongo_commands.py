"""A PyMongo command listener that notes the commands sent to one collection, for tests that prove
how many round trips, and which kind, a piece of code makes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo import monitoring


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
