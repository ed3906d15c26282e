"""HTTP to subscribers: the validation handshake and notification POSTs with retries."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Coroutine
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from emulators.graph.limits import validation_token
from emulators.graph.options import GraphOptions


def with_query(url: str, name: str, value: str) -> URL:
    """`url` with one more query parameter, percent-encoding every reserved character."""
    sep = "&" if "?" in url else "?"
    return URL(f"{url}{sep}{name}={quote(value, safe='')}", encoded=True)


class Delivery:
    """Posts to subscribers' endpoints; counts what was delivered, failed and retried."""

    def __init__(self, options: GraphOptions, ssl_context: ssl.SSLContext | None = None) -> None:
        self.options = options
        self.ssl_context = ssl_context
        self.counts = {"delivered": 0, "failed": 0, "retried": 0, "dropped": 0, "duplicated": 0}
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self.ssl_context or True)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` in the background; it is cancelled when the emulator stops."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait until no background work is left (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def validate(self, url: str) -> str | None:
        """Graph's handshake on `url`; None when answered correctly, else why not."""
        token = validation_token()
        timeout = self.options.validation_timeout_s
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        try:
            async with self.session.post(
                with_query(url, "validationToken", token),
                data=b"",
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as resp:
                text = await resp.text()
                if resp.status != 200:
                    return f"the endpoint answered {resp.status}; it must answer 200 OK."
                if not resp.content_type.startswith("text/plain"):
                    return "the response's Content-Type must be text/plain."
                if text != token:
                    return "the response must exactly match the validationToken query parameter."
        except TimeoutError:
            return f"the endpoint did not answer within {timeout:g} seconds."
        except aiohttp.ClientError as exc:
            return f"the endpoint could not be reached ({type(exc).__name__})."
        return None

    async def post(self, url: str, body: dict[str, Any]) -> bool:
        """POST `body`; retry with exponential backoff until a 2xx or attempts run out."""
        attempts = max(1, self.options.retry_attempts)
        timeout = aiohttp.ClientTimeout(total=self.options.delivery_timeout_s)
        for attempt in range(attempts):
            if attempt:
                self.counts["retried"] += 1
                await asyncio.sleep(self.options.retry_base_s * 2 ** (attempt - 1))
            try:
                async with self.session.post(
                    url, json=body, timeout=timeout, allow_redirects=False
                ) as resp:
                    await resp.read()
                    if 200 <= resp.status < 300:
                        self.counts["delivered"] += 1
                        return True
            except (TimeoutError, aiohttp.ClientError):
                pass
        self.counts["failed"] += 1
        return False
