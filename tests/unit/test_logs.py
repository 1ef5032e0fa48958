"""Personal data never reaches a log line unmasked (SPEC §9)."""

from __future__ import annotations

import structlog
from structlog.testing import capture_logs

from services.common.logs import mask_id_number, mask_name, mask_personal_data

ID_NUMBER = "43010219800101123X"


def test_an_id_number_is_masked_to_its_first_and_last_four_characters():
    assert mask_id_number(ID_NUMBER) == "4301**********123X"
    assert mask_id_number(f"patient {ID_NUMBER} admitted") == "patient 4301**********123X admitted"


def test_longer_digit_runs_are_not_mistaken_for_id_numbers():
    assert mask_id_number("1234567890123456789") == "1234567890123456789"  # 19 digits: not an ID number


def test_a_name_keeps_only_its_first_character():
    assert mask_name("张三丰") == "张**"


def test_the_processor_masks_personal_keys_and_id_numbers_anywhere():
    with capture_logs(processors=[mask_personal_data]) as logs:
        structlog.get_logger().info("patient_admitted", id_number=ID_NUMBER, name="李四",
                                    detail={"note": f"card {ID_NUMBER}"}, items=[ID_NUMBER])
    entry = logs[0]
    assert entry["id_number"] == "4301**********123X"
    assert entry["name"] == "李*"
    assert entry["detail"] == {"note": "card 4301**********123X"}
    assert entry["items"] == ["4301**********123X"]
    assert ID_NUMBER not in repr(entry)
