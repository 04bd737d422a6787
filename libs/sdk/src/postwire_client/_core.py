"""The request/response layer shared by the sync and the async client.

Each API operation is written once, as a function that turns its arguments into a :class:`Call`: the
method, path, query, encoded body, idempotency key and how to decode the answer. A resource class lists
its operations as :class:`Endpoint` (or :class:`Paginated`) descriptors; reached through a sync resource
an operation returns its result, through an async one an awaitable of it (the descriptor's overloads tell
the type checker so, keeping each operation's exact signature). Only the loop that sends a call and
retries it exists twice, in ``_client.py``.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload
from urllib.parse import quote

import msgspec

from .errors import ResponseDecodeError
from .models import Envelope, Page
from .retries import IDEMPOTENT_METHODS

if TYPE_CHECKING:
    from ._transport import AsyncTransport, SyncTransport

P = ParamSpec("P")
T = TypeVar("T")
M = TypeVar("M")

QueryValue = str | int | float | bool | date | None


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request, ready to be sent (and re-sent, unchanged, on a retry)."""

    method: str
    path: str
    decode: Callable[[bytes], T]
    params: Mapping[str, str] | None = None
    content: bytes | None = None
    idempotency_key: str | None = None

    @property
    def replayable(self) -> bool:
        """True when sending it twice has the effect of sending it once."""
        return self.method in IDEMPOTENT_METHODS or self.idempotency_key is not None

    def with_param(self, name: str, value: str) -> Call[T]:
        return replace(self, params={**(self.params or {}), name: value})


_encoder = msgspec.json.Encoder()


def body(value: Any, extra: Mapping[str, Any] | None = None) -> bytes:
    """A JSON request body from a Struct or a mapping, with ``extra`` fields merged in."""
    if extra:
        value = {**msgspec.to_builtins(value), **extra}
    return _encoder.encode(value)


def query(**values: QueryValue) -> dict[str, str]:
    """Query parameters without the ``None`` ones; datetimes as ISO 8601 UTC, dates as ``YYYY-MM-DD``,
    booleans lower-case."""
    out: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, datetime):
            out[name] = iso(value)
        else:
            out[name] = str(value)
    return out


def iso(value: datetime) -> str:
    """``value`` as ISO 8601 in UTC with a ``Z``; a naive datetime is taken to be UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def new_idempotency_key() -> str:
    """A fresh key for one logical send; its retries reuse it."""
    return str(uuid.uuid4())


def segment(value: str) -> str:
    """A path segment, percent-encoded (ids come from callers)."""
    if not value:
        raise ValueError("an id must not be empty")
    return quote(value, safe="")


@functools.cache
def _decoder(kind: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(kind)


def _decode(kind: Any, content: bytes) -> Any:
    try:
        return _decoder(kind).decode(content)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ResponseDecodeError(f"unexpected answer from Postwire: {exc}") from exc


def data_of(kind: type[T]) -> Callable[[bytes], T]:
    """Decode ``{"success": true, "data": <kind>}`` into the ``data``."""

    def decode(content: bytes) -> T:
        envelope: Envelope[T] = _decode(Envelope[kind], content)  # type: ignore[valid-type]
        return envelope.data

    return decode


def data_list_of(kind: type[T]) -> Callable[[bytes], list[T]]:
    """Decode ``{"success": true, "data": [<kind>, …]}`` into the list."""

    def decode(content: bytes) -> list[T]:
        envelope: Envelope[list[T]] = _decode(Envelope[list[kind]], content)  # type: ignore[valid-type]
        return envelope.data

    return decode


def page_of(kind: type[T]) -> Callable[[bytes], Page[T]]:
    """Decode a list answer ``{"data": […], "pagination": {…}}``."""

    def decode(content: bytes) -> Page[T]:
        page: Page[T] = _decode(Page[kind], content)  # type: ignore[valid-type]
        return page

    return decode


def nothing(content: bytes) -> None:
    """For 204 answers."""
    return None


class SyncResource:
    """A group of operations bound to a sync client: calling one sends it and returns the result."""

    def __init__(self, transport: SyncTransport) -> None:
        self._transport = transport

    def _paginate(self, call: Call[Page[T]]) -> Iterator[T]:
        return iterate_pages(self._transport.request, call)


class AsyncResource:
    """A group of operations bound to an async client: calling one returns an awaitable."""

    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    def _paginate(self, call: Call[Page[T]]) -> AsyncIterator[T]:
        return aiterate_pages(self._transport.request, call)


class Endpoint(Generic[P, T]):
    """An operation: its arguments build a :class:`Call`; the resource it is read from sends it."""

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, obj: None, owner: type) -> Endpoint[P, T]: ...
    @overload
    def __get__(self, obj: SyncResource, owner: type) -> Callable[P, T]: ...
    @overload
    def __get__(self, obj: AsyncResource, owner: type) -> Callable[P, Awaitable[T]]: ...

    def __get__(self, obj: Any, owner: type) -> Any:
        if obj is None:
            return self
        transport = obj._transport
        build = self.build

        @functools.wraps(build)
        def bound(*args: Any, **kwargs: Any) -> Any:
            return transport.request(build(*args, **kwargs))

        return bound


class Paginated(Generic[P, T]):
    """An iterator over every item of a paged list, fetching one page at a time as it goes."""

    def __init__(self, build: Callable[P, Call[Page[T]]]) -> None:
        self.build = build

    @overload
    def __get__(self, obj: None, owner: type) -> Paginated[P, T]: ...
    @overload
    def __get__(self, obj: SyncResource, owner: type) -> Callable[P, Iterator[T]]: ...
    @overload
    def __get__(self, obj: AsyncResource, owner: type) -> Callable[P, AsyncIterator[T]]: ...

    def __get__(self, obj: Any, owner: type) -> Any:
        if obj is None:
            return self
        build = self.build

        def iterate(*args: Any, **kwargs: Any) -> Any:
            return obj._paginate(build(*args, **kwargs))

        iterate.__doc__ = f"Every item that the list operation ``{build.__name__}`` would page through."
        return iterate


def _item_key(item: Any) -> Any:
    return getattr(item, "id", None)


def iterate_pages(request: Callable[[Call[Page[T]]], Page[T]], call: Call[Page[T]]) -> Iterator[T]:
    """Items of page 1, 2, … while ``hasNext``. Lists are newest first, so an item accepted meanwhile
    shifts older ones to the next page; an id already yielded is skipped rather than repeated."""
    seen: set[Any] = set()
    page_number = int((call.params or {}).get("page", "1"))
    while True:
        page = request(call.with_param("page", str(page_number)))
        for item in page.data:
            key = _item_key(item)
            if key is not None:
                if key in seen:
                    continue
                seen.add(key)
            yield item
        if not page.pagination.has_next or not page.data:
            return
        page_number += 1


async def aiterate_pages(request: Callable[[Call[Page[T]]], Awaitable[Page[T]]],
                         call: Call[Page[T]]) -> AsyncIterator[T]:
    """The async twin of :func:`iterate_pages`."""
    seen: set[Any] = set()
    page_number = int((call.params or {}).get("page", "1"))
    while True:
        page = await request(call.with_param("page", str(page_number)))
        for item in page.data:
            key = _item_key(item)
            if key is not None:
                if key in seen:
                    continue
                seen.add(key)
            yield item
        if not page.pagination.has_next or not page.data:
            return
        page_number += 1
