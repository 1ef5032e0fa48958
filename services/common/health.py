"""`grpc.health.v1.Health` with `List` (the reference aio servicer answers Check and Watch only, and `List`, added
to the protocol in 2024, with UNIMPLEMENTED — though reflection advertises it): every service this server has
set a status for, the server as a whole under "", and their statuses."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio


class Health(health_aio.HealthServicer):
    async def List(self, request: health_pb2.HealthListRequest,  # noqa: N802 - the protocol's name
                   context: grpc.aio.ServicerContext) -> health_pb2.HealthListResponse:
        # `_server_status` is the reference servicer's own record of what `set` (and a graceful shutdown) decided.
        return health_pb2.HealthListResponse(statuses={
            service: health_pb2.HealthCheckResponse(status=status) for service, status in self._server_status.items()})
