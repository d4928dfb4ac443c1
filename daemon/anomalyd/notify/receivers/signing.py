"""Standard Webhooks signatures (https://www.standardwebhooks.com): sign what the
webhook receiver sends, and verify what a receiver got (`anomalyd verify-webhook`).

The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the signature is
`v1,` then the base64 HMAC-SHA256 of it, keyed by the secret's bytes (the base64
after `whsec_`). With several secrets (rotation) the header carries one `v1,<sig>`
per secret, space-separated; a receiver accepts the request if any one matches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence

#: How far a timestamp may be from now before verification rejects it (the spec's 5 min).
DEFAULT_TOLERANCE = 300.0


class VerificationError(Exception):
    """The request is not a valid signed webhook; the message says why."""


def sign(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of the request."""
    content = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_headers(
    keys: Sequence[bytes], webhook_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three headers of a signed request (without keys: id and timestamp only)."""
    headers = {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp)}
    if keys:
        signatures = (sign(key, webhook_id, timestamp, body) for key in keys)
        headers["webhook-signature"] = " ".join(signatures)
    return headers


def verify(
    keys: Sequence[bytes],
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> str:
    """Check a received request; return its webhook-id or raise VerificationError."""
    lowered = {name.lower(): value.strip() for name, value in headers.items()}
    webhook_id, stamp, signatures = (
        lowered.get(name) for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    )
    if not webhook_id or not stamp or not signatures:
        raise VerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    timestamp = _timestamp(stamp, now, tolerance)
    expected = [sign(key, webhook_id, timestamp, body) for key in keys]
    for candidate in signatures.split():
        if not candidate.isascii():  # compare_digest refuses non-ASCII text; no match anyway
            continue
        if any(hmac.compare_digest(candidate, mine) for mine in expected):
            return webhook_id
    raise VerificationError("no signature matches (wrong secret, or the body was altered)")


def _timestamp(stamp: str, now: float, tolerance: float) -> int:
    if not (stamp.isascii() and stamp.isdigit()):
        raise VerificationError(f"webhook-timestamp {stamp!r} is not epoch seconds")
    timestamp = int(stamp)
    if timestamp < now - tolerance:
        raise VerificationError(f"the timestamp is {now - timestamp:.0f}s old (replay?)")
    if timestamp > now + tolerance:
        raise VerificationError(f"the timestamp is {timestamp - now:.0f}s in the future")
    return timestamp
