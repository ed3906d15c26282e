"""Reads the product's custom objects from the SFDX source in deploy/salesforce."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from emulators.salesforce.schema import DEFAULTED, Field, SObject, common_fields

NS = "{http://soap.sforce.com/2006/04/metadata}"
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "deploy" / "salesforce"

# Metadata type -> (describe type, default length).
_TYPES = {
    "Text": ("string", 255),
    "TextArea": ("textarea", 255),
    "LongTextArea": ("textarea", 32768),
    "Html": ("textarea", 32768),
    "Email": ("email", 80),
    "Url": ("url", 255),
    "Phone": ("phone", 40),
    "Picklist": ("picklist", 255),
    "Checkbox": ("boolean", 0),
    "Number": ("double", 0),
    "Percent": ("percent", 0),
    "Currency": ("currency", 0),
    "Date": ("date", 0),
    "DateTime": ("datetime", 0),
    "Lookup": ("reference", 18),
    "MasterDetail": ("reference", 18),
}


class MetadataError(ValueError):
    """The SFDX source is missing, malformed or uses a field type the emulator lacks."""


def _text(node: ET.Element, tag: str, default: str = "") -> str:
    found = node.find(NS + tag)
    return found.text.strip() if found is not None and found.text else default


def _flag(node: ET.Element, tag: str) -> bool:
    return _text(node, tag, "false") == "true"


def _parse(path: Path) -> ET.Element:
    try:
        return ET.parse(path).getroot()  # noqa: S314 - trusted repository file
    except ET.ParseError as exc:
        raise MetadataError(f"{path}: {exc}") from exc


def read_field(path: Path) -> Field:
    """One `<CustomField>` file as the field `describe` would show."""
    node = _parse(path)
    name = _text(node, "fullName") or path.name.removesuffix(".field-meta.xml")
    kind = _text(node, "type")
    if kind not in _TYPES:
        raise MetadataError(f"{path}: field type {kind!r} is not emulated")
    sf_type, length = _TYPES[kind]
    if sf_type in ("string", "textarea"):
        length = int(_text(node, "length", str(length)))
    master = kind == "MasterDetail"
    reference = kind in ("Lookup", "MasterDetail")
    default: object = None
    if sf_type == "boolean":
        default = _text(node, "defaultValue", "false") == "true"
    if reference and not (_text(node, "referenceTo") and _text(node, "relationshipName")):
        raise MetadataError(f"{path}: a lookup needs referenceTo and relationshipName")
    values, restricted = _value_set(node)
    return Field(
        name=name,
        type=sf_type,
        label=_text(node, "label", name),
        length=length,
        precision=int(_text(node, "precision", "0")),
        scale=int(_text(node, "scale", "0")),
        nillable=not (_flag(node, "required") or master) and sf_type != "boolean",
        updateable=not master or _flag(node, "reparentableMasterDetail"),
        unique=_flag(node, "unique"),
        case_sensitive=_flag(node, "caseSensitive"),
        external_id=_flag(node, "externalId"),
        reference_to=(_text(node, "referenceTo"),) if reference else (),
        # Dotted SOQL paths use the field's own name with __r; relationshipName in the XML
        # names the parent's list of children (Account.Teams_Meetings__r).
        relationship_name=name.removesuffix("__c") + "__r" if reference else None,
        child_relationship=_text(node, "relationshipName") + "__r" if reference else None,
        cascade_delete=master,
        default=default,
        custom=True,
        picklist=values,
        restricted=restricted,
    )


def _value_set(node: ET.Element) -> tuple[tuple[str, ...], bool]:
    """A picklist's values and whether they are restricted (`<valueSet><restricted>`)."""
    value_set = node.find(NS + "valueSet")
    if value_set is None:
        return (), False
    names = tuple(
        _text(v, "fullName") for v in value_set.iterfind(f"{NS}valueSetDefinition/{NS}value")
    )
    return names, _flag(value_set, "restricted")


def read_object(folder: Path) -> SObject:
    """One object folder: `<Obj>.object-meta.xml` plus `fields/*.field-meta.xml`."""
    name = folder.name
    node = _parse(folder / f"{name}.object-meta.xml")
    detail = _text(node, "sharingModel") == "ControlledByParent"
    obj = SObject(
        name, "a00", _text(node, "label", name), _text(node, "pluralLabel", name), custom=True
    )
    for f in common_fields(owner=not detail):
        obj.fields[f.name] = f
    name_node = node.find(NS + "nameField")
    if name_node is None:
        raise MetadataError(f"{folder}: the object has no nameField")
    auto = _text(name_node, "type") == "AutoNumber"
    # A text Name left out on create becomes the record id, as in Salesforce.
    obj.fields["Name"] = Field(
        "Name",
        "string",
        label=_text(name_node, "label", "Name"),
        length=80,
        nillable=False,
        createable=not auto,
        updateable=not auto,
        name_field=True,
        default=DEFAULTED,
        id_lookup=True,
    )
    for path in sorted((folder / "fields").glob("*.field-meta.xml")):
        f = read_field(path)
        obj.fields[f.name] = f
    return obj


def read_objects(project: Path = DEFAULT_DIR) -> list[SObject]:
    """Every custom object of an SFDX project, with key prefixes a01, a02, ... (masters first)."""
    root = project / "force-app" / "main" / "default" / "objects"
    if not root.is_dir():
        raise MetadataError(f"{root} is not a directory of SFDX objects")
    objects = [read_object(folder) for folder in sorted(root.iterdir()) if folder.is_dir()]
    objects.sort(key=lambda o: (any(f.cascade_delete for f in o.fields.values()), o.name))
    for index, obj in enumerate(objects, start=1):
        obj.key_prefix = f"a{index:02d}"
    return objects
