"""Timings and settings of the Graph emulator that are not faults (all shrinkable by tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class GraphOptions:
    """One settings object for the emulator; the CLI builds it from flags, tests directly."""

    client_certificate: Path | None = None  # PEM accepted for certificate client assertions
    validation_timeout_s: float = 10.0  # Graph's handshake budget
    delivery_timeout_s: float = 3.0  # a notification must be answered 2xx within this
    retry_base_s: float = 1.0  # first retry delay; doubles per attempt
    retry_attempts: int = 5  # deliveries per notification, the first included
    updated_delay_s: float = 2.0  # callRecord `created` → `updated`
    transcript_poll_s: float = 0.2  # how often a played meeting's transcript readiness is checked
    reauthorize_before_s: float | None = None  # reauthorizationRequired this long before expiry
    lifecycle_check_s: float = 30.0  # how often expiring subscriptions are looked at
    batch_window_s: float = 0.1  # notifications due within this go to an endpoint in one POST
    batch_max: int = 100  # items per POST at most
