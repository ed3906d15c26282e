"""Rich notifications: stored only when every validation token of the POST checks out.

Graph docs, "Set up change notifications that include resource data": `validationTokens`
is "only present for notifications with resource data", and each token must be validated
before the data is trusted (graph.md §7). The HMAC key of `encryptedContent` travels
encrypted with our public certificate, so it proves nothing about the sender: an item with
`encryptedContent` and no valid token is dropped (counted, one `security_event`), and the
POST still gets `202`.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from rq import Queue
from structlog.testing import capture_logs

from core.settings import Settings
from ingest.app import TOKENS, create_app
from ingest.embedded_redis import free_port
from ingest.metrics import ReceiverMetrics
from ingest.tokens import RETRY_SECONDS
from tests.ingest import payloads as p
from tests.ingest.conftest import register_known
from tests.ingest.jwts import APP_ID, Jwks, Signer
from tests.workers.test_rich import make_cert

Client = TestClient[web.Request, web.Application]
JSON = {"Content-Type": "application/json"}
HOUR = 3600


async def post(client: Client, doc: Any) -> int:
    data = io.BytesIO(json.dumps(doc).encode())
    resp = await client.post("/graph/notifications", data=data, headers=JSON)
    return resp.status


def dropped(metrics: ReceiverMetrics, reason: str) -> float:
    value = metrics.registry.get_sample_value("ingest_notifications_dropped_total",
                                              {"reason": reason})  # fmt: skip
    return value or 0.0


def security_events(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e.get("event") == "security_event"]


def rich() -> dict[str, Any]:
    return p.rich_transcript_capitalised()


class TestGenuine:
    """Tokens of either version from Graph's change tracking app let the item through."""

    @pytest.mark.parametrize("version", ["2.0", "1.0"])
    async def test_stored_without_its_tokens(
        self, rich_client: Client, queue: Queue, signer: Signer, version: str
    ) -> None:
        token = signer.mint(version=version)
        assert await post(rich_client, p.body(rich(), validationTokens=[token])) == 202
        [job] = queue.jobs
        assert job.args[0]["encryptedContent"]["dataKey"] == "a2V5"
        # Checked here; a job that waits an hour would only find them expired.
        assert "validationTokens" not in job.args[0]

    async def test_keys_are_fetched_once_for_many_requests(
        self, rich_client: Client, queue: Queue, signer: Signer, jwks: Jwks
    ) -> None:
        for n in range(3):
            item = rich()
            item["Id"] = f"item-{n}"
            assert await post(rich_client, p.body(item, validationTokens=[signer.mint()])) == 202
        assert (queue.count, jwks.fetches) == (3, 1)

    async def test_basic_items_need_no_token(
        self, rich_client: Client, queue: Queue, jwks: Jwks
    ) -> None:
        assert await post(rich_client, p.body(p.call_record(), p.transcript())) == 202
        assert (queue.count, jwks.fetches) == (2, 0)


class TestRefused:
    """A missing or failing token drops every rich item of the POST; nothing is stored."""

    async def test_without_validation_tokens(
        self, rich_client: Client, queue: Queue, metrics: ReceiverMetrics
    ) -> None:
        with capture_logs() as logs:
            assert await post(rich_client, p.body(rich())) == 202
            assert await post(rich_client, p.body(rich(), validationTokens=[])) == 202
        assert queue.count == 0
        assert dropped(metrics, "validation_tokens_missing") == 2
        [event, *_] = security_events(logs)
        assert event["reasons"] == {"validation_tokens_missing": 1}
        assert event["samples"][0]["subscription_id"] == p.TR_SUB

    @pytest.mark.parametrize(
        ("claims", "why"),
        [
            ({"_lifetime": "past"}, "expired"),
            ({"_lifetime": "future"}, "not_yet_valid"),
            ({"aud": "00000003-0000-0000-c000-000000000000"}, "wrong_audience"),
            ({"aud": None}, "missing_claim"),
            ({"iss": "https://login.microsoftonline.com/common/v2.0"}, "wrong_issuer"),
            ({"iss": f"https://sts.example.net/{p.TENANT}/"}, "wrong_issuer"),
            ({"tenant": p.OTHER_TENANT}, "tenant_not_allowed"),
            ({"azp": "11111111-2222-3333-4444-555555555555"}, "wrong_publisher"),
            # v2.0 names the publisher in `azp`; an `appid` beside it changes nothing.
            ({"azp": None, "appid": "0bf30f3b-4a52-48df-9a82-234910c4a086"}, "wrong_publisher"),
            ({"version": "1.0", "appid": APP_ID}, "wrong_publisher"),
            ({"ver": None}, "unknown_version"),
        ],
    )
    async def test_failing_check(
        self,
        rich_client: Client,
        queue: Queue,
        metrics: ReceiverMetrics,
        signer: Signer,
        claims: dict[str, Any],
        why: str,
    ) -> None:
        over = dict(claims)
        lifetime = over.pop("_lifetime", None)
        if lifetime == "past":  # an hour ago: well beyond the five minutes of clock skew
            over.update(iat=_now() - 2 * HOUR, nbf=_now() - 2 * HOUR, exp=_now() - HOUR)
        elif lifetime == "future":
            over.update(nbf=_now() + HOUR, exp=_now() + 2 * HOUR)
        token = signer.mint(**over)
        with capture_logs() as logs:
            assert await post(rich_client, p.body(rich(), validationTokens=[token])) == 202
        assert queue.count == 0
        assert dropped(metrics, "validation_token_invalid") == 1
        [event] = security_events(logs)
        assert (event["reasons"], event["token_error"]) == ({"validation_token_invalid": 1}, why)
        assert token not in json.dumps(logs, default=str)

    async def test_signed_by_a_key_nobody_published(
        self, rich_client: Client, queue: Queue, jwks: Jwks, other_signer: Signer
    ) -> None:
        with capture_logs() as logs:
            doc = p.body(rich(), validationTokens=[other_signer.mint()])
            assert await post(rich_client, doc) == 202
        assert (queue.count, jwks.fetches) == (0, 1)
        assert security_events(logs)[0]["token_error"] == "unknown_key"

    async def test_one_bad_token_among_good_ones_spoils_the_post(
        self, rich_client: Client, queue: Queue, signer: Signer
    ) -> None:
        tokens = [signer.mint(), signer.mint(aud="someone-else")]
        # The basic item of the same POST is authenticated by its clientState and stays.
        body = p.body(rich(), p.call_record(), validationTokens=tokens)
        assert await post(rich_client, body) == 202
        assert [j.args[0]["kind"] for j in queue.jobs] == ["callRecords"]

    async def test_tampered_signature(
        self, rich_client: Client, queue: Queue, metrics: ReceiverMetrics, signer: Signer
    ) -> None:
        token = signer.mint()
        head, _, sig = token.split(".")
        other_body = signer.mint(aud="someone-else").split(".")[1]
        with capture_logs() as logs:
            doc = p.body(rich(), validationTokens=[f"{head}.{other_body}.{sig}"])
            assert await post(rich_client, doc) == 202
        assert queue.count == 0
        assert security_events(logs)[0]["token_error"] == "bad_signature"

    @pytest.mark.parametrize("tokens", [["eyJ.a.b"], [42], "not-a-list", ["x" * 9000]])
    async def test_malformed_tokens_fetch_nothing(
        self, rich_client: Client, queue: Queue, jwks: Jwks, tokens: Any
    ) -> None:
        assert await post(rich_client, p.body(rich(), validationTokens=tokens)) == 202
        assert (queue.count, jwks.fetches) == (0, 0)

    async def test_a_token_must_vouch_for_the_items_tenant(
        self,
        rich_settings: Settings,
        redis_conn: redis.Redis,
        queue: Queue,
        metrics: ReceiverMetrics,
        signer: Signer,
    ) -> None:
        """Graph sends one token per app and tenant: a genuine token of another allowed tenant
        says nothing about this tenant's items."""
        register_known(redis_conn)
        both = replace(rich_settings, graph_allowed_tenants=(p.TENANT, p.OTHER_TENANT))
        app = create_app(both, metrics=metrics)
        async with TestClient(TestServer(app)) as c:
            token = signer.mint(tenant=p.OTHER_TENANT)
            assert await post(c, p.body(rich(), validationTokens=[token])) == 202
            assert queue.count == 0
            assert dropped(metrics, "validation_tokens_missing") == 1
            both_tokens = [token, signer.mint()]
            assert await post(c, p.body(rich(), validationTokens=both_tokens)) == 202
            assert queue.count == 1


class TestUnknownKey:
    """An unknown `kid` refetches the keys once, then refuses; refetches are rate-limited."""

    async def test_one_refresh_then_refusal(
        self,
        rich_app: web.Application,
        queue: Queue,
        jwks: Jwks,
        signer: Signer,
        other_signer: Signer,
    ) -> None:
        now = [1000.0]
        keys = rich_app[TOKENS].keys
        keys.clock = lambda: now[0]
        async with TestClient(TestServer(rich_app)) as c:
            assert await post(c, p.body(rich(), validationTokens=[signer.mint()])) == 202
            assert (queue.count, jwks.fetches) == (1, 1)
            now[0] += keys.min_refresh_s

            rotated = other_signer.mint()
            item = rich()
            item["Id"] = "second"
            assert await post(c, p.body(item, validationTokens=[rotated])) == 202
            assert (queue.count, jwks.fetches) == (1, 2)  # refetched once, still unknown
            jwks.published.append(other_signer)  # the new key appears ...
            assert await post(c, p.body(item, validationTokens=[rotated])) == 202
            assert (queue.count, jwks.fetches) == (1, 2)  # ... but not before the interval
            now[0] += keys.min_refresh_s - 1
            assert await post(c, p.body(item, validationTokens=[rotated])) == 202
            assert (queue.count, jwks.fetches) == (1, 2)

            now[0] += 1
            assert await post(c, p.body(item, validationTokens=[rotated])) == 202
            assert (queue.count, jwks.fetches) == (2, 3)
            # Known keys need no fetch at all.
            item["Id"] = "third"
            assert await post(c, p.body(item, validationTokens=[signer.mint()])) == 202
            assert (queue.count, jwks.fetches) == (3, 3)

    async def test_unreachable_keys_refuse_and_are_not_hammered(
        self,
        rich_settings: Settings,
        redis_conn: redis.Redis,
        queue: Queue,
        metrics: ReceiverMetrics,
        signer: Signer,
    ) -> None:
        register_known(redis_conn)
        nowhere = replace(rich_settings, graph_authority=f"http://127.0.0.1:{free_port()}")
        app = create_app(nowhere, metrics=metrics)
        now = [0.0]
        keys = app[TOKENS].keys
        keys.clock = lambda: now[0]
        async with TestClient(TestServer(app)) as c:
            for _ in range(3):
                assert await post(c, p.body(rich(), validationTokens=[signer.mint()])) == 202
            assert queue.count == 0
            assert keys.fetches == 1
            assert dropped(metrics, "validation_token_invalid") == 3
            now[0] += RETRY_SECONDS  # a failure is retried sooner than a success is refreshed
            assert await post(c, p.body(rich(), validationTokens=[signer.mint()])) == 202
            assert keys.fetches == 2

    async def test_fetched_at_start_when_rich_notifications_are_configured(
        self, rich_settings: Settings, redis_conn: redis.Redis, jwks: Jwks, tmp_path: Path
    ) -> None:
        cert, key = make_cert(tmp_path)
        rich_on = replace(rich_settings, graph_encryption_cert_path=cert,
                          graph_encryption_key_path=key)  # fmt: skip
        async with TestClient(TestServer(create_app(rich_on))):
            await asyncio.wait_for(jwks.fetched.wait(), 10)  # with no request at all
            assert jwks.fetches == 1


def _now() -> int:
    return int(time.time())
