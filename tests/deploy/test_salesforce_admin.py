"""deploy/salesforce for the admin: the record page, its assignment and the report type name only
fields, objects and relationships the SFDX objects define, and the start-up check covers them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from emulators.salesforce.metadata import DEFAULT_DIR
from workers.salesforce import records, schema

NS = "{http://soap.sforce.com/2006/04/metadata}"
SOURCE = DEFAULT_DIR / "force-app" / "main" / "default"
OBJECTS = SOURCE / "objects"
PAGE = SOURCE / "flexipages" / "Teams_Meeting_Record_Page.flexipage-meta.xml"
REPORT = SOURCE / "reportTypes" / "Teams_Meetings_with_Mentions.reportType-meta.xml"
# Fields every custom object has without a field file (Salesforce adds them).
STANDARD = {"Id", "Name", "OwnerId", "CreatedById", "CreatedDate", "LastModifiedById",
            "LastModifiedDate"}  # fmt: skip
INSIGHTS = set(schema.OPTIONAL[records.MEETING]) | {"Recording_Url__c"}


def _root(path: Path, tag: str) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == NS + tag, f"{path}: root must be {tag} in the metadata namespace"
    return root


def _text(node: ET.Element, tag: str) -> str:
    return (node.findtext(NS + tag) or "").strip()


def fields_of(obj: str) -> set[str]:
    """The fields an object of the SFDX source has: its field files plus the standard ones."""
    files = (OBJECTS / obj / "fields").glob("*.field-meta.xml")
    return STANDARD | {p.name.removesuffix(".field-meta.xml") for p in files}


def children_of(parent: str) -> dict[str, str]:
    """Child relationship name (`Participants__r`) -> child object, from each master-detail."""
    out: dict[str, str] = {}
    for path in OBJECTS.glob("*/fields/*.field-meta.xml"):
        field = _root(path, "CustomField")
        if _text(field, "type") == "MasterDetail" and _text(field, "referenceTo") == parent:
            out[_text(field, "relationshipName") + "__r"] = path.parent.parent.name
    return out


def _properties(component: ET.Element) -> dict[str, str]:
    return {
        _text(p, "name"): _text(p, "value")
        for p in component.findall(NS + "componentInstanceProperties")
    }


def _components(page: ET.Element) -> list[tuple[str, dict[str, str]]]:
    return [
        (_text(c, "componentName"), _properties(c))
        for c in page.iter(NS + "componentInstance")
    ]  # fmt: skip


class TestRecordPage:
    """A Lightning record page (FlexiPage, Metadata API) for Teams_Meeting__c."""

    page = _root(PAGE, "FlexiPage")

    def test_is_a_desktop_record_page_of_the_meeting(self) -> None:
        assert _text(self.page, "type") == "RecordPage"
        assert _text(self.page, "sobjectType") == records.MEETING
        template = self.page.find(NS + "template")
        assert template is not None
        assert _text(template, "name") == "flexipage:recordHomeTemplateDesktop"
        assert _text(self.page, "masterLabel")

    def test_every_field_shown_exists_and_the_insights_are_all_there(self) -> None:
        items = [f.text or "" for f in self.page.iter(NS + "fieldItem")]
        shown = {item.removeprefix("Record.") for item in items}
        assert all(item.startswith("Record.") for item in items), items
        assert shown <= fields_of(records.MEETING), shown - fields_of(records.MEETING)
        assert shown >= INSIGHTS, INSIGHTS - shown
        assert len(items) == len(shown), "a field shown twice"

    def test_related_lists_are_participants_transcripts_and_mentions(self) -> None:
        lists = [p for name, p in _components(self.page)
                 if name == "force:relatedListSingleContainer"]  # fmt: skip
        children = children_of(records.MEETING)
        assert {p["relatedListApiName"] for p in lists} == set(children)
        assert set(children.values()) == {records.PARTICIPANT, records.TRANSCRIPT, records.MENTION}
        assert {p["parentFieldApiName"] for p in lists} == {f"{records.MEETING}.Id"}

    def test_every_facet_is_defined_once_and_used(self) -> None:
        regions = [_text(r, "name") for r in self.page.findall(NS + "flexiPageRegions")]
        assert len(regions) == len(set(regions)), regions
        # Facets are referenced by name from tabsets, tabs, sections and columns.
        refs = [
            props[key]
            for _, props in _components(self.page)
            for key in ("tabs", "body", "columns")
            if key in props
        ]
        assert len(refs) == len(set(refs)), "a facet placed twice"
        facets = {_text(r, "name") for r in self.page.findall(NS + "flexiPageRegions")
                  if _text(r, "type") == "Facet"}  # fmt: skip
        assert set(refs) == facets
        template_regions = {_text(r, "name") for r in self.page.findall(NS + "flexiPageRegions")
                            if _text(r, "type") == "Region"}  # fmt: skip
        assert template_regions <= {"header", "main", "sidebar"}

    def test_identifiers_are_unique(self) -> None:
        ids = [i.text for i in self.page.iter(NS + "identifier")]
        assert len(ids) == len(set(ids))

    def test_page_is_the_org_default_for_viewing_a_meeting(self) -> None:
        path = OBJECTS / records.MEETING / f"{records.MEETING}.object-meta.xml"
        obj = _root(path, "CustomObject")
        overrides = [
            {child.tag.removeprefix(NS): (child.text or "") for child in o}
            for o in obj.findall(NS + "actionOverrides")
        ]
        views = [o for o in overrides if o["actionName"] == "View"]
        assert len(views) == 1
        assert views[0]["type"] == "Flexipage"
        assert views[0]["formFactor"] == "Large"
        assert (PAGE.parent / f"{views[0]['content']}.flexipage-meta.xml") == PAGE


class TestReportType:
    """The custom report type "Teams meetings with mentions": meetings joined to mentions."""

    report = _root(REPORT, "ReportType")

    def test_meetings_inner_joined_to_their_mentions(self) -> None:
        assert _text(self.report, "label") == "Teams meetings with mentions"
        assert _text(self.report, "baseObject") == records.MEETING
        assert _text(self.report, "deployed") == "true"
        assert _text(self.report, "category") == "other"
        join = self.report.find(NS + "join")
        assert join is not None and join.find(NS + "join") is None
        # "with" mentions: an inner join; an outer join would be "with or without".
        assert _text(join, "outerJoin") == "false"
        assert children_of(records.MEETING)[_text(join, "relationship")] == records.MENTION

    def test_every_column_names_a_field_of_its_table(self) -> None:
        base = _text(self.report, "baseObject")
        relationship = _text(self.report, "join/" + NS + "relationship")
        tables = {base: base, f"{base}.{relationship}": children_of(base)[relationship]}
        seen: dict[str, set[str]] = {obj: set() for obj in tables.values()}
        for column in self.report.iter(NS + "columns"):
            table, field = _text(column, "table"), _text(column, "field")
            assert table in tables, table
            assert field in fields_of(tables[table]), f"{table}.{field}"
            assert _text(column, "checkedByDefault") in ("true", "false")
            seen[tables[table]].add(field)
        assert seen[records.MEETING] >= INSIGHTS
        mention_fields = set(schema.OPTIONAL_OBJECTS[records.MENTION]) - {
            records.MENTION_KEY,
            "Meeting__c",
        }
        assert mention_fields <= seen[records.MENTION], mention_fields - seen[records.MENTION]

    def test_sections_are_labelled(self) -> None:
        sections = self.report.findall(NS + "sections")
        assert len(sections) == 2
        assert all(_text(s, "masterLabel") for s in sections)


class TestStartUpCheck:
    """The describe check at start covers every field deploy/salesforce defines for the objects
    the product writes; the insights and the mention object stay optional."""

    @pytest.mark.parametrize("obj", [records.MEETING, records.PARTICIPANT, records.TRANSCRIPT])
    def test_required_and_optional_cover_the_object(self, obj: str) -> None:
        covered = set(schema.REQUIRED[obj]) | set(schema.OPTIONAL.get(obj, ()))
        assert fields_of(obj) - STANDARD <= covered, fields_of(obj) - STANDARD - covered

    def test_mention_object_is_covered_whole(self) -> None:
        covered = set(schema.OPTIONAL_OBJECTS[records.MENTION])
        assert fields_of(records.MENTION) - STANDARD <= covered
        assert records.MENTION not in schema.REQUIRED

    def test_insights_stay_optional(self) -> None:
        optional = set(schema.OPTIONAL[records.MEETING])
        assert optional.isdisjoint(schema.REQUIRED[records.MEETING])
        wanted = {"Internal_Talk_Ratio__c", "Question_Count__c", "Speaker_Count__c",
                  "Longest_Monologue_Seconds__c", "Longest_Customer_Story_Seconds__c",
                  "Interactivity__c", "Patience_Seconds__c", "Next_Steps__c",
                  "Mention_Count__c"}  # fmt: skip
        assert wanted == optional

    def test_permission_set_grants_read_and_edit_on_every_optional_field(self) -> None:
        path = SOURCE / "permissionsets" / "Teams_Transcript_Integration.permissionset-meta.xml"
        root = _root(path, "PermissionSet")
        granted = {
            _text(p, "field")
            for p in root.findall(NS + "fieldPermissions")
            if _text(p, "readable") == "true" and _text(p, "editable") == "true"
        }
        optional = {f"{records.MEETING}.{f}" for f in schema.OPTIONAL[records.MEETING]}
        # The mention's key and master-detail are always accessible (Salesforce rejects them).
        mention = {
            f"{records.MENTION}.{f}"
            for f in schema.OPTIONAL_OBJECTS[records.MENTION]
            if f not in (records.MENTION_KEY, "Meeting__c", "Name")
        }
        assert optional | mention <= granted, (optional | mention) - granted
