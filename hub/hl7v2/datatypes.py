"""HL7 v2 datatypes to FHIR datatypes, after the V2-to-FHIR IG's datatype maps: CX ->
Identifier, XPN -> HumanName, XAD -> Address, XTN -> ContactPoint, CWE/CE -> CodeableConcept,
DTM/TS -> dateTime. Mapping tables come from ``fhir_profiles/data/v2-maps.json``, each
overridable per sending application."""

import re
from functools import cache

from hub.base.json import Json
from hub.base.site_files import read_json


@cache
def _maps() -> Json:
    loaded: Json = read_json("fhir_profiles", "data/v2-maps.json")
    return loaded


def codes(name: str) -> frozenset[str]:
    """A table that is a plain list of accepted codes (OBX-8 interpretation)."""
    return frozenset(_maps()[name])


def table(name: str, sender: str = "") -> Json:
    maps = _maps()
    return {**maps[name], **maps.get("senders", {}).get(sender, {}).get(name, {})}


def identifier(components: list[str], sender: str) -> Json | None:
    """CX: CX.1 value, CX.4 assigning authority, CX.5 identifier type."""
    value = components[0] if components else ""
    if not value:
        return None
    authority = components[3].split("&")[0] if len(components) > 3 else ""
    kind = components[4] if len(components) > 4 else ""
    system = table("identifier_type", sender).get(kind) or table("identifier_type", sender).get(
        authority
    )
    if system is None:  # a number system nobody mapped yet: kept, scoped to its sender
        label = re.sub(r"[^A-Za-z0-9.-]", "-", f"{sender}-{authority or kind or 'id'}").lower()
        system = f"urn:jianhu:sid:local:{label}"
    found: Json = {"system": system, "value": value}
    if kind:
        found["type"] = {"text": kind}
    return found


def human_name(components: list[str]) -> Json | None:
    family = components[0] if components else ""
    given = [c for c in components[1:3] if c]
    if not family and not given:
        return None
    name: Json = {"text": family + "".join(given)}  # Chinese names read family first
    if family:
        name["family"] = family
    if given:
        name["given"] = given
    return name


# XAD-7 address type (table 0190) as Address.use or .type, after the IG's ConceptMap; a birth
# place (BR, N) is no address the patient has: ``BIRTH_PLACE`` sends it to patient-birthPlace
_XAD_USE = {"H": "home", "P": "home", "L": "home", "RH": "home", "B": "work", "O": "work"}
_XAD_USE |= {"C": "temp", "BA": "old"}
_XAD_TYPE = {"M": "postal", "H": "physical", "P": "physical", "L": "physical", "RH": "physical"}
BIRTH_PLACE = frozenset({"BR", "N", "BDL"})


def address(components: list[str]) -> Json | None:
    """XAD: street (.1, .2), city, province, postal code, country, type (.7), district (.9)."""
    keys = ("line", "other", "city", "state", "postalCode", "country", "kind", "", "district")
    parts = dict(zip(keys, components, strict=False))
    found: Json = {}
    if use := _XAD_USE.get(parts.get("kind", "")):
        found["use"] = use
    if kind := _XAD_TYPE.get(parts.get("kind", "")):
        found["type"] = kind
    # XAD.2 is the rest of the street line (3幢2单元501室): without it the address is a building
    if lines := [parts[k] for k in ("line", "other") if parts.get(k)]:
        found["line"] = lines
    for key in ("city", "district", "state", "postalCode", "country"):
        if parts.get(key):
            found[key] = parts[key]
    if not any(key in found for key in ("line", "city", "district", "state", "postalCode")):
        return None
    found["text"] = (
        "".join(parts.get(k, "") for k in ("state", "city", "line", "other") if parts.get(k))
        or None
    )
    return {k: v for k, v in found.items() if v}


def address_kind(components: list[str]) -> str:
    """XAD-7, the address type."""
    return components[6] if len(components) > 6 else ""


# XTN-2 telecommunication use (table 0201) and XTN-3 equipment (0202), after the V2-to-FHIR IG
_XTN_USE = {"PRN": "home", "ORN": "home", "WPN": "work", "VHN": "temp"}
_XTN_SYSTEM = {
    "PH": "phone",
    "CP": "phone",
    "FX": "fax",
    "BP": "pager",
    "Internet": "email",
    "X.400": "email",
    "MD": "other",
    "TDD": "other",
    "TTY": "other",
}


def contact_point(components: list[str], use: str) -> Json | None:
    """XTN as v2.3 sends it (the number in XTN-1) and as v2.5 does (use and equipment in
    XTN-2/3, the e-mail in XTN-4, the number in XTN-5 to 8 or XTN-12); ``use`` when XTN-2 does
    not say (the field it came in: PID-13 home, PID-14 work). A cellular phone is ``mobile``."""
    xtn = [*components, *[""] * 12][:12]
    use_code, equipment = xtn[1], xtn[2]
    # XTN-4 is the e-mail address: the value only for an e-mail (a phone keeps its number)
    mail = xtn[3] if equipment in ("Internet", "X.400") or use_code == "NET" else ""
    dialled = xtn[11] or _dialled(xtn[4], xtn[5], xtn[6], xtn[7])
    number = xtn[0] or mail or dialled or xtn[3]
    if not number:
        return None
    system = _XTN_SYSTEM.get(equipment) or (
        "email" if "@" in number or use_code == "NET" else "pager" if use_code == "BPN" else "phone"
    )
    found_use = "mobile" if equipment == "CP" else _XTN_USE.get(use_code, use)
    return {"system": system, "value": number, "use": found_use}


def _dialled(country: str, area: str, local: str, extension: str) -> str:
    """XTN-5 to 8 as one number: ``+86 0575-88012345 ext. 8021``."""
    if not local:
        return ""
    number = f"{area}-{local}" if area else local
    if country:
        number = f"+{country.lstrip('+')} {number}"
    return f"{number} ext. {extension}" if extension else number


def codeable(components: list[str], sender: str) -> Json | None:
    """CWE/CE: the first triple, the alternate triple, and the text."""
    codings = []
    for start in (0, 3):
        code = components[start] if len(components) > start else ""
        display = components[start + 1] if len(components) > start + 1 else ""
        system_name = components[start + 2] if len(components) > start + 2 else ""
        if not code:
            continue
        coding: Json = {"system": coding_system(system_name, sender), "code": code}
        if display:
            coding["display"] = display
        codings.append(coding)
    text = components[8] if len(components) > 8 and components[8] else ""
    if not codings and not text:
        return None
    concept: Json = {}
    if codings:
        concept["coding"] = codings
    if text or codings:
        concept["text"] = text or next((c.get("display") for c in codings if "display" in c), "")
        if not concept["text"]:
            del concept["text"]
    return concept


def coding_system(name: str, sender: str) -> str:
    known = table("coding_system", sender).get(name.upper())
    if known:
        return str(known)
    label = re.sub(r"[^A-Za-z0-9.-]", "-", f"{sender}-{name or 'local'}").lower()
    return f"urn:jianhu:codesystem:local:{label}"


_DTM = re.compile(
    r"^(?P<y>\d{4})(?P<m>\d{2})?(?P<d>\d{2})?(?P<H>\d{2})?(?P<M>\d{2})?(?P<S>\d{2})?"
    r"(?:\.(?P<f>\d{1,4}))?(?P<z>[+-]\d{4})?$"
)


def date_time(text: str, zone: str = "+08:00") -> str | None:
    """v2 DTM to FHIR dateTime at its precision; a time without a zone is local (China)."""
    match = _DTM.match(text.strip())
    if match is None:
        return None
    y, m, d, hh, mm, ss = (match[k] for k in ("y", "m", "d", "H", "M", "S"))
    if not m:
        return y
    if not d:
        return f"{y}-{m}"
    if not hh:
        return f"{y}-{m}-{d}"
    offset = match["z"]
    tz = f"{offset[:3]}:{offset[3:]}" if offset else zone
    fraction = f".{match['f']}" if match["f"] and ss else ""
    return f"{y}-{m}-{d}T{hh}:{mm or '00'}:{ss or '00'}{fraction}{tz}"


def date_only(text: str) -> str | None:
    found = date_time(text[:8])
    return found if found and len(found) <= 10 else None
