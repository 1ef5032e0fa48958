"""Who is calling, and may they: every servicer method's caller, authenticated and authorised once per call before
its body runs.

The `rpc`/`rpc_stream` decorators (services/common/errors.py) call `authenticate(servicer.security, context)`:
with mutual TLS it reads the caller's identity from its certificate (`tls.check_peer`: UNAUTHENTICATED for a
plaintext caller, a certificate naming no identity of ours, or a revoked one), puts it in a context variable for
the call (`current_caller()`), and binds its SPIFFE path into the log context as `caller`, so every log line of
the call names who made it. In insecure mode nothing is checked and the caller is None.

`authorise` then looks the call up in the authorisation table (services/security/policy.py) with the server's own
party (`Served`: the region an agency serves): a role without a grant, or a request rule broken, is `NotAllowed`
(PERMISSION_DENIED naming the rule) before the body runs. The grant it found is `current_decision()`, which the
servicer passes to `policy.require` for the resource rules it checks once it has loaded the resource.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import structlog

from services.security import tls
from services.security.identity import AGENCY, Identity
from services.security.party import Security
from services.security.policy import Decision, Served, authorize

_CALLER: ContextVar[Identity | None] = ContextVar("caller", default=None)
_DECISION: ContextVar[Decision | None] = ContextVar("decision", default=None)


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


def current_decision() -> Decision | None:
    """The grant the call being served was allowed under; None in insecure mode (every resource rule passes)."""
    return _DECISION.get()


def served_by(security: Security) -> Served:
    """The party a server is, for the table's rules: an agency's region (a region process serves both agencies of
    its region under `agency/{region}`), nothing for the clearing house and the HIS simulator."""
    return Served(security.identity.subject if security.identity.role == AGENCY else None)


def authorise(security: Security, caller: Identity | None, rpc: str, request: Any) -> Decision | None:  # noqa: ANN401
    """The table's decision for `caller` calling `rpc` (`Service.Method`) with `request` (`NotAllowed` when it may
    not); None when insecure. Sets `current_decision()` for the rest of the call."""
    decision = None if caller is None else authorize(rpc, caller, request, served_by(security))
    _DECISION.set(decision)
    return decision
