"""RQ jobs: thin, module-level, with plain JSON arguments; the work lives elsewhere.

The receiver enqueues these by dotted path (`workers.jobs.handle_notification`), so it never
imports this module or what it uses.
"""

from __future__ import annotations

from typing import Any

import structlog

from workers.context import current
from workers.ledger import Ledger

log = structlog.get_logger("workers.jobs")


def handle_notification(payload: dict[str, Any]) -> dict[str, str]:
    """A validated callRecord or transcript notification: note it in the ledger."""
    entry = Ledger(current().redis).record_notification(payload)
    log.info("notification_recorded", kind=payload.get("kind"), resource_id=entry.get("resource"),
             notifications=entry.get("notifications"))  # fmt: skip
    return entry


def handle_lifecycle(payload: dict[str, Any]) -> dict[str, str]:
    """A lifecycle notification (reauthorizationRequired, subscriptionRemoved, missed)."""
    entry = Ledger(current().redis).record_notification(payload)
    log.warning("lifecycle_event", event=payload.get("lifecycleEvent"),
                subscription_id=payload.get("subscriptionId"))  # fmt: skip
    return entry
