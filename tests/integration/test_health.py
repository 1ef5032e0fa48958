"""Every server answers `grpc.health.v1.Health` in full — Check, and List (which reflection advertises; the
reference aio servicer leaves it UNIMPLEMENTED): the server as a whole ("") and each of its services, SERVING."""

from __future__ import annotations

from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.security.identity import operator

SERVING = health_pb2.HealthCheckResponse.SERVING


async def test_every_server_lists_its_services_as_serving(kit):
    stack = kit.stack
    expected = {
        stack.clearing_address: {"clearinghouse.v1.ClearingHouseService"},
        stack.address("440100"): {"clearinghouse.v1.TreatingAgencyService", "clearinghouse.v1.InsuredAgencyService"},
        f"127.0.0.1:{stack.his.port}": {"clearinghouse.v1.HospitalService"},
    }
    for address, services in expected.items():
        health = stack.stub_as(operator("admin"), health_pb2_grpc.HealthStub, address)
        listed = await health.List(health_pb2.HealthListRequest(), timeout=5)
        statuses = {name: item.status for name, item in listed.statuses.items()}
        assert services | {""} <= set(statuses), (address, statuses)
        assert all(status == SERVING for status in statuses.values()), (address, statuses)
        for name in statuses:  # List agrees with Check, service by service
            checked = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert checked.status == statuses[name]
