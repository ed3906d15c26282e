"""What the Graph emulator posts when meetings are played: shapes, routing, rich data, faults."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from emulators.tls import client_context
from tests.certs import self_signed
from tests.emulators.graph_harness import (
    ALICE,
    BOB,
    SCENARIO,
    TENANT,
    Harness,
    Receiver,
    graph,
    start_emulator,
    wait_for,
)  # fmt: skip

__all__ = ["graph"]

CHANGE_TRACKING = "0bf30f3b-4a52-48df-9a82-234910c4a086"
ITEM_KEYS = {
    "subscriptionId", "subscriptionExpirationDateTime", "changeType", "clientState",
    "tenantId", "resource", "resourceData",
}  # fmt: skip


def subscribe(g: Harness, rx: Receiver, resource: str, **extra: Any) -> dict[str, Any]:
    body = {
        "changeType": "created,updated" if resource.endswith("callRecords") else "created",
        "notificationUrl": rx.url, "lifecycleNotificationUrl": rx.url, "resource": resource,
        "expirationDateTime": (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat(),
        "clientState": f"state-for-{resource[-20:]}",
    }  # fmt: skip
    body.update(extra)
    with httpx.Client(verify=client_context(g.ca_dir)) as c:
        resp = c.post(
            f"{g.url}/v1.0/subscriptions", json=body,
            headers={"Authorization": f"Bearer {g.app_token()}"},
        )  # fmt: skip
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def play(g: Harness, *meetings: str) -> httpx.Response:
    return g.control("POST", "/_emulator/play", {"meetings": list(meetings)} if meetings else {})


def by_change(rx: Receiver) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for item in rx.items():
        out.setdefault(item["changeType"], []).append(item)
    return out


class TestCallRecords:
    """Playing a meeting sends a callRecord `created`, then an `updated` with a new version."""

    def test_created_then_updated(self, graph: Harness) -> None:
        rx = graph.receiver()
        sub = subscribe(graph, rx, "communications/callRecords")
        assert play(graph, "m-001").json() == {"played": ["m-001"]}
        wait_for(lambda: len(rx.items()) == 2)
        graph.idle()
        assert len(rx.items()) == 2  # created and updated; the subscription is not for transcripts
        cid = graph.state.world.call_record_id("m-001")
        created, updated = by_change(rx)["created"][0], by_change(rx)["updated"][0]
        for item in (created, updated):
            assert set(item) == ITEM_KEYS
            assert item["subscriptionId"] == sub["id"]
            assert item["clientState"] == sub["clientState"]
            assert item["tenantId"] == TENANT
            assert item["subscriptionExpirationDateTime"] == sub["expirationDateTime"]
            assert item["resource"] == f"communications/callRecords/{cid}"
            assert item["resourceData"] == {
                "@odata.type": "#Microsoft.Graph.callRecord",
                "@odata.id": f"communications/callRecords/{cid}", "id": cid,
            }  # fmt: skip
        assert rx.received.index({"value": [created]}) < rx.received.index({"value": [updated]})
        assert graph.state.world.call_record_version("m-001") == 2
        stats = graph.control("GET", "/_emulator/stats").json()
        assert stats["notifications"]["delivered"] == len(rx.received)

    def test_unknown_meeting_is_404(self, graph: Harness) -> None:
        resp = play(graph, "m-001", "nope")
        assert resp.status_code == 404 and "nope" in resp.json()["error"]
        assert graph.state.world.played_at("m-001") is None


class TestTranscripts:
    """Transcript notifications reach subscriptions covering the organizer that predate the play."""

    def test_tenant_wide_and_per_user_routing(self, graph: Harness) -> None:
        tenant_rx, bob_rx = graph.receiver(), graph.receiver()
        subscribe(graph, tenant_rx, "communications/onlineMeetings/getAllTranscripts")
        bob = subscribe(graph, bob_rx, f"users/{BOB}/onlineMeetings/getAllTranscripts")
        play(graph)
        wait_for(lambda: len(tenant_rx.items()) == 2 and len(bob_rx.items()) == 1)
        graph.idle()
        world = graph.state.world
        om, tid = world.online_meeting_id("m-002"), world.transcript_id("m-002")
        item = bob_rx.items()[0]
        assert item["subscriptionId"] == bob["id"] and item["changeType"] == "created"
        assert item["resource"] == f"users('{BOB}')/onlineMeetings('{om}')/transcripts('{tid}')"
        assert item["resourceData"] == {
            "id": tid, "@odata.type": "#Microsoft.Graph.callTranscript",
            "@odata.id": item["resource"],
        }  # fmt: skip
        resources = sorted(i["resource"] for i in tenant_rx.items())
        expected = sorted(
            f"communications/onlineMeetings('{world.online_meeting_id(m)}')"
            f"/transcripts('{world.transcript_id(m)}')"
            for m in ("m-001", "m-002")  # m-003 had no transcription
        )  # fmt: skip
        assert resources == expected

    def test_only_subscriptions_older_than_the_play(self, tmp_path: Path) -> None:
        scenario = copy.deepcopy(SCENARIO)
        scenario["meetings"][1]["transcript_ready_after_s"] = 600
        bg, g = start_emulator(tmp_path / "ca", scenario=scenario)
        try:
            early, late = g.receiver(), g.receiver()
            subscribe(g, early, "communications/onlineMeetings/getAllTranscripts")
            play(g, "m-002")
            subscribe(g, late, f"users/{BOB}/onlineMeetings/getAllTranscripts")
            assert early.items() == []  # not ready yet
            g.control("POST", "/_emulator/advance", {"seconds": 601})
            wait_for(lambda: len(early.items()) == 1)
            g.idle()
            assert late.items() == []
        finally:
            bg.close()


class TestBatching:
    """Notifications due together reach an endpoint in one POST: "A POST can batch items from
    several subscriptions and tenants" (graph.md §4, from the webhooks delivery page), so a
    receiver must take every item of `value`, not the first."""

    def test_meetings_played_together_share_a_post(self, graph: Harness) -> None:
        rx = graph.receiver()
        subscribe(graph, rx, "communications/callRecords")
        subscribe(graph, rx, "communications/onlineMeetings/getAllTranscripts")
        play(graph)
        wait_for(lambda: len(by_change(rx).get("updated", [])) == 3)
        graph.idle()
        world = graph.state.world
        first = [i["resource"] for i in rx.received[0]["value"]]
        assert first[:3] == [
            f"communications/callRecords/{world.call_record_id(m)}"
            for m in ("m-001", "m-002", "m-003")
        ]
        # The transcripts of m-001 and m-002, ready at once, joined the same POST; the
        # `updated` versions came later, together: 8 items in 2 POSTs.
        assert [r.split("/")[-1][:13] for r in first[3:]] == ["transcripts('"] * 2
        assert len(rx.items()) == 8 and len(rx.received) == 2
        assert all(len(body["value"]) > 1 for body in rx.received)

    def test_one_validation_token_per_app_in_a_rich_batch(
        self, graph: Harness, encryption_key: tuple[rsa.RSAPrivateKey, str]
    ) -> None:
        """`validationTokens` holds "one JWT per distinct app+tenant pair" (graph.md §4)."""
        _, cert = encryption_key
        rx = graph.receiver()
        subscribe(
            graph, rx, "communications/onlineMeetings/getAllTranscripts",
            includeResourceData=True, encryptionCertificate=cert, encryptionCertificateId="k1",
        )  # fmt: skip
        play(graph, "m-001", "m-002")
        wait_for(lambda: len(rx.items()) == 2)
        graph.idle()
        assert len(rx.received) == 1
        assert len(rx.received[0]["validationTokens"]) == 1
        assert all("encryptedContent" in item for item in rx.received[0]["value"])


@pytest.fixture
def encryption_key(tmp_path: Path) -> Iterator[tuple[rsa.RSAPrivateKey, str]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = self_signed(key, "notifications", days=2)
    yield key, base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def decrypt(content: dict[str, str], key: rsa.RSAPrivateKey) -> dict[str, Any]:
    """graph.md §7, step by step: unwrap, check the HMAC over the ciphertext, then decrypt."""
    sha1 = hashes.SHA1()
    aes_key = key.decrypt(
        base64.b64decode(content["dataKey"]), asym.OAEP(asym.MGF1(sha1), sha1, None)
    )
    data = base64.b64decode(content["data"])
    signature = hmac.new(aes_key, data, hashlib.sha256).digest()
    assert hmac.compare_digest(signature, base64.b64decode(content["dataSignature"]))
    decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(aes_key[:16])).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    plain = unpadder.update(decryptor.update(data) + decryptor.finalize()) + unpadder.finalize()
    return dict(json.loads(plain))


class TestRichNotifications:
    """includeResourceData adds encryptedContent (graph.md §7) and JWKS-verifiable tokens."""

    def test_decrypt_and_validate(
        self, graph: Harness, encryption_key: tuple[rsa.RSAPrivateKey, str]
    ) -> None:
        key, cert = encryption_key
        rx = graph.receiver()
        subscribe(
            graph, rx, f"users/{ALICE}/onlineMeetings/getAllTranscripts",
            includeResourceData=True, encryptionCertificate=cert, encryptionCertificateId="k1",
        )  # fmt: skip
        play(graph, "m-001")
        wait_for(lambda: len(rx.received) == 1)
        body = rx.received[0]
        content = body["value"][0]["encryptedContent"]
        assert content["encryptionCertificateId"] == "k1"
        der = base64.b64decode(cert)
        assert content["encryptionCertificateThumbprint"] == hashlib.sha1(der).hexdigest().upper()
        world = graph.state.world
        data = decrypt(content, key)
        assert data["id"] == world.transcript_id("m-001")
        assert data["meetingId"] == world.online_meeting_id("m-001")
        assert data["meetingOrganizer"]["user"]["id"] == ALICE
        assert data["meetingOrganizer"]["user"]["tenantId"] == TENANT

        [token] = body["validationTokens"]
        with httpx.Client(verify=client_context(graph.ca_dir)) as c:
            jwks = jwt.PyJWKSet.from_dict(c.get(f"{graph.url}/common/discovery/v2.0/keys").json())
        kid = jwt.get_unverified_header(token)["kid"]
        signing = next(k for k in jwks.keys if k.key_id == kid)
        claims = jwt.decode(token, signing, algorithms=["RS256"], audience="emulator-app")
        assert claims["azp"] == CHANGE_TRACKING and claims["ver"] == "2.0"
        assert claims["iss"] == f"{graph.url}/{TENANT}/v2.0"


class TestDelivery:
    """Failed deliveries are retried with backoff; drop and duplicate faults apply per item."""

    def test_retried_until_accepted(self, graph: Harness) -> None:
        rx = graph.receiver(fail_first=2)
        subscribe(graph, rx, "communications/callRecords")
        play(graph, "m-003")
        wait_for(lambda: len(rx.items()) == 2)  # created and updated, after two 500s
        graph.idle()
        counts = graph.control("GET", "/_emulator/stats").json()["notifications"]
        assert counts == {"delivered": 2, "failed": 0, "retried": 2, "dropped": 0, "duplicated": 0}
        assert rx.attempts == 4

    def test_gives_up_after_the_attempts(self, graph: Harness) -> None:
        rx = graph.receiver(fail_first=100)
        subscribe(graph, rx, "communications/callRecords")
        graph.state.options.updated_delay_s = 60  # only the `created` one in this test
        play(graph, "m-003")
        wait_for(lambda: graph.state.delivery.counts["failed"] == 1)
        assert rx.attempts == graph.state.options.retry_attempts

    @pytest.mark.parametrize(("fault", "expected"), [("drop_rate", 0), ("duplicate_rate", 4)])
    def test_drop_and_duplicate(self, graph: Harness, fault: str, expected: int) -> None:
        rx = graph.receiver()
        subscribe(graph, rx, "communications/callRecords")
        graph.control("POST", "/_emulator/faults", {fault: 1.0})
        play(graph, "m-003")
        wait_for(lambda: graph.state.world.call_record_version("m-003") == 2)
        graph.idle()
        assert len(rx.items()) == expected
        dropped = graph.control("GET", "/_emulator/stats").json()["notifications"]["dropped"]
        assert dropped == (2 if fault == "drop_rate" else 0)


class TestLifecycle:
    """Lifecycle events go to lifecycleNotificationUrl in graph.md §6's shape."""

    def test_posted_on_request(self, graph: Harness) -> None:
        rx, life = graph.receiver(), graph.receiver("/graph/lifecycle")
        sub = subscribe(graph, rx, "communications/callRecords", lifecycleNotificationUrl=life.url)
        resp = graph.control(
            "POST", "/_emulator/lifecycle",
            {"subscriptionId": sub["id"], "event": "reauthorizationRequired"},
        )  # fmt: skip
        assert resp.status_code == 202
        wait_for(lambda: len(life.items()) == 1)
        assert life.items()[0] == {
            "subscriptionId": sub["id"], "subscriptionExpirationDateTime":
            sub["expirationDateTime"], "tenantId": TENANT, "clientState": sub["clientState"],
            "lifecycleEvent": "reauthorizationRequired",
        }  # fmt: skip
        assert rx.items() == []
        missing = graph.control(
            "POST",
            "/_emulator/lifecycle",
            {"subscriptionId": "nope", "event": "reauthorizationRequired"},
        )
        assert missing.status_code == 404

    @pytest.mark.parametrize("event", ["subscriptionRemoved", "missed"])
    def test_events_graph_does_not_send_here(self, graph: Harness, event: str) -> None:
        """Lifecycle events page: subscriptionRemoved is sent for Outlook message, event and
        contact and Teams chatMessage only; missed for Outlook only (graph.md §6)."""
        rx = graph.receiver()
        sub = subscribe(graph, rx, "communications/callRecords")
        resp = graph.control("POST", "/_emulator/lifecycle",
                             {"subscriptionId": sub["id"], "event": event})  # fmt: skip
        assert resp.status_code == 400 and "/_emulator/lose" in resp.json()["error"]
        graph.idle()
        assert rx.items() == []

    def test_lost_subscription_is_gone_silently(self, graph: Harness) -> None:
        rx = graph.receiver()
        sub = subscribe(graph, rx, "communications/callRecords")
        assert graph.control("POST", "/_emulator/lose", {"subscriptionId": sub["id"]}).json() == {
            "lost": sub["id"]
        }
        graph.idle()
        assert rx.items() == []
        assert graph.control("GET", "/_emulator/subscriptions").json()["value"] == []
        play(graph, "m-001")
        graph.idle()
        assert rx.items() == []

    def test_automatic_reauthorization_before_expiry(self, graph: Harness) -> None:
        rx = graph.receiver()
        subscribe(graph, rx, "communications/callRecords")
        graph.state.options.reauthorize_before_s = 3600
        graph.control("POST", "/_emulator/advance", {"seconds": 86400 - 1800})
        wait_for(lambda: len(rx.items()) == 1)
        graph.idle()
        assert [i["lifecycleEvent"] for i in rx.items()] == ["reauthorizationRequired"]


class TestStats:
    """Stats count requests by route template, and show the World's and delivery counters."""

    def test_counts_by_route(self, graph: Harness) -> None:
        play(graph, "m-001")
        cid = graph.state.world.call_record_id("m-001")
        headers = {"Authorization": f"Bearer {graph.app_token()}"}
        with httpx.Client(verify=client_context(graph.ca_dir)) as c:
            for _ in range(2):
                got = c.get(f"{graph.url}/v1.0/communications/callRecords/{cid}", headers=headers)
                assert got.status_code == 200 and got.json()["id"] == cid
            missing = c.get(f"{graph.url}/v1.0/nothing/here", headers=headers)
        assert missing.status_code == 400 and missing.json()["error"]["code"] == "BadRequest"
        stats = graph.control("GET", "/_emulator/stats").json()
        assert stats["requests"]["GET /v1.0/communications/callRecords/{id}"] == 2
        assert stats["requests"]["POST /{tenant}/oauth2/v2.0/token"] == 1
        assert not any(route.startswith("POST /_emulator") for route in stats["requests"])
        assert stats["tokens_issued"] == 1
        assert stats["recording_content_downloads"] == 0
        assert stats["transcript_content_downloads"] == {}
        assert set(stats["notifications"]) == {
            "delivered",
            "failed",
            "retried",
            "dropped",
            "duplicated",
        }
