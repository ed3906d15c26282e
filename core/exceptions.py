"""Every error the product raises, under one base.

IngestError
 +-- ConfigurationError      a setting is missing or malformed (exit status 2)
 +-- BadInput                input from a user or a peer is not acceptable
 |    +-- Drop               a notification item the receiver will not enqueue (`reason`)
 |    +-- SealBroken         a sealed value not sealed with this key (tampered, other key)
 |    +-- SealExpired        a sealed value older than its allowed age
 +-- ConnectFailed           the OAuth connect flow cannot finish (safe title and detail)
 +-- UpstreamError           Graph, Salesforce or Redis misbehaved
      +-- UpstreamTransient  worth retrying later (429, 503, timeouts, 404-not-yet)
      |    +-- NotFound      404: not there (yet); the caller decides to wait or give up
      |    +-- Unauthorized  401: the token was refused; a fresh token may mend it
      +-- UpstreamPermanent  retrying will not help (403 consent, 400, schema missing)
      |    +-- SchemaMissing the Salesforce org lacks an object or field the product writes
      +-- Conflict           409 on creating a Graph subscription that exists already

Foreign errors are mapped onto this tree in one place each: Graph's in
workers/graph/errors.py, Salesforce's in workers/salesforce/client.py, and the policy's
PolicyConfigError (policy/ imports nothing of the product) in workers/policy_config.py.
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


class Drop(BadInput):
    """A notification item that is not accepted; `reason` is the metric label and log field."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class SealBroken(BadInput):
    """The value was not sealed with this key for this purpose, or was altered."""


class SealExpired(BadInput):
    """The value is genuine but older than its allowed age."""


class ConnectFailed(IngestError):
    """The flow cannot finish; `title` and `detail` are safe to show, `event` is logged."""

    def __init__(self, event: str, title: str, detail: str, status: int = 400) -> None:
        self.event, self.title, self.detail, self.status = event, title, detail, status
        super().__init__(f"{event}: {detail}")


class UpstreamError(IngestError):
    """A dependency (Graph, Salesforce, Redis) failed."""


class UpstreamTransient(UpstreamError):
    """A failure worth retrying later; `retry_after` is a hint in seconds when known."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class NotFound(UpstreamTransient):
    """Graph answered 404: not there (yet); the caller decides whether to wait or give up."""


class Unauthorized(UpstreamTransient):
    """Graph answered 401: the token was refused; a fresh token may mend it."""


class UpstreamPermanent(UpstreamError):
    """A failure that retrying will not mend (consent missing, bad request, schema absent)."""


class SchemaMissing(UpstreamPermanent):
    """The org lacks an object or field the product writes, or the user may not write it."""


class Conflict(UpstreamError):
    """Graph's 409 on creating a subscription: it exists already."""

    def __init__(self, subscription_id: str) -> None:
        self.subscription_id = subscription_id
        super().__init__(f"subscription {subscription_id} already exists")
