"""Graph's `/v1.0/subscriptions`: create (with the validation handshake), list, renew, delete."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from emulators.graph.auth import Caller, caller
from emulators.graph.clock import iso, parse_iso
from emulators.graph.errors import GraphHTTPError, bad_request
from emulators.graph.limits import (
    LIFECYCLE_REQUIRED_AFTER_S,
    LIMITS,
    MIN_LIFETIME_S,
    check_cert_id,
    check_certificate,
    check_change_type,
    check_client_state,
    check_url,
    classify,
)
from emulators.graph.tokens import principal_id

# Sends the handshake; returns None on success or a reason for the failure.
Validator = Callable[[str], Awaitable[str | None]]


@dataclass
class Subscription:
    """A subscription as Graph holds it, plus what the emulator needs to notify it."""

    id: str
    resource: str
    change_type: str
    notification_url: str
    lifecycle_notification_url: str | None
    expiration: float
    client_state: str | None
    application_id: str
    creator_id: str
    tenant_id: str
    kind: str  # "callRecords" or "transcripts"
    user_id: str | None  # per-user transcript subscriptions: whose meetings
    created_at: float
    authority: str  # the emulator's identity root as the creator reached it
    include_resource_data: bool = False
    encryption_certificate: str | None = None
    encryption_certificate_id: str | None = None
    latest_supported_tls_version: str = "v1_2"
    notification_url_app_id: str | None = None
    reauthorized_at: float | None = None
    reauthorization_sent_for: float | None = None

    def to_graph(self, base: str, *, client_state: bool) -> dict[str, Any]:
        """The subscription's JSON; Graph returns clientState only when creating."""
        return {
            "@odata.context": f"{base}/v1.0/$metadata#subscriptions/$entity",
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.application_id,
            "changeType": self.change_type,
            "clientState": self.client_state if client_state else None,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_notification_url,
            "expirationDateTime": iso(self.expiration),
            "creatorId": self.creator_id,
            "includeResourceData": self.include_resource_data,
            "latestSupportedTlsVersion": self.latest_supported_tls_version,
            "encryptionCertificate": self.encryption_certificate,
            "encryptionCertificateId": self.encryption_certificate_id,
            "notificationUrlAppId": self.notification_url_app_id,
            "notificationContentType": None,
        }

    def covers_organizer(self, organizer_id: str) -> bool:
        """A transcript subscription that sees meetings organized by `organizer_id`."""
        if self.kind != "transcripts":
            return False
        return self.user_id is None or self.user_id.lower() == organizer_id.lower()


@dataclass
class SubscriptionStore:
    """The tenant's subscriptions; expired ones vanish when next looked at."""

    clock: Callable[[], float]
    items: dict[str, Subscription] = field(default_factory=dict)

    def live(self) -> list[Subscription]:
        now = self.clock()
        for sid in [s.id for s in self.items.values() if s.expiration <= now]:
            del self.items[sid]
        return list(self.items.values())

    def get(self, sid: str) -> Subscription | None:
        return next((s for s in self.live() if s.id == sid), None)


class SubscriptionRoutes:
    """The handlers of `/v1.0/subscriptions`."""

    def __init__(self, store: SubscriptionStore, tenant_id: str, validate: Validator) -> None:
        self.store = store
        self.tenant_id = tenant_id
        self.validate = validate

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/v1.0/subscriptions", self.create)
        r.add_get("/v1.0/subscriptions", self.list)
        r.add_get("/v1.0/subscriptions/{id}", self.get)
        r.add_patch("/v1.0/subscriptions/{id}", self.update)
        r.add_delete("/v1.0/subscriptions/{id}", self.delete)
        r.add_post("/v1.0/subscriptions/{id}/reauthorize", self.reauthorize)

    def _expiry(self, value: object, kind: str) -> float:
        if not isinstance(value, str):
            raise bad_request("expirationDateTime is required.", "InvalidRequest")
        try:
            when = parse_iso(value)
        except ValueError:
            raise bad_request(f"expirationDateTime '{value}' is not a valid date.") from None
        now = self.store.clock()
        max_minutes = LIMITS[kind][0]
        if when > now + max_minutes * 60:
            raise bad_request(
                f"Subscription expiration can only be {max_minutes} minutes in the future.",
                "InvalidRequest",
            )
        return max(when, now + MIN_LIFETIME_S)

    def _mine(self, request: web.Request, who: Caller) -> Subscription:
        sub = self.store.get(request.match_info["id"])
        if sub is None or sub.application_id != who.app_id:
            raise GraphHTTPError(
                404, "ResourceNotFound", f"The object '{request.match_info['id']}' was not found."
            )
        return sub

    async def _handshake(self, url: str, what: str) -> None:
        failure = await self.validate(url)
        if failure is not None:
            raise bad_request(
                f"Subscription validation request failed. {what}: {failure}", "ValidationError"
            )

    async def create(self, request: web.Request) -> web.Response:
        who = caller(request)
        body = await _json(request)
        resource = body.get("resource")
        if not isinstance(resource, str) or not resource:
            raise bad_request("resource is required.", "InvalidRequest")
        kind, user_id = classify(resource, who)
        change_type = check_change_type(body.get("changeType"), kind)
        notification_url = check_url(body.get("notificationUrl"), "notificationUrl")
        lifecycle = body.get("lifecycleNotificationUrl")
        lifecycle_url = check_url(lifecycle, "lifecycleNotificationUrl") if lifecycle else None
        expiration = self._expiry(body.get("expirationDateTime"), kind)
        if lifecycle_url is None and expiration > self.store.clock() + LIFECYCLE_REQUIRED_AFTER_S:
            raise bad_request(
                "lifecycleNotificationUrl is required for this resource when the "
                "expirationDateTime value exceeds 1 hour.",
                "InvalidRequest",
            )
        client_state = check_client_state(body.get("clientState"))
        rich = body.get("includeResourceData") is True
        cert = cert_id = None
        if rich:
            if kind == "callRecords":
                raise bad_request(
                    "includeResourceData is not supported for callRecords.", "InvalidRequest"
                )
            cert = check_certificate(body.get("encryptionCertificate"))
            cert_id = check_cert_id(body.get("encryptionCertificateId"))
        wanted = {c.strip().lower() for c in change_type.split(",")}
        for other in self.store.live():
            same = other.resource.strip("/").lower() == resource.strip("/").lower()
            if (
                same
                and other.application_id == who.app_id
                and wanted == {c.strip().lower() for c in other.change_type.split(",")}
            ):
                raise GraphHTTPError(
                    409,
                    "ExtensionError",
                    f"Subscription Id {other.id} already exists for the requested combination",
                )
        await self._handshake(notification_url, "notificationUrl")
        if lifecycle_url is not None:
            await self._handshake(lifecycle_url, "lifecycleNotificationUrl")
        sub = Subscription(
            id=str(uuid.uuid4()),
            resource=resource,
            change_type=change_type,
            notification_url=notification_url,
            lifecycle_notification_url=lifecycle_url,
            expiration=expiration,
            client_state=client_state,
            application_id=who.app_id,
            creator_id=who.user_id or principal_id(who.app_id),
            tenant_id=self.tenant_id,
            kind=kind,
            user_id=user_id,
            created_at=self.store.clock(),
            authority=f"{request.scheme}://{request.host}",
            include_resource_data=rich,
            encryption_certificate=cert,
            encryption_certificate_id=cert_id,
            latest_supported_tls_version=str(body.get("latestSupportedTlsVersion") or "v1_2"),
            notification_url_app_id=_opt_str(body.get("notificationUrlAppId")),
        )
        self.store.items[sub.id] = sub
        return web.json_response(sub.to_graph(_base(request), client_state=True), status=201)

    async def list(self, request: web.Request) -> web.Response:
        who = caller(request)
        mine = [s for s in self.store.live() if s.application_id == who.app_id]
        if not who.is_app:
            mine = [s for s in mine if s.creator_id == who.user_id]
        values = [s.to_graph(_base(request), client_state=False) for s in mine]
        for v in values:
            del v["@odata.context"]
        return web.json_response(
            {"@odata.context": f"{_base(request)}/v1.0/$metadata#subscriptions", "value": values}
        )

    async def get(self, request: web.Request) -> web.Response:
        sub = self._mine(request, caller(request))
        return web.json_response(sub.to_graph(_base(request), client_state=False))

    async def update(self, request: web.Request) -> web.Response:
        who = caller(request)
        sub = self._mine(request, who)
        body = await _json(request)
        if "lifecycleNotificationUrl" in body and (
            body["lifecycleNotificationUrl"] != sub.lifecycle_notification_url
        ):
            raise bad_request(
                "lifecycleNotificationUrl can't be added or changed with PATCH; "
                "delete the subscription and create it again."
            )
        expiration = sub.expiration
        if "expirationDateTime" in body:
            expiration = self._expiry(body["expirationDateTime"], sub.kind)
        limit = self.store.clock() + LIFECYCLE_REQUIRED_AFTER_S
        if sub.lifecycle_notification_url is None and expiration > limit:
            raise bad_request(
                "lifecycleNotificationUrl is required for this resource when the "
                "expirationDateTime value exceeds 1 hour.",
                "InvalidRequest",
            )
        url = sub.notification_url
        if body.get("notificationUrl") not in (None, sub.notification_url):
            url = check_url(body["notificationUrl"], "notificationUrl")
            await self._handshake(url, "notificationUrl")
        if "encryptionCertificate" in body:
            sub.encryption_certificate = check_certificate(body["encryptionCertificate"])
        if "encryptionCertificateId" in body:
            sub.encryption_certificate_id = check_cert_id(body["encryptionCertificateId"])
        sub.notification_url, sub.expiration = url, expiration
        sub.reauthorized_at = self.store.clock()  # a PATCH also reauthorizes
        return web.json_response(sub.to_graph(_base(request), client_state=False))

    async def delete(self, request: web.Request) -> web.Response:
        sub = self._mine(request, caller(request))
        del self.store.items[sub.id]
        return web.Response(status=204)

    async def reauthorize(self, request: web.Request) -> web.Response:
        sub = self._mine(request, caller(request))
        sub.reauthorized_at = self.store.clock()
        return web.Response(status=204)


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
