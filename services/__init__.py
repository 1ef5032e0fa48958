"""The parties of the clearing house as services, plus their tools (SPEC §2): I/O lives here, not in `clearing/`."""

import os

# gRPC's C core registers fork handlers (pthread_atfork) unless told not to. Our processes fork only to exec
# (subprocess: pg_ctl, the services, the CLI), never to use gRPC in the child; the handlers then only add risk: a
# fork while gRPC's own threads were busy crashed the child ("Check failed: next_worker->state == KICKED", pg_ctl
# killed by SIGSEGV before it could exec). Read by the core when it first starts, so set before any channel.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
