"""What the operator audit log keeps of a request (services/security/audit_log.py `redacted_request`): the proto's
JSON mapping with no name and no ID number — names dropped wherever they are, ID numbers masked as the logs mask
them (a malformed one too, under its key; an 18-character one in any text) — and long texts as their length and
digest."""

from __future__ import annotations

import hashlib
import json

from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2

from services.security.audit_log import TEXT_CHARS_MAX, mask_id_value, redacted, redacted_request

ID_NUMBER = "430101197001011234"
NAME = "张三丰"


def test_a_registration_keeps_the_member_without_name_or_number():
    request = ia.RegisterMemberRequest(request_id="r1", member=ia.Member(
        member_id="M1", id_number=ID_NUMBER, name=NAME, scheme=types_pb2.SCHEME_EMPLOYEE, retired=True))
    record = redacted_request(request)
    assert record == {"request_id": "r1", "member": {"member_id": "M1", "id_number": "4301**********1234",
                                                     "scheme": "SCHEME_EMPLOYEE", "retired": True}}
    text = json.dumps(record, ensure_ascii=False)
    assert ID_NUMBER not in text and NAME not in text


def test_an_admission_keeps_the_patient_without_name_or_number():
    request = ta.AdmitRequest(request_id="r2", hospital_code="H44010000001", patient=ta.Patient(
        insured_region="430100", member_id="M1", id_number=ID_NUMBER, name=NAME), diagnoses=["J18.9"])
    record = redacted_request(request)
    assert record["patient"] == {"insured_region": "430100", "member_id": "M1", "id_number": "4301**********1234"}
    assert record["diagnoses"] == ["J18.9"]


def test_a_malformed_number_under_its_key_is_masked_whole():
    assert redacted({"id_number": "43010119700101123"}) == {"id_number": "4301*********1123"}
    assert redacted({"id_number": "12345"}) == {"id_number": "*****"}
    assert redacted({"certno": ["430101197001011234", "x"]}) == {"certno": ["4301**********1234", "*"]}
    assert mask_id_value("") == ""


def test_an_id_number_in_any_text_is_masked_and_names_dropped_at_any_depth():
    value = {"reference": f"paid for {ID_NUMBER}", "items": [{"name": NAME, "code": "A"}], "patient_name": NAME}
    assert redacted(value) == {"reference": "paid for 4301**********1234", "items": [{"code": "A"}]}


def test_a_long_text_is_kept_as_its_length_and_digest():
    csv_text = "local_code,national_code\n" + "X,Y\n" * TEXT_CHARS_MAX
    record = redacted_request(ta.ImportCatalogueRequest(request_id="r3", csv_text=csv_text))
    assert record["csv_text"] == {"chars": len(csv_text), "sha256": hashlib.sha256(csv_text.encode()).hexdigest()}
    assert redacted("x" * TEXT_CHARS_MAX) == "x" * TEXT_CHARS_MAX


def test_numbers_and_booleans_pass_unchanged():
    assert redacted({"count": 3, "ok": False, "ratio": 1.5, "none": None}) == {
        "count": 3, "ok": False, "ratio": 1.5, "none": None}


def test_a_nul_character_is_shown_not_stored():
    """jsonb cannot hold U+0000; a refused request carrying one is still recorded (as INVALID_ARGUMENT)."""
    assert redacted({"member_id": "M\x001"}) == {"member_id": "M\u24001"}


def test_a_request_the_json_mapping_cannot_express_is_kept_as_its_type_and_size():
    """Found by the garbage test: a Timestamp with nanos out of range has no JSON mapping; the call must still be
    recorded (and refused by its body), not refused as "audit log unavailable"."""
    from clearinghouse.v1 import audit_pb2

    request = audit_pb2.ListAuditEventsRequest(who="operator/admin")
    request.since.nanos = -1
    kept = redacted_request(request)
    assert kept["unmappable"] == "clearinghouse.v1.ListAuditEventsRequest"
    assert kept["bytes"] == request.ByteSize() and "Nanos" in kept["why"]
    json.dumps(kept)  # storable as jsonb
