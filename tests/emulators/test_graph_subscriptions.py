"""Graph's subscription API on the emulator, driven by msgraph-sdk as the product drives it."""

from __future__ import annotations

import datetime as dt
import random
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from azure.identity import ClientSecretCredential
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.subscription import Subscription
from msgraph_core import GraphClientFactory

from tests.emulators.graph_harness import ALICE, BOB, TENANT, Harness, graph

__all__ = ["graph"]

# msgraph's generated request builders warn as they are first imported; not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:kiota_abstractions"),
]

SCOPES = ["https://graph.microsoft.com/.default"]


def utc(**delta: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(**delta)


@pytest.fixture
async def client(graph: Harness) -> AsyncIterator[GraphServiceClient]:
    """msgraph-sdk pointed at the emulator, with its default middleware (retries included)."""
    cred = ClientSecretCredential(
        TENANT, "emulator-app", "emulator-secret", authority=graph.url,
        disable_instance_discovery=True, connection_verify=graph.ca_file,
    )  # fmt: skip
    http = httpx.AsyncClient(verify=ssl.create_default_context(cafile=graph.ca_file))
    # msgraph_core's AsyncGraphTransport has no aclose(): close the real pool ourselves.
    pool = http._transport
    adapter = GraphRequestAdapter(
        AzureIdentityAuthenticationProvider(cred, scopes=SCOPES),
        client=GraphClientFactory.create_with_default_middleware(client=http),
    )
    adapter.base_url = f"{graph.url}/v1.0"
    try:
        yield GraphServiceClient(request_adapter=adapter)
    finally:
        await http.aclose()
        await pool.aclose()
        cred.close()


def call_records(url: str, lifecycle: str | None, **changes: Any) -> Subscription:
    sub = Subscription(
        change_type="created,updated", notification_url=url, lifecycle_notification_url=lifecycle,
        resource="communications/callRecords", expiration_date_time=utc(days=2),
        client_state="s3cret-state",
    )  # fmt: skip
    for name, value in changes.items():
        setattr(sub, name, value)
    return sub


async def graph_error(coro: Any) -> ODataError:
    with pytest.raises(ODataError) as info:
        await coro
    return info.value


class TestCreateRenewDelete:
    """A subscription is created after both handshakes, renewed by PATCH and deleted."""

    async def test_lifecycle_of_a_subscription(
        self, graph: Harness, client: GraphServiceClient
    ) -> None:
        rx = graph.receiver()
        created = await client.subscriptions.post(call_records(rx.url, rx.url + "?lc=1"))
        assert created is not None and created.id
        assert created.client_state == "s3cret-state"
        assert created.application_id == "emulator-app"
        assert len(rx.tokens) == 2  # notificationUrl and lifecycleNotificationUrl
        for token in rx.tokens:
            assert all(ch in token for ch in " +/:")  # the receiver saw them decoded

        new_expiry = utc(days=1)
        item = client.subscriptions.by_subscription_id(created.id)
        renewed = await item.patch(Subscription(expiration_date_time=new_expiry))
        assert renewed is not None and renewed.expiration_date_time is not None
        assert abs((renewed.expiration_date_time - new_expiry).total_seconds()) < 1

        listed = await client.subscriptions.get()
        assert listed is not None and [s.id for s in listed.value or []] == [created.id]
        assert listed.value[0].client_state is None  # Graph does not give it back
        held = graph.control("GET", "/_emulator/subscriptions").json()["value"]
        assert held[0]["clientState"] == "s3cret-state"

        await item.reauthorize.post()
        await item.delete()
        error = await graph_error(item.patch(Subscription(expiration_date_time=utc(hours=2))))
        assert error.response_status_code == 404
        assert graph.control("GET", "/_emulator/subscriptions").json()["value"] == []

    async def test_expired_subscriptions_vanish(
        self, graph: Harness, client: GraphServiceClient
    ) -> None:
        rx = graph.receiver()
        created = await client.subscriptions.post(call_records(rx.url, rx.url))
        assert created is not None and created.id
        graph.control("POST", "/_emulator/advance", {"seconds": 3 * 86400})
        # The credential's cached token expired by the emulator's clock: use a fresh one.
        headers = {"Authorization": f"Bearer {graph.app_token()}"}
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=graph.ca_file)) as c:
            listed = await c.get(f"{graph.url}/v1.0/subscriptions", headers=headers)
            one = await c.get(f"{graph.url}/v1.0/subscriptions/{created.id}", headers=headers)
        assert listed.json()["value"] == []
        assert one.status_code == 404 and one.json()["error"]["code"] == "ResourceNotFound"


class TestHandshake:
    """A notification endpoint that fails the handshake means no subscription (400)."""

    @pytest.mark.parametrize("behaviour", ["wrong", "500", "slow"])
    async def test_failed_handshake_is_validation_error(
        self, graph: Harness, client: GraphServiceClient, behaviour: str
    ) -> None:
        graph.state.options.validation_timeout_s = 0.5
        rx = graph.receiver(handshake=behaviour)
        error = await graph_error(client.subscriptions.post(call_records(rx.url, rx.url)))
        assert error.response_status_code == 400
        assert error.error is not None and error.error.code == "ValidationError"
        assert graph.state.store.live() == []

    async def test_unreachable_lifecycle_url_fails_too(
        self, graph: Harness, client: GraphServiceClient
    ) -> None:
        rx = graph.receiver()
        sub = call_records(rx.url, "http://127.0.0.1:9/lifecycle")
        assert (await graph_error(client.subscriptions.post(sub))).response_status_code == 400


class TestRules:
    """Graph's limits: lifetimes, lifecycle URL, clientState, https, rich data, duplicates."""

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"expiration_date_time": utc(minutes=4300)}, "4230 minutes"),
            ({"lifecycle_notification_url": None}, "lifecycleNotificationUrl is required"),
            ({"client_state": "x" * 129}, "128 characters"),
            ({"notification_url": "http://example.com/hook"}, "https"),
            ({"change_type": "deleted"}, "changeType"),
            ({"include_resource_data": True}, "not supported for callRecords"),
            ({"resource": "chats/getAllMessages"}, "not supported"),
        ],
    )
    async def test_bad_requests_are_400(
        self, graph: Harness, client: GraphServiceClient, changes: dict[str, Any], message: str
    ) -> None:
        rx = graph.receiver()
        sub = call_records(rx.url, rx.url, **changes)
        error = await graph_error(client.subscriptions.post(sub))
        assert error.response_status_code == 400
        assert error.error is not None and message in str(error.error.message)

    async def test_short_expiry_is_raised_to_45_minutes(
        self, graph: Harness, client: GraphServiceClient
    ) -> None:
        rx = graph.receiver()
        sub = call_records(rx.url, None, expiration_date_time=utc(minutes=5))
        created = await client.subscriptions.post(sub)
        assert created is not None and created.expiration_date_time is not None
        assert created.expiration_date_time >= utc(minutes=44)

    async def test_transcripts_allow_4320_minutes(
        self, graph: Harness, client: GraphServiceClient
    ) -> None:
        rx = graph.receiver()
        sub = call_records(
            rx.url, rx.url, resource=f"users/{ALICE}/onlineMeetings/getAllTranscripts",
            change_type="created", expiration_date_time=utc(minutes=4310),
        )  # fmt: skip
        assert await client.subscriptions.post(sub) is not None

    async def test_duplicate_is_409(self, graph: Harness, client: GraphServiceClient) -> None:
        rx = graph.receiver()
        await client.subscriptions.post(call_records(rx.url, rx.url))
        error = await graph_error(client.subscriptions.post(call_records(rx.url, rx.url)))
        assert error.response_status_code == 409


class TestDelegated:
    """A user's delegated token may subscribe to that user's transcripts only."""

    def post(self, graph: Harness, token: str, user: str, url: str) -> httpx.Response:
        body = {
            "changeType": "created", "notificationUrl": url, "lifecycleNotificationUrl": url,
            "resource": f"users/{user}/onlineMeetings/getAllTranscripts",
            "expirationDateTime": utc(hours=3).isoformat(), "clientState": "c",
        }  # fmt: skip
        with httpx.Client(verify=ssl.create_default_context(cafile=graph.ca_file)) as c:
            return c.post(
                f"{graph.url}/v1.0/subscriptions", json=body,
                headers={"Authorization": f"Bearer {token}"},
            )  # fmt: skip

    def test_own_transcripts_only(self, graph: Harness) -> None:
        rx = graph.receiver()
        token, _ = graph.state.issuer.user_token(
            graph.url, "emulator-app", ALICE, "alice@contoso.com", "Alice",
            ["OnlineMeetingTranscript.Read.All", "User.Read"],
        )  # fmt: skip
        assert self.post(graph, token, ALICE, rx.url).status_code == 201
        assert self.post(graph, token, BOB, rx.url).status_code == 403
        held = graph.control("GET", "/_emulator/subscriptions").json()["value"]
        assert [s["creatorId"] for s in held] == [ALICE]


def seed_for_one_429() -> int:
    """A seed whose first roll throttles (rate 0.5) and whose second does not."""
    for seed in range(1000):
        rolls = random.Random(seed)
        if rolls.random() < 0.5 <= rolls.random():
            return seed
    raise AssertionError("no seed found")


class TestThrottling:
    """An injected 429 with Retry-After is retried by msgraph-sdk's retry handler."""

    async def test_429_is_retried(self, graph: Harness, client: GraphServiceClient) -> None:
        faults = {"rate_429": 0.5, "retry_after_s": 1, "seed": seed_for_one_429()}
        assert graph.control("POST", "/_emulator/faults", faults).status_code == 200
        listed = await client.subscriptions.get()
        assert listed is not None and listed.value == []
        stats = graph.control("GET", "/_emulator/stats").json()
        assert stats["requests"]["GET /v1.0/subscriptions"] == 2
        assert graph.control("GET", "/_emulator/faults").json()["rate_429"] == 0.5
