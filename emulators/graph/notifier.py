"""Change and lifecycle notifications: what playing a meeting sends, to whom, and when."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from emulators.graph.clock import iso
from emulators.graph.delivery import Delivery
from emulators.graph.encryption import encrypted_content
from emulators.graph.faults import GraphFaults
from emulators.graph.options import GraphOptions
from emulators.graph.subscriptions import Subscription, SubscriptionStore
from emulators.graph.tokens import TokenIssuer

if TYPE_CHECKING:
    from emulators.graph.world import World

# The lifecycle events Graph sends for callRecords and transcripts (graph.md §6): "subscription
# Removed: only Outlook message, event and contact, and Teams chatMessage"; "missed: Outlook
# only". A subscription of these resources is lost silently instead (`lose`).
LIFECYCLE_EVENTS = ("reauthorizationRequired",)
NOT_SENT = ("subscriptionRemoved", "missed")


class Notifier:
    """Sends the notifications of played meetings and lifecycle events to subscribers."""

    def __init__(
        self,
        world: World,
        store: SubscriptionStore,
        issuer: TokenIssuer,
        delivery: Delivery,
        faults: GraphFaults,
        options: GraphOptions,
        rng: random.Random,
    ) -> None:
        self.world = world
        self.store = store
        self.issuer = issuer
        self.delivery = delivery
        self.faults = faults
        self.options = options
        self.rng = rng
        self._pending: dict[str, list[tuple[Subscription, dict[str, Any]]]] = {}

    # -- change notifications -------------------------------------------------------------
    def play(self, meeting_ids: Sequence[str] | None = None) -> list[str]:
        """Play meetings (KeyError on an unknown id) and send their notifications meanwhile."""
        played = self.world.play(meeting_ids)
        self.delivery.spawn(self._run(played))
        return played

    async def _run(self, meetings: list[str]) -> None:
        now = [m for m in meetings if self.world.call_record_ready(m)]
        batch = [
            (sub, self._call_record_item(sub, m, "created"))
            for m in now
            for sub in self._call_record_subscriptions("created")
        ]
        self._send_batch(batch)
        for m in meetings:
            if m in now:
                self.delivery.spawn(self._updated_later(m))
            else:
                self.delivery.spawn(self._call_record_when_ready(m))
            if self.world.has_transcript(m):
                self.delivery.spawn(self._transcript_when_ready(m))

    async def _call_record_when_ready(self, meeting: str) -> None:
        """A late callRecord (`callrecord_after_s`): `created` once it exists, then `updated`."""
        played_at = self.world.played_at(meeting)
        while not self.world.call_record_ready(meeting):
            await asyncio.sleep(self.options.transcript_poll_s)  # the same readiness poll
            if self.world.played_at(meeting) != played_at:
                return  # played again: that play sends its own notifications
        self._send_batch(
            [
                (sub, self._call_record_item(sub, meeting, "created"))
                for sub in self._call_record_subscriptions("created")
            ]
        )
        await self._updated_later(meeting)

    def _send_batch(self, batch: list[tuple[Subscription, dict[str, Any]]]) -> None:
        """Queue the items for delivery; items due together reach an endpoint in one POST."""
        if self.faults.out_of_order:
            self.rng.shuffle(batch)
        for sub, item in batch:
            if self.rng.random() < self.faults.drop_rate:
                self.delivery.counts["dropped"] += 1
                continue
            if self.rng.random() < self.faults.duplicate_rate:
                self.delivery.counts["duplicated"] += 1
                # A duplicate is a delivery of its own, as a retry by Graph would be.
                self.delivery.spawn(self._deliver(sub.notification_url, [(sub, item)]))
            self._queue(sub, item)

    def _queue(self, sub: Subscription, item: dict[str, Any]) -> None:
        """Graph batches: "A POST can batch items from several subscriptions and tenants"
        (reference/graph.md §4). Items queued within `batch_window_s` share a POST."""
        url = sub.notification_url
        waiting = self._pending.setdefault(url, [])
        waiting.append((sub, item))
        if len(waiting) == 1:
            self.delivery.spawn(self._flush(url))

    async def _flush(self, url: str) -> None:
        await asyncio.sleep(self.options.batch_window_s)
        batch = self._pending.pop(url, [])
        for start in range(0, len(batch), self.options.batch_max):
            await self._deliver(url, batch[start : start + self.options.batch_max])

    async def _deliver(self, url: str, batch: list[tuple[Subscription, dict[str, Any]]]) -> None:
        if self.faults.delay_s > 0:
            await asyncio.sleep(self.faults.delay_s)
        body: dict[str, Any] = {"value": [item for _, item in batch]}
        # One validation token per distinct app and tenant among the rich items.
        apps = {
            (sub.notification_url_app_id or sub.application_id, sub.authority): None
            for sub, _ in batch
            if sub.include_resource_data
        }
        if apps:
            body["validationTokens"] = [
                self.issuer.validation_token(authority, app_id) for app_id, authority in apps
            ]
        await self.delivery.post(url, body)

    def _call_record_subscriptions(self, change: str) -> list[Subscription]:
        return [
            s
            for s in self.store.live()
            if s.kind == "callRecords" and change in s.change_type.lower().split(",")
        ]

    def _base_item(self, sub: Subscription, change: str) -> dict[str, Any]:
        return {
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": iso(sub.expiration),
            "changeType": change,
            "clientState": sub.client_state,
            "tenantId": sub.tenant_id,
        }

    def _call_record_item(self, sub: Subscription, meeting: str, change: str) -> dict[str, Any]:
        cid = self.world.call_record_id(meeting)
        resource = f"communications/callRecords/{cid}"
        item = self._base_item(sub, change)
        item["resource"] = resource
        item["resourceData"] = {
            "@odata.type": "#Microsoft.Graph.callRecord",
            "@odata.id": resource,
            "id": cid,
        }
        return item

    async def _updated_later(self, meeting: str) -> None:
        await asyncio.sleep(self.options.updated_delay_s)
        self.world.bump_call_record_version(meeting)
        batch = [
            (sub, self._call_record_item(sub, meeting, "updated"))
            for sub in self._call_record_subscriptions("updated")
        ]
        self._send_batch(batch)

    async def _transcript_when_ready(self, meeting: str) -> None:
        played_at = self.world.played_at(meeting)
        while not self.world.transcript_ready(meeting):
            await asyncio.sleep(self.options.transcript_poll_s)
            if self.world.played_at(meeting) != played_at:
                return  # played again: that play sends its own notification
        organizer = self.world.organizer_id(meeting)
        # One notification per transcript, in the order they were made.
        batch = [
            (sub, self._transcript_item(sub, meeting, organizer, index))
            for index in range(len(self.world.meeting(meeting).transcripts))
            for sub in self.store.live()
            if sub.covers_organizer(organizer)
            and played_at is not None
            and sub.created_at <= played_at
        ]
        self._send_batch(batch)

    def _transcript_item(
        self, sub: Subscription, meeting: str, organizer: str, index: int = 0
    ) -> dict[str, Any]:
        om_id = self.world.online_meeting_id(meeting)
        t_id = self.world.transcript_id(meeting, index)
        if sub.user_id is not None:
            resource = f"users('{organizer}')/onlineMeetings('{om_id}')/transcripts('{t_id}')"
        else:
            resource = f"communications/onlineMeetings('{om_id}')/transcripts('{t_id}')"
        item = self._base_item(sub, "created")
        item["resource"] = resource
        item["resourceData"] = {
            "id": t_id,
            "@odata.type": "#Microsoft.Graph.callTranscript",
            "@odata.id": resource,
        }
        if sub.include_resource_data and sub.encryption_certificate:
            ready_at = self.world.transcript_created_at(meeting, index)
            data = {
                "id": t_id,
                "meetingId": om_id,
                "callId": self.world.call_record_id(meeting),
                "createdDateTime": iso(ready_at) if ready_at is not None else None,
                "transcriptContentUrl": (
                    f"communications/onlineMeetings/{om_id}/transcripts/{t_id}/content"
                ),
                "meetingOrganizer": {
                    "application": None,
                    "device": None,
                    "user": {
                        "userIdentityType": "aadUser",
                        "id": organizer,
                        "displayName": None,
                        "tenantId": sub.tenant_id,
                    },
                },
            }
            item["encryptedContent"] = encrypted_content(
                data, sub.encryption_certificate, sub.encryption_certificate_id or ""
            )
        return item

    # -- lifecycle notifications ----------------------------------------------------------
    def lifecycle(self, sub: Subscription, event: str) -> None:
        """Send a lifecycle event (only those Graph sends for these resources)."""
        if event in NOT_SENT:
            raise ValueError(f"Graph sends no {event} for callRecords or transcripts; "
                             "lose the subscription instead")  # fmt: skip
        if event not in LIFECYCLE_EVENTS:
            raise ValueError(f"event must be one of {', '.join(LIFECYCLE_EVENTS)}")
        if sub.lifecycle_notification_url is None:
            raise ValueError("the subscription has no lifecycleNotificationUrl")
        item = {
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": iso(sub.expiration),
            "tenantId": sub.tenant_id,
            "clientState": sub.client_state,
            "lifecycleEvent": event,
        }
        self.delivery.spawn(self.delivery.post(sub.lifecycle_notification_url, {"value": [item]}))

    def lose(self, sub: Subscription) -> None:
        """Drop a subscription without telling anyone, as live Graph sometimes does: only a
        renewal (PATCH → 404) or a listing shows that it is gone."""
        self.store.items.pop(sub.id, None)

    async def watch_expiry(self) -> None:
        """Send reauthorizationRequired once per expiry to subscriptions close to it."""
        while True:
            before = self.options.reauthorize_before_s
            if before is not None:
                now = self.store.clock()
                for sub in self.store.live():
                    due = sub.expiration - now <= before
                    fresh = sub.reauthorization_sent_for != sub.expiration
                    if due and fresh and sub.lifecycle_notification_url:
                        sub.reauthorization_sent_for = sub.expiration
                        self.lifecycle(sub, "reauthorizationRequired")
            await asyncio.sleep(self.options.lifecycle_check_s)
