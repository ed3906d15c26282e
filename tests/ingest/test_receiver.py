"""The receiver's HTTP contract, DESIGN §3.2, through a real aiohttp server and a real Redis."""

from __future__ import annotations

import asyncio
import io
import json
import time
from typing import Any

import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from rq import Queue

from core.settings import Settings
from ingest.app import REGISTRY, create_app
from ingest.metrics import ReceiverMetrics
from tests.ingest import payloads as p
from tests.ingest.jwts import Signer
from workers import registry

Client = TestClient[web.Request, web.Application]
JSON = {"Content-Type": "application/json; charset=utf-8"}


async def post(client: Client, doc: Any, path: str = "/graph/notifications") -> int:
    resp = await client.post(path, data=io.BytesIO(json.dumps(doc).encode()), headers=JSON)
    return resp.status


def jobs(queue: Queue) -> list[dict[str, Any]]:
    return [job.args[0] for job in queue.jobs]


def sample(metrics: ReceiverMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


class TestHandshake:
    """A validationToken is echoed decoded, as text/plain with 200, on both paths, unparsed."""

    @pytest.mark.parametrize("path", ["/graph/notifications", "/graph/lifecycle"])
    @pytest.mark.parametrize(
        ("encoded", "decoded"),
        [
            ("abc123", "abc123"),
            (
                "Validation%3A%20Testing%20client%20application%20reachability",
                "Validation: Testing client application reachability",
            ),
            ("a%2Bb%2Fc%3D%3D", "a+b/c=="),
            ("%3Cscript%3Ealert(1)%3C%2Fscript%3E", "<script>alert(1)</script>"),
            ("caf%C3%A9", "café"),
        ],
    )
    async def test_echoes_the_decoded_token(
        self, client: Client, path: str, encoded: str, decoded: str
    ) -> None:
        resp = await client.post(
            f"{path}?validationToken={encoded}",
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        assert await resp.text() == decoded

    async def test_answers_before_looking_at_the_body(self, client: Client, queue: Queue) -> None:
        resp = await client.post(
            "/graph/notifications?validationToken=tok", data=b"{not json", headers=JSON
        )
        assert (resp.status, await resp.text()) == (200, "tok")
        assert queue.count == 0


class TestBadRequests:
    """Bodies that are not JSON objects with a `value` array get 400, 413 or 415 and no job."""

    @pytest.mark.parametrize(
        "content_type", ["text/plain", "application/xml", "multipart/form-data"]
    )
    async def test_non_json_content_type_is_415(self, client: Client, content_type: str) -> None:
        resp = await client.post(
            "/graph/notifications",
            data=json.dumps(p.body(p.call_record())),
            headers={"Content-Type": content_type},
        )
        assert resp.status == 415

    async def test_missing_content_type_is_415(self, client: Client) -> None:
        resp = await client.post(
            "/graph/notifications", data=b'{"value": []}', skip_auto_headers=["Content-Type"]
        )
        assert resp.status == 415

    @pytest.mark.parametrize(
        "data",
        [
            b"{",
            b"[]",
            b'"value"',
            b"{}",
            b'{"value": {}}',
            b'{"value": "x"}',
            b"\xff\xfe",
            b'{"value": null}',
        ],
    )
    async def test_not_an_object_with_a_value_array_is_400(
        self, client: Client, queue: Queue, data: bytes
    ) -> None:
        resp = await client.post("/graph/notifications", data=data, headers=JSON)
        assert resp.status == 400
        assert queue.count == 0

    async def test_over_the_size_limit_is_413(
        self, settings: Settings, redis_conn: redis.Redis, queue: Queue
    ) -> None:
        from dataclasses import replace

        from tests.ingest.conftest import register_known

        register_known(redis_conn)
        app = create_app(replace(settings, max_body_bytes=2048))
        big = p.body(*[p.call_record(cr_id=f"e523d2ed-2966-4b6b-925b-{n:012d}") for n in range(40)])
        async with TestClient(TestServer(app)) as c:
            assert await post(c, big) == 413

            async def chunks():  # no Content-Length: the limit still holds while reading
                yield json.dumps(big).encode()

            resp = await c.post("/graph/notifications", data=chunks(), headers=JSON)
            assert resp.status == 413
        assert queue.count == 0

    async def test_default_limit_is_one_mebibyte(self, client: Client) -> None:
        padding = "x" * (1024 * 1024)
        assert await post(client, {"value": [], "pad": padding}) == 413
        assert await post(client, {"value": [], "pad": padding[:900_000]}) == 202


class TestAccepted:
    """Genuine items are stored as RQ jobs by dotted path, without their clientState."""

    async def test_call_record_created(self, client: Client, queue: Queue) -> None:
        assert await post(client, p.body(p.call_record())) == 202
        [job] = queue.jobs
        assert job.func_name == "workers.jobs.handle_notification"
        args = job.args[0]
        assert args["kind"] == "callRecords"
        assert args["changeType"] == "created"
        assert args["ids"] == {"callRecordId": p.CALL_RECORD_ID}
        assert args["tenantId"] == p.TENANT
        assert p.CR_STATE not in json.dumps(args)
        assert "clientState" not in args

    async def test_call_record_updated_is_a_new_job(self, client: Client, queue: Queue) -> None:
        assert await post(client, p.body(p.call_record("created"))) == 202
        assert await post(client, p.body(p.call_record("updated"))) == 202
        assert [a["changeType"] for a in jobs(queue)] == ["created", "updated"]

    async def test_transcript_created_basic(self, client: Client, queue: Queue) -> None:
        assert await post(client, p.body(p.transcript())) == 202
        [args] = jobs(queue)
        assert args["kind"] == "transcripts"
        assert args["ids"] == {"meetingId": p.MEETING_ID, "transcriptId": p.TRANSCRIPT_ID}

    async def test_per_user_transcript_resource_names_the_organizer(
        self, client: Client, queue: Queue
    ) -> None:
        res = (
            f"users('{p.ORGANIZER_ID}')/onlineMeetings('{p.MEETING_ID}')"
            f"/transcripts('{p.TRANSCRIPT_ID}')"
        )
        item = p.transcript(resource=res)
        item["resourceData"]["@odata.id"] = res
        assert await post(client, p.body(item)) == 202
        assert jobs(queue)[0]["ids"]["organizerId"] == p.ORGANIZER_ID

    async def test_field_names_and_types_are_case_insensitive(
        self, rich_client: Client, queue: Queue, signer: Signer
    ) -> None:
        item = p.rich_transcript_capitalised()
        item = {k[0].upper() + k[1:]: v for k, v in item.items()}  # "SubscriptionId", ...
        body = p.body(item)
        body["ValidationTokens"] = [signer.mint()]
        assert await post(rich_client, body) == 202
        [args] = jobs(queue)
        assert args["encryptedContent"]["dataKey"] == "a2V5"

    async def test_batch_mixing_subscriptions_and_tenants(
        self, client: Client, queue: Queue, metrics: ReceiverMetrics
    ) -> None:
        batch = p.body(
            p.call_record(),
            p.transcript(),
            p.call_record(cr_id="0b0b0b0b-2966-4b6b-925b-754a88034cc5", tenantId=p.OTHER_TENANT),
        )
        assert await post(client, batch) == 202
        assert sorted(a["kind"] for a in jobs(queue)) == ["callRecords", "transcripts"]
        assert (
            sample(metrics, "ingest_notifications_dropped_total", reason="tenant_not_allowed") == 1
        )

    async def test_lifecycle_goes_to_its_own_job(self, client: Client, queue: Queue) -> None:
        assert await post(client, p.body(p.lifecycle()), "/graph/lifecycle") == 202
        [job] = queue.jobs
        assert job.func_name == "workers.jobs.handle_lifecycle"
        assert job.args[0]["lifecycleEvent"] == "reauthorizationRequired"

    async def test_empty_value_is_accepted(self, client: Client, queue: Queue) -> None:
        assert await post(client, {"value": []}) == 202
        assert queue.count == 0


class TestDropped:
    """Items that are not genuine are dropped, counted by reason and logged; the answer is 202."""

    @pytest.mark.parametrize(
        ("item", "reason"),
        [
            (
                p.call_record(subscriptionId="99999999-9999-9999-9999-999999999999"),
                "unknown_subscription",
            ),
            (p.call_record(clientState="guess"), "bad_client_state"),
            (p.call_record(clientState=None), "bad_client_state"),
            (p.call_record(clientState=p.TR_STATE), "bad_client_state"),
            (p.call_record(tenantId=p.OTHER_TENANT), "tenant_not_allowed"),
            (p.call_record("deleted"), "bad_change_type"),
            (p.transcript(changeType="updated"), "bad_change_type"),
            (p.call_record(resource="communications/callRecords/../../users"), "bad_resource"),
            (
                p.call_record(resource=f"communications/callRecords/{p.CALL_RECORD_ID}?$expand=x"),
                "bad_resource",
            ),
            (
                p.call_record(resource=f"communications/callRecords/{p.CALL_RECORD_ID}/sessions"),
                "bad_resource",
            ),
            (
                p.transcript(resource="communications/onlineMeetings('a')/../transcripts('b')"),
                "bad_resource",
            ),
            (
                p.transcript(resource="communications/onlineMeetings('a?x=1')/transcripts('b')"),
                "bad_resource",
            ),
            (
                p.transcript(resource="communications/onlineMeetings('a')/recordings('b')"),
                "bad_resource",
            ),
            (
                p.call_record(resourceData={"@odata.type": "#microsoft.graph.user", "id": "x"}),
                "bad_resource",
            ),
            (
                p.call_record(resourceData={"id": "0b0b0b0b-2966-4b6b-925b-754a88034cc5"}),
                "bad_resource",
            ),
            (p.call_record(lifecycleEvent="missed"), "malformed_item"),
            (p.lifecycle(event="somethingElse"), "bad_lifecycle_event"),
            ({"subscriptionId": p.CR_SUB}, "bad_client_state"),
            ("not an object", "malformed_item"),
            (p.call_record(subscriptionId="../x"), "malformed_item"),
            (p.call_record(tenantId="not-a-guid"), "malformed_item"),
        ],
    )
    async def test_dropped_with_reason(
        self, client: Client, queue: Queue, metrics: ReceiverMetrics, item: Any, reason: str
    ) -> None:
        from structlog.testing import capture_logs

        with capture_logs() as logs:
            assert await post(client, {"value": [item]}) == 202
        assert queue.count == 0
        assert sample(metrics, "ingest_notifications_dropped_total", reason=reason) == 1
        [event] = [e for e in logs if e.get("event") == "security_event"]
        assert (event["reasons"], event["dropped"]) == ({reason: 1}, 1)
        assert [s["reason"] for s in event["samples"]] == [reason]
        assert all(p.CR_STATE not in json.dumps(e, default=str) for e in logs)

    async def test_a_new_subscription_is_seen_at_once(
        self, client: Client, redis_conn: redis.Redis, queue: Queue
    ) -> None:
        hold_copy(client)
        assert await post(client, p.body(p.call_record())) == 202  # loads the registry
        registry.save(
            redis_conn,
            registry.Subscription(
                id=p.USER_TR_SUB,
                resource=f"users/{p.ORGANIZER_ID}/onlineMeetings/getAllTranscripts",
                kind="transcripts",
                client_state="fresh",
                tenant_id=p.TENANT,
            ),
        )
        # The copy is not reloaded before the item comes (as within a second of a reload).
        item = p.transcript(subscriptionId=p.USER_TR_SUB, clientState="fresh")
        assert await post(client, p.body(item)) == 202
        assert queue.count == 2

    async def test_unknown_ids_cost_one_command_and_no_reload(
        self, client: Client, redis_conn: redis.Redis, queue: Queue, metrics: ReceiverMetrics
    ) -> None:
        hold_copy(client)
        assert await post(client, p.body(p.call_record())) == 202  # loads the registry
        before = commands(redis_conn)
        strangers = [f"{n:08x}-0000-4000-8000-000000000000" for n in range(50)]
        items = [p.call_record(subscriptionId=s) for s in strangers]
        for _ in range(3):
            assert await post(client, p.body(*items)) == 202
        after = commands(redis_conn)
        assert after.get("smismember", 0) - before.get("smismember", 0) == 3
        assert after.get("smembers", 0) == before.get("smembers", 0)  # no reload
        assert after.get("hgetall", 0) == before.get("hgetall", 0)  # none of them held
        assert queue.count == 1
        assert sample(metrics, "ingest_notifications_dropped_total",
                      reason="unknown_subscription") == 150  # fmt: skip


def hold_copy(client: Client) -> None:
    """No reload of the receiver's registry copy after its first: every later request lands
    within the reload limits, however slowly the test runs."""
    copy = client.app[REGISTRY]
    copy.refresh_s = copy.miss_refresh_s = 3600.0


def commands(conn: redis.Redis) -> dict[str, int]:
    """Calls per Redis command so far, from INFO commandstats."""
    stats: dict[str, Any] = conn.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


class TestWrongPlace:
    """Items Graph would never send where they arrive are dropped (202, counted, one
    security_event): lifecycle events come only to the lifecycle URL, changes only to the
    notification URL, and a user's transcript subscription names only that user's meetings."""

    @pytest.mark.parametrize(
        ("path", "item"),
        [("/graph/notifications", p.lifecycle()), ("/graph/lifecycle", p.call_record())],
    )
    async def test_wrong_endpoint(
        self, client: Client, queue: Queue, metrics: ReceiverMetrics, path: str, item: Any
    ) -> None:
        assert await post(client, p.body(item), path) == 202
        assert queue.count == 0
        assert sample(metrics, "ingest_notifications_dropped_total", reason="wrong_endpoint") == 1

    async def test_user_subscription_names_another_user(
        self, client: Client, queue: Queue, redis_conn: redis.Redis, metrics: ReceiverMetrics
    ) -> None:
        registry.save(redis_conn, registry.Subscription(
            id=p.USER_TR_SUB, resource=f"users/{p.ORGANIZER_ID}/onlineMeetings/getAllTranscripts",
            kind="transcripts", client_state=p.TR_STATE, tenant_id=p.TENANT,
            user_id=p.ORGANIZER_ID,
        ))  # fmt: skip

        def of(user: str) -> dict[str, Any]:
            res = (
                f"users('{user}')/onlineMeetings('{p.MEETING_ID}')/transcripts('{p.TRANSCRIPT_ID}')"
            )
            item = p.transcript(resource=res, subscriptionId=p.USER_TR_SUB)
            item["resourceData"]["@odata.id"] = res
            return item

        other = "0d9e8f7a-1111-4d40-900c-6265431fd81f"
        assert await post(client, p.body(of(other))) == 202
        assert queue.count == 0
        reason = "resource_not_subscribed"
        assert sample(metrics, "ingest_notifications_dropped_total", reason=reason) == 1
        assert await post(client, p.body(of(p.ORGANIZER_ID.upper()))) == 202
        assert [a["ids"]["organizerId"] for a in jobs(queue)] == [p.ORGANIZER_ID]

    async def test_registry_size_is_a_gauge(self, client: Client, metrics: ReceiverMetrics) -> None:
        assert await post(client, p.body(p.call_record())) == 202
        assert sample(metrics, "ingest_subscriptions_known") == 2


class TestDedupe:
    """An exact redelivery is stored once, whether in the same request or a later one."""

    async def test_same_item_twice_in_one_request(
        self, client: Client, queue: Queue, metrics: ReceiverMetrics
    ) -> None:
        assert await post(client, p.body(p.call_record(), p.call_record())) == 202
        assert queue.count == 1
        assert sample(metrics, "ingest_notifications_duplicate_total") == 1

    async def test_redelivery_in_a_later_request(self, client: Client, queue: Queue) -> None:
        for _ in range(3):
            assert await post(client, p.body(p.call_record())) == 202
        assert queue.count == 1

    async def test_different_items_are_not_duplicates(self, client: Client, queue: Queue) -> None:
        other = p.call_record(cr_id="0b0b0b0b-2966-4b6b-925b-754a88034cc5")
        assert await post(client, p.body(p.call_record(), other)) == 202
        assert queue.count == 2


class TestRedisDown:
    """Without Redis, notifications get 503 (so Graph retries) and /readyz says 503."""

    @pytest.fixture
    async def down_client(self, settings: Settings) -> Any:
        from dataclasses import replace

        from ingest.embedded_redis import free_port

        app = create_app(replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0"))
        async with TestClient(TestServer(app)) as c:
            yield c

    async def test_notifications_get_503(self, down_client: Client) -> None:
        assert await post(down_client, p.body(p.call_record())) == 503

    async def test_handshake_still_works(self, down_client: Client) -> None:
        resp = await down_client.post("/graph/notifications?validationToken=t")
        assert (resp.status, await resp.text()) == (200, "t")

    async def test_readyz_is_503_and_healthz_200(self, down_client: Client) -> None:
        assert (await down_client.get("/readyz")).status == 503
        assert (await down_client.get("/healthz")).status == 200

    async def test_redis_stopping_mid_run(
        self, settings: Settings, redis_conn: redis.Redis
    ) -> None:
        from dataclasses import replace

        from ingest.embedded_redis import RedisServer
        from tests.ingest.conftest import register_known

        with RedisServer() as own:
            own_url = f"{own.url}/0"
            register_known(redis.Redis.from_url(own_url))
            app = create_app(replace(settings, redis_url=own_url))
            async with TestClient(TestServer(app)) as c:
                assert await post(c, p.body(p.call_record())) == 202
                own.stop()
                other = p.call_record(cr_id="0b0b0b0b-2966-4b6b-925b-754a88034cc5")
                assert await post(c, p.body(other)) == 503
                assert (await c.get("/readyz")).status == 503


class TestBursts:
    """A burst of more requests than the receiver keeps Redis connections waits for one: each
    gets 202, none a 503 (DESIGN §3.2: 503 only when Redis cannot take the items)."""

    async def test_more_requests_than_connections_while_redis_is_slow(
        self, settings: Settings, redis_conn: redis.Redis, queue: Queue, metrics: ReceiverMetrics
    ) -> None:
        from aiohttp import TCPConnector

        from tests.ingest.conftest import register_known

        register_known(redis_conn)
        app = create_app(settings, metrics=metrics)
        burst = 160  # past redis-py's default pool (100) and the receiver's own
        bodies = [
            p.body(p.call_record(cr_id=f"e523d2ed-2966-4b6b-925b-{n:012d}")) for n in range(burst)
        ]
        async with TestClient(TestServer(app), connector=TCPConnector(limit=0)) as c:
            assert await post(c, p.body(p.call_record())) == 202  # the registry copy is loaded
            # Redis holds every write (the enqueue script) until unpaused: each request that
            # reaches it keeps its connection meanwhile.
            redis_conn.execute_command("CLIENT", "PAUSE", 20_000, "WRITE")
            try:
                tasks = [asyncio.create_task(post(c, body)) for body in bodies]
                deadline = time.monotonic() + 15
                # Counted before the enqueue, with no wait in between: once all are, each
                # request is at the enqueue (holding a connection, waiting for one, or answered).
                while sample(metrics, "ingest_notifications_received_total",
                             endpoint="notifications") < burst + 1:  # fmt: skip
                    assert time.monotonic() < deadline, "the burst did not reach the receiver"
                    await asyncio.sleep(0.01)
            finally:
                redis_conn.execute_command("CLIENT", "UNPAUSE")
            statuses = await asyncio.gather(*tasks)
        assert statuses == [202] * burst
        assert queue.count == burst + 1


class TestProbes:
    """/healthz, /readyz and /metrics answer as DESIGN §3.2 says."""

    async def test_ready_with_redis(self, client: Client) -> None:
        assert (await client.get("/readyz")).status == 200
        assert (await client.get("/healthz")).status == 200

    async def test_metrics_in_prometheus_format(self, client: Client) -> None:
        await post(client, p.body(p.call_record(), p.call_record(clientState="x")))
        resp = await client.get("/metrics")
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        text = await resp.text()
        assert 'ingest_notifications_received_total{endpoint="notifications"} 2.0' in text
        assert 'ingest_notifications_accepted_total{kind="callRecords"} 1.0' in text
        assert 'ingest_notifications_dropped_total{reason="bad_client_state"} 1.0' in text
        assert "ingest_enqueue_seconds_bucket" in text
        assert "ingest_request_seconds_bucket" in text
