"""Reflection that serves the API's files with their comments.

The generated `_pb2` modules embed their files without `source_code_info`, and reflection rebuilds what it serves
from those descriptors, so an integrator asking the server itself (`grpcurl describe`, `buf curl --list-methods`)
never learnt that money is int64 fen and ratios basis points, that a quantity is a decimal string with up to 4
places, that days are ISO dates in Asia/Shanghai or that a request id is a UUID4. `make` also writes the protos as
a descriptor set that keeps the comments (`protoc --include_source_info`, next to the generated modules); reflection
answers with those files in place of the bare ones, and with the bare ones for everything else (health,
reflection, the well-known types).
"""

from __future__ import annotations

import functools
from pathlib import Path

from clearinghouse import v1 as generated
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2

DESCRIPTOR_SET = Path(next(iter(generated.__path__))) / "descriptors.binpb"


@functools.cache
def commented_files() -> dict[str, bytes]:
    """File name → the serialized FileDescriptorProto of that API file, comments included."""
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file
    return {file.name: file.SerializeToString() for file in files if file.source_code_info.location}


def with_comments(response: reflection_pb2.ServerReflectionResponse) -> reflection_pb2.ServerReflectionResponse:
    """`response` with every file of the API it carries replaced by the same file with its comments."""
    if response.HasField("file_descriptor_response"):
        files = commented_files()
        protos = response.file_descriptor_response.file_descriptor_proto
        for index, raw in enumerate(protos):
            name = descriptor_pb2.FileDescriptorProto.FromString(raw).name
            if name in files:
                protos[index] = files[name]
    return response


class CommentedReflection(reflection.aio.ReflectionServicer):
    """grpc_reflection's servicer (v1alpha), answering file requests with the commented files."""

    def _file_by_filename(self, request, filename):  # noqa: ANN001, ANN202
        return with_comments(super()._file_by_filename(request, filename))

    def _file_containing_symbol(self, request, fully_qualified_name):  # noqa: ANN001, ANN202
        return with_comments(super()._file_containing_symbol(request, fully_qualified_name))

    def _file_containing_extension(self, request, containing_type, extension_number):  # noqa: ANN001, ANN202
        return with_comments(super()._file_containing_extension(request, containing_type, extension_number))
