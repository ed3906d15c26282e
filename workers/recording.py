"""Which file of the organizer's OneDrive `Recordings` folder is a meeting's recording; pure.

Teams saves a meeting's recording in its organizer's OneDrive as
`{subject}-{yyyyMMdd_HHmmss}-Meeting Recording.mp4`, uploaded when the recording stops. The
product reads only the listing's metadata (name, `webUrl`, `createdDateTime`, `file`) and
keeps the `webUrl`: the recording itself stays on Teams (DESIGN §1.4). A wrong link is worse
than none, so a file is taken only when its name begins with the meeting's subject and it
was created while the meeting ran or soon after.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from core import times

EARLY = timedelta(minutes=5)  # clocks differ a little
LATE = timedelta(hours=4)  # Teams uploads a long recording some time after the meeting
URL_LIMIT = 4096  # Recording_Url__c
_UNSAFE = re.compile(r'["*:<>?/\\|#%]')  # what OneDrive refuses in a name, and Teams drops


def _fold(text: str) -> str:
    return " ".join(_UNSAFE.sub("", text).casefold().split())


def _is_video(item: dict[str, Any]) -> bool:
    facet = item.get("file")
    if not isinstance(facet, dict):
        return False  # a folder, or a package
    mime = str(facet.get("mimeType") or "")
    return mime.startswith("video/") or str(item.get("name") or "").lower().endswith(".mp4")


def pick(
    items: Iterable[dict[str, Any]], subject: str, start: datetime, end: datetime
) -> dict[str, Any] | None:
    """The meeting's recording among `items`: a video whose name begins with the subject,
    created from `start` (less a little) to some hours after `end`; of several, the one
    created nearest the end. None when there is none."""
    wanted = _fold(subject)
    best: tuple[timedelta, dict[str, Any]] | None = None
    for item in items:
        created = times.parse(item.get("createdDateTime"))
        url = item.get("webUrl")
        if created is None or not isinstance(url, str) or not url or len(url) > URL_LIMIT:
            continue
        if not _is_video(item) or not (start - EARLY <= created <= end + LATE):
            continue
        # The subject and then the dash: "Renewal" is not "Renewal 2".
        if wanted and not _fold(str(item.get("name") or "")).startswith(wanted + "-"):
            continue
        distance = abs(created - end)
        if best is None or distance < best[0]:
            best = (distance, item)
    return best[1] if best else None
