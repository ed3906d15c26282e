"""`ingest emulator salesforce` as a process: ready line, seeding, --db, clean SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

SCENARIO = {
    "tenant": {"id": "aaaaaaaa-1111-2222-3333-444444444444", "domains": ["contoso.com"]},
    "users": [{"id": "11111111-aaaa-4bbb-8ccc-000000000001", "upn": "alice@contoso.com",
               "name": "Alice Adams", "eci": True}],
    "salesforce": {"Contact": [{"Email": "carol@fabrikam.com", "LastName": "Diaz"}]},
    "meetings": [],
}  # fmt: skip


def _start(*args: str) -> tuple[subprocess.Popen[str], int]:
    """The emulator on a port the kernel chooses (`--port 0`), and that port from its line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest", "emulator", "salesforce", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("salesforce emulator listening on https://127.0.0.1:"), (
        line + proc.stderr.read() if proc.stderr else line
    )
    return proc, int(line.rsplit(":", 1)[1])


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(10)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    return rc


def _call(port: int, ca: Path, method: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(method, f"https://127.0.0.1:{port}{path}", verify=ca, **kw)


class TestCli:
    """The CLI seeds from the scenario, keeps --db records across restarts, exits 0 on TERM."""

    def test_seed_db_and_sigterm(self, tmp_path: Path) -> None:
        scenario = tmp_path / "scenario.json"
        scenario.write_text(json.dumps(SCENARIO))
        ca_dir, db = tmp_path / "ca", tmp_path / "sf.db"
        ca = ca_dir / "ca.pem"
        args = ("--scenario", str(scenario), "--db", str(db), "--ca-dir", str(ca_dir))
        proc, port = _start(*args)
        try:
            dump = _call(port, ca, "GET", "/_emulator/dump").json()
            assert [c["Email"] for c in dump["Contact"]] == ["carol@fabrikam.com"]
            form = {"grant_type": "client_credentials", "client_id": "emulator-app",
                    "client_secret": "emulator-secret"}  # fmt: skip
            token = _call(port, ca, "POST", "/services/oauth2/token", data=form).json()
            resp = _call(port, ca, "POST", "/services/data/v62.0/sobjects/Account",
                         json={"Name": "Fabrikam"},
                         headers={"Authorization": f"Bearer {token['access_token']}"})  # fmt: skip
            assert resp.status_code == 201
        finally:
            assert _stop(proc) == 0
        proc, port = _start(*args)
        try:
            dump = _call(port, ca, "GET", "/_emulator/dump").json()
            assert [a["Name"] for a in dump["Account"]] == ["Fabrikam"]
            assert len(dump["Contact"]) == 1  # not seeded twice
        finally:
            assert _stop(proc) == 0

    def test_bad_scenario_exits_2(self, tmp_path: Path) -> None:
        scenario = tmp_path / "scenario.json"
        scenario.write_text(
            json.dumps({**SCENARIO, "salesforce": {"Contact": [{"FirstName": "x"}]}})
        )
        proc = subprocess.run(
            [sys.executable, "-m", "ingest", "emulator", "salesforce", "--port",
             "0", "--scenario", str(scenario)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert proc.returncode == 2
        assert proc.stderr.startswith("ingest emulator salesforce: salesforce.Contact[0]: ")
        assert "REQUIRED_FIELD_MISSING" in proc.stderr
