"""The enqueue script writes what RQ itself writes, and real RQ workers run the jobs."""

from __future__ import annotations

import asyncio
import json
import zlib
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.serializers import JSONSerializer

from ingest.embedded_redis import RedisServer
from ingest.enqueue import JOB_FUNCTIONS, SCRIPT_ITEMS, Enqueuer, job_options
from ingest.notifications import Item
from tests.e2e.harness import Stack
from tests.e2e.scenarios import meeting, scenario
from tests.ingest import payloads as p
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


async def enqueue(redis_url: str, items: list[Item]) -> list[str | None]:
    conn = aioredis.Redis.from_url(redis_url)
    try:
        return await Enqueuer(conn).enqueue(items)
    finally:
        await conn.aclose()


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


@pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph")
@pytest.mark.filterwarnings("ignore::DeprecationWarning:kiota_abstractions")
class TestWorkerRunsJobs:
    """Jobs stored by the receiver's script run to the end in a real RQ worker: each finishes,
    reads the callRecord from the Graph emulator and settles its meeting in the ledger."""

    def test_simple_worker_runs_them(
        self, redis_url: str, redis_conn: redis.Redis, tmp_path: Path
    ) -> None:
        doc = scenario(meeting("m1", organizer="bob@contoso.com"))  # not an ECI user: skipped
        with Stack(doc, redis_url, tmp_path) as stack:
            stack.play("m1")  # the meeting happens; no subscription, so no notification
            cr_id = stack.world.call_record_id("m1")
            ids = asyncio.run(enqueue(redis_url, [item(cr_id)]))
            queue = Queue("ingest", connection=redis_conn, serializer=JSONSerializer)
            worker = SimpleWorker([queue], connection=redis_conn, serializer=JSONSerializer)
            assert worker.work(burst=True)
            for job_id in ids:
                assert job_id is not None
                job = Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer)
                result = job.latest_result()
                assert job.get_status() == "finished", result and result.exc_string
            ledger = Ledger(redis_conn)
            entry = ledger.resource("callRecords", cr_id)
            assert entry["notifications"] == "1"
            assert entry["last_event"] == "created"
            key = ledger.find(cr_id)
            assert key is not None
            state = ledger.meeting(key)
            assert (state["outcome"], state["reason"]) == ("skipped", "recorder_not_eci_user")
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


class TestRounds:
    """Requests that arrive while a round is in Redis share the next script call; a round that
    fails fails each of its requests, and the next round stores again."""

    async def test_concurrent_requests_share_script_calls(
        self, redis_url: str, redis_conn: redis.Redis
    ) -> None:
        conn = aioredis.Redis.from_url(redis_url)
        enqueuer = Enqueuer(conn)
        burst = 50
        try:
            redis_conn.config_resetstat()
            ids = await asyncio.gather(*(
                enqueuer.enqueue([item(f"e523d2ed-2966-4b6b-925b-{n:012d}")])
                for n in range(burst)
            ))  # fmt: skip
        finally:
            await conn.aclose()
        assert all(job_id is not None for [job_id] in ids)
        assert len({job_id for [job_id] in ids}) == burst
        calls = redis_conn.info("commandstats")["cmdstat_evalsha"]["calls"]
        assert calls <= 3  # one call a request would be 50
        assert Queue("ingest", connection=redis_conn).count == burst

    async def test_a_failed_round_fails_each_request_and_the_next_stores(self) -> None:
        with RedisServer() as own:
            conn = aioredis.Redis.from_url(f"{own.url}/0", socket_connect_timeout=1.0)
            enqueuer = Enqueuer(conn)
            try:
                assert await enqueuer.enqueue([item()]) != [None]
                own.halt()
                results = await asyncio.gather(
                    *(enqueuer.enqueue([item(f"0b0b0b0b-2966-4b6b-925b-{n:012d}")])
                      for n in range(3)),
                    return_exceptions=True,
                )  # fmt: skip
                assert all(isinstance(r, RedisError) for r in results), results
                own.restart()
                [job_id] = await enqueuer.enqueue([item("0c0c0c0c-2966-4b6b-925b-754a88034cc5")])
            finally:
                await conn.aclose()
            assert job_id is not None
            stored = redis.Redis.from_url(f"{own.url}/0")
            assert stored.exists(f"rq:job:{job_id}")
