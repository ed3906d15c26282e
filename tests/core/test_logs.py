"""Log lines never carry secrets or transcript text, and tracebacks carry no locals."""

from __future__ import annotations

import io
import json
import logging

import structlog

from core import logs


def capture(json_mode: bool = True) -> io.StringIO:
    out = io.StringIO()
    structlog.reset_defaults()
    logs.configure(stream=out, json=json_mode)
    return out


class TestRedaction:
    """Secret keys, tokens in free text and transcript text are masked."""

    def teardown_method(self) -> None:
        structlog.reset_defaults()

    def test_secret_keys_masked(self) -> None:
        out = capture()
        log = structlog.get_logger("t")
        log.info(
            "x",
            clientState="cs-secret",
            client_secret="sec",
            access_token="tok",
            transcript="Alice: hello",
            nested={"refresh_token": "r", "ok": "fine"},
        )
        line = json.loads(out.getvalue())
        for key in ("clientState", "client_secret", "access_token", "transcript"):
            assert line[key] == "[redacted]"
        assert line["nested"] == {"refresh_token": "[redacted]", "ok": "fine"}
        for secret in ("cs-secret", 'sec"', 'tok"', "hello"):
            assert secret not in out.getvalue()

    def test_tokens_in_free_text(self) -> None:
        out = capture()
        jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl"
        structlog.get_logger("t").warning(
            "failed", error=f"401 for Bearer {jwt} at https://x/?validationToken=abc&code=xyz"
        )
        text = out.getvalue()
        assert jwt not in text
        assert "validationToken=abc" not in text
        assert "code=xyz" not in text

    def test_traceback_without_locals(self) -> None:
        out = capture()

        def boom(secret_token: str) -> None:
            raise RuntimeError("boom")

        try:
            boom("very-secret-local")
        except RuntimeError:
            structlog.get_logger("t").exception("failed")
        assert "boom" in out.getvalue()
        assert "very-secret-local" not in out.getvalue()

    def test_console_mode_redacts_too(self) -> None:
        out = capture(json_mode=False)
        structlog.get_logger("t").info("x", clientState="cs-secret")
        assert "cs-secret" not in out.getvalue()
        assert "[redacted]" in out.getvalue()

    def test_context_is_bound(self) -> None:
        out = capture()
        structlog.contextvars.bind_contextvars(request_id="r-1")
        try:
            structlog.get_logger("t").info("x")
        finally:
            structlog.contextvars.clear_contextvars()
        assert json.loads(out.getvalue())["request_id"] == "r-1"


class TestLibraryLines:
    """Lines that libraries (RQ, msal, azure, aiohttp) write through stdlib logging take the
    same processors: redacted, and JSON like the product's own."""

    def teardown_method(self) -> None:
        structlog.reset_defaults()

    def test_stdlib_line_redacted_with_its_traceback(self) -> None:
        out = capture()
        try:
            raise ValueError("refused Bearer abc.def-secret")
        except ValueError:
            logging.getLogger("rq.worker").error("job failed: %s", "code=xyz-secret",
                                                 exc_info=True)  # fmt: skip
        line = json.loads(out.getvalue())
        assert (line["logger"], line["level"]) == ("rq.worker", "error")
        assert line["event"] == "job failed: code=[redacted]"
        assert line["exception"][0]["exc_value"] == "refused [redacted]"
        assert "secret" not in out.getvalue()

    def test_console_mode_and_quiet_below_warning(self) -> None:
        out = capture(json_mode=False)
        logging.getLogger("msal").info("not shown")
        logging.getLogger("azure.identity").warning("retrying with Bearer zzz-secret")
        assert "not shown" not in out.getvalue()
        assert "retrying with [redacted]" in out.getvalue() and "zzz" not in out.getvalue()

    def test_configured_twice_one_handler(self) -> None:
        first, second = capture(), capture()
        logging.getLogger("azure.identity").warning("once")
        assert first.getvalue() == "" and second.getvalue().count("once") == 1

    def test_handlers_rq_gave_itself_are_taken_back(self) -> None:
        rq_own = logging.getLogger("rq.job")
        rq_own.propagate = False  # as RQ's setup_loghandlers leaves it without a root handler
        rq_own.addHandler(logging.StreamHandler(io.StringIO()))
        out = capture()
        rq_own.error("arguments: Bearer qqq-secret")
        assert rq_own.handlers == [] and rq_own.propagate
        assert json.loads(out.getvalue())["event"] == "arguments: [redacted]"
