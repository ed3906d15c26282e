"""Every error the product raises, under one base.

IngestError
 +-- ConfigurationError      a setting is missing or malformed (exit status 2)
 +-- BadInput                input from a user or a peer is not acceptable
 +-- UpstreamError           Graph, Salesforce or Redis misbehaved
      +-- UpstreamTransient  worth retrying later (429, 503, timeouts, 404-not-yet)
      +-- UpstreamPermanent  retrying will not help (403 consent, 400, schema missing)
"""


class IngestError(Exception):
    """Base of every error the product raises on purpose."""


class ConfigurationError(IngestError):
    """A setting is missing or malformed; the message names the variable."""

    def __init__(self, variable: str, reason: str) -> None:
        self.variable = variable
        self.reason = reason
        super().__init__(f"{variable}: {reason}")


class BadInput(IngestError):
    """Input from a user or a peer that the product will not accept."""


class UpstreamError(IngestError):
    """A dependency (Graph, Salesforce, Redis) failed."""


class UpstreamTransient(UpstreamError):
    """A failure worth retrying later; `retry_after` is a hint in seconds when known."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class UpstreamPermanent(UpstreamError):
    """A failure that retrying will not mend (consent missing, bad request, schema absent)."""
