"""The connect flow in a real browser: headless Chromium driven over the DevTools Protocol.

Needs Debian's `chromium`; skipped, and said so, where no chromium binary exists. The
screenshots land in `artifacts/` at the repository root (git-ignored).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.emulators.graph_harness import ALICE
from tests.ingest.connect_stack import Stack, running
from workers import users

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:kiota_abstractions"),
]

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


class DevTools:
    """A minimal Chrome DevTools Protocol client for one page (commands only, events ignored)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.last_id = 0

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        sent = self.last_id
        await self.ws.send_json({"id": sent, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json(timeout=30)
            if msg.get("id") == sent:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"].get("text", "script failed"))
        return result["result"].get("value")

    async def wait_for(self, condition: str, within: float = 20) -> None:
        """Poll a JavaScript condition; navigations in between are expected."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                if await self.evaluate(f"document.readyState === 'complete' && ({condition})"):
                    return
            except RuntimeError:
                pass  # the page is being replaced
            await asyncio.sleep(0.05)
        where = await self.evaluate("location.href")
        raise AssertionError(f"not reached: {condition} (at {where})")

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", format="png")
        await asyncio.to_thread(_write, path, base64.b64decode(shot["data"]))


def _devtools_url(log: Path, proc: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if "DevTools listening on " in line:
                return line.split("DevTools listening on ", 1)[1].strip()
        if proc.poll() is not None:
            raise AssertionError(f"chromium exited: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)
    raise AssertionError("chromium printed no DevTools URL")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[str]:
    """A headless Chromium of our own; yields its DevTools HTTP endpoint."""
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("no chromium binary: install Debian's chromium to run the browser test")
    log = tmp_path / "chromium.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [
                binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--remote-debugging-port=0", f"--user-data-dir={tmp_path / 'profile'}",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1000,760",
                # The emulator's certificate is signed by the test's own CA; the receiver
                # itself is plain http on loopback.
                "--ignore-certificate-errors", "--disable-features=HttpsUpgrades",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    try:
        yield _devtools_url(log, proc).split("/devtools/")[0].replace("ws://", "http://")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@asynccontextmanager
async def first_page(endpoint: str) -> AsyncIterator[DevTools]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{endpoint}/json/list") as resp:
            targets = await resp.json()
        page = next(t for t in targets if t.get("type") == "page")
        async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            yield DevTools(ws)


@pytest.fixture
def stack(chromium: str, tmp_path: Path, redis_url: str) -> Iterator[Stack]:
    with running(tmp_path, redis_url) as s:
        yield s


class TestBrowser:
    """A user connects in Chromium: registered, sealed cache in Redis, subscription created."""

    async def test_connect_in_chromium(
        self, stack: Stack, chromium: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        async with first_page(chromium) as page:
            await page.send("Page.navigate", url=f"{stack.url}/auth/connect")
            await page.wait_for("location.pathname.endsWith('/oauth2/v2.0/authorize')")
            await page.screenshot(ARTIFACTS / "connect-sign-in.png")
            await page.evaluate(f"document.querySelector('button[value=\"{ALICE}\"]').click()")
            await page.wait_for("location.pathname === '/auth/callback'")
            title = await page.evaluate("document.title")
            text = await page.evaluate("document.body.innerText")
            await page.screenshot(ARTIFACTS / "connect-done.png")
        with capsys.disabled():
            print(f"\n  screenshots: {ARTIFACTS}/connect-sign-in.png, connect-done.png")
        assert title == "Connected", text
        assert "alice@contoso.com is connected" in text.replace("(", "").replace(")", "")
        user = users.find(stack.conn, ALICE)
        assert user is not None and user.source == "connect"
        raw, plain = stack.stored_cache()
        assert raw is not None and plain is not None and "RefreshToken" in plain
        with pytest.raises(ValueError):
            json.loads(raw)
        mine, graph = stack.transcript_subscriptions()
        assert len(mine) == 1 and mine == graph
        assert (
            await asyncio.to_thread(lambda: (ARTIFACTS / "connect-done.png").stat().st_size) > 1000
        )
