import logging
import sys

import orjson

from hub.base.logs import JsonFormatter, log_event
from hub.base.masking import mask_fields, mask_id_card, mask_name, mask_phone, mask_text
from hub.hl7v2.message import Message
from hub.hl7v2.privacy import mask_personal


def test_id_card_phone_and_name_follow_the_hospital_format() -> None:
    assert mask_id_card("330602199001011234") == "330602********1234"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("张") == "张*"  # a one-character name still hides that it is complete


def test_free_text_hides_id_cards_and_phones_but_not_other_numbers() -> None:
    text = "PID|||33060219900101123X||张三|||F|||13812345678 order 20261126083000"
    masked = mask_text(text)
    assert "330602********123X" in masked
    assert "138****5678" in masked
    assert "20261126083000" in masked  # a 14-digit timestamp is not an ID card
    assert "19900101" not in masked


def test_structured_fields_are_masked_by_key() -> None:
    fields = mask_fields({"name": "李四", "phone": "13912345678", "queue": "lab", "count": 3})
    assert fields == {"name": "李*", "phone": "139****5678", "queue": "lab", "count": 3}


def test_json_log_lines_never_carry_patient_identifiers() -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "got 330602199001011234", None, None)
    record.event = "received"
    record.name_ = "ignored"
    record.__dict__["name"] = "t"
    record.__dict__["phone"] = "13812345678"
    line = orjson.loads(JsonFormatter().format(record))
    assert line["msg"] == "got 330602********1234"
    assert line["phone"] == "138****5678"
    assert line["event"] == "received"


def test_log_event_writes_one_line_with_its_fields(caplog) -> None:  # type: ignore[no-untyped-def]
    logger = logging.getLogger("jianhu.test")
    with caplog.at_level(logging.INFO, logger="jianhu.test"):
        log_event(logger, "acked", queue="lab", message_id="m1")
    (record,) = caplog.records
    assert record.getMessage() == "acked"
    assert (record.event, record.queue, record.message_id) == ("acked", "lab", "m1")


def test_quoted_chinese_names_in_error_texts_are_masked() -> None:
    text = "invalid literal for int() with base 10: '刘洋'; given \"欧阳娜娜\""
    assert mask_text(text) == "invalid literal for int() with base 10: '刘*'; given \"欧***\""


def test_a_messages_own_names_and_addresses_are_masked_in_texts_about_it() -> None:
    message = Message(
        "MSH|^~\\&|LIS|JHYY|HUB|JHYY|20261126083000||ORU^R01|C1|P|2.5\r"
        "PID|1||MZ0001^^^JHYY^MR||刘^洋||19900101|M|||鉴湖路1号^^绍兴市\r"
        "NK1|1|王^芳|MTH\r"
    )
    reason = "cannot file 刘洋 (刘^洋) at 鉴湖路1号, mother 王芳, order MZ0001"
    masked = mask_personal(reason, message)
    for word in ("刘洋", "刘^洋", "鉴湖路1号", "王芳"):
        assert word not in masked
    assert "MZ0001" in masked  # record numbers are how operations find the message


def test_a_log_line_stays_a_few_kilobytes() -> None:
    try:
        raise ValueError("x" * 200_000)
    except ValueError:
        record = logging.LogRecord(
            "t", logging.ERROR, __file__, 1, "y" * 100_000, None, sys.exc_info()
        )
    record.__dict__["detail"] = "z" * 100_000
    line = JsonFormatter().format(record)
    assert len(line) < 12_000
    assert orjson.loads(line)["exc"].endswith("x")  # the end of the traceback is kept
