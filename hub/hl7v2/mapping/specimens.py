"""Specimens (SPM, or the OBR specimen fields of v2.3-style interfaces) as R4 Specimen, after
the V2-to-FHIR IG's SPM[Specimen] map: one per tube in a message, keyed by the barcode its
placer printed so an order and its later result meet on the same Specimen."""

from dataclasses import dataclass, field

from hub.base.json import Json
from hub.hl7v2.datatypes import codeable, date_time, table
from hub.hl7v2.mapping.common import V2_0203, Mapped, WriteMode, label, reference, stable_id
from hub.hl7v2.message import Segment


def concept(components: list[str], sender: str) -> Json | None:
    """CWE, keeping a text-only value (``^促凝剂``) that ``codeable`` would drop."""
    found = codeable(components, sender)
    if found is None and len(components) > 1 and components[1]:
        return {"text": components[1]}
    return found


@dataclass
class Specimens:
    """The Specimens of one message by id: a tube that two orders share (肝功能 and 肾功能 on
    one serum tube) is one Specimen requested by both."""

    mapped: Mapped
    sender: str
    by_id: dict[str, Json] = field(default_factory=dict)

    def from_spm(self, spm: Segment, subject: Json, request: Json | None, owner: str) -> Json:
        """``owner`` (the ServiceRequest or else the report id) keys a specimen without
        barcode; an order and its result agree on it whenever both know the placer number."""
        key = specimen_key(spm, self.sender)
        id_ = stable_id("spc", *key) if key else stable_id("spc", owner, spm.value(1) or "1")
        found = self.by_id.get(id_) or self._add(_from_spm(spm, id_, subject, self.sender))
        _requested_by(found, request)
        return found

    def from_obr(self, obr: Segment, subject: Json, request: Json) -> Json | None:
        """OBR-15 specimen source, OBR-7/8 collection, OBR-14 received: the specimen of an
        order that has no SPM (v2.3-style interfaces)."""
        if not obr.value(15):
            return None
        id_ = stable_id("spc", request["id"])
        found = self.by_id.get(id_) or self._add(_from_obr(obr, id_, subject, self.sender))
        _requested_by(found, reference(request))
        return found

    def from_result_obr(
        self, obr: Segment, subject: Json, request: Json | None, owner: str
    ) -> Json:
        """A lab result without SPM: its tube from OBR-15, OBR-7/8 and OBR-14, keyed by its
        order as ``from_obr`` keys it (or by the report when the order is unknown), so an
        order's and its result's Specimen are one."""
        id_ = stable_id("spc", owner)
        found = self.by_id.get(id_) or self._add(_from_obr(obr, id_, subject, self.sender))
        _requested_by(found, request)
        return found

    def _add(self, specimen: Json) -> Json:
        self.by_id[specimen["id"]] = specimen
        # the order and the result each know part of the tube's story (who asked for it; when
        # the lab received it) and may arrive in either order: neither wipes out the other
        return self.mapped.add(specimen, WriteMode.MERGE)


def specimen_key(spm: Segment, sender: str) -> tuple[str, str] | None:
    """The barcode the placer printed (SPM-2.1), else the filler's number (SPM-2.2), each with
    its namespace (EIP subcomponent 2) so the LIS's echo of the HIS barcode keys the same."""
    for component in (1, 2):
        number = spm.value(2, component, 1)
        if number:
            return spm.value(2, component, 2) or sender, number
    return None


def _specimen_identifiers(spm: Segment, sender: str) -> list[Json]:
    found = []
    for component, kind in ((1, "PLAC"), (2, "FILL")):
        if number := spm.value(2, component, 1):
            namespace = spm.value(2, component, 2) or sender
            found.append(
                {
                    "type": {"coding": [{"system": V2_0203, "code": kind}]},
                    "system": f"urn:jianhu:sid:specimen:{label(namespace)}",
                    "value": number,
                }
            )
    return found


def _from_spm(spm: Segment, id_: str, subject: Json, sender: str) -> Json:
    specimen: Json = {"resourceType": "Specimen", "id": id_}
    identifiers = _specimen_identifiers(spm, sender)
    if identifiers:
        specimen["identifier"] = identifiers
    if status := table("specimen_availability", sender).get(spm.value(20)):
        specimen["status"] = status
    if kind := concept(spm.components(4), sender):
        specimen["type"] = kind
    specimen["subject"] = reference(subject)
    if received := date_time(spm.value(18)):
        specimen["receivedTime"] = received
    if collection := _spm_collection(spm, sender):
        specimen["collection"] = collection
    if container := _container(spm, identifiers, sender):
        specimen["container"] = [container]
    if description := spm.value(14):
        specimen["note"] = [{"text": description}]
    return specimen


def _spm_collection(spm: Segment, sender: str) -> Json:
    collection = _collected(spm.value(17, 1), spm.value(17, 2))
    if method := concept(spm.components(7), sender):
        collection["method"] = method
    if site := concept(spm.components(8), sender):
        collection["bodySite"] = site
    if amount := _quantity(spm.components(12)):
        collection["quantity"] = amount
    return collection


def _collected(start_text: str, end_text: str) -> Json:
    start, end = date_time(start_text), date_time(end_text)
    if start and end:
        return {"collectedPeriod": {"start": start, "end": end}}
    return {"collectedDateTime": start} if start else {}


def _container(spm: Segment, identifiers: list[Json], sender: str) -> Json:
    """The tube: its barcode (the same numbers as the specimen's), SPM-27 type, SPM-6
    additive."""
    container: Json = {}
    if identifiers:
        container["identifier"] = [{k: i[k] for k in ("system", "value")} for i in identifiers]
    if kind := concept(spm.components(27), sender):
        container["type"] = kind
    if additive := concept(spm.components(6), sender):
        container["additiveCodeableConcept"] = additive
    return container


def _quantity(components: list[str]) -> Json | None:
    """CQ: SPM-12 collection amount, ``1^支``."""
    try:
        number = float(components[0]) if components else None
    except ValueError:
        return None
    if number is None:
        return None
    amount: Json = {"value": int(number) if number.is_integer() else number}
    if len(components) > 1 and components[1]:
        amount["unit"] = components[1]
    return amount


def _from_obr(obr: Segment, id_: str, subject: Json, sender: str) -> Json:
    specimen: Json = {"resourceType": "Specimen", "id": id_}
    source = [obr.value(15, 1, n) for n in (1, 2, 3)]  # SPS.1 is a CWE in subcomponents
    if kind := concept(source, sender):
        specimen["type"] = kind
    specimen["subject"] = reference(subject)
    if received := date_time(obr.value(14)):
        specimen["receivedTime"] = received
    if collection := _collected(obr.value(7), obr.value(8)):
        specimen["collection"] = collection
    return specimen


def _requested_by(specimen: Json, request: Json | None) -> None:
    if request is None:
        return
    requests = specimen.setdefault("request", [])
    if request not in requests:
        requests.append(request)


# --- the order message ---
