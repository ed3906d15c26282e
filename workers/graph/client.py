"""The worker's Graph client: credential, msgraph client and the one event loop that runs it.

msgraph-sdk is async-only and its connections belong to the loop that opened them, so a
worker process keeps one loop for its whole life and runs each call with
`run_until_complete` (RQ jobs are synchronous). The credential is azure-identity's sync one:
it caches tokens and refreshes them before they expire.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx

from core.exceptions import NotFound, Unauthorized, UpstreamError
from core.settings import Settings
from workers.graph.errors import translate
from workers.usage import GRAPH, CallCounter

T = TypeVar("T")
SCOPES = ["https://graph.microsoft.com/.default"]
PUBLIC_AUTHORITY = "login.microsoftonline.com"
MAX_RETRIES = 3  # the SDK's retry handler: 429/503/504, honouring Retry-After
RETRY_BASE_DELAY = 1.0  # added to the exponential backoff when Graph sends no Retry-After


def _credential(settings: Settings) -> Any:
    from azure.identity import CertificateCredential, ClientSecretCredential

    settings.require_graph()
    authority = settings.graph_authority
    options: dict[str, Any] = {
        "authority": authority,
        "disable_instance_discovery": PUBLIC_AUTHORITY not in authority,
    }
    if settings.ca_bundle is not None:
        options["connection_verify"] = str(settings.ca_bundle)
    assert settings.graph_tenant_id and settings.graph_client_id
    if settings.graph_client_secret:
        return ClientSecretCredential(
            settings.graph_tenant_id,
            settings.graph_client_id,
            settings.graph_client_secret,
            **options,
        )
    return CertificateCredential(
        settings.graph_tenant_id,
        settings.graph_client_id,
        certificate_path=str(settings.graph_client_certificate_path),
        **options,
    )


class CountingTransport(httpx.AsyncBaseTransport):
    """An httpx transport that counts every answered request (workers/usage.py)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, counter: CallCounter) -> None:
        self.inner = inner
        self.counter = counter

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.counter.hit()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class GraphClient:
    """One msgraph GraphServiceClient on one event loop; `call` runs a request on it.

    Without `credential` it signs in as the app; `with_credential` builds a client for other
    tokens (a connected user's) on the same loop, closed with this one. Every request it
    sends (retries included) is counted for the ops page (workers/usage.py).
    """

    def __init__(
        self,
        settings: Settings,
        credential: Any = None,
        loop: asyncio.AbstractEventLoop | None = None,
        counter: CallCounter | None = None,
    ) -> None:
        self.settings = settings
        self._owns_counter = counter is None
        self.counter = counter or CallCounter.for_settings(settings, GRAPH)
        self.timeout = httpx.Timeout(settings.graph_timeout_seconds, connect=10.0)
        self._owns_loop = loop is None
        self.loop = loop or asyncio.new_event_loop()
        self._given_credential = credential
        self._credential: Any = credential
        self._http: httpx.AsyncClient | None = None
        self._children: list[GraphClient] = []
        self._closed = False
        self.sdk: Any = None
        try:
            self._build()
        except BaseException:  # a bad setting must not leak the loop
            if self._owns_loop:
                self.loop.close()
            if self._owns_counter:
                self.counter.close()
            raise

    def with_credential(self, credential: Any) -> GraphClient:
        """A client on this one's loop whose requests carry `credential`'s tokens; it owns the
        credential and is closed when this client is."""
        child = GraphClient(
            self.settings, credential=credential, loop=self.loop, counter=self.counter
        )
        self._children.append(child)
        return child

    def _build(self) -> None:
        from kiota_authentication_azure.azure_identity_authentication_provider import (
            AzureIdentityAuthenticationProvider,
        )
        from kiota_http.middleware.options import RetryHandlerOption
        from msgraph import GraphServiceClient
        from msgraph.graph_request_adapter import GraphRequestAdapter
        from msgraph.graph_request_adapter import options as sdk_options
        from msgraph_core import GraphClientFactory

        if self._given_credential is None:
            self._credential = _credential(self.settings)
        verify: ssl.SSLContext | bool = True
        if self.settings.ca_bundle is not None:
            verify = ssl.create_default_context(cafile=str(self.settings.ca_bundle))
        # Counted at the innermost transport: the SDK's retry handler sits above it, and
        # Graph counts each retry against the app's throttling limits as well.
        transport = CountingTransport(httpx.AsyncHTTPTransport(verify=verify), self.counter)
        self._http = httpx.AsyncClient(timeout=self.timeout, transport=transport)
        # msgraph_core wraps the transport in one without aclose(): keep the real pool to close.
        self._pool = self._http._transport
        options = dict(sdk_options)
        options[RetryHandlerOption.get_key()] = RetryHandlerOption(
            delay=RETRY_BASE_DELAY, max_retries=MAX_RETRIES
        )
        http = GraphClientFactory.create_with_default_middleware(client=self._http, options=options)
        auth = AzureIdentityAuthenticationProvider(self._credential, scopes=SCOPES)
        adapter = GraphRequestAdapter(auth, client=http)
        adapter.base_url = self.settings.graph_base_url
        self.sdk = GraphServiceClient(request_adapter=adapter)

    def access_token(self) -> str:
        """A token of this client's credential, as every request carries it (one token request
        unless the credential holds one); sign-in failures become UpstreamError."""
        try:
            return str(self._credential.get_token(*SCOPES).token)
        except Exception as exc:
            mapped = translate(exc, "requesting a token", app_id=self.settings.graph_client_id)
            if mapped is None:
                raise
            raise mapped from None

    def request(
        self,
        what: str,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        permission: str | None = None,
        user_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One Graph request by path (under GRAPH_BASE_URL) or by a full `@odata.nextLink`,
        in and out as Graph's JSON: every Graph read and write of the product that no
        request builder of GraphApi covers goes through here."""
        url = path if path.startswith("https://") or path.startswith("http://") else (
            self.settings.graph_base_url + path
        )  # fmt: skip

        async def send(sdk: Any) -> dict[str, Any]:
            return await send_json(sdk, method, url, body, headers)

        return self.call(what, send, permission, user_id)

    def pages(
        self, what: str, path: str, permission: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Each page of a collection, following `@odata.nextLink` (one request a page)."""
        link: str | None = path
        while link:
            page = self.request(what, "GET", link, permission=permission)
            yield page
            link = page.get("@odata.nextLink")

    def call(
        self,
        what: str,
        request: Callable[[Any], Awaitable[T]],
        permission: str | None = None,
        user_id: str | None = None,
    ) -> T:
        """Run `request(sdk_client)` on the loop; failures become UpstreamError. A 403 names
        `permission` (what the request needs) or the access policy for `user_id`.

        A 401 is retried once with a new credential (a token revoked or expired early).
        """
        try:
            return self._run(what, request, permission, user_id)
        except Unauthorized:
            self._reset()
            return self._run(what, request, permission, user_id)

    def _run(
        self,
        what: str,
        request: Callable[[Any], Awaitable[T]],
        permission: str | None,
        user_id: str | None,
    ) -> T:
        try:
            return self.loop.run_until_complete(request(self.sdk))
        except UpstreamError:
            raise
        except Exception as exc:
            app_id = self.settings.graph_client_id
            mapped = translate(exc, what, permission, user_id, app_id)
            if mapped is None:
                raise
            raise mapped from None

    def _reset(self) -> None:
        self._close_transport()
        self._build()

    def _close_transport(self) -> None:
        if self._http is not None and not self.loop.is_closed():
            self.loop.run_until_complete(self._http.aclose())
            self.loop.run_until_complete(self._pool.aclose())
        self._http = None
        if self._given_credential is None:  # a given one is kept across a reset
            _close(self._credential)

    def close(self) -> None:
        """Close the HTTP connections, the credential, the clients built on this loop and,
        when this client made it, the loop."""
        if self._closed:
            return
        self._closed = True
        for child in self._children:
            child.close()
        self._close_transport()
        if self._given_credential is not None:
            _close(self._given_credential)
        if self._owns_loop:
            self.loop.close()
        if self._owns_counter:
            self.counter.close()


def _close(credential: Any) -> None:
    closer = getattr(credential, "close", None)
    if callable(closer):
        closer()


async def get_json(sdk: Any, builder: Any, config: Any = None) -> dict[str, Any]:
    """GET what `builder` addresses, as Graph's JSON: the SDK's URL, auth, middleware and error
    mapping, but no SDK model. msgraph's generated deserializers cost ~2.3 ms per entity
    (`Entity.get_field_deserializers` runs ~2,400 imports a call), and `as_json` then wrote the
    model back into the JSON it came from: 6 requests a meeting spent ~40 ms of worker CPU so."""
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    info = builder.to_get_request_information(config)
    # Expand the URL template once, not twice: the auth provider and the adapter each read
    # `info.url`, and each read expands it again (~0.36 ms for a meeting's long ids). The
    # adapter sets the base URL itself just before; set here, the expansion is complete.
    sdk.request_adapter.set_base_url_for_request_information(info)
    info.url = info.url
    raw = await sdk.request_adapter.send_primitive_async(info, "bytes", {"XXX": ODataError})
    doc = json.loads(raw) if raw else {}
    return doc if isinstance(doc, dict) else {}


async def send_json(
    sdk: Any, method: str, url: str, body: dict[str, Any] | None = None, headers: Any = None
) -> dict[str, Any]:
    """`method` on the absolute `url` with a JSON `body`, answered as Graph's JSON ({} for
    204): the SDK's auth, middleware (retries honouring Retry-After) and error mapping, no
    model either way."""
    from kiota_abstractions.method import Method
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    info = sdk.users.with_url(url).to_get_request_information()
    info.http_method = Method[method]
    for name, value in (headers or {}).items():
        info.headers.try_add(name, value)
    if body is not None:
        info.set_stream_content(json.dumps(body).encode(), "application/json")
    sdk.request_adapter.set_base_url_for_request_information(info)
    info.url = info.url
    errors = {"XXX": ODataError}
    if method == "DELETE":
        await sdk.request_adapter.send_no_response_content_async(info, errors)
        return {}
    raw = await sdk.request_adapter.send_primitive_async(info, "bytes", errors)
    doc = json.loads(raw) if raw else {}
    return doc if isinstance(doc, dict) else {}


def absent(call: Callable[[], T]) -> T | None:
    """`call()`, or None when Graph answers 404: where absence is an answer, not a failure."""
    try:
        return call()
    except NotFound:
        return None


def graph(context: Any) -> GraphClient:
    """The worker process's one Graph client (built on first use)."""
    return context.resource("graph", lambda ctx: GraphClient(ctx.settings))  # type: ignore[no-any-return]
