"""A PyMongo command listener that notes the commands sent to one collection, for tests that prove
how many round trips, and which kind, a piece of code makes."""

from __future__ import annotations

from pymongo import monitoring


class CollectionCommands(monitoring.CommandListener):
    """The names of the commands sent to ``collection``, in order (``insert``, ``update``,
    ``findAndModify``, ``find``, …)."""

    def __init__(self, collection: str) -> None:
        self.collection = collection
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command.get(event.command_name) == self.collection:
            self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass
