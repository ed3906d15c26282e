"""Every job gets its options from one place, and a `Retry-After` sets its next retry."""

from __future__ import annotations

import time

import redis
from rq import Queue, Retry, SimpleWorker
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from core import defaults
from ingest.enqueue import job_options
from workers import retries


class TestOneSchedule:
    """Notification jobs and the workers' own jobs share timeout, result lifetime and retries."""

    def test_same_options(self) -> None:
        ours, receivers = retries.options(), job_options()
        assert ours["job_timeout"] == receivers["timeout"] == defaults.JOB_TIMEOUT_SECONDS
        assert ours["result_ttl"] == receivers["result_ttl"] == defaults.JOB_RESULT_TTL_SECONDS
        for retry in (ours["retry"], receivers["retry"]):
            assert retry.max == len(defaults.JOB_RETRY_INTERVALS)
            assert retry.intervals == list(defaults.JOB_RETRY_INTERVALS)


class TestRetryAfter:
    """A transient failure with Retry-After 7 s is retried no sooner than 7 s later, though
    the job's own interval is 1 s; the retry then runs and succeeds."""

    def test_next_retry_waits_retry_after(self, redis_conn: redis.Redis) -> None:
        queue = Queue("ingest", connection=redis_conn, serializer=JSONSerializer)
        job = queue.enqueue(
            "tests.workers.crash_jobs.throttled", "a", retry=Retry(max=2, interval=1)
        )
        before = time.time()
        SimpleWorker([queue], connection=redis_conn, serializer=JSONSerializer).work(burst=True)
        assert job.get_status(refresh=True) == "scheduled"
        registry = ScheduledJobRegistry(queue=queue)
        [(job_id, at)] = redis_conn.zrange(registry.key, 0, -1, withscores=True)
        assert job_id.decode() == job.id
        assert at >= int(before) + 7  # not the job's own 1 s
        # Due now (as if 7 s had passed): the retry runs and succeeds.
        redis_conn.zadd(registry.key, {job.id: 0})
        queue_again = Queue("ingest", connection=redis_conn, serializer=JSONSerializer)
        SimpleWorker([queue_again], connection=redis_conn,
                     serializer=JSONSerializer).work(burst=True, with_scheduler=True)  # fmt: skip
        done = Job.fetch(job.id, connection=redis_conn, serializer=JSONSerializer)
        assert done.get_status() == "finished" and done.return_value() == 2
