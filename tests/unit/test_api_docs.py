"""docs/api.md is generated from the protos' comments (services/common/api_docs.py, `make docs`): it must be the
current rendering, and the rendering must carry every service, RPC, message, field and enum value with its
comment — read here from the descriptor set itself, not from the renderer."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import descriptor_pb2

from services.common import api_docs
from services.common.descriptors import DESCRIPTOR_SET

API_MD = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_docs_api_md_is_current():
    assert API_MD.read_text(encoding="utf-8") == api_docs.render(), "docs/api.md is stale: run `make docs`"


def own_files() -> list[descriptor_pb2.FileDescriptorProto]:
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file
    return [file for file in files if file.package == "clearinghouse.v1"]


def walk_messages(messages, prefix: str):  # noqa: ANN001, ANN201
    for message in messages:
        if message.options.map_entry:
            continue
        yield f"{prefix}{message.name}", message
        yield from walk_messages(message.nested_type, f"{prefix}{message.name}.")


def test_every_element_is_in_the_reference_with_its_comment():
    text = api_docs.render()
    comments = {}
    for file in own_files():
        for location in file.source_code_info.location:
            comments[(file.name, tuple(location.path))] = api_docs.clean(location.leading_comments)
    checked = 0
    for file in own_files():
        for index, service in enumerate(file.service):
            assert f"### service `{service.name}`" in text
            for number, method in enumerate(service.method):
                assert f"#### `{service.name}.{method.name}`" in text
                comment = comments[(file.name, (6, index, 2, number))]
                assert comment and comment in text, (service.name, method.name)
                checked += 1
        for name, message in walk_messages(file.message_type, ""):
            assert f"### message `{name}`" in text, name
            for field in message.field:
                assert f"| `{field.name}` | {field.number} |" in text, (name, field.name)
                checked += 1
        for enum in file.enum_type:
            assert f"### enum `{enum.name}`" in text
            for value in enum.value:
                assert f"| `{value.name}` | {value.number} |" in text
    assert checked > 300  # every RPC and every field of the contract


def test_a_field_row_carries_its_comment_and_int64_is_marked_as_a_json_string():
    text = api_docs.render()
    assert "| `unit_price_fen` | 4 | `int64` (string in JSON) | Unit price in fen. |" in text
    row = next(line for line in text.splitlines() if line.startswith("| `request_id` | 1 | `string` |"))
    assert "UUID4" in row
    assert "[`Member`](#member)" in text  # the package's own types are links to their sections
    assert '<a id="member"></a>' in text


def test_comments_are_cleaned_into_paragraphs():
    assert api_docs.clean(" First line\n second line.\n\n Next paragraph.\n") == \
        "First line second line.\n\nNext paragraph."
    assert api_docs.cell("a | b\n\nc") == "a \\| b<br>c"
