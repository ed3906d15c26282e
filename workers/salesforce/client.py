"""The Salesforce REST client: OAuth token, simple-salesforce session, timeouts, retries, usage.

simple-salesforce's own login flows hard-code salesforce.com hosts, so the token is fetched
here (client credentials, or JWT bearer) from `SF_INSTANCE_URL` and simple-salesforce runs
in its session mode. Every request has a timeout; 503, REQUEST_LIMIT_EXCEEDED and
connection failures are retried with backoff, an expired session is renewed once, and what
still fails is raised as UpstreamTransient or UpstreamPermanent.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
from prometheus_client import Counter, Gauge
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

from core.exceptions import UpstreamPermanent, UpstreamTransient
from core.settings import Settings
from workers.usage import SALESFORCE, CallCounter

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TRANSIENT_CODES = frozenset(
    {"REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW", "TXN_SECURITY_END"}
)
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
_USAGE = re.compile(r"(?:^|[;,\s])api-usage=(\d+)/(\d+)")

API_USED = Gauge("ingest_salesforce_api_used", "Salesforce API requests used in the last 24 h")
API_LIMIT = Gauge("ingest_salesforce_api_limit", "Salesforce API requests allowed per 24 h")
CALLS = Counter("ingest_salesforce_calls", "Salesforce API calls by outcome", ["outcome"])


@dataclass(frozen=True)
class Backoff:
    """Attempts per call and the exponential backoff between them."""

    attempts: int = 4
    first_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 8.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.first_delay * self.factor ** (attempt - 1)))


@dataclass(frozen=True)
class Credentials:
    """How to get a token: client credentials, or JWT bearer when a key path is given."""

    client_id: str
    client_secret: str | None = None
    username: str | None = None
    private_key_path: Path | None = None
    audience: str | None = None  # JWT `aud`; default from the instance host

    def __repr__(self) -> str:
        return f"Credentials(client_id={self.client_id!r}, username={self.username!r})"


class _TimeoutSession(requests.Session):
    """A session whose requests get a default timeout (simple-salesforce sets none)."""

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        if kwargs.get("verify") is None:
            # Explicitly, or REQUESTS_CA_BUNDLE in the environment would override it.
            kwargs["verify"] = self.verify
        return super().request(method, url, *args, **kwargs)


def _record_usage(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    match = _USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
    if match:
        API_USED.set(int(match.group(1)))
        API_LIMIT.set(int(match.group(2)))


class SalesforceClient:
    """One org: a token, a simple-salesforce handle and the call policy, built once per process."""

    def __init__(
        self,
        instance_url: str,
        credentials: Credentials,
        api_version: str,
        ca_bundle: Path | None = None,
        timeout: tuple[float, float] = (5.0, 60.0),
        retry: Backoff = Backoff(),
        sleep: Callable[[float], None] = time.sleep,
        counter: CallCounter | None = None,
    ) -> None:
        self.instance_url = instance_url.rstrip("/")
        self.credentials = credentials
        self.api_version = api_version
        self.retry = retry
        self.sleep = sleep
        self.http = _TimeoutSession(timeout)
        if ca_bundle is not None:
            self.http.verify = str(ca_bundle)
        self.http.hooks["response"].append(_record_usage)
        self.http.hooks["response"].append(self._note_retry_after)
        self.counter = counter
        if counter is not None:
            self.http.hooks["response"].append(self._count)
        self.retry_after: float | None = None  # the last throttled answer's Retry-After
        self._sf: Salesforce | None = None
        self.calls = 0  # API calls answered (any status), for tests and logs

    @classmethod
    def from_settings(cls, settings: Settings) -> SalesforceClient:
        settings.require_salesforce()
        assert settings.sf_instance_url and settings.sf_client_id  # checked just above
        jwt_bearer = settings.sf_username is not None and settings.sf_private_key_path is not None
        credentials = Credentials(
            client_id=settings.sf_client_id,
            client_secret=None if jwt_bearer else settings.sf_client_secret,
            username=settings.sf_username if jwt_bearer else None,
            private_key_path=settings.sf_private_key_path if jwt_bearer else None,
        )
        return cls(
            settings.sf_instance_url,
            credentials,
            settings.sf_api_version,
            settings.ca_bundle,
            counter=CallCounter.for_settings(settings, SALESFORCE),
        )

    def close(self) -> None:
        self.http.close()
        if self.counter is not None:
            self.counter.close()

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        # API requests only (what the org's daily allowance counts), not token requests.
        if self.counter is not None and "/services/data/" in (response.request.url or ""):
            self.counter.hit()

    def _note_retry_after(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.retry_after = None
        if response.status_code in (429, 503):
            with contextlib.suppress(ValueError):  # an HTTP date is rare here: back off
                self.retry_after = max(0.0, float(response.headers.get("Retry-After", "")))

    # -- auth ------------------------------------------------------------------------------

    def _token_form(self) -> dict[str, str]:
        c = self.credentials
        if c.private_key_path is not None and c.username:
            host = urlsplit(self.instance_url).hostname or ""
            audience = c.audience or (
                "https://test.salesforce.com"
                if ".sandbox." in host
                else "https://login.salesforce.com"
            )
            claims: dict[str, Any] = {
                "iss": c.client_id,
                "sub": c.username,
                "aud": audience,
                "exp": int(time.time()) + 180,  # Salesforce allows at most three minutes
            }
            assertion = jwt.encode(claims, c.private_key_path.read_bytes(), algorithm="RS256")
            return {"grant_type": JWT_GRANT, "assertion": assertion}
        return {
            "grant_type": "client_credentials",
            "client_id": c.client_id,
            "client_secret": c.client_secret or "",
        }

    def token(self) -> str:
        """A fresh access token from `/services/oauth2/token`."""
        url = f"{self.instance_url}/services/oauth2/token"
        for attempt in range(1, self.retry.attempts + 1):
            try:
                resp = self.http.post(url, data=self._token_form())
            except requests.RequestException as exc:
                if attempt == self.retry.attempts:
                    reason = f"Salesforce token endpoint unreachable: {type(exc).__name__}"
                    raise UpstreamTransient(reason) from None
                self.sleep(self.retry.delay(attempt))
                continue
            if resp.status_code in TRANSIENT_STATUSES and attempt < self.retry.attempts:
                self.sleep(self.retry.delay(attempt))
                continue
            return self._read_token(resp)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _read_token(resp: requests.Response) -> str:
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code == 200 and isinstance(body, dict) and body.get("access_token"):
            return str(body["access_token"])
        error = body.get("error", "") if isinstance(body, dict) else ""
        reason = f"Salesforce refused the token request ({resp.status_code} {error})".strip()
        if resp.status_code in TRANSIENT_STATUSES:
            raise UpstreamTransient(reason)
        raise UpstreamPermanent(reason + ": check SF_CLIENT_ID and the secret or JWT key")

    def api(self) -> Salesforce:
        """The simple-salesforce handle, signing in on first use."""
        if self._sf is None:
            self._sf = Salesforce(
                instance_url=self.instance_url,
                session_id=self.token(),
                version=self.api_version,
                session=self.http,
            )
        return self._sf

    # -- calls -----------------------------------------------------------------------------

    def restful(
        self, path: str, method: str = "GET", body: Any = None, idempotent: bool = True
    ) -> Any:
        """One API call with the retry policy; `idempotent=False` never re-sends a request
        that may have reached Salesforce (a read timeout), only ones that surely did not."""
        renewed = False
        attempt = 1
        while True:
            try:
                kwargs: dict[str, Any] = {} if body is None else {"json": body}
                result = self.api().restful(path, method=method, **kwargs)
                self.calls += 1
                CALLS.labels("ok").inc()
                return result
            except SalesforceExpiredSession:
                if renewed:
                    CALLS.labels("transient").inc()
                    raise UpstreamTransient("Salesforce rejected a newly issued session") from None
                renewed = True
                self._sf = None  # the next api() signs in again
                continue
            except SalesforceError as exc:
                self.calls += 1
                problem = _classify(exc)
            except requests.RequestException as exc:
                sent = not isinstance(exc, requests.ConnectTimeout) and not _refused(exc)
                problem = UpstreamTransient(f"Salesforce unreachable: {type(exc).__name__}")
                if sent and not idempotent:
                    CALLS.labels("transient").inc()
                    raise problem from None
            wait = max(self.retry.delay(attempt), self.retry_after or 0.0)
            if isinstance(problem, UpstreamTransient) and wait > self.retry.max_delay:
                # Longer than a job should block: the job's own retry waits instead.
                problem = UpstreamTransient(str(problem), retry_after=wait)
            elif not isinstance(problem, UpstreamPermanent) and attempt < self.retry.attempts:
                self.sleep(wait)
                attempt += 1
                continue
            CALLS.labels(
                "permanent" if isinstance(problem, UpstreamPermanent) else "transient"
            ).inc()
            raise problem


def _refused(exc: requests.RequestException) -> bool:
    """Whether the connection was never made (the request surely did not arrive)."""
    text = repr(exc)
    return "NewConnectionError" in text or "Connection refused" in text


def error_code(content: Any) -> str:
    """The first `errorCode` of a Salesforce error body (a list of errors)."""
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode") or content[0].get("statusCode") or "")
    if isinstance(content, dict):
        return str(content.get("errorCode") or content.get("error") or "")
    return ""


def error_message(content: Any) -> str:
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("message") or "")[:300]
    return ""


def _classify(exc: SalesforceError) -> UpstreamTransient | UpstreamPermanent:
    code = error_code(exc.content)
    reason = f"Salesforce answered {exc.status} {code}: {error_message(exc.content)}".rstrip(": ")
    if exc.status in TRANSIENT_STATUSES or code in TRANSIENT_CODES:
        return UpstreamTransient(reason)
    return UpstreamPermanent(reason)
