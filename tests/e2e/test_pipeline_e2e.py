"""The whole pipeline on the Graph emulator with the real clients: real notifications through
the receiver, in-process workers, outcomes from the ledger and budgets from the emulator."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.registry import FinishedJobRegistry
from rq.serializers import JSONSerializer

from tests.e2e.harness import Stack
from tests.e2e.scenarios import meeting, scenario
from workers.ledger import Ledger
from workers.salesforce import stage

CAROL = {"email": "carol@fabrikam.com", "name": "Carol Diaz"}
ALICE = {"upn": "alice@contoso.com"}


def key_of(stack: Stack, mid: str) -> str | None:
    ledger = Ledger(stack.conn)
    return ledger.find(stack.world.call_record_id(mid)) or ledger.find(
        stack.world.online_meeting_id(mid)
    )


def outcome(stack: Stack, mid: str) -> str | None:
    key = key_of(stack, mid)
    return Ledger(stack.conn).meeting(key).get("outcome") if key else None


def settle(stack: Stack, *mids: str, timeout: float = 30.0) -> None:
    assert stack.work(lambda: all(outcome(stack, m) for m in mids), timeout), {
        m: outcome(stack, m) for m in mids
    }


def total(stack: Stack) -> int:
    return sum(stack.graph_requests().values())


def meeting_entries(stack: Stack) -> int:
    return sum(1 for _ in stack.conn.scan_iter("ingest:ledger:meeting:*[^s]"))


class TestEveryReason:
    """Each reason code is reached from real notifications, with the budget each path allows."""

    @pytest.mark.slow
    def test_reasons_and_budgets(self, redis_url: str, tmp_path: Path, pushed: list[str]) -> None:
        policy = tmp_path / "policy.toml"
        policy.write_text('excluded = ["rival.com"]\n')
        dan = {"upn": "dan@contoso.com"}
        # meeting -> (reason, outcome, most Graph requests). Ineligible meetings with a
        # transcript: 4 on the callRecord path + the transcript's metadata on the other.
        cases = {
            "short": (meeting("short", seconds=30, transcript=None), "too_short", "skipped", 1),
            "bobs": (
                meeting("bobs", organizer="bob@contoso.com", transcript=None),
                "recorder_not_eci_user",
                "skipped",
                1,
            ),
            "rival": (
                meeting("rival", people=[ALICE, CAROL, {"email": "eve@rival.com"}]),
                "excluded_participant",
                "skipped",
                5,
            ),
            "ext": (
                meeting(
                    "ext", people=[ALICE, CAROL, {"phone": "+14255550100"}, {"guest": "Visitor"}]
                ),
                "external_participants",
                "pushed",
                8,
            ),
            "solo": (meeting("solo", people=[ALICE]), "solo_eci_user", "pushed", 8),
            "inside": (
                meeting("inside", people=[ALICE, dan]),
                "no_external_participants",
                "skipped",
                5,
            ),
        }
        doc = scenario(*(c[0] for c in cases.values()))
        with Stack(doc, redis_url, tmp_path, salesforce=True, policy_file=policy) as stack:
            stack.ensure_subscriptions()
            for mid, (_, reason, end, budget) in cases.items():
                before = total(stack)
                stack.play(mid)
                settle(stack, mid)
                state = Ledger(stack.conn).meeting(key_of(stack, mid) or "")
                assert (state["reason"], state["outcome"]) == (reason, end), mid
                assert total(stack) - before <= budget, (mid, stack.graph_requests())
            stats = stack.stats()
            assert stats["recording_content_downloads"] == 0
            assert stats["transcript_content_downloads"] == {"ext": 1, "solo": 1}
            assert sorted(pushed) == sorted(key_of(stack, m) for m in ("ext", "solo"))
            counts = Ledger(stack.conn).outcome_counts()
            assert (counts["pushed"], counts["skipped"]) == (2, 4)

    def test_ruled_out_by_call_record_costs_one_request(
        self, redis_url: str, tmp_path: Path, pushed: list[str]
    ) -> None:
        doc = scenario(
            meeting("short", seconds=30, transcript=None),
            meeting("bobs", organizer="bob@contoso.com"),
        )
        with Stack(doc, redis_url, tmp_path, salesforce=True) as stack:
            stack.ensure_subscriptions()
            for mid in ("short", "bobs"):
                before = stack.graph_requests()
                stack.play(mid)
                settle(stack, mid)
                after = stack.graph_requests()
                spent = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k)}
                assert spent == {"GET /v1.0/communications/callRecords/{id}": 1}, mid
            assert pushed == []


class TestCallRecordPathBudget:
    """An eligible meeting on the callRecord path alone: six requests, one of them the download."""

    def test_six(self, redis_url: str, tmp_path: Path, pushed: list[str]) -> None:
        with Stack(scenario(meeting("m1")), redis_url, tmp_path, salesforce=True) as stack:
            stack.ensure_subscriptions()
            _only_call_records(stack)
            stack.play("m1")
            settle(stack, "m1")
            assert outcome(stack, "m1") == "pushed"
            om = "GET /v1.0/users/{uid}/onlineMeetings"
            assert stack.graph_requests() == {
                "GET /v1.0/communications/callRecords/{id}": 1,
                om: 1,
                f"{om}/{{meeting}}/attendanceReports": 1,
                f"{om}/{{meeting}}/attendanceReports/{{report}}": 1,
                f"{om}/{{meeting}}/transcripts": 1,
                f"{om}/{{meeting}}/transcripts/{{transcript}}/content": 1,
            }
            assert stack.stats()["recording_content_downloads"] == 0


class TestConvergence:
    """Either order, duplicates and `updated` versions: one ledger entry, one download."""

    def test_call_record_then_late_transcript(
        self, redis_url: str, tmp_path: Path, pushed: list[str]
    ) -> None:
        doc = scenario(meeting("m1", transcript_ready_after_s=1.0))
        with Stack(doc, redis_url, tmp_path, salesforce=True, first=0.3) as stack:
            stack.ensure_subscriptions()
            stack.play("m1")
            settle(stack, "m1")
            # Graph redelivers at least once: every notification job again, after the
            # receiver's redelivery window (so it reaches the worker), and the meeting re-played.
            queue = Queue("ingest", connection=stack.conn, serializer=JSONSerializer)

            def notified() -> list[dict[str, Any]]:
                done = FinishedJobRegistry(queue=queue).get_job_ids()
                jobs = [Job.fetch(j, connection=stack.conn, serializer=JSONSerializer)
                        for j in done]  # fmt: skip
                return [j.args[0] for j in jobs if j.func_name.endswith("handle_notification")]

            # The callRecord's readiness poll may push before the transcript's own
            # notification has been handled: wait for that job too.
            both = {"callRecords", "transcripts"}
            assert stack.work(lambda: {p["kind"] for p in notified()} == both, timeout=15)
            spent = total(stack)
            again = notified()
            for payload in again:
                queue.enqueue("workers.jobs.handle_notification", payload)
            stack.play("m1")
            stack.work(lambda: False, timeout=1.5)
            assert outcome(stack, "m1") == "pushed"
            assert meeting_entries(stack) == 1
            assert total(stack) == spent  # a decided meeting costs no Graph request
            assert stack.stats()["transcript_content_downloads"] == {"m1": 1}
            assert len(pushed) == 1

    def test_transcript_then_call_record(
        self, redis_url: str, tmp_path: Path, pushed: list[str]
    ) -> None:
        with Stack(scenario(meeting("m1")), redis_url, tmp_path, salesforce=True) as stack:
            stack.ensure_subscriptions()
            queue = Queue("ingest", connection=stack.conn, serializer=JSONSerializer)
            stack.play("m1")
            # Wait for created, updated and transcript, then run the transcript's job first.
            deadline = time.monotonic() + 10
            while queue.count < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            jobs = queue.get_jobs()
            assert sorted(j.description.split()[0] for j in jobs) == [
                "callRecords",
                "callRecords",
                "transcripts",
            ]
            transcript_job = next(j for j in jobs if j.description.startswith("transcripts"))
            queue.remove(transcript_job)
            queue.enqueue_job(transcript_job, at_front=True)
            settle(stack, "m1")
            ledger = Ledger(stack.conn)
            key = key_of(stack, "m1")
            events = [e["what"] for e in ledger.events(key or "")]
            assert events[0] == "transcript notification"
            assert ledger.find(stack.world.call_record_id("m1")) == key
            assert meeting_entries(stack) == 1
            assert total(stack) <= 8
            assert stack.stats()["transcript_content_downloads"] == {"m1": 1}
            assert len(pushed) == 1


class TestReadiness:
    """A transcript that 404s for a while is fetched by the scheduled re-checks."""

    @pytest.mark.slow
    def test_fetched_after_rechecks(
        self, redis_url: str, tmp_path: Path, pushed: list[str]
    ) -> None:
        # Late enough that two re-checks miss it, however soon after play the first one runs.
        doc = scenario(meeting("late", transcript_ready_after_s=3.0))
        with Stack(doc, redis_url, tmp_path, salesforce=True, first=0.4, window=20.0) as stack:
            stack.ensure_subscriptions()
            _only_call_records(stack)  # no transcript notification: only re-checks can find it
            stack.play("late")
            settle(stack, "late")
            state = Ledger(stack.conn).meeting(key_of(stack, "late") or "")
            assert state["outcome"] == "pushed"
            assert int(state["attempts"]) >= 2
            assert stack.stats()["transcript_content_downloads"] == {"late": 1}

    def test_no_transcript_after_window(
        self, redis_url: str, tmp_path: Path, pushed: list[str]
    ) -> None:
        doc = scenario(meeting("none", transcript=None))
        with Stack(doc, redis_url, tmp_path, salesforce=True, first=0.3, window=1.0) as stack:
            stack.ensure_subscriptions()
            stack.play("none")
            settle(stack, "none")
            assert outcome(stack, "none") == "no_transcript"
            assert pushed == []


class TestFaults:
    """429 with Retry-After is honoured, and an expired token is replaced."""

    @pytest.mark.slow
    def test_throttled(self, redis_url: str, tmp_path: Path, pushed: list[str]) -> None:
        with Stack(scenario(meeting("m1")), redis_url, tmp_path, salesforce=True) as stack:
            stack.ensure_subscriptions()
            stack.set_faults(rate_429=0.5, retry_after_s=1, seed=7)
            stack.play("m1")
            settle(stack, "m1", timeout=60)
            assert outcome(stack, "m1") == "pushed"
            assert total(stack) > 6  # throttled requests were retried
            assert stack.stats()["transcript_content_downloads"] == {"m1": 1}

    def test_token_expiry(self, redis_url: str, tmp_path: Path, pushed: list[str]) -> None:
        doc = scenario(meeting("m1"), meeting("m2"))
        with Stack(doc, redis_url, tmp_path, salesforce=True) as stack:
            stack.ensure_subscriptions()
            stack.play("m1")
            settle(stack, "m1")
            issued = stack.stats()["tokens_issued"]
            stack.control("advance", {"seconds": 7200})  # the worker's token is now expired
            stack.play("m2")
            settle(stack, "m2")
            assert outcome(stack, "m2") == "pushed"
            assert stack.stats()["tokens_issued"] > issued


def _only_call_records(stack: Stack) -> None:
    stack.drop_subscriptions("transcripts")


class TestSameHandOffEitherOrder:
    """Transcript first or callRecord first, Salesforce receives the same meeting: the same ids,
    times and participant keys (a dial-in included)."""

    def _hand_off(
        self, order: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> Any:
        got: list[Any] = []
        real = stage.push

        def push(resolved: Any) -> dict[str, str]:  # the real stage, watched
            got.append(resolved)
            return real(resolved)

        monkeypatch.setattr(stage, "push", push)
        redis.Redis.from_url(redis_url).flushdb()  # each order on an empty ledger
        people = [ALICE, CAROL, {"phone": "+14255550100"}, {"guest": "Visitor"}]
        with Stack(
            scenario(meeting("m1", people=people)), redis_url, tmp_path / order, salesforce=True
        ) as stack:
            stack.ensure_subscriptions()
            queue = Queue("ingest", connection=stack.conn, serializer=JSONSerializer)
            stack.play("m1")
            deadline = time.monotonic() + 10
            while queue.count < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            first = next(j for j in queue.get_jobs() if j.description.startswith(order))
            queue.remove(first)
            queue.enqueue_job(first, at_front=True)
            settle(stack, "m1")
            assert len(got) == 1
            assert got[0].call_record_id == stack.world.call_record_id("m1")
            return got[0]

    def test_same_meeting(
        self, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        by_transcript = self._hand_off("transcripts", redis_url, tmp_path, monkeypatch)
        by_call_record = self._hand_off("callRecords", redis_url, tmp_path, monkeypatch)
        assert by_transcript == by_call_record
        assert len(by_transcript.participants) == 4
