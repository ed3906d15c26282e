"""Two workers racing on one meeting, on the Graph emulator through the real msgraph client:
both notification paths at once, twice each, leave one meeting, one decision, one transcript
download and one push (the hand-written FakeGraph test of tests/workers, here live-shaped)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from tests.e2e.harness import Stack
from tests.e2e.scenarios import ALICE, meeting, scenario
from tests.e2e.test_pipeline_e2e import key_of, meeting_entries, outcome
from workers import jobs
from workers.context import WorkerContext
from workers.ledger import Ledger


def payloads(stack: Stack) -> dict[str, dict[str, Any]]:
    cr_id = stack.world.call_record_id("m1")
    om_id = stack.world.online_meeting_id("m1")
    return {
        "cr": {"kind": "callRecords", "changeType": "created", "tenantId": stack.world.tenant_id,
               "resource": f"communications/callRecords/{cr_id}",
               "ids": {"callRecordId": cr_id}},
        "tr": {"kind": "transcripts", "changeType": "created", "tenantId": stack.world.tenant_id,
               "resource": "…", "ids": {"meetingId": om_id, "organizerId": ALICE,
                                         "transcriptId": stack.world.transcript_id("m1")}},
    }  # fmt: skip


class TestRacingWorkers:
    """Four workers at once, two per path: one meeting key, one decision, one download, one
    push job; the push then writes one set of records to Salesforce."""

    def test_one_meeting(self, redis_url: str, tmp_path: Path) -> None:
        with Stack(scenario(meeting("m1")), redis_url, tmp_path, salesforce=True) as stack:
            stack.play("m1")  # no subscription: the test delivers the notifications itself
            items = payloads(stack)
            start = threading.Barrier(4)
            results: list[dict[str, str]] = []
            errors: list[BaseException] = []

            def worker(path: str) -> None:
                ctx = WorkerContext(stack.settings, redis.Redis.from_url(redis_url))
                try:
                    pipe = jobs.pipeline(ctx)
                    start.wait(30)
                    run = pipe.on_call_record if path == "cr" else pipe.on_transcript
                    results.append(run(items[path]))
                except BaseException as exc:
                    errors.append(exc)
                finally:
                    ctx.close()
                    ctx.redis.close()

            threads = [threading.Thread(target=worker, args=(p,)) for p in ("cr", "tr") * 2]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert not errors, errors
            assert len({r["meeting_key"] for r in results}) == 1
            key = results[0]["meeting_key"]
            events = [e["what"] for e in Ledger(stack.conn).events(key)]
            assert events.count("decided") == 1
            assert events.count("transcript fetched") == 1
            assert stack.stats()["transcript_content_downloads"] == {"m1": 1}
            queue = Queue("ingest", connection=stack.conn, serializer=JSONSerializer)
            assert queue.count == 1  # one push job
            assert stack.work(lambda: outcome(stack, "m1") == "pushed", 30)
            assert key_of(stack, "m1") == key and meeting_entries(stack) == 1
            assert len(stack.salesforce_records("Teams_Meeting__c")) == 1
            assert len(stack.salesforce_records("Teams_Transcript__c")) == 1


class TestNoAttendanceReport:
    """Without an attendance report the transcript path does not decide (it could not know who
    joined): the transcript comes first, its job waits, and the late callRecord decides; the
    transcript is downloaded once and the meeting written once (live-shaped on the emulator)."""

    def test_left_to_the_call_record(self, redis_url: str, tmp_path: Path) -> None:
        doc = scenario(meeting("m1", attendance_report=False, callrecord_after_s=2.0))
        with Stack(doc, redis_url, tmp_path, salesforce=True) as stack:
            stack.ensure_subscriptions()
            stack.play("m1")
            assert stack.work(lambda: outcome(stack, "m1") == "pushed", 60)
            key = key_of(stack, "m1")
            assert key is not None
            state = Ledger(stack.conn).meeting(key)
            assert state["reason"] == "external_participants"
            events = [e["what"] for e in Ledger(stack.conn).events(key)]
            assert "no attendance report yet: left to the callRecord" in events
            assert events.count("decided") == 1
            assert stack.stats()["transcript_content_downloads"] == {"m1": 1}
            assert meeting_entries(stack) == 1
            assert len(stack.salesforce_records("Teams_Meeting__c")) == 1
