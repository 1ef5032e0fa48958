"""`clearing-admin certs …`: make, rotate, revoke and list the development certificates (docs/security.md).

Thin over `services.security.certs`; every refusal is a `DomainError`, which `main()` prints as one
`error: …` line with exit code 2.
"""

from __future__ import annotations

from pathlib import Path

from clearing.errors import InvalidField
from services.cli.output import console, table
from services.security import certs
from services.security.identity import OPERATOR, Identity, IdentityError, check_subject

DEFAULT_OPERATOR = "admin"  # every directory has it; `--operator` adds more


def identity_argument(role_path: str) -> Identity:
    try:
        return Identity.from_path(role_path.rstrip("/"))  # a directory name completed by the shell
    except IdentityError as error:
        raise InvalidField("ROLE_PATH", str(error)) from None


def init(directory: Path, operators: list[str], days: int, force: bool) -> None:
    for name in operators:
        try:
            check_subject(OPERATOR, name)
        except IdentityError as error:
            raise InvalidField("--operator", str(error)) from None
    regions, hospitals = certs.configured_parties()
    names = list(dict.fromkeys([DEFAULT_OPERATOR, *operators]))
    report = certs.init(directory, regions, hospitals, names, days=days, force=force)
    out = console()
    out.print(f"{directory}: CA {'issued' if report.ca_issued else 'kept'}; "
              f"{len(report.issued)} certificates issued, {len(report.kept)} kept", soft_wrap=True)
    for identity in report.issued:
        out.print(f"  issued {identity.spiffe_id}", soft_wrap=True)
    out.print(f"secret: {certs.CertDir(directory).ca_key} and every key.pem (mode 0600)", soft_wrap=True)


def issue(directory: Path, role_path: str, days: int) -> None:
    info = certs.issue(directory, identity_argument(role_path), days=days)
    console().print(f"issued {info.identity.spiffe_id} serial {certs.format_serial(info.serial)} "
                    f"valid until {info.not_after:%Y-%m-%d %H:%M}Z; servers present it from their next connection", soft_wrap=True)


def revoke(directory: Path, role_path: str) -> None:
    identity = identity_argument(role_path)
    serial = certs.revoke(directory, identity)
    console().print(f"revoked {identity.spiffe_id} serial {certs.format_serial(serial)} "
                    f"(in {certs.CertDir(directory).revoked}; servers refuse it within a second)", soft_wrap=True)


def show(directory: Path) -> None:
    rows = certs.show(directory)
    listing = table(f"certificates in {directory}", "identity (spiffe://clearing.local/…)", "serial", "not after (UTC)", "revoked", "problem")
    for column in listing.columns[:2]:
        column.no_wrap = True  # a serial or an identity cut in two cannot be copied
    for info in rows:
        listing.add_row(info.identity.path, certs.format_serial(info.serial), f"{info.not_after:%Y-%m-%d %H:%M}",
                        "yes" if info.revoked else "", info.problem)
    out = console()
    if not out.is_terminal:
        out.width = max(out.width, 132)  # piped: whole serials, not rich's 80 columns
    out.print(listing)
