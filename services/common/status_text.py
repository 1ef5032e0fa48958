"""A refused call's status as one operator-readable line (for the CLI, the HIS simulator and the fault driver).

Apart from services/common/errors.py, whose server-side half pulls in the database driver, metrics and the audit
log: the CLI imports only this, so that every `clearing-admin` run starts without them.
"""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


def domain_error_from_status(error: grpc.aio.AioRpcError) -> str:
    """One line naming the field of a downstream refusal: `CODE: field: description`, else `CODE: details`."""
    status = rpc_status.from_call(error)
    if status is not None:
        for detail in status.details:
            bad_request = error_details_pb2.BadRequest()
            if detail.Unpack(bad_request) and bad_request.field_violations:
                violation = bad_request.field_violations[0]
                return f"{error.code().name}: {violation.field}: {violation.description}"
    return f"{error.code().name}: {error.details()}"
