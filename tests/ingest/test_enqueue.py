"""The enqueue script writes what RQ itself writes, and real RQ workers run the jobs."""

from __future__ import annotations

import json
import zlib
from typing import Any

import redis
import redis.asyncio as aioredis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.serializers import JSONSerializer

from ingest.enqueue import JOB_FUNCTIONS, SCRIPT_ITEMS, Enqueuer, job_options
from ingest.notifications import Item
from tests.ingest import payloads as p
from workers import context
from workers.ledger import Ledger

TIMESTAMPS = {b"created_at", b"enqueued_at"}


def item(cr_id: str = p.CALL_RECORD_ID) -> Item:
    return Item(
        "callRecords",
        p.CR_SUB,
        {
            "subscriptionId": p.CR_SUB,
            "tenantId": p.TENANT,
            "changeType": "created",
            "resource": f"communications/callRecords/{cr_id}",
            "ids": {"callRecordId": cr_id},
        },
    )


class TestSameAsRQ:
    """A job stored by the script is field for field the job RQ's own enqueue stores."""

    async def test_hash_matches_rq_enqueue(self, redis_url: str, redis_conn: redis.Redis) -> None:
        conn = aioredis.Redis.from_url(redis_url)
        enqueuer = Enqueuer(conn)
        [job_id] = await enqueuer.enqueue([item()])
        await conn.aclose()
        assert job_id is not None
        ours: dict[bytes, bytes] = redis_conn.hgetall(f"rq:job:{job_id}")  # type: ignore[assignment]

        # The same job through RQ's public API, into another key.
        stored = Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer)
        queue = Queue("ingest", connection=redis_conn, serializer=JSONSerializer)
        theirs_job = queue.enqueue_job(
            queue.create_job(
                JOB_FUNCTIONS["callRecords"],
                args=stored.args,
                job_id="reference",
                description=stored.description,
                **job_options(),
            )
        )
        theirs: dict[bytes, bytes] = redis_conn.hgetall(f"rq:job:{theirs_job.id}")  # type: ignore[assignment]

        assert set(ours) == set(theirs)
        for field in ours:
            if field in TIMESTAMPS:
                continue
            if field == b"data":
                # The same JSON document (ours is written compactly).
                assert json.loads(zlib.decompress(ours[field])) == json.loads(
                    zlib.decompress(theirs[field])
                )
            else:
                assert ours[field] == theirs[field], field
        assert redis_conn.lrange("rq:queue:ingest", 0, -1) == [job_id.encode(), b"reference"]
        assert b"rq:queue:ingest" in redis_conn.smembers("rq:queues")  # type: ignore[operator]


class TestWorkerRunsJobs:
    """Jobs stored by the receiver's script run in a real RQ worker and reach the ledger."""

    async def test_simple_worker_runs_them(
        self, redis_url: str, redis_conn: redis.Redis, settings: Any
    ) -> None:
        conn = aioredis.Redis.from_url(redis_url)
        ids = await Enqueuer(conn).enqueue([item(), item("0b0b0b0b-2966-4b6b-925b-754a88034cc5")])
        await conn.aclose()
        context.install(context.WorkerContext(settings, redis_conn))
        try:
            queue = Queue("ingest", connection=redis_conn, serializer=JSONSerializer)
            worker = SimpleWorker([queue], connection=redis_conn, serializer=JSONSerializer)
            assert worker.work(burst=True)
        finally:
            context.reset()
        for job_id in ids:
            assert job_id is not None
            job = Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer)
            # The job ran with its payload (no Graph here: the pipeline stops after noting it).
            assert job.get_status() != "queued"
        entry = Ledger(redis_conn).resource("callRecords", p.CALL_RECORD_ID)
        assert entry["notifications"] == "1"
        assert entry["last_event"] == "created"
        assert queue.count == 0


class TestLargeBatches:
    """A batch larger than one script call is split, and each item's answer stays its own."""

    async def test_split_across_calls_and_kinds(
        self, redis_url: str, redis_conn: redis.Redis
    ) -> None:
        event = {"subscriptionId": p.CR_SUB, "lifecycleEvent": "reauthorizationRequired"}
        lifecycle = Item("lifecycle", p.CR_SUB, event)
        n = 2 * SCRIPT_ITEMS + 7
        batch = [item(f"e523d2ed-2966-4b6b-925b-{k:012d}") for k in range(n)]
        conn = aioredis.Redis.from_url(redis_url)
        enqueuer = Enqueuer(conn)
        try:
            first = await enqueuer.enqueue(batch[::2])  # every other item, stored before
            mixed = [*batch[:SCRIPT_ITEMS], lifecycle, *batch[SCRIPT_ITEMS:]]
            again = await enqueuer.enqueue(mixed)
        finally:
            await conn.aclose()
        assert all(first)
        # The lifecycle item sits between two calls' worth of callRecords and is new; of the
        # others exactly the odd ones are, whichever call they went in.
        assert again[SCRIPT_ITEMS] is not None
        rest = [*again[:SCRIPT_ITEMS], *again[SCRIPT_ITEMS + 1 :]]
        assert [job_id is not None for job_id in rest] == [k % 2 == 1 for k in range(n)]
        queue = Queue("ingest", connection=redis_conn, serializer=JSONSerializer)
        assert queue.count == n + 1
