"""Operating errors the core raises for what callers can get wrong (STYLE: errors vs asserts).

Each carries enough to build a gRPC status detail or a one-line CLI message: the field path
(`lines[2].qty`), the resource name, or the precondition that failed.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a caller can cause; never raised for our own bugs (those assert)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidField(DomainError):
    """A request or file field is malformed or out of range; `field` is its path."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFound(DomainError):
    """A named resource (`regions/430100/members/M001`) does not exist."""

    def __init__(self, resource_name: str, reason: str = "not found") -> None:
        super().__init__(f"{resource_name}: {reason}")
        self.resource_name = resource_name
        self.reason = reason


class PreconditionFailed(DomainError):
    """The request is well-formed but the system is not in a state that allows it."""

    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(f"{subject}: {reason}")
        self.subject = subject
        self.reason = reason


class RequestConflict(DomainError):
    """The same `request_id` was used before with different content; `field` names the difference."""

    def __init__(self, field: str, reason: str = "differs from the first request with this request_id") -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotAllowed(DomainError):
    """The caller's identity may not perform this action; `rule` names the authorisation rule it breaks."""

    def __init__(self, identity: str, action: str, rule: str = "") -> None:
        super().__init__(f"{identity} may not {action}")
        self.identity = identity
        self.action = action
        self.rule = rule


class Unauthenticated(DomainError):
    """The caller's identity is unknown: no client certificate, one that names no valid identity, or a revoked
    one (services/security). A missing or invalid certificate is refused at the TLS handshake before any
    handler runs; this is for what only a handler can check."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OutcomeUnknown(DomainError):
    """A downstream party answered in a way that leaves the request's outcome unknown (it holds other content
    under the same id): nothing may be marked failed or settled; reverse (冲正) or reconcile instead."""

    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(f"{subject}: {reason}")
        self.subject = subject
        self.reason = reason


class Throttled(DomainError):
    """The caller is over its per-identity limit (services/security/limits.py): `kind` is `rate` or
    `concurrency`, `limit` describes the allowance, `retry_after_ms` how long to wait before trying again (whole
    milliseconds: no float in the core). The
    call was refused before it did anything."""

    def __init__(self, identity: str, kind: str, limit: str, retry_after_ms: int) -> None:
        super().__init__(f"{identity} is over its {kind} limit ({limit}): retry after {retry_after_ms / 1000:g} s")
        self.identity = identity
        self.kind = kind
        self.limit = limit
        self.retry_after_ms = retry_after_ms
