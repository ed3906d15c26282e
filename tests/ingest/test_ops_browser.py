"""The ops page in headless Chromium against a running stack, every panel filled by a real run.

The Graph emulator, the receiver and a Salesforce emulator run in this process; meetings are
played by the emulator, notified to the receiver and processed by the product's worker (real
msgraph and simple-salesforce clients), and one notification job fails while Graph answers
503. Screenshots land in `artifacts/` (git-ignored).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypeVar

import pytest
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from core import keys
from emulators.salesforce.app import Config
from emulators.tls import ensure_ca
from tests.e2e.harness import Stack
from tests.e2e.scenarios import VTT, meeting, scenario
from tests.emulators.salesforce_harness import Server
from tests.ingest.test_connect_browser import ARTIFACTS, DevTools, first_page
from tests.ingest.test_connect_browser import chromium as chromium  # the fixture
from workers.ledger import Ledger

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:kiota_abstractions"),
    pytest.mark.timeout(240),
]
TOKEN = "ops-token-for-the-browser-test-0123456789"
T = TypeVar("T")
INTERNAL_ONLY = [{"upn": "alice@contoso.com"}, {"upn": "bob@contoso.com"}]


@pytest.fixture
def salesforce(tmp_path: Path) -> Iterator[Server]:
    ensure_ca(tmp_path / "ca")
    with Server(Config(), tmp_path / "ca") as sf:
        yield sf


@pytest.fixture
def stack(chromium: str, tmp_path: Path, redis_url: str, salesforce: Server) -> Iterator[Stack]:
    """A stack that has run: two meetings settled (pushed, skipped), one job failed: m3's,
    held before the subscriptions existed (so never notified) and fetched while Graph is down."""
    doc = scenario(meeting("m1"), meeting("m2", people=INTERNAL_ONLY), meeting("m3"))
    sf_settings = {"sf_instance_url": salesforce.base, "sf_client_id": "emulator-app",
                   "sf_client_secret": "emulator-secret", "ops_token": TOKEN}  # fmt: skip
    with Stack(doc, redis_url, tmp_path, **sf_settings) as s:
        s.play("m3")
        # m3's callRecord is updated a moment after it ends: wait for that, so that no
        # notification about it meets the subscriptions being created.
        until(lambda: s.world.call_record_version("m3") == 2)
        s.ensure_subscriptions()
        s.play("m1", "m2")
        ledger = Ledger(s.conn)

        def outcome(mid: str) -> str | None:
            key = ledger.find(s.world.call_record_id(mid))
            return ledger.meeting(key).get("outcome") if key else None

        assert s.work(lambda: outcome("m1") == "pushed" and outcome("m2") == "skipped", 90)
        s.set_faults(rate_503=1.0)  # Graph is down: this job fails (it has no retries)
        queue = Queue("ingest", connection=s.conn, serializer=JSONSerializer)
        cr_id = s.world.call_record_id("m3")
        payload = {"kind": "callRecords", "changeType": "created",
                   "resource": f"communications/callRecords/{cr_id}",
                   "ids": {"callRecordId": cr_id}}  # fmt: skip
        queue.enqueue(keys.JOB_NOTIFICATION, payload, job_timeout=60)
        assert s.work(lambda: FailedJobRegistry(queue=queue).count == 1, 60)
        s.set_faults(rate_503=0.0)
        yield s


def until(condition: Callable[[], bool], within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.02)


class Browser:
    """The DevTools page driven from synchronous code, on a loop of its own: the test must
    not run inside an event loop, because the product's worker runs here between two steps
    (its Graph client runs its own loop, and RQ sets signal handlers on the main thread)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.loop = asyncio.new_event_loop()
        self.exits = AsyncExitStack()

    def __enter__(self) -> Browser:
        self.page: DevTools = self._run(self.exits.enter_async_context(first_page(self.endpoint)))
        # A tall viewport, so that each screenshot holds the whole page.
        self._run(self.page.send("Emulation.setDeviceMetricsOverride", width=1100,
                                 height=1700, deviceScaleFactor=1, mobile=False))  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(self.exits.aclose())
        self.loop.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def open(self, url: str, ready: str) -> None:
        self._run(self.page.send("Page.navigate", url=url))
        self._run(self.page.wait_for(ready))

    def evaluate(self, expression: str) -> Any:
        return self._run(self.page.evaluate(expression))

    def wait_for(self, condition: str) -> None:
        self._run(self.page.wait_for(condition))

    def screenshot(self, path: Path) -> None:
        self._run(self.page.screenshot(path))


def text(selector: str) -> str:
    return f"document.querySelector({json.dumps(selector)})?.innerText ?? ''"


class TestOpsInChromium:
    """Sign in, read every panel, explain a meeting, requeue a failed job and see it run,
    a forged CSRF token changes nothing, sign out."""

    def test_the_operators_session(
        self,
        stack: Stack,
        salesforce: Server,
        chromium: str,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        queue = Queue("ingest", connection=stack.conn, serializer=JSONSerializer)
        [failed_id] = FailedJobRegistry(queue=queue).get_job_ids()
        om_id = stack.world.online_meeting_id("m1")
        base = f"http://127.0.0.1:{stack.receiver_port}"
        with Browser(chromium) as page:
            page.open(f"{base}/ops", "!!document.querySelector('#token')")
            status = "performance.getEntriesByType('navigation')[0].responseStatus"
            assert page.evaluate(status) == 401
            page.screenshot(ARTIFACTS / "ops-sign-in.png")

            page.evaluate(f"document.querySelector('#token').value = {json.dumps(TOKEN)};"
                                "document.querySelector('form button').click()")  # fmt: skip
            page.wait_for("!!document.querySelector('#subscriptions')")
            assert page.evaluate(status) == 200
            page.wait_for("/\\d+ (d|h) /.test(document.querySelector('[data-left]')"
                                ".innerText)")  # fmt: skip
            subs = page.evaluate(text("#subscriptions"))
            for sub_id in stack.conn.smembers(keys.SUBSCRIPTION_IDS):
                assert sub_id.decode() in subs
            assert "healthy" in subs
            queues = page.evaluate(text("#queues"))
            assert "waiting\t0" in queues and "failed\t1" in queues
            bars = "document.querySelectorAll('#throughput rect.ok').length"
            assert page.evaluate(bars) >= 1
            assert page.evaluate("document.querySelectorAll('#throughput rect.failed')"
                                       ".length") >= 1  # fmt: skip
            # The product's own counts equal what the emulators answered (token requests aside).
            graph = stack.stats()["requests"]
            assert int(page.evaluate(text("#graph-calls"))) == sum(
                n for route, n in graph.items() if "/v1.0/" in route
            ), json.dumps(graph)
            assert int(page.evaluate(text("#salesforce-calls"))) == salesforce.stats()["api_calls"]
            failed = page.evaluate(text("#failed"))
            assert failed_id in failed and "UpstreamTransient" in failed and "503" in failed
            meetings = page.evaluate(text("#meetings"))
            assert "Meeting m1" in meetings and "pushed" in meetings
            assert "Meeting m2" in meetings and "skipped" in meetings
            assert "1 failed jobs" in page.evaluate(text("#warnings"))
            html = page.evaluate("document.documentElement.outerHTML")
            for secret in (TOKEN, "emulator-secret", "Hello Carol", VTT.splitlines()[-1]):
                assert secret not in html
            for sub in stack.conn.keys(f"{keys.SUBSCRIPTION}:*"):
                client_state = stack.conn.hget(sub, "client_state")
                assert client_state and client_state.decode() not in html
            page.screenshot(ARTIFACTS / "ops-page.png")

            # The explain story, found by the online meeting id.
            page.evaluate(f"document.querySelector('#search input').value = "
                                f"{json.dumps(om_id)}; document.querySelector('#search button')"
                                ".click()")  # fmt: skip
            page.wait_for("!!document.querySelector('#story')")
            story = page.evaluate(text("#story"))
            assert 'Meeting "Meeting m1"' in story and "Outcome: pushed" in story
            page.screenshot(ARTIFACTS / "ops-explain.png")

            # The requeue form with a forged, then without a CSRF token: 403, nothing changes.
            row = f"tr[data-job={json.dumps(failed_id)}]"
            for forge in ("i.value = 'forged'", "i.remove()"):
                page.open(f"{base}/ops", "!!document.querySelector('#failed')")
                csrf_input = f"document.querySelector('{row} input[name=csrf]')"
                page.evaluate(f"const i = {csrf_input}; {forge};"
                              f"document.querySelector('{row} button').click()")  # fmt: skip
                page.wait_for("document.title === 'Refused'")
                assert page.evaluate(status) == 403
                assert FailedJobRegistry(queue=queue).get_job_ids() == [failed_id]
                assert queue.count == 0
            page.screenshot(ARTIFACTS / "ops-csrf-refused.png")

            # Requeue: the job leaves the failed list, runs, and the page says so.
            page.open(f"{base}/ops", "!!document.querySelector('#failed')")
            page.evaluate(f"document.querySelector('{row} button').click()")
            page.wait_for("!!document.querySelector('#note')")
            assert "Job requeued" in page.evaluate(text("#note"))
            job = Job.fetch(failed_id, connection=stack.conn, serializer=JSONSerializer)
            # The worker runs here, on the main thread (RQ sets signal handlers); the page
            # waits meanwhile.
            assert stack.work(lambda: job.get_status(refresh=True) == "finished", 60)
            ledger = Ledger(stack.conn)
            m3 = ledger.find(stack.world.call_record_id("m3"))
            assert m3 and stack.work(lambda: ledger.meeting(m3).get("outcome") == "pushed", 60)
            page.open(f"{base}/ops", "!!document.querySelector('#failed')")
            assert "no failed jobs" in page.evaluate(text("#failed"))
            assert "failed\t0" in page.evaluate(text("#queues"))
            page.screenshot(ARTIFACTS / "ops-requeued.png")

            # Sign out: the session ends; the page asks for the token again.
            page.evaluate("document.querySelector('header form button').click()")
            page.wait_for("document.body.innerText.includes('Signed out.')")
            page.open(f"{base}/ops", "!!document.querySelector('#token')")
            assert page.evaluate(status) == 401
            page.screenshot(ARTIFACTS / "ops-signed-out.png")
        assert stack.conn.keys(f"{keys.OPS_SESSION}:*") == []
        with capsys.disabled():
            print(f"\n  screenshots: {ARTIFACTS}/ops-sign-in.png, ops-page.png, "
                  "ops-explain.png, ops-requeued.png, ops-signed-out.png")  # fmt: skip
