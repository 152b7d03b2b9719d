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
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

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
