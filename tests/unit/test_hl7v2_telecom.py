"""XTN as Chinese HIS send it, in its v2.3 place (XTN-1) and its v2.5 places (use and equipment,
e-mail, local number, unformatted number): no number is dropped, a mobile is ``mobile``."""

import pytest

from hub.hl7v2.datatypes import contact_point


@pytest.mark.parametrize(
    ("xtn", "found"),
    [
        ("13800138000", ("phone", "13800138000", "home")),  # v2.3: the number first
        ("^PRN^PH^^^^88012345", ("phone", "88012345", "home")),
        ("^PRN^CP^^^^13800138000", ("phone", "13800138000", "mobile")),
        ("^WPN^PH^^86^0575^88012345^8021", ("phone", "+86 0575-88012345 ext. 8021", "work")),
        ("^NET^Internet^zhang.san@example.cn", ("email", "zhang.san@example.cn", "home")),
        ("^PRN^FX^^^0575^88012346", ("fax", "0575-88012346", "home")),
        ("^PRN^PH^^^^^^^^^057588012345", ("phone", "057588012345", "home")),  # XTN-12
    ],
)
def test_every_place_of_the_number_is_read(xtn: str, found: tuple[str, str, str]) -> None:
    point = contact_point(xtn.split("^"), "home")
    assert point is not None
    assert (point["system"], point["value"], point["use"]) == found


def test_the_field_says_the_use_when_xtn_2_does_not() -> None:
    assert contact_point(["88012345"], "work") == {
        "system": "phone",
        "value": "88012345",
        "use": "work",
    }
    assert contact_point(["", "PRN", "PH"], "home") is None  # nothing to call


def test_an_email_in_xtn_4_does_not_replace_the_phone_number() -> None:
    point = contact_point(["", "PRN", "PH", "zhang@example.cn", "", "", "88012345"], "home")
    assert point == {"system": "phone", "value": "88012345", "use": "home"}
    beeper = contact_point(["", "BPN", "", "", "", "", "6012"], "home")
    assert beeper is not None
    assert beeper["system"] == "pager"
