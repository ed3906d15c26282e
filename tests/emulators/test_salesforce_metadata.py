"""deploy/salesforce: well-formed SFDX metadata that the emulator's describe reproduces exactly."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from emulators.salesforce.errors import SfError
from emulators.salesforce.metadata import DEFAULT_DIR, read_objects
from emulators.salesforce.records import Org
from emulators.salesforce.rest import Api
from emulators.salesforce.schema import Schema, standard_objects
from emulators.salesforce.store import Store

NS = "{http://soap.sforce.com/2006/04/metadata}"
OBJECTS = DEFAULT_DIR / "force-app" / "main" / "default" / "objects"
PERMSET = (
    DEFAULT_DIR / "force-app/main/default/permissionsets"
    / "Teams_Transcript_Integration.permissionset-meta.xml"
)  # fmt: skip
DESIGN_FIELDS = {
    "Teams_Meeting__c": {"Meeting_Key__c", "Online_Meeting_Id__c", "Call_Record_Id__c",
                         "Start__c", "End__c", "Duration_Seconds__c", "Organizer_Email__c",
                         "Eligibility_Reason__c", "Recording_Url__c", "Related_Account__c",
                         "Related_Opportunity__c", "Internal_Talk_Ratio__c", "Question_Count__c",
                         "Speaker_Count__c", "Longest_Monologue_Seconds__c",
                         "Longest_Customer_Story_Seconds__c", "Interactivity__c",
                         "Patience_Seconds__c", "Next_Steps__c", "Mention_Count__c"},
    "Teams_Meeting_Participant__c": {"Participant_Key__c", "Meeting__c", "Email__c", "Role__c",
                                     "Is_External__c", "Contact__c", "Lead__c", "User__c",
                                     "Talk_Time_Seconds__c"},
    "Teams_Transcript__c": {"Transcript_Key__c", "Meeting__c", "Text__c", "Language__c",
                            "Is_Truncated__c", "Cue_Count__c"},
    "Teams_Meeting_Mention__c": {"Mention_Key__c", "Meeting__c", "Tracker__c", "Phrase__c",
                                 "Speaker__c", "Is_External_Speaker__c", "Offset_Seconds__c",
                                 "Snippet__c"},
}  # fmt: skip
FIELD_FILES = sorted(OBJECTS.glob("*/fields/*.field-meta.xml"))


def _root(path: Path, tag: str) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == NS + tag, f"{path}: root must be {tag} in the metadata namespace"
    return root


def _text(node: ET.Element, tag: str) -> str | None:
    return node.findtext(NS + tag)


class TestSfdxProject:
    """The project holds exactly DESIGN §6's objects and fields, each with what Salesforce needs."""

    def test_project_file(self) -> None:
        project = json.loads((DEFAULT_DIR / "sfdx-project.json").read_text())
        assert project["packageDirectories"] == [{"path": "force-app", "default": True}]
        assert project["sourceApiVersion"] == "62.0"

    def test_design_fields_present(self) -> None:
        for obj, wanted in DESIGN_FIELDS.items():
            have = {
                p.name.removesuffix(".field-meta.xml") for p in (OBJECTS / obj / "fields").iterdir()
            }
            assert wanted <= have, wanted - have

    @pytest.mark.parametrize("obj", sorted(DESIGN_FIELDS))
    def test_object_file(self, obj: str) -> None:
        root = _root(OBJECTS / obj / f"{obj}.object-meta.xml", "CustomObject")
        name = root.find(NS + "nameField")
        assert name is not None and _text(name, "type") == "Text" and _text(name, "label")
        assert _text(root, "label") and _text(root, "pluralLabel")
        assert _text(root, "deploymentStatus") == "Deployed"
        details = [
            p for p in (OBJECTS / obj / "fields").iterdir()
            if _text(_root(p, "CustomField"), "type") == "MasterDetail"
        ]  # fmt: skip
        expected = "ControlledByParent" if details else "ReadWrite"
        assert _text(root, "sharingModel") == expected

    @pytest.mark.parametrize("path", FIELD_FILES, ids=lambda p: f"{p.parent.parent.name}.{p.name}")
    def test_field_file(self, path: Path) -> None:
        root = _root(path, "CustomField")
        kind = _text(root, "type")
        assert _text(root, "fullName") == path.name.removesuffix(".field-meta.xml")
        assert _text(root, "label")
        if kind in ("Text", "LongTextArea"):
            assert int(_text(root, "length") or 0) > 0
        if kind == "LongTextArea":
            assert int(_text(root, "visibleLines") or 0) > 0
            assert 256 <= int(_text(root, "length") or 0) <= 131072
        if kind in ("Number", "Percent"):
            assert _text(root, "precision") and _text(root, "scale")
        if kind in ("Lookup", "MasterDetail"):
            assert _text(root, "referenceTo") and _text(root, "relationshipName")
            assert _text(root, "relationshipLabel")
        if kind == "Lookup" and _text(root, "referenceTo") != "User":
            assert _text(root, "deleteConstraint") == "SetNull"
        if kind == "MasterDetail":
            assert _text(root, "required") is None  # master-detail is always required
        if _text(root, "unique") == "true":
            assert _text(root, "externalId") == "true" and _text(root, "required") == "true"

    def test_permission_set_covers_every_field(self) -> None:
        root = _root(PERMSET, "PermissionSet")
        granted = {
            _text(p, "field") for p in root.findall(NS + "fieldPermissions")
            if _text(p, "readable") == "true" and _text(p, "editable") == "true"
        }  # fmt: skip
        for path in FIELD_FILES:
            field = _root(path, "CustomField")
            name = f"{path.parent.parent.name}.{_text(field, 'fullName')}"
            # Required and master-detail fields are always accessible; Salesforce rejects them.
            always = _text(field, "required") == "true" or _text(field, "type") == "MasterDetail"
            assert (name in granted) != always, name
        crud = {
            _text(p, "object") for p in root.findall(NS + "objectPermissions")
            if all(_text(p, k) == "true" for k in ("allowCreate", "allowRead", "allowEdit",
                                                   "allowDelete"))
        }  # fmt: skip
        assert set(DESIGN_FIELDS) <= crud


class TestDescribeMatchesXml:
    """Every field of the XML shows up in the emulator's describe with the same properties."""

    @pytest.mark.parametrize("path", FIELD_FILES, ids=lambda p: f"{p.parent.parent.name}.{p.name}")
    def test_field(self, path: Path) -> None:
        org = Org(Schema(standard_objects() + read_objects()), Store())
        obj_name = path.parent.parent.name
        described = Api(org, 1).describe(org.sobject(obj_name), "62.0")
        fields = {f["name"]: f for f in described["fields"]}
        root = _root(path, "CustomField")
        f = fields[_text(root, "fullName") or ""]
        kind = _text(root, "type")
        types = {
            "Text": "string", "LongTextArea": "textarea", "Email": "email", "Checkbox": "boolean",
            "Number": "double", "Percent": "percent", "DateTime": "datetime",
            "Lookup": "reference", "MasterDetail": "reference",
        }  # fmt: skip
        assert f["type"] == types[kind or ""]
        if _text(root, "length"):
            assert f["length"] == int(_text(root, "length") or 0)
        assert f["externalId"] == (_text(root, "externalId") == "true")
        assert f["unique"] == (_text(root, "unique") == "true")
        required = _text(root, "required") == "true" or kind == "MasterDetail"
        assert f["nillable"] == (not required and kind != "Checkbox")
        assert f["createable"]
        if kind in ("Lookup", "MasterDetail"):
            assert f["referenceTo"] == [_text(root, "referenceTo")]
            assert f["cascadeDelete"] == (kind == "MasterDetail")
        if kind == "MasterDetail":
            assert f["updateable"] == (_text(root, "reparentableMasterDetail") == "true")


class TestReparenting:
    """The product names a detail's meeting on every upsert: deploy/salesforce must allow
    reparenting, and a master-detail without it refuses an update as Salesforce does."""

    @pytest.mark.parametrize("obj", ["Teams_Meeting_Participant__c", "Teams_Transcript__c"])
    def test_shipped_masters_are_reparentable(self, obj: str) -> None:
        root = _root(OBJECTS / obj / "fields" / "Meeting__c.field-meta.xml", "CustomField")
        assert _text(root, "type") == "MasterDetail"
        assert _text(root, "reparentableMasterDetail") == "true"

    def test_fixed_master_refuses_update(self, tmp_path: Path) -> None:
        shutil.copytree(DEFAULT_DIR, tmp_path / "sf")
        field = (
            OBJECTS.relative_to(DEFAULT_DIR)
            / "Teams_Transcript__c/fields/Meeting__c.field-meta.xml"
        )
        path = tmp_path / "sf" / field
        path.write_text(path.read_text().replace(
            "<reparentableMasterDetail>true<", "<reparentableMasterDetail>false<"
        ))  # fmt: skip
        org = Org(Schema(standard_objects() + read_objects(tmp_path / "sf")), Store())
        one, two = (
            org.create(org.sobject("Teams_Meeting__c"), {"Meeting_Key__c": k, "Name": k})
            for k in ("m1", "m2")
        )
        text = org.sobject("Teams_Transcript__c")
        row = org.create(text, {"Transcript_Key__c": "t", "Meeting__c": one["Id"]})
        with pytest.raises(SfError) as info:
            org.update(text, row["Id"], {"Meeting__c": two["Id"]})
        assert info.value.code == "INVALID_FIELD_FOR_INSERT_UPDATE"
