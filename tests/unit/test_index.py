"""Index extraction: what each kind of search parameter stores for a resource."""

from fhir_profiles.search_params import params_for
from store.index import date_range, extract, normalise
from tests.fixtures.examples import CONDITION, ENCOUNTER, ID_CARD, OBSERVATION, PATIENT


def test_tokens_keep_system_and_code_and_text_for_text_search() -> None:
    rows = extract(PATIENT)
    assert ("identifier", ID_CARD, "330602199001011231") in rows.token
    assert ("gender", None, "male") in rows.token
    assert ("active", None, "true") in rows.token
    assert ("phone", "phone", "13812345678") in rows.token
    assert ("email", "email", "zhangsan@example.cn") in rows.token
    assert ("phone", "email", "zhangsan@example.cn") not in rows.token
    assert ("identifier", "居民身份证") in rows.token_text
    obs = extract(OBSERVATION)
    assert ("code", "http://loinc.org", "718-7") in obs.token
    assert ("code", "血红蛋白") in obs.token_text
    assert ("component-code", "http://loinc.org", "8480-6") in obs.token


def test_strings_cover_name_and_address_parts_normalised() -> None:
    rows = extract(PATIENT)
    assert ("name", "张三", "张三") in rows.string
    assert ("family", "张", "张") in rows.string
    assert ("address-city", "绍兴市", "绍兴市") in rows.string
    assert ("address", "鉴湖路1号", "鉴湖路1号") in rows.string
    assert normalise("Ångström ÉCOLE") == "angstrom ecole"


def test_dates_become_the_range_their_precision_covers() -> None:
    assert date_range("1990") == ("1990-01-01T00:00:00.000Z", "1990-12-31T23:59:59.999Z")
    assert date_range("2024-02") == ("2024-02-01T00:00:00.000Z", "2024-02-29T23:59:59.999Z")
    assert date_range("2026-11-25T08:30:00+08:00") == (
        "2026-11-25T00:30:00.000Z",
        "2026-11-25T00:30:00.999Z",
    )
    assert date_range("not a date") is None
    assert ("birthdate", "1990-01-01T00:00:00.000Z", "1990-01-01T23:59:59.999Z") in extract(
        PATIENT
    ).date
    onset = [row for row in extract(CONDITION).date if row[0] == "onset-date"]
    assert onset == [("onset-date", "2026-11-20T00:00:00.000Z", "2026-11-24T23:59:59.999Z")]


def test_references_quantities_and_numbers() -> None:
    obs = extract(OBSERVATION)
    assert ("subject", "Patient/p1") in obs.reference
    # patient repeats subject (narrowed to Patient): searches read subject's rows
    assert not [row for row in obs.reference if row[0] == "patient"]
    assert ("performer", "Organization/lab") in obs.reference
    assert ("value-quantity", 132.0, "http://unitsofmeasure.org", "g/L") in obs.quantity
    enc = extract(ENCOUNTER)
    assert ("length", 5.0, "http://unitsofmeasure.org", "d") in enc.quantity
    assert ("participant", "Practitioner/dr1") in enc.reference
    assert not [row for row in extract(CONDITION).reference if row[0] == "encounter"]


def test_parameters_that_repeat_others_are_read_from_their_rows() -> None:
    observation = params_for("Observation")
    assert observation["combo-code"].codes == ("code", "component-code")
    assert observation["patient"].codes == ("subject",)
    assert observation["patient"].stored_target == "Patient"
    assert params_for("Patient")["phonetic"].codes == ("name",)
    assert observation["code"].codes == ("code",)
    stored = {param for param, *_ in extract(OBSERVATION).token}
    assert "combo-code" not in stored
    assert "_id" not in stored  # the resource's own id
