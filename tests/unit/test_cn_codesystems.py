"""The Chinese national code tables of cn_codes.md, shipped as FHIR CodeSystems."""

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.codesystem import CodeSystem

BUNDLE_PATH = Path(__file__).parents[2] / "fhir_profiles" / "data" / "cn-codesystems.json"
URL_PREFIX = "urn:jianhu:codesystem:"


@cache
def _bundle() -> dict[str, Any]:
    with BUNDLE_PATH.open(encoding="utf-8") as f:
        bundle: dict[str, Any] = json.load(f)
    return bundle


def _resources() -> list[dict[str, Any]]:
    return [entry["resource"] for entry in _bundle()["entry"]]


def _by_id() -> dict[str, dict[str, Any]]:
    return {resource["id"]: resource for resource in _resources()}


def _displays(system_id: str) -> dict[str, str]:
    return {concept["code"]: concept["display"] for concept in _by_id()[system_id]["concept"]}


def test_bundle_is_a_collection_of_codesystems() -> None:
    bundle = _bundle()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "collection"
    assert len(bundle["entry"]) >= 11
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert resource["resourceType"] == "CodeSystem"
        assert entry["fullUrl"] == resource["url"]


def test_ids_and_urls_are_unique_and_consistent() -> None:
    resources = _resources()
    ids = [resource["id"] for resource in resources]
    urls = [resource["url"] for resource in resources]
    assert len(set(ids)) == len(ids)
    assert len(set(urls)) == len(urls)
    for resource in resources:
        assert resource["id"] == resource["id"].lower()
        assert resource["url"] == URL_PREFIX + resource["id"]


def test_common_metadata() -> None:
    for resource in _resources():
        assert resource["status"] == "active"
        assert resource["experimental"] is False
        assert resource["publisher"] == "Jianhu"
        assert resource["caseSensitive"] is True
        assert resource["content"] in {"complete", "fragment"}
        assert resource["name"].isascii()
        assert resource["name"][:1].isupper()
        assert resource["title"]
        assert resource["description"]


def test_count_matches_concepts_and_codes_are_unique() -> None:
    for resource in _resources():
        codes = [concept["code"] for concept in resource["concept"]]
        assert resource["count"] == len(codes), resource["id"]
        assert len(set(codes)) == len(codes), resource["id"]
        for concept in resource["concept"]:
            assert isinstance(concept["code"], str)
            assert concept["display"]


@pytest.mark.parametrize("resource", _resources(), ids=lambda r: str(r["id"]))
def test_validates_as_fhir_codesystem(resource: dict[str, Any]) -> None:
    model = CodeSystem.model_validate(resource)
    assert model.url == resource["url"]
    assert len(model.concept or []) == resource["count"]


@pytest.mark.parametrize(
    ("system_id", "code", "display"),
    [
        ("gb-t-2261-1-sex", "0", "未知的性别"),
        ("gb-t-2261-1-sex", "1", "男性"),
        ("gb-t-2261-1-sex", "2", "女性"),
        ("gb-t-2261-1-sex", "9", "未说明的性别"),
        ("cv02-01-101-id-document-type", "01", "居民身份证"),
        ("cv02-01-101-id-document-type", "03", "护照"),
        ("cv02-01-101-id-document-type", "99", "其他法定有效证件"),
        ("gb-t-2261-2-marital-status", "10", "未婚"),
        ("gb-t-2261-2-marital-status", "90", "未说明的婚姻状况"),
        ("front-page-hy-marital-status", "4", "离婚"),
        ("gb-3304-ethnicity", "01", "汉族"),
        ("gb-3304-ethnicity", "46", "德昂族"),
        ("gb-3304-ethnicity", "56", "基诺族"),
        ("gb-3304-ethnicity", "98", "外国血统中国籍人士"),
        ("cv04-50-005-abo-blood-group", "4", "AB型"),
        ("cv04-50-020-rh-blood-group", "1", "阴性"),
        ("cv02-01-204-medical-insurance-type", "03", "新型农村合作医疗"),
        ("front-page-rytj-admission-route", "3", "其他医疗机构转入"),
        ("cv06-00-226-discharge-method", "5", "死亡"),
        ("front-page-rybq-admission-condition", "2", "临床未确定"),
        ("front-page-cyqk-discharge-condition", "1", "治愈"),
    ],
)
def test_spot_checks_from_cn_codes(system_id: str, code: str, display: str) -> None:
    assert _displays(system_id)[code] == display


def test_ethnicity_has_all_56_groups_with_two_digit_codes() -> None:
    codes = set(_displays("gb-3304-ethnicity"))
    assert {f"{n:02d}" for n in range(1, 57)} <= codes
    assert codes - {f"{n:02d}" for n in range(1, 57)} == {"97", "98"}


def test_versions_of_dated_standards() -> None:
    systems = _by_id()
    assert systems["gb-t-2261-1-sex"]["version"] == "2003"
    assert systems["gb-t-2261-2-marital-status"]["version"] == "2003"
    assert systems["gb-3304-ethnicity"]["version"] == "1991"


def test_unverified_tables_say_so() -> None:
    systems = _by_id()
    for system_id in (
        "front-page-hy-marital-status",
        "cv04-50-005-abo-blood-group",
        "cv04-50-020-rh-blood-group",
    ):
        assert "nverified" in systems[system_id]["description"], system_id
