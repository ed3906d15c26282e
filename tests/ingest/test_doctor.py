"""`ingest doctor`'s checks one by one against real parts: redis-servers with persistence off
and on, receivers that answer the handshake wrongly, the Salesforce emulator with a field
missing or read-only, and the command's exit status on a malformed setting."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from aiohttp import web

from core.settings import Settings
from emulators.salesforce.app import Config
from emulators.salesforce.metadata import DEFAULT_DIR
from emulators.tls import ensure_ca
from ingest import cli
from ingest.checkup import Check, guarded, handshake, salesforce, store
from ingest.checkup import config as config_check
from ingest.embedded_redis import RedisServer, free_port
from tests.emulators.graph_harness import BackgroundLoop, wait_for
from tests.emulators.salesforce_harness import Server


def names(checks: list[Check]) -> dict[str, bool]:
    return {c.name: c.ok for c in checks}


# -- Redis ---------------------------------------------------------------------------------
@pytest.fixture
def fresh_redis() -> Iterator[tuple[RedisServer, redis.Redis]]:
    """A redis-server of this test's own (its configuration is changed), persisting nothing."""
    with RedisServer() as server:
        conn = redis.Redis.from_url(server.url)
        yield server, conn
        conn.config_set("appendonly", "no")  # else the server fsyncs its AOF while it stops
        conn.close()


def restricted(server: RedisServer, admin: redis.Redis) -> redis.Redis:
    """A user that may not run CONFIG, as on managed services that refuse it."""
    admin.acl_setuser("doctor", enabled=True, passwords=["+doctor-pass"], keys=["*"],
                      commands=["+@all", "-config"])  # fmt: skip
    return redis.Redis(host="127.0.0.1", port=server.port, username="doctor",
                       password="doctor-pass")  # fmt: skip


class TestRedis:
    """Redis answers, and keeps data: AOF or RDB, from CONFIG or, where CONFIG is refused, from
    INFO persistence."""

    def test_without_persistence_fails(self, fresh_redis: tuple[RedisServer, redis.Redis]) -> None:
        _, conn = fresh_redis
        [check] = store.persistence(conn)
        assert not check.ok
        assert 'appendonly no, save ""' in check.detail
        assert check.fix and "appendonly yes" in check.fix

    def test_aof_passes(self, fresh_redis: tuple[RedisServer, redis.Redis]) -> None:
        _, conn = fresh_redis
        conn.config_set("appendonly", "yes")
        [check] = store.persistence(conn)
        assert check.ok and check.detail.startswith("AOF on")

    def test_rdb_passes(self, fresh_redis: tuple[RedisServer, redis.Redis]) -> None:
        _, conn = fresh_redis
        conn.config_set("save", "3600 1 300 100")
        [check] = store.persistence(conn)
        assert check.ok and "RDB snapshots on (save 3600 1 300 100)" in check.detail

    def test_config_refused_reads_info(self, fresh_redis: tuple[RedisServer, redis.Redis]) -> None:
        server, admin = fresh_redis
        user = restricted(server, admin)
        with pytest.raises(redis.ResponseError):
            user.config_get("appendonly")
        [off] = store.persistence(user)
        assert not off.ok and "INFO persistence: aof_enabled 0" in off.detail
        admin.config_set("appendonly", "yes")
        wait_for(lambda: int(user.info("persistence")["aof_enabled"]) == 1)
        [on] = store.persistence(user)
        assert on.ok and on.detail == "AOF on (INFO persistence: aof_enabled 1)"
        user.close()

    def test_config_refused_sees_rdb_snapshots(
        self, fresh_redis: tuple[RedisServer, redis.Redis]
    ) -> None:
        server, admin = fresh_redis
        user = restricted(server, admin)
        user.set("k", "v")
        [unsaved] = store.persistence(user)
        assert not unsaved.ok  # no snapshot since start: nothing proves RDB is on
        admin.bgsave()
        wait_for(lambda: int(user.info("persistence")["rdb_saves"]) >= 1)
        [saved] = store.persistence(user)
        assert saved.ok and "RDB snapshots taken" in saved.detail
        user.close()

    def test_unreachable_is_named_without_secret(self) -> None:
        url = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"
        conn = redis.Redis.from_url(url, socket_connect_timeout=1)
        [answer] = store.answers(conn, url)
        [kept] = store.persistence(conn)
        for check in (answer, kept):
            assert not check.ok and check.fix == store.FIX_UNREACHABLE
            assert "hunter2" not in check.detail
        assert "redis://:***@127.0.0.1" in answer.detail


# -- settings ------------------------------------------------------------------------------
class TestSettings:
    """What a live setup lacks is named by variable."""

    def test_nothing_set(self) -> None:
        [check] = config_check.check(Settings(), ())
        assert not check.ok
        for variable in ("GRAPH_TENANT_ID", "GRAPH_CLIENT_ID", "GRAPH_CLIENT_SECRET",
                         "SF_INSTANCE_URL", "SF_CLIENT_ID", "SF_CLIENT_SECRET",
                         "INGEST_PUBLIC_URL"):  # fmt: skip
            assert variable in check.detail

    def test_secrets_never_shown(self) -> None:
        settings = Settings(
            public_url="https://ingest.example.com", graph_tenant_id="t", graph_client_id="app",
            graph_client_secret="graph-secret-value", sf_instance_url="https://x.my.salesforce.com",
            sf_client_id="sf-app", sf_client_secret="sf-secret-value",
        )  # fmt: skip
        [check] = config_check.check(settings, ("contoso.com",))
        assert check.ok and "contoso.com" in check.detail
        assert "secret-value" not in check.line()


def test_lines() -> None:
    assert Check("settings", True, "all set").line() == "ok    settings: all set"
    line = Check("redis", False, "Redis does not answer", "check REDIS_URL").line()
    assert line == "FAIL  redis: Redis does not answer -- fix: check REDIS_URL"


def test_an_unexpected_error_is_a_failed_line() -> None:
    def broken() -> list[Check]:
        raise KeyError("surprise")

    [check] = guarded("graph token", "the fix", broken)
    assert (check.ok, check.detail, check.fix) == (False, "KeyError: 'surprise'", "the fix")


# -- the handshake -------------------------------------------------------------------------
@pytest.fixture
def receivers() -> Iterator[str]:
    """One aiohttp app playing a right receiver and each kind of wrong one, by path."""

    async def right(request: web.Request) -> web.Response:
        return web.Response(text=request.query["validationToken"], content_type="text/plain")

    async def as_json(request: web.Request) -> web.Response:
        return web.json_response({"validationToken": request.query["validationToken"]})

    async def re_encoded(request: web.Request) -> web.Response:
        return web.Response(text=quote(request.query["validationToken"], safe=""))

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.5)
        return await right(request)

    async def accepted(request: web.Request) -> web.Response:
        return web.Response(status=202)

    app = web.Application()
    for name, handler in (("right", right), ("json", as_json), ("encoded", re_encoded),
                          ("slow", slow), ("accepted", accepted)):  # fmt: skip
        app.router.add_post(f"/{name}/graph/notifications", handler)
    bg = BackgroundLoop()
    try:
        yield f"http://127.0.0.1:{bg.serve(app)}"
    finally:
        bg.close()


class TestHandshake:
    """POST ?validationToken=… as Graph sends it: 200, text/plain, the decoded token, in time."""

    def test_token_is_what_receivers_mangle(self) -> None:
        sent = handshake.token()
        assert " " in sent and "+" in sent and "%" in sent and "&" in sent

    def test_right_receiver(self, receivers: str) -> None:
        check = handshake.answer(f"{receivers}/right", "/graph/notifications")
        assert check.ok, check

    @pytest.mark.parametrize(
        ("receiver", "said"),
        [
            ("json", "answered with JSON (application/json), not the token as text/plain"),
            ("encoded", "answered with the token still URL-encoded"),
            ("accepted", "answered 202, not 200"),
            ("missing", "answered 404, not 200"),
        ],
    )
    def test_wrong_receivers(self, receivers: str, receiver: str, said: str) -> None:
        check = handshake.answer(f"{receivers}/{receiver}", "/graph/notifications")
        assert not check.ok and check.detail == said
        assert check.fix and ("text/plain" in check.fix or "ingest serve" in check.fix)

    def test_too_slow(self, receivers: str) -> None:
        started = time.monotonic()
        check = handshake.answer(f"{receivers}/slow", "/graph/notifications", limit=0.3)
        assert not check.ok and check.detail == "no answer within 0.3 s (Graph's limit)"
        assert time.monotonic() - started < 1.4  # it gave up at the limit
        assert check.fix == handshake.FIX_ECHO

    def test_unreachable(self) -> None:
        check = handshake.answer(f"http://127.0.0.1:{free_port()}", "/graph/lifecycle")
        assert not check.ok and check.detail.startswith("cannot reach http://127.0.0.1:")
        assert check.fix and "POST /graph/lifecycle" in check.fix

    def test_without_public_url(self) -> None:
        checks = handshake.check(Settings())
        assert [c.name for c in checks] == ["handshake /graph/notifications",
                                            "handshake /graph/lifecycle"]  # fmt: skip
        assert not any(c.ok for c in checks)


# -- Salesforce ----------------------------------------------------------------------------
@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    ensure_ca(tmp_path / "ca")
    return tmp_path / "ca"


def sf_settings(server: Server, secret: str = "emulator-secret") -> Settings:
    return Settings(sf_instance_url=server.base, sf_client_id="emulator-app",
                    sf_client_secret=secret, ca_bundle=server.ca_dir / "ca.pem")  # fmt: skip


def project(tmp_path: Path) -> Path:
    copy = tmp_path / "salesforce"
    shutil.copytree(DEFAULT_DIR, copy)
    return copy / "force-app" / "main" / "default" / "objects"


class TestSalesforce:
    """Sign-in, then one describe call: each missing or read-only field on a line of its own."""

    def test_shipped_metadata_passes(self, ca_dir: Path) -> None:
        with Server(Config(), ca_dir) as server:
            checks = salesforce.check(sf_settings(server))
            assert names(checks) == {"salesforce sign-in": True, "salesforce schema": True}
            calls = server.stats()["api_calls"]
        assert calls == 1  # the describe check is one composite call

    def test_missing_and_read_only_fields(self, ca_dir: Path, tmp_path: Path) -> None:
        objects = project(tmp_path)
        (objects / "Teams_Transcript__c/fields/Cue_Count__c.field-meta.xml").unlink()
        field = objects / "Teams_Meeting_Participant__c/fields/Meeting__c.field-meta.xml"
        field.write_text(field.read_text().replace(">true</reparentable", ">false</reparentable"))
        with Server(Config(metadata_dir=objects.parents[3]), ca_dir) as server:
            checks = salesforce.check(sf_settings(server))
        failed = {c.name: c for c in checks if not c.ok}
        assert set(failed) == {"salesforce Teams_Transcript__c.Cue_Count__c",
                               "salesforce Teams_Meeting_Participant__c.Meeting__c"}  # fmt: skip
        missing = failed["salesforce Teams_Transcript__c.Cue_Count__c"]
        assert missing.detail == "field not found"
        assert missing.fix and "sf project deploy start" in missing.fix
        assert "Teams_Transcript_Integration" in missing.fix
        fixed = failed["salesforce Teams_Meeting_Participant__c.Meeting__c"]
        assert fixed.detail == "not updateable" and fixed.fix and "reparenting" in fixed.fix

    def test_refused_sign_in(self, ca_dir: Path) -> None:
        with Server(Config(), ca_dir) as server:
            checks = salesforce.check(sf_settings(server, secret="wrong-secret"))
        assert names(checks) == {"salesforce sign-in": False, "salesforce schema": False}
        assert "wrong-secret" not in " ".join(c.line() for c in checks)
        assert checks[0].fix and "SF_CLIENT_SECRET" in checks[0].fix


# -- the command ---------------------------------------------------------------------------
class TestCommand:
    """`ingest doctor` parses `--json`; a malformed setting exits 2 before any check."""

    def test_bad_configuration_exits_2(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        bad = tmp_path / "policy.toml"
        bad.write_text("internal_domains = [")
        monkeypatch.setenv("POLICY_FILE", str(bad))
        assert cli.main(["doctor", "--json"]) == 2
        out, err = capsys.readouterr()
        assert out == "" and len(err.strip().splitlines()) == 1 and "POLICY_FILE" in err

    def test_parser(self) -> None:
        assert cli.build_parser().parse_args(["doctor", "--json"]).json is True
        assert "doctor" in cli._COMMANDS
