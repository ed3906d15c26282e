"""Graph subscriptions the product wants, and the registry the receiver checks.

`Manager.ensure` makes Graph hold exactly the subscriptions the product wants (callRecords,
plus the transcripts of each ECI user or of the whole tenant) and writes each one, with its
random clientState, to the registry (workers/registry.py). It is idempotent: a subscription
held in both places is kept; one Graph holds but the registry lost (Graph never returns a
clientState after creation, so it cannot be adopted) is deleted and created again, and a 409
on create is handled the same way.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import redis

from core import defaults
from core.exceptions import Conflict, NotFound, UpstreamError
from core.settings import Settings
from workers import registry, rich, users
from workers.graph.client import GraphClient
from workers.registry import KIND_CALL_RECORDS, KIND_TRANSCRIPTS, Subscription

CLIENT_STATE_BYTES = 48  # 64 url-safe characters; Graph allows at most 128
_EXISTING = re.compile(r"Subscription Id ([0-9A-Za-z-]+) already exists", re.IGNORECASE)


@dataclass(frozen=True)
class Wanted:
    """A subscription the product wants Graph to hold."""

    resource: str
    kind: str
    change_type: str
    max_minutes: int
    user_id: str = ""


class SubscriptionsApi(Protocol):
    """Graph's /subscriptions (GraphSubscriptions below; fakes in tests)."""

    def list(self) -> list[dict[str, Any]]: ...
    def create(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def update(self, subscription_id: str, expires: datetime) -> dict[str, Any]: ...
    def delete(self, subscription_id: str) -> None: ...


def wanted(settings: Settings, conn: redis.Redis) -> list[Wanted]:
    out = [Wanted("communications/callRecords", KIND_CALL_RECORDS, "created,updated",
                  defaults.CALL_RECORDS_MAX_MINUTES)]  # fmt: skip
    if settings.tenant_wide_transcripts:
        out.append(Wanted("communications/onlineMeetings/getAllTranscripts", KIND_TRANSCRIPTS,
                          "created", defaults.TRANSCRIPTS_MAX_MINUTES))  # fmt: skip
    else:
        out += [
            Wanted(f"users/{u.id}/onlineMeetings/getAllTranscripts", KIND_TRANSCRIPTS, "created",
                   defaults.TRANSCRIPTS_MAX_MINUTES, user_id=u.id)
            for u in users.all_users(conn)
        ]  # fmt: skip
    return out


def _same(a: str, b: str) -> bool:
    return a.strip("/").lower() == b.strip("/").lower()


def _expiry(max_minutes: int, now: datetime) -> datetime:
    return now + timedelta(minutes=max_minutes - defaults.SUBSCRIPTION_MARGIN_MINUTES)


class Manager:
    """Brings Graph and the registry in line with what the product wants."""

    def __init__(
        self,
        settings: Settings,
        conn: redis.Redis,
        api: SubscriptionsApi,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.conn = conn
        self.api = api
        self.clock = clock

    @property
    def notification_url(self) -> str:
        return self.settings.require_public_url() + "/graph/notifications"

    @property
    def lifecycle_url(self) -> str:
        return self.settings.require_public_url() + "/graph/lifecycle"

    def ensure(self) -> list[dict[str, Any]]:
        """Create what is missing, keep what exists, drop what is no longer wanted."""
        self.settings.require_public_url()
        remote = {str(s["id"]): s for s in self.api.list()}
        held = {s.id: s for s in registry.load_all(self.conn)}
        report: list[dict[str, Any]] = []
        for sub_id, sub in held.items():  # the registry's entries Graph no longer has
            if sub_id not in remote:
                registry.remove(self.conn, sub_id)
                report.append({**sub.public(), "action": "forgotten"})
        held = {i: s for i, s in held.items() if i in remote}
        wants = wanted(self.settings, self.conn)
        for want in wants:
            kept = next((s for s in held.values() if _same(s.resource, want.resource)), None)
            if kept is not None:
                report.append({**kept.public(), "action": "kept"})
                continue
            for rid, other in remote.items():  # ours in Graph, but its clientState is lost
                if _same(str(other.get("resource", "")), want.resource) and _is_ours(
                    other, self.notification_url
                ):
                    self.api.delete(rid)
            report.append({**self._create(want).public(), "action": "created"})
        for sub_id, sub in held.items():  # held but no longer wanted (a user was removed)
            if not any(_same(sub.resource, w.resource) for w in wants):
                self._delete(sub_id)
                report.append({**sub.public(), "action": "deleted"})
        registry.mark(self.conn)  # set up: from now on a missing marker means a wiped Redis
        return report

    def _create(self, want: Wanted) -> Subscription:
        body: dict[str, Any] = {
            "changeType": want.change_type,
            "notificationUrl": self.notification_url,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "resource": want.resource,
            "expirationDateTime": _expiry(want.max_minutes, self.clock()),
            "clientState": secrets.token_urlsafe(CLIENT_STATE_BYTES),
        }
        cert = self.settings.graph_encryption_cert_path
        if want.kind == KIND_TRANSCRIPTS and cert is not None:
            body["includeResourceData"] = True
            body["encryptionCertificate"] = rich.certificate_b64(cert)
            body["encryptionCertificateId"] = rich.certificate_id(cert)
        try:
            created = self.api.create(body)
        except Conflict as exc:
            # Graph holds it already, without a clientState we know: replace it.
            self.api.delete(exc.subscription_id)
            created = self.api.create(body)
        sub = Subscription(
            id=str(created["id"]),
            resource=want.resource,
            kind=want.kind,
            client_state=str(body["clientState"]),
            tenant_id=(self.settings.graph_tenant_id or "").lower(),
            expires_at=str(created.get("expirationDateTime") or body["expirationDateTime"]),
            user_id=want.user_id,
            change_type=want.change_type,
        )
        registry.save(self.conn, sub)
        return sub

    def _delete(self, sub_id: str) -> None:
        self.api.delete(sub_id)
        registry.remove(self.conn, sub_id)

    def renew(self) -> list[dict[str, Any]]:
        """Push every held subscription's expiry near its maximum; recreate what Graph lost."""
        report: list[dict[str, Any]] = []
        limits = {KIND_CALL_RECORDS: defaults.CALL_RECORDS_MAX_MINUTES,
                  KIND_TRANSCRIPTS: defaults.TRANSCRIPTS_MAX_MINUTES}  # fmt: skip
        for sub in registry.load_all(self.conn):
            expires = _expiry(limits.get(sub.kind, 60), self.clock())
            try:
                updated = self.api.update(sub.id, expires)
            except NotFound:
                continue  # `ensure` below forgets and recreates it
            renewed = Subscription(**{**sub.to_hash(), "expires_at": str(
                updated.get("expirationDateTime") or expires.isoformat())})  # fmt: skip
            registry.save(self.conn, renewed)
            report.append({**renewed.public(), "action": "renewed"})
        return report + [r for r in self.ensure() if r["action"] != "kept"]

    def renew_one(self, subscription_id: str) -> dict[str, Any]:
        """Renew one subscription (a reauthorizationRequired event): PATCH also reauthorizes."""
        sub = next((s for s in registry.load_all(self.conn) if s.id == subscription_id), None)
        if sub is None:
            return {"id": subscription_id, "action": "unknown"}
        limits = {KIND_CALL_RECORDS: defaults.CALL_RECORDS_MAX_MINUTES,
                  KIND_TRANSCRIPTS: defaults.TRANSCRIPTS_MAX_MINUTES}  # fmt: skip
        expires = _expiry(limits.get(sub.kind, 60), self.clock())
        try:
            updated = self.api.update(sub.id, expires)
        except NotFound:
            self.ensure()
            return {**sub.public(), "action": "recreated"}
        renewed = Subscription(**{**sub.to_hash(), "expires_at": str(
            updated.get("expirationDateTime") or expires.isoformat())})  # fmt: skip
        registry.save(self.conn, renewed)
        return {**renewed.public(), "action": "renewed"}

    def delete_all(self) -> list[dict[str, Any]]:
        """Delete every subscription of ours, in Graph and in the registry."""
        report = []
        held = {s.id: s for s in registry.load_all(self.conn)}
        for remote in self.api.list():
            rid = str(remote["id"])
            if rid in held or _is_ours(remote, self.settings.public_url):
                self.api.delete(rid)
                report.append({"id": rid, "resource": remote.get("resource"),
                               "action": "deleted"})  # fmt: skip
        for sub_id in held:
            registry.remove(self.conn, sub_id)
            if not any(r["id"] == sub_id for r in report):
                report.append({**held[sub_id].public(), "action": "forgotten"})
        return report

    def listing(self) -> list[dict[str, Any]]:
        remote = {str(s["id"]): s for s in self.api.list()}
        out = []
        for sub in registry.load_all(self.conn):
            graph = remote.get(sub.id)
            entry = {**sub.public(), "in_graph": graph is not None}
            if graph is not None:
                entry["expires_at"] = graph.get("expirationDateTime") or sub.expires_at
            out.append(entry)
        return out


def _is_ours(remote: dict[str, Any], base: str | None) -> bool:
    url = str(remote.get("notificationUrl") or "")
    return bool(base) and url.startswith(str(base))


class GraphSubscriptions:
    """SubscriptionsApi over the product's Graph client (workers/graph/client.py), in JSON."""

    def __init__(self, settings: Settings, client: Any = None) -> None:
        self._owned = client is None
        self.client = client or GraphClient(settings)

    def close(self) -> None:
        if self._owned:
            self.client.close()

    def list(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self.client.pages("listing subscriptions", "/subscriptions"):
            items += page.get("value") or []
        return items

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = ("changeType", "notificationUrl", "lifecycleNotificationUrl", "resource",
                  "expirationDateTime", "clientState", "includeResourceData",
                  "encryptionCertificate", "encryptionCertificateId")  # fmt: skip
        sent = {k: _jsonable(body[k]) for k in fields if body.get(k) is not None}
        try:
            return self.client.request(
                f"creating the subscription for {body['resource']}", "POST", "/subscriptions", sent
            )
        except UpstreamError as exc:
            found = _EXISTING.search(str(exc))
            if "409" in str(exc) and found:
                raise Conflict(found.group(1)) from None
            raise

    def update(self, subscription_id: str, expires: datetime) -> dict[str, Any]:
        try:
            return self.client.request(
                f"renewing subscription {subscription_id}",
                "PATCH",
                f"/subscriptions/{subscription_id}",
                {"expirationDateTime": _jsonable(expires)},
            )
        except NotFound:
            raise NotFound(subscription_id) from None

    def delete(self, subscription_id: str) -> None:
        with contextlib.suppress(NotFound):  # already gone: what we wanted
            self.client.request(
                f"deleting subscription {subscription_id}",
                "DELETE",
                f"/subscriptions/{subscription_id}",
            )


def _jsonable(value: Any) -> Any:
    """Times as Graph reads them (ISO 8601 in UTC); everything else as it is."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value
