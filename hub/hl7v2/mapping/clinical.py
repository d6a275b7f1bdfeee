"""What an ADT carries beside PID and PV1, after the V2-to-FHIR IG's segment maps: a Condition
per DG1 (also listed in Encounter.diagnosis), an AllergyIntolerance per AL1, a Coverage per IN1
with its payer Organization, and a RelatedPerson per NK1.

A hospital resends these segments with every A01, A08 and A03 of a visit, and numbers them
(set id, the segment's ``-1`` field) by position in that message only: a diagnosis removed or
reordered shifts the set ids of the others. So no key here uses a set id. Keys are what the
segment is about: the diagnosis code within the visit, the allergen for the patient, the plan
and payer for the patient, the contact's name for the patient.
"""

from collections.abc import Iterator

from fhir_profiles.identifiers import INSURANCE_CARD
from hub.base.json import Json
from hub.hl7v2.datatypes import (
    address,
    contact_point,
    date_only,
    date_time,
    human_name,
    identifier,
    table,
)
from hub.hl7v2.mapping.common import (
    Mapped,
    coded,
    display_name,
    field_system,
    person_details,
    reference,
    sender_of,
    stable_id,
)
from hub.hl7v2.message import Message, Segment

CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
DIAGNOSIS_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0052"
DIAGNOSIS_ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SELF_PAY = "http://terminology.hl7.org/CodeSystem/coverage-selfpay"
SUBSCRIBER_RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
CONTACT_ROLE = "http://terminology.hl7.org/CodeSystem/v2-0131"


def _status(system: str, code: str) -> Json:
    return {"coding": [{"system": system, "code": code}]}


def _concept_key(concept: Json) -> tuple[str, str]:
    """What a coded thing is, for a key: its first coding, or its text when it has no code."""
    coding = next(iter(concept.get("coding", ())), None)
    if coding:
        return coding["system"], coding["code"]
    return "text", concept.get("text", "")


def _add_once(mapped: Mapped, resource: Json) -> Json:
    """A message may name the same thing twice (a diagnosis as admitting and as final, one
    payer for two plans): the later segment updates the resource the earlier one produced.
    Statuses come from the later segment alone, so a pair never breaks con-5 (no
    clinicalStatus beside entered-in-error)."""
    for found in mapped.resources:
        if found["resourceType"] == resource["resourceType"] and found["id"] == resource["id"]:
            for status in ("clinicalStatus", "verificationStatus"):
                found.pop(status, None)
            found.update(resource)
            return found
    return mapped.add(resource)


def _texts(segment: Segment, number: int) -> Iterator[str]:
    for rep in range(1, len(segment.repetitions(number)) + 1):
        if text := segment.value(number, repetition=rep):
            yield text


# --- DG1 -> Condition + Encounter.diagnosis ---


def diagnoses(message: Message, mapped: Mapped, subject: Json, encounter: Json | None) -> None:
    sender = sender_of(message)
    for dg1 in message["DG1"]:
        condition = _condition(dg1, sender, subject, encounter)
        if condition is None:
            continue  # neither a code nor a description: nothing to record
        condition = _add_once(mapped, condition)
        if encounter is not None and dg1.value(21).upper() != "D":
            encounter.setdefault("diagnosis", []).append(
                _encounter_diagnosis(dg1, condition, sender)
            )


def _diagnosis_code(dg1: Segment, sender: str) -> Json | None:
    # DG1-2 (coding method, deprecated) names the system when DG1-3.3 does not.
    code = coded(dg1.components(3), sender, dg1.value(2) or field_system("DG1-3", sender))
    description = dg1.value(4)
    if code is None:
        return {"text": description} if description else None
    if description:
        code["text"] = description
    return code


def _condition(dg1: Segment, sender: str, subject: Json, encounter: Json | None) -> Json | None:
    code = _diagnosis_code(dg1, sender)
    if code is None:
        return None
    kind = dg1.value(6).upper()  # table 0052: A admitting, W working, F final
    category = [_status(CONDITION_CATEGORY, "encounter-diagnosis")]
    if kind:
        category.append(_status(DIAGNOSIS_TYPE, kind))
    # The code, not the set id, is the key within the visit: see the module docstring.
    scope = encounter["id"] if encounter is not None else subject["id"]
    condition: Json = {
        "resourceType": "Condition",
        "id": stable_id("cnd", scope, *_concept_key(code)),
        "category": category,
        "code": code,
        "subject": reference(subject),
    }
    if dg1.value(21).upper() == "D":  # DG1-21 action code "delete": con-5 forbids clinicalStatus
        condition["verificationStatus"] = _status(CONDITION_VERIFICATION, "entered-in-error")
    else:
        condition["clinicalStatus"] = _status(CONDITION_CLINICAL, "active")
        if verification := table("diagnosis_verification", sender).get(kind):
            condition["verificationStatus"] = _status(CONDITION_VERIFICATION, verification)
    if encounter is not None:
        condition["encounter"] = reference(encounter)
    # DG1-5 is when the diagnosis was made, not when the illness began: recordedDate, not onset.
    if recorded := date_time(dg1.value(5)) or date_time(dg1.value(19)):
        condition["recordedDate"] = recorded
    if clinician := display_name(dg1.components(16)):
        condition["asserter"] = {"display": clinician}
    if number := dg1.value(20):
        condition["identifier"] = [
            {"system": f"urn:jianhu:sid:diagnosis:{sender.lower()}", "value": number}
        ]
    return condition


def _encounter_diagnosis(dg1: Segment, condition: Json, sender: str) -> Json:
    entry: Json = {"condition": reference(condition)}
    kind = dg1.value(6).upper()
    codings = []
    if role := table("diagnosis_role", sender).get(kind):
        codings.append({"system": DIAGNOSIS_ROLE, "code": role})
    if kind:
        codings.append({"system": DIAGNOSIS_TYPE, "code": kind})
    if codings:
        entry["use"] = {"coding": codings}
    priority = dg1.value(15)
    if priority.isdigit() and int(priority) > 0:  # 0 means "not ranked" in v2
        entry["rank"] = int(priority)
    return entry


# --- AL1 -> AllergyIntolerance ---


def allergies(message: Message, mapped: Mapped, subject: Json) -> None:
    sender = sender_of(message)
    for al1 in message["AL1"]:
        allergen = coded(al1.components(3), sender, field_system("AL1-3", sender))
        if allergen is None:
            continue  # an AL1 without an allergen says nothing
        _add_once(mapped, _allergy(al1, allergen, sender, subject))


def _allergy(al1: Segment, allergen: Json, sender: str, subject: Json) -> Json:
    kind, severity = al1.value(2).upper(), al1.value(4).upper()
    allergy: Json = {
        "resourceType": "AllergyIntolerance",
        # The patient and the allergen: the HIS and the EMR reporting the same allergy meet.
        "id": stable_id("alg", subject["id"], *_concept_key(allergen)),
        "clinicalStatus": _status(ALLERGY_CLINICAL, "active"),
        "verificationStatus": _status(ALLERGY_VERIFICATION, "confirmed"),
        "code": allergen,
        "patient": reference(subject),
    }
    if allergy_type := table("allergy_type", sender).get(kind):
        allergy["type"] = allergy_type
    if category := table("allergy_category", sender).get(kind):
        allergy["category"] = [category]
    if criticality := table("allergy_criticality", sender).get(severity):
        allergy["criticality"] = criticality
    # AL1-6 is the identification date, which is what R4 defines onset[x] to be.
    if onset := date_time(al1.value(6)):
        allergy["onsetDateTime"] = onset
    manifestations = [{"text": text} for text in _texts(al1, 5)]
    if manifestations:  # reaction.manifestation is required: no reaction text, no reaction
        reaction: Json = {"manifestation": manifestations}
        if reaction_severity := table("allergy_severity", sender).get(severity):
            reaction["severity"] = reaction_severity
        allergy["reaction"] = [reaction]
    return allergy


# --- IN1 -> Coverage + payer Organization ---


def coverages(message: Message, mapped: Mapped, subject: Json) -> None:
    sender = sender_of(message)
    for in1 in message["IN1"]:
        plan = coded(in1.components(2), sender, field_system("IN1-2", sender))
        payor, payor_key = _payor(in1, sender, subject, mapped)
        if plan is None and payor_key == "self":
            continue  # neither a plan nor an insurer: nothing to cover
        _add_once(mapped, _coverage(in1, plan, payor, payor_key, sender, subject))


def _payor(in1: Segment, sender: str, subject: Json, mapped: Mapped) -> tuple[Json, str]:
    """(Coverage.payor, its part of the Coverage key). The insurer (IN1-3 id, IN1-4 name) is an
    Organization keyed by its id; a name alone is shown, not made a resource (names drift); no
    insurer at all means the patient pays (自费), which R4 writes as payor = the Patient."""
    ids, name = in1.components(3), in1.value(4)
    if ids and ids[0]:
        found = identifier(ids, sender) if any(ids[3:5]) else None
        system = found["system"] if found else f"urn:jianhu:sid:insurer:{sender.lower()}"
        organization: Json = {
            "resourceType": "Organization",
            "id": stable_id("org", system, ids[0]),
            "identifier": [{"system": system, "value": ids[0]}],
            "type": [
                {"coding": [{"system": ORGANIZATION_TYPE, "code": "pay", "display": "Payer"}]}
            ],
        }
        if name:
            organization["name"] = name
        if where := address(in1.components(5)):
            organization["address"] = [where]
        if phone := contact_point(in1.components(7), "work"):
            organization["telecom"] = [phone]
        return reference(_add_once(mapped, organization)), ids[0]
    if name:
        return {"display": name}, name
    return reference(subject), "self"


def _coverage_type(plan: Json | None, sender: str) -> Json | None:
    """The sender's plan (险种, e.g. CV02.01.204 "01 城镇职工基本医疗保险") kept as sent, with the
    FHIR coverage type from table ``coverage_type`` (by plan code, else by plan name) beside it."""
    if plan is None:
        return None
    types = table("coverage_type", sender)
    code = next((c["code"] for c in plan.get("coding", ())), "")
    kind = types.get(code) or types.get(plan.get("text", ""))
    if kind:
        system = SELF_PAY if kind == "pay" else ACT_CODE
        plan = {**plan, "coding": [*plan.get("coding", ()), {"system": system, "code": kind}]}
    return plan


def _insured_number(in1: Segment, sender: str) -> Json | None:
    """IN1-36 policy number, else IN1-49 insured's id: in China both carry the insured's 医保
    number, so both land on the insurance-card system unless IN1-49 names its own type."""
    if policy := in1.value(36):
        return {"system": INSURANCE_CARD, "value": policy}
    member = in1.components(49)
    if not member or not member[0]:
        return None
    if any(member[3:5]) and (found := identifier(member, sender)):
        return {"system": found["system"], "value": found["value"]}
    return {"system": INSURANCE_CARD, "value": member[0]}


def _coverage(
    in1: Segment, plan: Json | None, payor: Json, payor_key: str, sender: str, subject: Json
) -> Json:
    plan_key = _concept_key(plan)[1] if plan else ""
    coverage: Json = {
        "resourceType": "Coverage",
        # One coverage per patient, insurer and plan: A08 resends and renumbered IN1s update it.
        "id": stable_id("cov", subject["id"], payor_key, plan_key),
        "status": "active",
        "beneficiary": reference(subject),
        "payor": [payor],
    }
    if kind := _coverage_type(plan, sender):
        coverage["type"] = kind
    if member := _insured_number(in1, sender):
        coverage["identifier"] = [member]
        coverage["subscriberId"] = member["value"]
    start, end = date_only(in1.value(12)), date_only(in1.value(13))
    if start or end:
        coverage["period"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    if relation := in1.value(17).upper():
        code = table("subscriber_relationship", sender).get(relation, "other")
        coverage["relationship"] = {"coding": [{"system": SUBSCRIBER_RELATIONSHIP, "code": code}]}
        if in1.value(17, 2):
            coverage["relationship"]["text"] = in1.value(17, 2)
        if code == "self":
            coverage["subscriber"] = reference(subject)
    return coverage


# --- NK1 -> RelatedPerson ---


def related_persons(message: Message, mapped: Mapped, subject: Json) -> None:
    sender = sender_of(message)
    for nk1 in message["NK1"]:
        name = human_name(nk1.components(2))
        if name is None:
            continue  # a contact organisation (NK1-13) is no RelatedPerson
        _add_once(mapped, _related_person(nk1, name, sender, subject))


def _related_person(nk1: Segment, name: Json, sender: str, subject: Json) -> Json:
    person: Json = {
        "resourceType": "RelatedPerson",
        # The name, not NK1-1: a reordered contact list must not turn the wife into the son.
        "id": stable_id("rel", subject["id"], name["text"]),
        "patient": reference(subject),
        "name": [name],
    }
    relationships = []
    if relationship := coded(nk1.components(3), sender, field_system("NK1-3", sender)):
        if role := table("relationship_role", sender).get(nk1.value(3).upper()):
            relationship["coding"] = [
                *relationship.get("coding", ()),
                {"system": ROLE_CODE, "code": role},
            ]
        relationships.append(relationship)
    if contact_role := table("contact_role", sender).get(nk1.value(7).upper()):
        concept: Json = {"coding": [{"system": CONTACT_ROLE, "code": contact_role}]}
        if nk1.value(7, 2):
            concept["text"] = nk1.value(7, 2)
        relationships.append(concept)
    if relationships:
        person["relationship"] = relationships
    person.update(person_details(nk1, 4, 5, 6))
    if gender := table("sex", sender).get(nk1.value(15)):
        person["gender"] = gender
    if birth := date_only(nk1.value(16)):
        person["birthDate"] = birth
    return person
