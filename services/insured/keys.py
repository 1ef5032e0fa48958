"""The insured agency's member key: it matches a patient to a member without keeping the ID number (SPEC §9).

The agency stores `id_hash` = HMAC-SHA256(region key, normalised ID number), hex, and compares a presented ID
number by hashing it the same way. The key is a secret of the region's insured agency, one per region, read
from a file `<key dir>/<region>.key` (64 hex digits, 32 bytes) at start. The key directory comes from the
stack's configuration (`StackConfig.member_key_dir`) or, for a process given none, the environment variable
`CLEARING_MEMBER_KEY_DIR`. A deployment puts the file in its secret store, readable by the region's service
account only (docs/security.md); losing the key makes every stored hash unmatchable, leaking it lets whoever
holds the members table test guesses of ID numbers against it.

Development stacks (`make demo`, `clearing-admin stack up`, the test session) generate random keys into their
own runtime directory (`ensure_member_keys`); no key is ever committed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

KEY_DIR_ENV = "CLEARING_MEMBER_KEY_DIR"
KEY_BYTES = 32


class MemberKeyError(RuntimeError):
    """The region's key is missing or malformed: the insured agency cannot start without it."""


def key_path(key_dir: Path | str, region: str) -> Path:
    return Path(key_dir) / f"{region}.key"


def configured_key_dir(key_dir: Path | str | None = None) -> Path:
    """`key_dir` when given, else the directory named by `CLEARING_MEMBER_KEY_DIR`."""
    chosen = key_dir or os.environ.get(KEY_DIR_ENV)
    if not chosen:
        raise MemberKeyError(f"no member key directory: set {KEY_DIR_ENV} or the stack's member_key_dir")
    return Path(chosen)


def load_member_key(region: str, key_dir: Path | str | None = None) -> bytes:
    """The region's key from `<key dir>/<region>.key`: 64 hex digits (surrounding whitespace ignored)."""
    path = key_path(configured_key_dir(key_dir), region)
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise MemberKeyError(f"cannot read the member key of region {region} at {path}: {error}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise MemberKeyError(f"the member key at {path} is not hex") from None
    if len(key) < KEY_BYTES:
        raise MemberKeyError(f"the member key at {path} has {len(key)} bytes; at least {KEY_BYTES} are needed")
    return key


def ensure_member_keys(key_dir: Path | str, regions: Iterable[str]) -> Path:
    """Development keys: a random key for every region that has none yet in `key_dir` (kept if present, so a
    restarted stack still matches the hashes it stored). The directory is 0700 and every file 0600."""
    directory = Path(key_dir)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    for region in regions:
        path = key_path(directory, region)
        if path.exists():
            continue
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secrets.token_hex(KEY_BYTES) + "\n")
    return directory


def normalise_id_number(id_number: str) -> str:
    """The form that is hashed: the 18 characters with a final `x` upper-cased (both are written)."""
    return id_number.strip().upper()


def id_hash(key: bytes, id_number: str) -> str:
    """HMAC-SHA256 of the normalised ID number under the region's key, as 64 hex digits."""
    return hmac.new(key, normalise_id_number(id_number).encode("ascii"), hashlib.sha256).hexdigest()


def name_hash(key: bytes, name: str) -> str:
    """A keyed hash of a name, only for telling a retried registration with another name apart from the first
    (the stored request keeps this instead of the name). Domain-separated from `id_hash`."""
    return hmac.new(key, b"name\x00" + name.encode("utf-8"), hashlib.sha256).hexdigest()


def matches(key: bytes, id_number: str, stored_hash: str) -> bool:
    """Whether `id_number` is the one whose hash was stored; constant time in the hash."""
    return hmac.compare_digest(id_hash(key, id_number), stored_hash)
