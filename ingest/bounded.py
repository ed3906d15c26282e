"""Bounded work per request: the item cap, large bodies parsed off the event loop, time slices.

Parsing is the one step whose cost an unauthenticated sender controls: Python's JSON parser
holds the GIL, and 1 MiB of tiny values (`[0,0,…]` or `[[[[0]]]],…`) costs it 15 to 100 ms, so
a thread would not help. Bodies up to `INLINE_PARSE_BYTES` are parsed on the loop (a few
ms at worst); larger ones go to one child process (forked from a forkserver with this
module loaded), which also applies the item cap and the first per-item check, and sends
back only the plausible items. The loops that remain over items yield every
`SLICE_SECONDS` (`Slicer`).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from core import defaults
from core.exceptions import Drop
from ingest.drops import DropTally
from ingest.notifications import canonical_item
from workers.validation import MAX_TOKENS

T = TypeVar("T")


@dataclass(frozen=True)
class Refused:
    """A body the receiver will not look into: the status and a short text for the answer."""

    status: int
    text: str


@dataclass
class Screened:
    """A parsed body: how many items it held, its tokens, the items that passed the first
    check (subscriptionId, canonical item) and the tally of those that did not."""

    received: int
    tokens: list[Any] | None
    candidates: list[tuple[str, dict[str, Any]]]
    drops: DropTally


def screen(body: bytes, max_items: int) -> Screened | Refused:
    """Parse a notification body and screen its items; pure, so it runs in either process."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return Refused(400, "body is not JSON")
    if not isinstance(doc, dict):
        return Refused(400, "body is not a JSON object")
    keys = {k.lower(): k for k in doc if isinstance(k, str)}
    value = doc.get(keys.get("value", "value"))
    if not isinstance(value, list):
        return Refused(400, "body has no 'value' array")
    if len(value) > max_items:
        return Refused(413, f"more than {max_items} items")
    tokens = doc.get(keys.get("validationtokens", "validationTokens"))
    drops = DropTally()
    candidates = []
    for raw in value:
        try:
            candidates.append(canonical_item(raw))
        except Drop as drop:
            drops.add(drop.reason, raw)
    # One more token than allowed is enough to refuse them; the rest need not travel back.
    kept = tokens[: MAX_TOKENS + 1] if isinstance(tokens, list) else None
    return Screened(len(value), kept, candidates, drops)


def _ready() -> bool:
    return True


class Parser:
    """Screens bodies: small ones inline, large ones in a child process started on demand."""

    def __init__(
        self,
        max_items: int = defaults.MAX_ITEMS_PER_REQUEST,
        inline_bytes: int = defaults.INLINE_PARSE_BYTES,
    ) -> None:
        self.max_items = max_items
        self.inline_bytes = inline_bytes
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # A forkserver child is a clean copy (no threads, no sockets of the receiver)
            # that starts in milliseconds once the server has imported this module.
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload([__name__])
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=ctx)
        return self._pool

    def warm(self) -> None:
        """Start the child now rather than on the first large body."""
        self._executor().submit(_ready)

    async def screen(self, body: bytes) -> Screened | Refused:
        if len(body) <= self.inline_bytes:
            return screen(body, self.max_items)
        return await self.run(screen, body, self.max_items)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in the child process."""
        loop = asyncio.get_running_loop()
        pool = self._executor()
        try:
            return await loop.run_in_executor(pool, fn, *args)
        except BrokenProcessPool:
            # A child that died (killed for memory, say) breaks the pool: start a new one for
            # the next body; this request fails (503, and Graph retries it).
            if self._pool is pool:
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
            raise

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)


class Slicer:
    """Time slices for loops over items: `if slicer.due(): await slicer.pause()` after each
    item yields to the event loop once `seconds` of work have passed since the last pause
    (a plain check, not a coroutine per item: the common batch is one item)."""

    def __init__(self, seconds: float = defaults.SLICE_SECONDS) -> None:
        self.seconds = seconds
        self._since = time.perf_counter()

    def due(self) -> bool:
        return time.perf_counter() - self._since >= self.seconds

    async def pause(self) -> None:
        await asyncio.sleep(0)
        self._since = time.perf_counter()
