"""Rendered pages of the public product list, kept per API process, never stale.

Every list request reads the catalogue's version (`catalog_version`: one cheap autocommit
statement; database triggers change it in the same transaction as any change to a product or
to a merchant's name or status, see the model `CatalogVersion`). A page rendered at that version
is served as it was rendered; otherwise the page is read and rendered here, in the API process
(the database does not scale out, API processes do), and kept for the next request.

Why a page can never be stale, across any number of processes: the version is read *before*
the page's rows, so the rows include every change committed up to that version (perhaps more,
which is harmless: newer, never older). Any later committed change makes the version read by a
later request differ, and pages of an older version are dropped. Versions only grow; a request
that read an older version than the cache holds renders its own page and does not keep it.

Concurrent requests share version reads (`VersionReader`), but only reads that *started after*
they arrived: a request arriving while a read is on its way waits for the next one. So each
request still sees every change committed before it arrived, with fewer statements under load.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.catalog import queries
from app.catalog.schemas import ProductListQuery

MAX_PAGES = 1024
MAX_BYTES = 32 * 1024 * 1024


class PageCache:
    """Rendered pages (response bodies) of one catalogue version, least recently used first
    out, at most `max_pages` pages and `max_bytes` bytes."""

    def __init__(self, max_pages: int = MAX_PAGES, max_bytes: int = MAX_BYTES) -> None:
        self.max_pages = max_pages
        self.max_bytes = max_bytes
        self.version: int = -1
        self._pages: OrderedDict[Hashable, bytes] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, version: int, key: Hashable) -> bytes | None:
        """The page rendered at `version` for `key`, or None. A newer version drops every page
        kept so far."""
        if version != self.version:
            if version > self.version:
                self._clear(version)
            self.misses += 1
            return None
        body = self._pages.get(key)
        if body is None:
            self.misses += 1
            return None
        self._pages.move_to_end(key)
        self.hits += 1
        return body

    def put(self, version: int, key: Hashable, body: bytes) -> None:
        """Keep `body`, rendered from rows read after `version` was read; only while `version`
        is still the newest one seen."""
        if version != self.version or len(body) > self.max_bytes:
            return
        old = self._pages.pop(key, None)
        if old is not None:
            self._bytes -= len(old)
        self._pages[key] = body
        self._bytes += len(body)
        while len(self._pages) > self.max_pages or self._bytes > self.max_bytes:
            _, dropped = self._pages.popitem(last=False)
            self._bytes -= len(dropped)

    def __len__(self) -> int:
        return len(self._pages)

    def _clear(self, version: int) -> None:
        self._pages.clear()
        self._bytes = 0
        self.version = version


_LEAD = object()


class VersionReader:
    """Reads of the catalogue version shared by concurrent requests, never reused across time:
    a request is answered by a read that started after it arrived. At most one read is on its
    way; requests arriving meanwhile wait, and the first of them then reads for all of them."""

    def __init__(self, read: Callable[[], Awaitable[int]]) -> None:
        self._read = read
        self._running = False
        self._waiting: list[asyncio.Future[Any]] = []
        self.reads = 0

    async def get(self) -> int:
        if self._running:
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._waiting.append(fut)
            try:
                outcome = await fut
            except asyncio.CancelledError:
                # Handed the lead just as it was cancelled: pass the lead on, or nobody reads.
                if fut.done() and not fut.cancelled() and fut.result() is _LEAD:
                    self._hand_over()
                raise
            if outcome is not _LEAD:
                return int(outcome)
        else:
            self._running = True
        # Everyone waiting now arrived before this read starts: it answers them too.
        batch, self._waiting = self._waiting, []
        try:
            self.reads += 1
            value = await self._read()
        except BaseException as exc:
            for f in batch:
                if not f.done():
                    f.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
            self._hand_over()
            raise
        for f in batch:
            if not f.done():
                f.set_result(value)
        self._hand_over()
        return value

    def _hand_over(self) -> None:
        while self._waiting:
            fut = self._waiting.pop(0)
            if not fut.done():
                fut.set_result(_LEAD)
                return
        self._running = False


class CatalogPages:
    """The public list of one process: its version reader and its kept pages, on `engine`
    (the read replica when there is one)."""

    def __init__(self, engine: AsyncEngine, cache: PageCache | None = None) -> None:
        self.engine = engine
        self.cache = cache or PageCache()
        self.items = queries.ItemCache()
        self._rendering: dict[Hashable, asyncio.Future[bytes]] = {}
        self.versions = VersionReader(self._read_version)

    async def _read_version(self) -> int:
        async with self.engine.connect() as conn:
            return await queries.catalog_version(conn)

    async def page(self, query: ProductListQuery) -> bytes:
        """The response body of `GET /products` for `query`, never stale (see the module)."""
        params, shape = queries.list_params(query)  # a bad cursor is a 400 before any read
        key = (shape, tuple(params.items()))
        version = await self.versions.get()
        body = self.cache.get(version, key)
        if body is not None:
            return body
        # One rendering per (version, page) at a time: the requests that read the same version
        # while it is being rendered take its result (it reflects every change counted in that
        # version, which is all they need), instead of all rendering it at once.
        flight = (version, key)
        pending = self._rendering.get(flight)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this request was cancelled
                # the rendering request went away: render it here
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._rendering[flight] = fut
        try:
            async with self.engine.connect() as conn:
                body = await queries.render_page(conn, query, params, shape, self.items)
        except BaseException as exc:
            if isinstance(exc, Exception):
                fut.set_exception(exc)
                fut.exception()  # retrieved: no "never retrieved" warning without waiters
            else:
                fut.cancel()
            raise
        finally:
            if self._rendering.get(flight) is fut:
                del self._rendering[flight]
        fut.set_result(body)
        self.cache.put(version, key, body)
        return body
