"""The emulated org's schema: field and object descriptions, the standard objects, record ids."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Describe types whose values are text and carry a length.
TEXT_TYPES = frozenset({"string", "textarea", "email", "url", "phone", "picklist", "base64"})
NUMBER_TYPES = frozenset({"double", "int", "percent", "currency"})
SYSTEM_FIELDS = ("CreatedDate", "LastModifiedDate", "SystemModstamp", "CreatedById",
                 "LastModifiedById")  # fmt: skip
# A default filled in by the emulator itself (the session user as owner, a title from the path).
DEFAULTED = "(defaulted by the server)"
ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
_SUFFIX_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Field:
    """One field as `describe` shows it; `derived` fields are computed by the emulator."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    precision: int = 0
    scale: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    unique: bool = False
    case_sensitive: bool = False
    external_id: bool = False
    id_lookup: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    child_relationship: str | None = None
    cascade_delete: bool = False  # master-detail: deleting the parent deletes this record
    default: object = None
    custom: bool = False
    name_field: bool = False
    derived: bool = False
    picklist: tuple[str, ...] = ()  # the value set's API names
    restricted: bool = False  # a restricted picklist: no value outside `picklist`

    @property
    def required(self) -> bool:
        """What Salesforce demands on create: createable, not nillable, no default."""
        return self.createable and not self.nillable and self.default is None

    def describe(self) -> dict[str, object]:
        soap = {"id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean",
                "double": "xsd:double", "percent": "xsd:double", "currency": "xsd:double",
                "int": "xsd:int", "date": "xsd:date", "datetime": "xsd:dateTime",
                "base64": "xsd:base64Binary"}.get(self.type, "xsd:string")  # fmt: skip
        return {
            "name": self.name, "type": self.type, "label": self.label or self.name,
            "length": self.length, "byteLength": self.length * 3, "precision": self.precision,
            "scale": self.scale, "digits": 0, "soapType": soap, "nillable": self.nillable,
            "createable": self.createable, "updateable": self.updateable,
            "defaultedOnCreate": self.default is not None or self.name_field or self.type == "id",
            "defaultValue": None if self.default in (None, DEFAULTED) else self.default,
            "unique": self.unique, "caseSensitive": self.case_sensitive,
            "externalId": self.external_id, "idLookup": self.id_lookup or self.external_id,
            "referenceTo": [r for r in self.reference_to if r != "*"],
            "relationshipName": self.relationship_name,
            "cascadeDelete": self.cascade_delete, "custom": self.custom,
            "nameField": self.name_field, "calculated": self.derived, "autoNumber": False,
            "filterable": self.type not in ("textarea", "base64"),
            "sortable": self.type not in ("textarea", "base64"),
            "groupable": self.type not in ("textarea", "base64", "double", "datetime"),
            "picklistValues": [{"active": True, "defaultValue": False, "label": v, "validFor": None,
                                "value": v} for v in self.picklist],
            "restrictedPicklist": self.restricted, "htmlFormatted": False,
            "polymorphicForeignKey": len(self.reference_to) > 1,
        }  # fmt: skip


@dataclass
class SObject:
    """One object: its fields by name (as Salesforce spells them) and its key prefix."""

    name: str
    key_prefix: str
    label: str
    label_plural: str
    custom: bool = False
    createable: bool = True
    fields: dict[str, Field] = field(default_factory=dict)

    def get(self, name: str) -> Field | None:
        """The field called `name`, case-insensitively, as SOQL and the REST API match."""
        found = self.fields.get(name)
        if found is not None:
            return found
        lowered = name.lower()
        return next((f for n, f in self.fields.items() if n.lower() == lowered), None)

    def relationship(self, name: str) -> Field | None:
        """The reference field whose relationship is called `name` (Account, Meeting__r)."""
        lowered = name.lower()
        return next(
            (f for f in self.fields.values()
             if f.relationship_name and f.relationship_name.lower() == lowered),
            None,
        )  # fmt: skip


class Schema:
    """Every object of the org, found case-insensitively by name or by id prefix."""

    def __init__(self, objects: list[SObject]) -> None:
        self.objects = {o.name: o for o in objects}
        self._lower = {o.name.lower(): o for o in objects}
        self._prefix = {o.key_prefix: o for o in objects}

    def get(self, name: str) -> SObject | None:
        return self._lower.get(name.lower())

    def by_id(self, record_id: str) -> SObject | None:
        return self._prefix.get(record_id[:3])


def id18(id15: str) -> str:
    """Salesforce's case-safe 18-character id: 3 check characters from the case of the 15."""
    suffix = ""
    for chunk in range(3):
        bits = 0
        for i, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << i
        suffix += _SUFFIX_CHARS[bits]
    return id15 + suffix


def make_id(prefix: str, counter: int) -> str:
    """A new 18-character id: key prefix, pod "5g", a reserved 0 and a base-62 counter."""
    digits = ""
    while counter:
        counter, rest = divmod(counter, 62)
        digits = _BASE62[rest] + digits
    return id18(prefix + "5g0" + digits.rjust(9, "0"))


def normalize_id(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character id, or None if it is not one."""
    if not ID_RE.match(value):
        return None
    return id18(value[:15]) if len(value) == 15 else value


def _f(name: str, type_: str, **kw: object) -> Field:
    if type_ in TEXT_TYPES and "length" not in kw:
        kw["length"] = 255
    if type_ == "reference":
        kw.setdefault("length", 18)
    if type_ == "boolean":
        kw.setdefault("nillable", False)
        kw.setdefault("default", False)
    return Field(name=name, type=type_, label=str(kw.pop("label", name)), **kw)  # type: ignore[arg-type]


def _ref(name: str, to: str, rel: str, **kw: object) -> Field:
    return _f(name, "reference", reference_to=tuple(to.split("|")), relationship_name=rel, **kw)


def common_fields(owner: bool) -> list[Field]:
    """Fields every object has: Id, audit fields, IsDeleted and, for top-level objects, OwnerId."""
    audit = dict(createable=False, updateable=False, derived=True)
    fields = [
        _f("Id", "id", length=18, nillable=False, createable=False, updateable=False,
           id_lookup=True, label="Record ID"),
        _f("IsDeleted", "boolean", createable=False, updateable=False),
        _f("CreatedDate", "datetime", nillable=False, **audit),
        _ref("CreatedById", "User", "CreatedBy", nillable=False, **audit),
        _f("LastModifiedDate", "datetime", nillable=False, **audit),
        _ref("LastModifiedById", "User", "LastModifiedBy", nillable=False, **audit),
        _f("SystemModstamp", "datetime", nillable=False, **audit),
    ]  # fmt: skip
    if owner:
        fields.append(_ref("OwnerId", "User", "Owner", nillable=False, default=DEFAULTED))
    return fields


def _name(length: int = 121) -> Field:
    return _f("Name", "string", length=length, createable=False, updateable=False, derived=True,
              name_field=True, label="Full Name")  # fmt: skip


def _obj(name: str, prefix: str, plural: str, fields: list[Field], owner: bool = True,
         createable: bool = True) -> SObject:  # fmt: skip
    obj = SObject(name, prefix, name, plural, createable=createable)
    for f in [*common_fields(owner), *fields]:
        obj.fields[f.name] = f
    return obj


def standard_objects() -> list[SObject]:
    """The standard objects the product reads or writes, with the fields it may touch."""
    derived = dict(createable=False, updateable=False, derived=True)
    return [
        _obj("User", "005", "Users", [
            _f("Username", "string", length=80, nillable=False, unique=True, id_lookup=True),
            _f("Email", "email", length=128, nillable=False),
            _f("FirstName", "string", length=40), _f("LastName", "string", length=80,
                                                       nillable=False), _name(),
            _f("IsActive", "boolean", default=True), _f("Title", "string", length=80),
        ], owner=False),
        _obj("Account", "001", "Accounts", [
            _f("Name", "string", nillable=False, name_field=True, label="Account Name"),
            _f("Website", "url"), _f("Phone", "phone", length=40),
            _f("Industry", "picklist"), _f("Type", "picklist"),
        ]),
        _obj("Contact", "003", "Contacts", [
            _f("FirstName", "string", length=40), _f("LastName", "string", length=80,
                                                       nillable=False), _name(),
            _f("Email", "email", length=80), _f("Phone", "phone", length=40),
            _f("Title", "string", length=128), _ref("AccountId", "Account", "Account",
                                                          child_relationship="Contacts"),
        ]),
        _obj("Lead", "00Q", "Leads", [
            _f("FirstName", "string", length=40), _f("LastName", "string", length=80,
                                                       nillable=False), _name(),
            _f("Company", "string", nillable=False), _f("Email", "email", length=80),
            _f("Status", "picklist", nillable=False, default="Open - Not Contacted"),
            _f("IsConverted", "boolean", updateable=False),
            _ref("ConvertedContactId", "Contact", "ConvertedContact", **derived),
            _ref("ConvertedAccountId", "Account", "ConvertedAccount", **derived),
        ]),
        _obj("Opportunity", "006", "Opportunities", [
            _f("Name", "string", length=120, nillable=False, name_field=True),
            _f("StageName", "picklist", nillable=False), _f("CloseDate", "date", nillable=False),
            _f("Amount", "currency", precision=18, scale=2),
            _ref("AccountId", "Account", "Account", child_relationship="Opportunities"),
            _f("IsClosed", "boolean", **derived), _f("IsWon", "boolean", **derived),
        ]),
        _obj("OpportunityContactRole", "00K", "Opportunity Contact Role", [
            _ref("OpportunityId", "Opportunity", "Opportunity", nillable=False,
                 cascade_delete=True, child_relationship="OpportunityContactRoles"),
            _ref("ContactId", "Contact", "Contact", nillable=False, cascade_delete=True,
                 child_relationship="OpportunityContactRoles"),
            _f("Role", "picklist", length=40), _f("IsPrimary", "boolean"),
        ], owner=False),
        _obj("ContentDocument", "069", "Content Documents", [
            _f("Title", "string", **derived), _f("FileExtension", "string", length=40, **derived),
            _f("ContentSize", "int", **derived),
            _ref("LatestPublishedVersionId", "ContentVersion", "LatestPublishedVersion", **derived),
        ], createable=False),
        _obj("ContentVersion", "068", "Content Versions", [
            _f("Title", "string", default=DEFAULTED),
            _f("PathOnClient", "string", length=500, nillable=False, updateable=False),
            _f("VersionData", "base64", length=0, nillable=False, updateable=False),
            _f("ContentLocation", "picklist", default="S", updateable=False),
            _f("Description", "textarea", length=1000),
            _ref("FirstPublishLocationId", "Account|Contact|Lead|Opportunity|User|*",
                 "FirstPublishLocation", updateable=False),
            _ref("ContentDocumentId", "ContentDocument", "ContentDocument", **derived),
            _f("FileExtension", "string", length=40, **derived),
            _f("ContentSize", "int", **derived), _f("IsLatest", "boolean", **derived),
            _f("VersionNumber", "string", length=20, **derived),
        ]),
        _obj("ContentDocumentLink", "06A", "Content Document Links", [
            _ref("ContentDocumentId", "ContentDocument", "ContentDocument", nillable=False,
                 updateable=False, cascade_delete=True),
            _ref("LinkedEntityId", "*", "LinkedEntity", nillable=False, updateable=False,
                 cascade_delete=True),
            _f("ShareType", "picklist", length=40, default="V"),
            _f("Visibility", "picklist", length=40, default="AllUsers"),
        ], owner=False),
    ]  # fmt: skip
