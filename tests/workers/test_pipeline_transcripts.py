"""Several transcripts per meeting, and the transcript-first path while the callRecord is not
there yet: on a real Redis with a fake Graph."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from rq import Queue

from tests.workers.fake_graph import FakeMeeting
from tests.workers.test_jobs import ctx, run_all
from tests.workers.test_pipeline import (
    cr_payload,
    external_meeting,
    queue,
    tr_payload,
    world,
)
from workers import handoff, transcripts

__all__ = ["ctx", "queue", "world"]

SECOND = "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n<v Carol Diaz>After the break.</v>\n"
THIRD = "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n<v Alice Adams>Last words.</v>\n"


def ids_of(m: FakeMeeting) -> list[str]:
    return [tid for tid, _ in m.texts]


class TestSeveralTranscripts:
    """Every transcript of the meeting is fetched once and handed off, in the order made; one
    request more per extra transcript."""

    def test_call_record_path(self, world: Any, redis_conn: redis.Redis) -> None:
        m = external_meeting(more=(SECOND, THIRD))
        pipe, graph, _ = world(m)
        key = pipe.on_call_record(cr_payload(m))["meeting_key"]
        assert graph.total == 6 + 2
        resolved = handoff.load(redis_conn, key)
        assert resolved is not None
        assert [(t.id, t.vtt) for t in resolved.transcripts] == m.texts
        assert all(graph.served[tid] == 1 for tid in ids_of(m))
        assert pipe.on_transcript(tr_payload(m))["action"] == "already handled"
        assert pipe.on_call_record(cr_payload(m, "updated"))["action"] == "already handled"
        assert graph.total == 8 and graph.served[m.key] == 3  # nothing fetched twice

    def test_transcript_path_lists_once(self, world: Any, redis_conn: redis.Redis) -> None:
        m = external_meeting(more=(SECOND,))
        pipe, graph, _ = world(m)
        key = pipe.on_transcript(tr_payload(m))["meeting_key"]
        # list, callRecord, meeting, attendance (2), two contents: the list serves both.
        assert graph.requests["transcripts"] == 1 and graph.total == 7
        resolved = handoff.load(redis_conn, key)
        assert resolved is not None and [t.id for t in resolved.transcripts] == ids_of(m)

    def test_notification_of_a_later_transcript_while_waiting(
        self, world: Any, redis_conn: redis.Redis
    ) -> None:
        """The first transcript's content is late; the second appears meanwhile: its
        notification makes the pipeline list again, and both are handed off."""
        m = external_meeting(transcript_404s=1)
        pipe, graph, _ = world(m)
        key = pipe.on_call_record(cr_payload(m))["meeting_key"]
        assert pipe.ledger.meeting(key)["stage"] == "awaiting_transcript"
        m.more = (SECOND,)
        second = dict(tr_payload(m), ids={**tr_payload(m)["ids"], "transcriptId": ids_of(m)[1]})
        assert pipe.on_transcript(second)["action"] == "ready"
        resolved = handoff.load(redis_conn, key)
        assert resolved is not None and [t.id for t in resolved.transcripts] == ids_of(m)
        assert graph.served[m.key] == 2


class TestLateCallRecord:
    """Transcript first, callRecord later (live, up to hours): the meeting is handed off once
    without it; the callRecord then costs no Graph request, and its id is filled in."""

    def test_arrives_after_the_push(self, world: Any, queue: Queue) -> None:
        m = external_meeting(no_call_record=True)
        pipe, graph, _ = world(m)
        key = pipe.on_transcript(tr_payload(m))["meeting_key"]
        assert queue.job_ids == [f"push-{key}"]
        state = pipe.ledger.meeting(key)
        assert state["stage"] == "ready" and "call_record_id" not in state
        queue.empty()
        pipe.ledger.set_outcome(key, "pushed")  # as the push job does
        spent = graph.total
        m.no_call_record = False
        for change in ("created", "updated"):
            assert pipe.on_call_record(cr_payload(m, change))["meeting_key"] == key
        assert graph.total == spent  # the transcript named the call: no request
        assert pipe.ledger.meeting(key)["call_record_id"] == m.call_record_id
        assert queue.job_ids == [f"callrecord-{key}"]
        assert graph.served[m.key] == 1

    def test_arrives_before_the_push(self, world: Any, queue: Queue) -> None:
        m = external_meeting(no_call_record=True)
        pipe, _, _ = world(m)
        key = pipe.on_transcript(tr_payload(m))["meeting_key"]
        m.no_call_record = False
        pipe.on_call_record(cr_payload(m))
        # The push job reads the id from the ledger: no fill-in job.
        assert queue.job_ids == [f"push-{key}"]
        assert pipe.ledger.meeting(key)["call_record_id"] == m.call_record_id


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def listed(*items: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"id": tid, "createdDateTime": made} for tid, made in items]


class TestSelect:
    """Which of the listed transcripts are the occurrence's, in the order made."""

    @pytest.mark.parametrize(
        ("items", "start", "end", "chosen"),
        [
            # Graph lists newest first; the meeting's own are returned oldest first.
            (listed(("b", "2026-11-20T15:20:00Z"), ("a", "2026-11-20T15:01:00Z")),
             "2026-11-20T15:00:00", "2026-11-20T15:30:00", ["a", "b"]),
            # A weekly series: last week's and next week's are not this occurrence's.
            (listed(("next", "2026-11-27T15:01:00Z"), ("b", "2026-11-20T15:20:00Z"),
                    ("a", "2026-11-20T15:01:00Z"), ("old", "2026-11-13T15:02:00Z")),
             "2026-11-20T15:00:00", "2026-11-20T15:30:00", ["a", "b"]),
            # Dated after the end (the emulator's play time): within SLACK of the first.
            (listed(("b", "2026-11-30T10:00:01Z"), ("a", "2026-11-30T10:00:00Z")),
             "2026-11-20T15:00:00", "2026-11-20T15:30:00", ["a", "b"]),
            (listed(("a", "2026-11-13T15:02:00Z")), "2026-11-20T15:00:00", None, []),
            (listed(("b", "2026-11-20T15:20:00Z"), ("a", "2026-11-20T15:01:00Z")),
             None, None, ["b"]),
            ([], "2026-11-20T15:00:00", None, []),
        ],
    )  # fmt: skip
    def test_select(
        self, items: list[dict[str, Any]], start: str | None, end: str | None, chosen: list[str]
    ) -> None:
        when = at(start) if start else None
        until = at(end) if end else None
        assert transcripts.select(items, when, until) == chosen


class TestThroughWorkers:
    """The jobs around the two late arrivals: a transcript made after the meeting was written
    is written too (the first not fetched again), and a late callRecord fills in its id once."""

    @pytest.fixture
    def stage(self, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
        calls: dict[str, list[Any]] = {"push": [], "fill": []}

        def push(meeting: Any) -> dict[str, str]:
            calls["push"].append([t.id for t in meeting.transcripts])
            return {"meeting": "a01"}

        monkeypatch.setattr("workers.salesforce.stage.push", push)
        monkeypatch.setattr(
            "workers.salesforce.stage.set_call_record",
            lambda key, cr_id: calls["fill"].append((key, cr_id)),
        )
        return calls

    def _wire(self, graph: Any, conn: redis.Redis, ctx: Any, monkeypatch: Any) -> Queue:
        from rq.serializers import JSONSerializer

        from workers import jobs
        from workers.pipeline import Pipeline

        q = Queue("ingest", connection=conn, serializer=JSONSerializer)
        monkeypatch.setattr(jobs, "pipeline", lambda c=None: Pipeline(
            conn, ctx.settings, lambda: graph, q))  # fmt: skip
        return q

    def test_transcript_after_the_push(
        self, ctx: Any, redis_conn: redis.Redis, monkeypatch: Any, stage: dict[str, list[Any]]
    ) -> None:
        from tests.workers.fake_graph import FakeGraph

        m = external_meeting()
        graph = FakeGraph(m)
        q = self._wire(graph, redis_conn, ctx, monkeypatch)
        q.enqueue("workers.jobs.handle_notification", cr_payload(m))
        run_all(redis_conn)
        assert stage["push"] == [ids_of(m)]
        m.more = (SECOND,)
        late = dict(tr_payload(m), ids={**tr_payload(m)["ids"], "transcriptId": ids_of(m)[1]})
        spent = graph.total
        for _ in range(2):  # delivered twice: written once
            q.enqueue("workers.jobs.handle_notification", late)
            run_all(redis_conn)
        assert stage["push"] == [ids_of(m)[:1], ids_of(m)]
        assert graph.total - spent == 2  # the list and the new transcript's content
        assert graph.served[m.key] == 2 and graph.served[ids_of(m)[0]] == 1

    def test_call_record_after_the_push(
        self, ctx: Any, redis_conn: redis.Redis, monkeypatch: Any, stage: dict[str, list[Any]]
    ) -> None:
        from tests.workers.fake_graph import FakeGraph
        from workers.ledger import Ledger

        m = external_meeting(no_call_record=True)
        q = self._wire(FakeGraph(m), redis_conn, ctx, monkeypatch)
        q.enqueue("workers.jobs.handle_notification", tr_payload(m))
        run_all(redis_conn)
        assert len(stage["push"]) == 1 and stage["fill"] == []
        m.no_call_record = False
        for change in ("created", "updated", "created"):
            q.enqueue("workers.jobs.handle_notification", cr_payload(m, change))
            run_all(redis_conn)
        key = Ledger(redis_conn).find(m.call_record_id)
        assert stage["fill"] == [(key, m.call_record_id)]
        assert len(stage["push"]) == 1


class TestHandOffFormat:
    """A resolved meeting saved before meetings had several transcripts still loads, as one."""

    def test_saved_with_one_transcript(self) -> None:
        import json

        old = {"meeting_key": "k", "online_meeting_id": None, "call_record_id": None,
               "subject": "s", "start": "2026-11-20T15:00:00+00:00",
               "end": "2026-11-20T15:30:00+00:00", "organizer_email": "a@contoso.com",
               "reason": "solo_eci_user", "participants": [], "transcript_id": "t-1",
               "transcript_vtt": "WEBVTT\n", "recording_url": None}  # fmt: skip
        meeting = handoff.from_json(json.dumps(old))
        assert [(t.id, t.vtt) for t in meeting.transcripts] == [("t-1", "WEBVTT\n")]
        assert handoff.from_json(handoff.to_json(meeting)) == meeting
