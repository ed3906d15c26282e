"""The Heroku files: app.json names every setting the settings object reads and nothing else,
runs the Procfile's processes on a Redis that persists, and the dyno start-up script reaches
Heroku's self-signed Redis."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from tests.deploy.files import ROOT, procfile, settings_source_names, settings_variables

APP: dict[str, Any] = json.loads((ROOT / "app.json").read_text())
# Variables the platform sets, so that app.json must not: the add-on attached as REDIS sets
# REDIS_URL ("If you've manually created a REDIS_URL config var on your app, it's overwritten
# when you add your first heroku-redis add-on", Heroku Key-Value Store docs), and the dyno
# manager gives each web dyno its PORT.
FROM_ADDONS = {"heroku-redis": "REDIS_URL"}
FROM_PLATFORM = {"PORT"}
GENERATED = {"INGEST_SECRET_KEY", "INGEST_OPS_TOKEN"}


def addon_variables() -> set[str]:
    out = set()
    for addon in APP["addons"]:
        service = addon["plan"].split(":")[0]
        assert addon["as"] + "_URL" == FROM_ADDONS[service]
        out.add(FROM_ADDONS[service])
    return out


def test_the_recorder_sees_every_variable_settings_names() -> None:
    assert settings_source_names() == settings_variables()


def test_app_json_names_every_setting_and_nothing_else() -> None:
    named = set(APP["env"]) | addon_variables() | FROM_PLATFORM
    assert named == settings_variables()
    assert not set(APP["env"]) & (FROM_PLATFORM | set(FROM_ADDONS.values()))


@pytest.mark.parametrize("variable", sorted(APP["env"]))
def test_each_setting_is_described_and_says_whether_it_is_required(variable: str) -> None:
    entry = APP["env"][variable]
    assert len(entry["description"]) >= 20
    assert "value" not in entry  # defaults live in the code, named in the description
    if variable in GENERATED:
        assert entry["generator"] == "secret"
    else:
        # Heroku treats an entry without "required" as required: say it every time.
        assert isinstance(entry["required"], bool)


def test_required_are_what_a_worker_needs_to_start_on_heroku() -> None:
    # The worker stops at start without Graph and Salesforce access (Settings.require_graph,
    # require_salesforce); on Heroku, with no files, that access is by secrets.
    required = {name for name, entry in APP["env"].items() if entry.get("required")}
    assert required == {
        "GRAPH_TENANT_ID",
        "GRAPH_CLIENT_ID",
        "GRAPH_CLIENT_SECRET",
        "SF_INSTANCE_URL",
        "SF_CLIENT_ID",
        "SF_CLIENT_SECRET",
    }


def test_formation_runs_the_procfile_processes() -> None:
    assert set(APP["formation"]) == set(procfile())
    assert all(f["quantity"] >= 1 for f in APP["formation"].values())


def test_redis_plan_persists() -> None:
    # Heroku Key-Value Store: the production plans (premium, private, shield) keep an AOF;
    # mini does not, and a restart there would drop queued jobs.
    plans = [a["plan"] for a in APP["addons"] if a["plan"].startswith("heroku-redis:")]
    assert len(plans) == 1
    assert plans[0].split(":")[1].startswith(("premium-", "private-", "shield-"))


def test_requirements_txt_installs_the_project_alone() -> None:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    assert [line for line in lines if line and not line.startswith("#")] == ["."]


def profile(env: dict[str, str]) -> str:
    sh = shutil.which("sh")
    assert sh is not None
    result = subprocess.run(
        [sh, "-c", '. ./.profile && printf %s "$REDIS_URL"'],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "rediss://:pw@ec2.example.com:6380",
            "rediss://:pw@ec2.example.com:6380?ssl_cert_reqs=none",
        ),
        ("rediss://:pw@h:6380/0?a=1", "rediss://:pw@h:6380/0?a=1&ssl_cert_reqs=none"),
        (
            "rediss://:pw@h:6380?ssl_cert_reqs=required",
            "rediss://:pw@h:6380?ssl_cert_reqs=required",
        ),
        ("redis://h:6379/0", "redis://h:6379/0"),
    ],
)
def test_profile_accepts_heroku_redis_certificate_on_a_dyno(url: str, expected: str) -> None:
    assert profile({"DYNO": "web.1", "REDIS_URL": url}) == expected


def test_profile_changes_nothing_off_heroku() -> None:
    assert profile({"REDIS_URL": "rediss://h:6380"}) == "rediss://h:6380"
