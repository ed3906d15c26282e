"""The meeting pipeline on a real Redis with a fake Graph: paths, convergence, budget, readiness."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from rq import Queue
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from core import keys
from core.settings import Settings
from tests.workers.fake_graph import (
    ALICE,
    BOB,
    CAROL,
    OTHER_TENANT,
    TENANT,
    FakeGraph,
    FakeMeeting,
    user,
)
from workers import handoff, transcripts, users
from workers.ledger import Ledger
from workers.pipeline import Pipeline
from workers.steps import Steps

CAROL_ID = user(CAROL, "External user", None, OTHER_TENANT)


def cr_payload(m: FakeMeeting, change: str = "created") -> dict[str, Any]:
    return {"kind": "callRecords", "subscriptionId": "s1", "tenantId": TENANT,
            "changeType": change, "resource": f"communications/callRecords/{m.call_record_id}",
            "ids": {"callRecordId": m.call_record_id}}  # fmt: skip


def tr_payload(m: FakeMeeting, organizer: bool = True) -> dict[str, Any]:
    ids = {"meetingId": m.online_meeting_id, "transcriptId": m.transcript_id}
    if organizer:
        ids["organizerId"] = m.organizer_id
    return {"kind": "transcripts", "subscriptionId": "s2", "tenantId": TENANT,
            "changeType": "created", "resource": "…", "ids": ids}  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def queue(redis_conn: redis.Redis) -> Queue:
    return Queue("ingest", connection=redis_conn, serializer=JSONSerializer)


@pytest.fixture
def world(redis_conn: redis.Redis) -> Callable[..., tuple[Pipeline, FakeGraph, Clock]]:
    users.add(redis_conn, users.EciUser(id=ALICE, upn="alice@contoso.com", name="Alice"))

    def make(*meetings: FakeMeeting, **over: Any) -> tuple[Pipeline, FakeGraph, Clock]:
        graph = FakeGraph(*meetings)
        clock = Clock()
        settings = Settings(
            redis_url="redis://unused",
            graph_tenant_id=TENANT,
            internal_domains=("contoso.com",),
            transcript_window_seconds=over.pop("window", 600.0),
            transcript_first_interval_seconds=over.pop("first", 30.0),
        )
        q = Queue("ingest", connection=redis_conn, serializer=JSONSerializer)
        return Pipeline(redis_conn, settings, lambda: graph, q, clock), graph, clock

    return make


def external_meeting(key: str = "m1", **over: Any) -> FakeMeeting:
    return FakeMeeting(key, people=[CAROL_ID], emails={CAROL: "carol@fabrikam.com"}, **over)


class TestRuledOutByCallRecord:
    """A meeting the callRecord alone rules out costs one Graph request and ends skipped."""

    @pytest.mark.parametrize(
        ("meeting", "reason"),
        [
            (external_meeting(end="2026-11-20T15:00:30Z"), "too_short"),
            (external_meeting(organizer_id=BOB, organizer_upn="bob@contoso.com"),
             "recorder_not_eci_user"),
        ],
    )  # fmt: skip
    def test_one_request(self, world: Any, meeting: FakeMeeting, reason: str) -> None:
        pipe, graph, _ = world(meeting)
        result = pipe.on_call_record(cr_payload(meeting))
        assert graph.total == 1
        state = pipe.ledger.meeting(result["meeting_key"])
        assert (state["reason"], state["outcome"], state["decision"]) == (
            reason, "skipped", "ineligible")  # fmt: skip
        assert pipe.ledger.outcome_counts()["skipped"] == 1
        assert pipe.ledger.find(meeting.call_record_id) == result["meeting_key"]


class TestEligibleOnCallRecordPath:
    """An eligible meeting on the callRecord path: six requests, one download, ready to push."""

    def test_budget_and_hand_off(self, world: Any, queue: Queue, redis_conn: redis.Redis) -> None:
        m = external_meeting()
        pipe, graph, _ = world(m)
        result = pipe.on_call_record(cr_payload(m))
        assert result["action"] == "ready"
        assert graph.total <= 6
        assert graph.served[m.key] == 1
        key = result["meeting_key"]
        state = pipe.ledger.meeting(key)
        assert (state["reason"], state["stage"]) == ("external_participants", "ready")
        assert "outcome" not in state
        resolved = handoff.load(redis_conn, key)
        assert resolved is not None
        assert [t.vtt for t in resolved.transcripts] == [m.transcript]
        assert resolved.online_meeting_id == m.online_meeting_id
        assert resolved.call_record_id == m.call_record_id
        assert resolved.organizer_email == "alice@contoso.com"
        kinds = {p.email: p.kind for p in resolved.participants}
        assert kinds == {"alice@contoso.com": "internal", "carol@fabrikam.com": "external"}
        assert queue.job_ids == [f"push-{key}"]

    def test_internal_only_is_skipped(self, world: Any) -> None:
        colleague = user("dddddddd-0000-0000-0000-000000000004", "Dan", "dan@contoso.com")
        m = FakeMeeting("m2", people=[colleague])
        pipe, graph, _ = world(m)
        result = pipe.on_call_record(cr_payload(m))
        state = pipe.ledger.meeting(result["meeting_key"])
        assert state["reason"] == "no_external_participants"
        assert state["outcome"] == "skipped"
        assert graph.requests["transcriptContent"] == 0

    def test_solo(self, world: Any) -> None:
        m = FakeMeeting("m3")
        pipe, _, _ = world(m)
        result = pipe.on_call_record(cr_payload(m))
        assert pipe.ledger.meeting(result["meeting_key"])["reason"] == "solo_eci_user"


class TestConvergence:
    """Both paths, in either order and repeated, reach one meeting key and one download."""

    def test_transcript_then_call_record(self, world: Any) -> None:
        m = external_meeting()
        pipe, graph, _ = world(m)
        first = pipe.on_transcript(tr_payload(m))
        second = pipe.on_call_record(cr_payload(m))
        pipe.on_call_record(cr_payload(m, "updated"))
        pipe.on_transcript(tr_payload(m))
        assert first["meeting_key"] == second["meeting_key"]
        assert graph.total <= 8
        assert graph.served[m.key] == 1
        key = first["meeting_key"]
        assert pipe.ledger.find(m.call_record_id) == key
        assert pipe.ledger.find(m.online_meeting_id) == key

    def test_call_record_then_transcript(self, world: Any) -> None:
        m = external_meeting()
        pipe, graph, _ = world(m)
        first = pipe.on_call_record(cr_payload(m))
        for _ in range(3):
            assert pipe.on_transcript(tr_payload(m))["meeting_key"] == first["meeting_key"]
            assert pipe.on_call_record(cr_payload(m, "updated"))["meeting_key"] == first[
                "meeting_key"]  # fmt: skip
        assert graph.total <= 8
        assert graph.served[m.key] == 1

    def test_tenant_wide_transcript_without_organizer_in_resource(self, world: Any) -> None:
        m = external_meeting()
        pipe, graph, _ = world(m)
        result = pipe.on_transcript(tr_payload(m, organizer=False))
        assert result["action"] == "ready"
        assert graph.served[m.key] == 1

    def test_too_short_meeting_seen_by_both_paths_is_one_entry(self, world: Any) -> None:
        m = external_meeting(end="2026-11-20T15:00:20Z")
        pipe, _, _ = world(m)
        a = pipe.on_call_record(cr_payload(m))
        b = pipe.on_transcript(tr_payload(m))
        assert a["meeting_key"] == b["meeting_key"]
        assert pipe.ledger.outcome_counts()["skipped"] == 1


class TestReadiness:
    """A late transcript is re-checked by scheduled jobs with growing intervals, then fetched."""

    def test_fetched_after_retries(self, world: Any, queue: Queue) -> None:
        m = external_meeting(listed_after=2)
        pipe, graph, clock = world(m)
        key = pipe.on_call_record(cr_payload(m))["meeting_key"]
        scheduled = ScheduledJobRegistry(queue=queue)
        assert scheduled.get_job_ids() == [f"check-{key}-1"]
        delays = []
        for _ in range(2):
            state = pipe.ledger.meeting(key)
            delays.append(float(state["next_check_at"]) - clock.now)
            clock.now = float(state["next_check_at"])
            pipe.check_transcript(key)
        assert delays == [30.0, 60.0]
        assert pipe.ledger.meeting(key)["stage"] == "ready"
        assert graph.served[m.key] == 1

    def test_no_transcript_after_window(self, world: Any) -> None:
        m = external_meeting(transcript=None)
        pipe, _, clock = world(m, window=100.0, first=30.0)
        key = pipe.on_call_record(cr_payload(m))["meeting_key"]
        for _ in range(10):
            state = pipe.ledger.meeting(key)
            if "outcome" in state:
                break
            clock.now = float(state["next_check_at"])
            pipe.check_transcript(key)
        state = pipe.ledger.meeting(key)
        assert state["outcome"] == "no_transcript"
        assert int(state["attempts"]) == 4  # at 0, 30, 90, 100 s
        assert pipe.ledger.outcome_counts()["no_transcript"] == 1

    def test_transcript_notification_while_waiting_does_not_double_schedule(
        self, world: Any, queue: Queue
    ) -> None:
        m = external_meeting(transcript_404s=2)
        pipe, graph, _ = world(m)
        key = pipe.on_transcript(tr_payload(m))["meeting_key"]
        pipe.on_transcript(tr_payload(m))
        assert ScheduledJobRegistry(queue=queue).get_job_ids() == [f"check-{key}-1"]
        assert graph.served[m.key] == 0

    def test_stored_transcript_is_never_fetched_again(
        self, world: Any, redis_conn: redis.Redis
    ) -> None:
        m = external_meeting()
        pipe, graph, _ = world(m)
        key = pipe.on_call_record(cr_payload(m))["meeting_key"]
        assert transcripts.stored(redis_conn, key, m.transcript_id) == m.transcript
        pipe.check_transcript(key)
        assert graph.served[m.key] == 1


class TestPermanentFailure:
    """A 403 ends as outcome failed with the actionable message, once."""

    def test_forbidden_meeting_lookup(self, world: Any) -> None:
        m = external_meeting()
        pipe, graph, _ = world(m)
        graph.forbidden.add("attendanceReport")
        from core.exceptions import UpstreamPermanent

        with pytest.raises(UpstreamPermanent):
            pipe.on_call_record(cr_payload(m))
        pipe.fail(None, "callRecords", m.call_record_id, "Graph 403: consent")
        key = pipe.ledger.find(m.call_record_id)
        assert key is not None
        state = pipe.ledger.meeting(key)
        assert state["outcome"] == "failed"
        assert "consent" in state["last_error"]
        pipe.fail(None, "callRecords", m.call_record_id, "Graph 403: consent")
        assert pipe.ledger.outcome_counts()["failed"] == 1


class TestOutcomeCounts:
    """The outcomes hash moves a meeting between counts only when its outcome changes."""

    def test_change_once(self, redis_conn: redis.Redis) -> None:
        ledger = Ledger(redis_conn)
        assert ledger.set_outcome("k", "failed")
        assert not ledger.set_outcome("k", "failed")
        assert ledger.set_outcome("k", "pushed")
        counts = ledger.outcome_counts()
        assert (counts["failed"], counts["pushed"]) == (0, 1)


class SlowGraph(FakeGraph):
    """A FakeGraph whose attendance read is slow, so two workers overlap inside the pipeline."""

    def attendance(self, *args: Any) -> Any:
        time.sleep(0.2)
        return super().attendance(*args)


class TestConcurrentWorkers:
    """Both paths at once in two workers: one meeting key, one decision, one download."""

    def test_threads(self, redis_url: str, redis_conn: redis.Redis) -> None:
        users.add(redis_conn, users.EciUser(id=ALICE, upn="alice@contoso.com"))
        m = external_meeting()
        graph = SlowGraph(m)
        settings = Settings(graph_tenant_id=TENANT, internal_domains=("contoso.com",))
        results: list[dict[str, str]] = []

        def run(path: str) -> None:
            conn = redis.Redis.from_url(redis_url)
            q = Queue("ingest", connection=conn, serializer=JSONSerializer)
            pipe = Pipeline(conn, settings, lambda: graph, q)
            if path == "cr":
                results.append(pipe.on_call_record(cr_payload(m)))
            else:
                results.append(pipe.on_transcript(tr_payload(m)))
            conn.close()

        threads = [threading.Thread(target=run, args=(p,)) for p in ("cr", "tr", "cr", "tr")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len({r["meeting_key"] for r in results}) == 1
        assert graph.served[m.key] == 1
        ledger = Ledger(redis_conn)
        events = [e["what"] for e in ledger.events(results[0]["meeting_key"])]
        assert events.count("decided") == 1
        assert events.count("transcript fetched") == 1
        assert Queue("ingest", connection=redis_conn).count == 1  # one push job


class TestPipelineSettings:
    """The pipeline's settings are read from INGEST_* with defaults and named errors."""

    def test_defaults_and_values(self) -> None:
        assert Settings.from_env({}).transcript_window_seconds == 7200.0
        s = Settings.from_env({
            "INGEST_TRANSCRIPT_WINDOW_SECONDS": "20",
            "INGEST_TRANSCRIPT_FIRST_INTERVAL_SECONDS": "0.5",
            "INGEST_TENANT_WIDE_TRANSCRIPTS": "true",
            "INGEST_GRAPH_TIMEOUT_SECONDS": "5",
        })  # fmt: skip
        assert (s.transcript_window_seconds, s.transcript_first_interval_seconds) == (20.0, 0.5)
        assert s.tenant_wide_transcripts and s.graph_timeout_seconds == 5.0

    @pytest.mark.parametrize(
        ("name", "value"),
        [("INGEST_TRANSCRIPT_WINDOW_SECONDS", "-1"), ("INGEST_TRANSCRIPT_WINDOW_SECONDS", "nan"),
         ("INGEST_TENANT_WIDE_TRANSCRIPTS", "maybe"), ("INGEST_GRAPH_TIMEOUT_SECONDS", "0")],
    )  # fmt: skip
    def test_bad_values_name_the_variable(self, name: str, value: str) -> None:
        from core.exceptions import ConfigurationError

        with pytest.raises(ConfigurationError) as info:
            Settings.from_env({name: value})
        assert info.value.variable == name


class TestRecurringSeries:
    """Occurrences of one series (same meeting id and link) are separate meetings, each with
    its own transcript."""

    def test_two_occurrences(self, world: Any, redis_conn: redis.Redis) -> None:
        first = external_meeting("w1", series="weekly", transcript=VTT_1)
        week = {"start": "2026-11-27T15:00:00Z", "end": "2026-11-27T15:30:00Z"}
        second = external_meeting("w2", series="weekly", transcript=VTT_2, **week)
        assert first.online_meeting_id == second.online_meeting_id
        pipe, graph, _ = world(first, second)
        a = pipe.on_call_record(cr_payload(first))["meeting_key"]
        b = pipe.on_call_record(cr_payload(second))["meeting_key"]
        assert a != b
        assert pipe.on_transcript(tr_payload(second))["meeting_key"] == b
        assert pipe.on_transcript(tr_payload(first))["meeting_key"] == a
        texts = {k: transcripts.stored(redis_conn, k, m.transcript_id)
                 for k, m in ((a, first), (b, second))}  # fmt: skip
        assert texts == {a: VTT_1, b: VTT_2}
        assert (graph.served["w1"], graph.served["w2"]) == (1, 1)


VTT_1 = "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n<v Alice Adams>Week one.</v>\n"
VTT_2 = "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n<v Alice Adams>Week two.</v>\n"


class TestNoAttendanceReport:
    """Without an attendance report the transcript path does not decide (it could not know who
    joined); the callRecord path decides, and the transcript is still fetched once."""

    def test_left_to_call_record(self, world: Any) -> None:
        from core.exceptions import UpstreamTransient

        m = external_meeting(report=False, no_call_record=True)
        pipe, graph, _ = world(m)
        with pytest.raises(UpstreamTransient):
            pipe.on_transcript(tr_payload(m))
        key = pipe.ledger.find(m.online_meeting_id)
        assert key is not None and "decision" not in pipe.ledger.meeting(key)
        m.no_call_record = False
        assert pipe.on_call_record(cr_payload(m))["meeting_key"] == key
        state = pipe.ledger.meeting(key)
        assert (state["reason"], state["stage"]) == ("external_participants", "ready")
        assert pipe.on_transcript(tr_payload(m))["action"] == "already handled"
        assert graph.served[m.key] == 1


HOLD = """
import sys, redis
from rq import Queue
from core.settings import Settings
from workers.steps import Steps
conn = redis.Redis.from_url(sys.argv[1])
steps = Steps(conn, Settings(worker_heartbeat_ttl=2), lambda: None, Queue(connection=conn))
with steps._lock("om-killed"):
    print("held", flush=True)
    sys.stdin.read()
"""


class TestMeetingLock:
    """The meeting lock lives one heartbeat TTL, renewed while held: a killed worker's lock
    frees the meeting within that TTL, not after the job timeout (5 minutes)."""

    def steps(self, conn: redis.Redis, ttl: int) -> Steps:
        settings = Settings(worker_heartbeat_ttl=ttl)
        return Steps(conn, settings, lambda: FakeGraph(), Queue("ingest", connection=conn))

    def test_renewed_while_held_and_released_after(self, redis_conn: redis.Redis) -> None:
        key = f"{keys.MEETING_LOCK}:om-held"
        with self.steps(redis_conn, 3)._lock("om-held"):
            last = redis_conn.pttl(key)
            assert 0 < last <= 3000
            deadline = time.monotonic() + 20
            renewed = False
            while not renewed and time.monotonic() < deadline:
                time.sleep(0.05)
                now = redis_conn.pttl(key)
                renewed, last = now > last, now  # the keeper set it back to the full TTL
            assert renewed
        assert redis_conn.exists(key) == 0

    def test_killed_holder_frees_the_meeting(self, redis_url: str, redis_conn: redis.Redis) -> None:
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, redis_url],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        finally:
            holder.kill()
            holder.communicate(timeout=30)
        token = redis_conn.get(f"{keys.MEETING_LOCK}:om-killed")
        assert token is not None and token.startswith(f"{holder.pid}:".encode())  # who held it
        left = redis_conn.pttl(f"{keys.MEETING_LOCK}:om-killed")
        assert 0 < left <= 2000  # what the killed worker left lapses within one TTL
        with self.steps(redis_conn, 2)._lock("om-killed"):  # another worker gets the meeting
            assert redis_conn.pttl(f"{keys.MEETING_LOCK}:om-killed") > 0
