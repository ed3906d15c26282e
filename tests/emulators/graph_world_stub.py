"""TEMPORARY stand-in for G1's World until emulators/graph/world.py is committed."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tenant:
    id: str
    domains: tuple[str, ...]


@dataclass(frozen=True)
class User:
    id: str
    upn: str
    name: str
    eci: bool


@dataclass(frozen=True)
class Scenario:
    tenant: Tenant
    users: tuple[User, ...]
    meetings: tuple[dict[str, Any], ...]


def parse(doc: dict[str, Any]) -> Scenario:
    return Scenario(
        Tenant(doc["tenant"]["id"], tuple(doc["tenant"]["domains"])),
        tuple(User(u["id"], u["upn"], u["name"], u["eci"]) for u in doc["users"]),
        tuple(doc["meetings"]),
    )


class World:
    def __init__(self, scenario: Scenario, clock: Callable[[], float] = time.time) -> None:
        self.scenario, self.clock, self.tenant_id = scenario, clock, scenario.tenant.id
        self._played: dict[str, float] = {}
        self._versions: dict[str, int] = {}
        self.recording_content_downloads = 0
        self.transcript_content_downloads: dict[str, int] = {}

    def user(self, id_or_upn: str) -> User | None:
        k = id_or_upn.lower()
        return next((u for u in self.scenario.users if k in (u.id.lower(), u.upn.lower())), None)

    def meeting(self, mid: str) -> dict[str, Any]:
        for m in self.scenario.meetings:
            if m["id"] == mid:
                return m
        raise KeyError(mid)

    def play(self, ids: Sequence[str] | None = None) -> list[str]:
        ids = list(ids) if ids else [m["id"] for m in self.scenario.meetings]
        for i in ids:
            self.meeting(i)
        for i in ids:
            self._played[i] = self.clock()
        return ids

    def played_at(self, mid: str) -> float | None:
        return self._played.get(mid)

    def organizer_id(self, mid: str) -> str:
        user = self.user(self.meeting(mid)["organizer"])
        assert user is not None
        return user.id

    def call_record_id(self, mid: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, "cr:" + mid))

    def online_meeting_id(self, mid: str) -> str:
        raw = f"1*{self.organizer_id(mid)}*0**19:meeting_{mid}@thread.v2"
        return base64.b64encode(raw.encode()).decode()

    def transcript_id(self, mid: str) -> str:
        raw = f"1##0##{uuid.uuid5(uuid.NAMESPACE_URL, 't:' + mid)}"
        return base64.b64encode(raw.encode()).decode()

    def has_transcript(self, mid: str) -> bool:
        return bool(self.meeting(mid).get("transcript"))

    def transcript_ready_at(self, mid: str) -> float | None:
        at = self.played_at(mid)
        if at is None or not self.has_transcript(mid):
            return None
        return at + float(self.meeting(mid).get("transcript_ready_after_s", 0))

    def transcript_ready(self, mid: str) -> bool:
        at = self.transcript_ready_at(mid)
        return at is not None and self.clock() >= at

    def call_record_version(self, mid: str) -> int:
        return self._versions.get(mid, 1)

    def bump_call_record_version(self, mid: str) -> int:
        self._versions[mid] = self.call_record_version(mid) + 1
        return self._versions[mid]
