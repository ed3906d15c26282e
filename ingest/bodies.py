"""Request bodies read under a deadline and a byte budget; memory handed back after a flood.

A sender controls how fast its body arrives. Without bounds, 400 connections that each send
most of a 1 MiB body and then stall hold 400 MiB of buffers for as long as they like, and
the allocator keeps the pages after they close (measured: 118 MB grew to 630 MB and stayed).
So each body:

- reserves its size (its Content-Length; the size limit when it has none or is compressed)
  from one budget shared by all requests before a byte is read (a body alone is always let
  in); past the budget the answer is `503` with `Retry-After` and the connection is closed:
  "a non-2xx or a timeout triggers retries with exponential backoff for up to 4 h"
  (reference/graph.md);
- must arrive whole within `timeout` seconds (Graph sends a body at once): a stalled one
  gets its connection closed, without an answer (DESIGN §3.2 lists every status a
  notification may get, and a sender that stalls reads none), not left to linger;
- that cannot be decoded (a `Content-Encoding` the bytes do not match) is a `400`; a
  client that drops mid-body gets nothing. Both log one INFO line, never an ERROR.

Once no body is in flight after many bytes were read, `malloc_trim` gives the freed pages
back to the system, so the receiver's memory returns to its baseline after a flood.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import sys
import time
from dataclasses import dataclass

import structlog
from aiohttp import web

from core import defaults

log = structlog.get_logger("ingest.receiver")

TRIM_AFTER_BYTES = 8 * 1024 * 1024  # read since the last trim before one is worth it
TRIM_INTERVAL_SECONDS = 1.0  # at most one trim this often (it walks the heap: ~1 ms)


@dataclass(frozen=True)
class Unread:
    """A body that was not read: the status and text of the answer (status 0: the client
    went away, nothing to answer)."""

    status: int
    text: str


def _libc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    if not sys.platform.startswith("linux"):
        return None
    with contextlib.suppress(OSError, AttributeError, TypeError):
        return ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    return None  # not glibc (musl has no malloc_trim): nothing to hand back


class BodyGate:
    """Reads bodies: the budget, the deadline, and the trim after a flood."""

    def __init__(
        self,
        budget_bytes: int = defaults.BODY_BUDGET_BYTES,
        timeout: float = defaults.BODY_TIMEOUT_SECONDS,
    ) -> None:
        self.budget_bytes = budget_bytes
        self.timeout = timeout
        self.in_flight = 0  # bytes reserved by bodies being read
        self._since_trim = 0
        self._last_trim = 0.0
        self._trim = _libc_trim()
        self._trim_later: asyncio.TimerHandle | None = None
        self.trims = 0

    async def read(self, request: web.Request, limit: int) -> bytes | Unread:
        """The whole body (at most `limit` bytes), or why there is none."""
        # A compressed body may grow to the limit as it is decoded: it reserves the limit.
        encoded = request.headers.get("Content-Encoding", "identity").lower() != "identity"
        length = request.content_length
        want = limit if encoded or length is None else length
        # One body is always let in, even one over the budget (INGEST_MAX_BODY_BYTES may be).
        if self.in_flight and self.in_flight + want > self.budget_bytes:
            log.info("body_refused", reason="body budget full", in_flight=self.in_flight)
            return Unread(503, "too many bodies in flight; retry later")
        if (
            not encoded
            and length is not None
            and length <= limit
            and (request.content.total_bytes >= length)
        ):
            # Already here whole (a small body arrives with its headers): nothing to wait for,
            # so no deadline to arm; the common case, kept cheap (measured: the deadline cost
            # 12 % of the single-item rate).
            body = await request.content.readexactly(length) if length else b""
            self._since_trim += length
            return body
        self.in_flight += want
        try:
            async with asyncio.timeout(self.timeout):
                return await self._chunks(request, limit)
        except TimeoutError:
            log.info("body_timeout", seconds=self.timeout)
            return Unread(0, f"body not received within {self.timeout:g} s")
        except web.RequestPayloadError as exc:  # aiohttp's wrapper of a decoding error
            log.info("body_undecodable", encoding=request.headers.get("Content-Encoding", ""),
                     error=str(exc.__cause__ or exc)[:200])  # fmt: skip
            return Unread(400, "body does not match its Content-Encoding")
        except ConnectionError:
            log.info("body_aborted", reason="the client closed the connection mid-body")
            return Unread(0, "")
        except asyncio.CancelledError:
            # aiohttp cancels the handler of a connection that was lost; any other
            # cancellation (a shutdown) is not this request's doing and logs nothing here.
            if request.protocol.transport is None:
                log.info("body_aborted", reason="the client closed the connection mid-body")
            raise
        finally:
            self.in_flight -= want
            self._since_trim += want
            self._maybe_trim()

    async def _chunks(self, request: web.Request, limit: int) -> bytes | Unread:
        body = bytearray()
        while chunk := await request.content.readany():
            body += chunk
            if len(body) > limit:
                return Unread(413, f"body over {limit} bytes")
        return bytes(body)

    def _maybe_trim(self) -> None:
        """After a flood (no body in flight, many bytes read since), hand freed pages back."""
        if self._trim is None or self.in_flight or self._since_trim < TRIM_AFTER_BYTES:
            return
        now = time.monotonic()
        wait = self._last_trim + TRIM_INTERVAL_SECONDS - now
        if wait > 0:  # trimmed a moment ago: once more when the interval is over
            if self._trim_later is None:
                self._trim_later = asyncio.get_running_loop().call_later(wait, self._trim_due)
            return
        self._last_trim, self._since_trim = now, 0
        self._trim(0)
        self.trims += 1

    def _trim_due(self) -> None:
        self._trim_later = None
        self._maybe_trim()


async def answer_and_close(request: web.Request, unread: Unread) -> web.StreamResponse:
    """Answer a body that was not read whole, then close the connection at once: aiohttp
    would otherwise read and discard the rest for up to ten seconds ("lingering")."""
    resp = web.Response(status=unread.status or 400, text=unread.text, content_type="text/plain")
    if unread.status == 503:
        resp.headers["Retry-After"] = "5"
    if unread.status:
        with contextlib.suppress(ConnectionError):
            await resp.prepare(request)
            await resp.write_eof()
    request.protocol.force_close()
    return resp
