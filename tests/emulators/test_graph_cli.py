"""`ingest emulator graph` starts, serves the identity root over HTTPS and stops on SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from emulators.tls import client_context

INGEST = Path(sys.executable).parent / "ingest"


class TestServe:
    """The CLI prints its ready line, answers discovery and exits 0 on SIGTERM."""

    def test_ready_serve_and_stop(self, tmp_path: Path) -> None:
        """`--port 0`: the kernel chooses a port (no race with other binds); the line names it."""
        ca_dir = tmp_path / "ca"
        proc = subprocess.Popen(
            [str(INGEST), "emulator", "graph", "--port", "0", "--ca-dir", str(ca_dir),
             "--token-lifetime", "120"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            ready = r"graph emulator listening on https://127\.0\.0\.1:(\d+)"
            found = re.fullmatch(ready, line.strip())
            assert found, line
            port = int(found.group(1))
            assert port != 0
            assert (ca_dir / "ca.pem").exists()
            base = f"https://127.0.0.1:{port}"
            with httpx.Client(verify=client_context(ca_dir)) as c:
                conf = c.get(f"{base}/common/v2.0/.well-known/openid-configuration").json()
                token = c.post(
                    conf["token_endpoint"].replace("/common/", "/organizations/"),
                    data={"grant_type": "client_credentials", "client_id": "emulator-app",
                          "client_secret": "emulator-secret",
                          "scope": "https://graph.microsoft.com/.default"},
                ).json()  # fmt: skip
                stats = c.get(f"{base}/_emulator/stats").json()
            assert token["expires_in"] == 120
            assert stats["tokens_issued"] == 1
            assert stats["requests"]["POST /{tenant}/oauth2/v2.0/token"] == 1
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "emulator-secret" not in out + err


class TestBadInput:
    """A bad scenario or flag stops the CLI with one line and exit status 2."""

    def test_bad_scenario_names_the_field(self, tmp_path: Path) -> None:
        doc = {"tenant": {"id": "not-a-guid", "domains": ["contoso.com"]}, "users": [],
               "meetings": []}  # fmt: skip
        scenario = tmp_path / "bad.json"
        scenario.write_text(json.dumps(doc))
        result = subprocess.run(
            [str(INGEST), "emulator", "graph", "--port", "0",
             "--ca-dir", str(tmp_path / "ca"), "--scenario", str(scenario)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "tenant.id" in lines[0]

    def test_bad_fault_rate(self, tmp_path: Path) -> None:
        result = subprocess.run(
            [str(INGEST), "emulator", "graph", "--port", "1", "--drop-rate", "2"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2 and "drop_rate" in result.stderr
