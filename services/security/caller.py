"""Who is calling: every servicer method's caller, authenticated once per call before its body runs.

The `rpc`/`rpc_stream` decorators (services/common/errors.py) call `authenticate(servicer.security, context)`:
with mutual TLS it reads the caller's identity from its certificate (`tls.check_peer`: UNAUTHENTICATED for a
plaintext caller, a certificate naming no identity of ours, or a revoked one), puts it in a context variable for
the call (`current_caller()`), and binds its SPIFFE path into the log context as `caller`, so every log line of
the call names who made it. In insecure mode nothing is checked and the caller is None.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import structlog

from services.security import tls
from services.security.identity import Identity
from services.security.party import Security

_CALLER: ContextVar[Identity | None] = ContextVar("caller", default=None)


def current_caller() -> Identity | None:
    """The authenticated caller of the call being served; None in insecure mode (or outside a call)."""
    return _CALLER.get()


def authenticate(security: Security, context: Any) -> Identity | None:  # noqa: ANN401 - a grpc.aio.ServicerContext
    """The caller's identity (Unauthenticated → UNAUTHENTICATED when refused); None when insecure. Sets
    `current_caller()` and the `caller` log field for the rest of the call."""
    if security.insecure:
        _CALLER.set(None)
        return None
    identity = tls.check_peer(context, security.deny_list)
    _CALLER.set(identity)
    structlog.contextvars.bind_contextvars(caller=identity.path)
    return identity
