"""`ingest dlq`: failed jobs with their stage, meeting and reason; requeue runs one once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from core import keys
from ingest.cli import main
from tests.e2e.harness import Stack
from tests.e2e.scenarios import meeting, scenario

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:kiota_abstractions"),
]


def dlq(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["dlq", *args])
    out, err = capsys.readouterr()
    return code, out, err


class TestDeadLetters:
    """A job that failed is listed with its reason; requeued, it keeps its id and runs once."""

    def test_list_and_requeue(
        self,
        redis_url: str,
        redis_conn: redis.Redis,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        monkeypatch.setenv("REDIS_URL", redis_url)
        doc = scenario(meeting("m1", organizer="bob@contoso.com"))
        with Stack(doc, redis_url, tmp_path) as stack:
            stack.play("m1")
            cr_id = stack.world.call_record_id("m1")
            stack.set_faults(rate_503=1.0)  # Graph is down: the job fails (no retries left)
            queue = Queue("ingest", connection=redis_conn, serializer=JSONSerializer)
            payload = {"kind": "callRecords", "changeType": "created",
                       "resource": f"communications/callRecords/{cr_id}",
                       "ids": {"callRecordId": cr_id}}  # fmt: skip
            job = queue.enqueue(keys.JOB_NOTIFICATION, payload, job_timeout=60)
            stack.work(lambda: FailedJobRegistry(queue=queue).count == 1, timeout=30)
            assert job.get_status(refresh=True) == "failed"

            code, out, _ = dlq(capsys, "list", "--json")
            assert code == 0
            [row] = json.loads(out)["failed"]
            assert row["id"] == job.id and row["stage"] == "notification"
            assert row["resource"] == cr_id
            assert row["error_class"] == "UpstreamTransient"
            assert "503" in row["error"]
            assert row["attempts"] == 1 and row["first_failure"] == row["last_failure"]

            code, out, _ = dlq(capsys, "list")
            assert code == 0 and job.id in out and "UpstreamTransient" in out

            stack.set_faults(rate_503=0.0)
            code, out, _ = dlq(capsys, "requeue", job.id)
            assert (code, out.strip()) == (0, f"requeued {job.id}")
            assert FailedJobRegistry(queue=queue).count == 0
            assert stack.work(lambda: job.get_status(refresh=True) == "finished", timeout=30)
        again = Job.fetch(job.id, connection=redis_conn, serializer=JSONSerializer)
        kinds = [r.type.name for r in again.results()]
        assert sorted(kinds) == ["FAILED", "SUCCESSFUL"]  # one failure, then one run
        seen = redis_conn.hget(f"ingest:ledger:resource:callRecords:{cr_id}", "notifications")
        assert seen == b"2"

    def test_requeue_of_an_unknown_job_fails(
        self, redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("REDIS_URL", redis_url)
        code, _, err = dlq(capsys, "requeue", "no-such-job")
        assert code == 1 and "no failed job no-such-job" in err

    @pytest.mark.parametrize("args", [["requeue"], ["requeue", "x", "--all"]])
    def test_requeue_needs_one_job_or_all(
        self,
        args: list[str],
        redis_url: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        monkeypatch.setenv("REDIS_URL", redis_url)
        code, out, err = dlq(capsys, *args)
        assert code == 2 and out == "" and "JOB_ID or --all" in err

    def test_empty(
        self, redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("REDIS_URL", redis_url)
        assert dlq(capsys, "list", "--json") == (0, '{"failed": []}\n', "")
        assert dlq(capsys, "requeue", "--all") == (0, "no failed jobs\n", "")
