"""`anomalyd verify-webhook`: check a request that claims to come from anomalyd, the
way a receiver would. For trying out a receiver, and for debugging one.

The notify package is imported only when the command runs: every command builds the
parser, and none of the others needs it.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import orjson

from anomalyd.config import signing_key

#: The Standard Webhooks spec's tolerance for timestamps (`signing.DEFAULT_TOLERANCE`).
DEFAULT_TOLERANCE = 300.0


class BadInput(Exception):
    """The request or the secret could not be read; the message says why."""


def verify_request(
    secrets: Sequence[str], headers: dict[str, str], body: bytes, now: float, tolerance: float
) -> str:
    """The webhook-id of a valid request; VerificationError or BadInput otherwise."""
    from anomalyd.notify.receivers.signing import verify

    try:
        keys = [signing_key(secret) for secret in secrets]
    except ValueError as error:
        raise BadInput(str(error)) from error
    return verify(keys, headers, body, now, tolerance)


def read_files(headers_path: str, body_path: str) -> tuple[dict[str, str], bytes]:
    """Headers as `Name: value` lines (what `curl -D` saves) or a JSON object; the body
    byte for byte."""
    try:
        text = Path(headers_path).read_text(encoding="utf-8")
        body = Path(body_path).read_bytes()
    except OSError as error:
        raise BadInput(f"cannot read {error.filename}: {error.strerror}") from error
    return parse_headers(text), body


def read_stdin(stream: IO[bytes] | None = None) -> tuple[dict[str, str], bytes]:
    """`{"headers": {...}, "body": "..."}`, or `"body_base64"` for bodies that are not text."""
    raw = (stream or sys.stdin.buffer).read()
    try:
        request = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise BadInput(f"stdin is not JSON: {error}") from error
    if not isinstance(request, dict) or not isinstance(request.get("headers"), dict):
        raise BadInput('stdin must be {"headers": {...}, "body": "..."}')
    return _text_headers(request["headers"]), _body(request)


def parse_headers(text: str) -> dict[str, str]:
    if text.lstrip().startswith("{"):
        try:
            return _text_headers(orjson.loads(text))
        except orjson.JSONDecodeError as error:
            raise BadInput(f"the headers file is not valid JSON: {error}") from error
    headers = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and not name.startswith("HTTP/") and name.strip() == name:
            headers[name] = value.strip()
    return headers


def _text_headers(headers: Any) -> dict[str, str]:
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise BadInput("headers must be an object of strings")
    return {str(name): value for name, value in headers.items()}


def _body(request: dict[str, Any]) -> bytes:
    if isinstance(request.get("body"), str):
        return str(request["body"]).encode()
    if isinstance(request.get("body_base64"), str):
        try:
            return base64.b64decode(request["body_base64"], validate=True)
        except binascii.Error as error:
            raise BadInput("body_base64 is not base64") from error
    raise BadInput('stdin needs "body" (text) or "body_base64"')


# --- the command --------------------------------------------------------------------------------

HELP = "Verify a request's Standard Webhooks signature; exit 0 if valid, 1 if not."
SECRET_ENV = "ANOMALYD_WEBHOOK_SECRET"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secret",
        action="append",
        help=f"whsec_... (repeat to try several; default ${SECRET_ENV}, which keeps it out of ps)",
    )
    parser.add_argument(
        "--headers", help="file of the request's headers: 'Name: value' lines (curl -D) or JSON"
    )
    parser.add_argument("--body", help="file of the request's body, byte for byte")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="seconds a timestamp may be off from now (default 300, as the spec says)",
    )
    parser.epilog = (
        'Without --headers/--body, reads {"headers": {...}, "body": "..."} from stdin'
        ' ("body_base64" for binary bodies). Exit codes: 0 valid, 1 invalid, 2 unusable input.'
    )


def run(args: argparse.Namespace, now: float) -> int:
    from anomalyd.notify.receivers.signing import VerificationError

    secrets = args.secret or ([os.environ[SECRET_ENV]] if os.environ.get(SECRET_ENV) else [])
    try:
        if not secrets:
            raise BadInput(f"give --secret or set {SECRET_ENV}")
        if (args.headers is None) != (args.body is None):
            raise BadInput("give both --headers and --body, or neither (then stdin)")
        headers, body = read_files(args.headers, args.body) if args.headers else read_stdin()
        webhook_id = verify_request(secrets, headers, body, now, args.tolerance)
    except BadInput as error:
        print(f"unusable input: {error}", file=sys.stderr)
        return 2
    except VerificationError as error:
        print(f"invalid: {error}", file=sys.stderr)
        return 1
    print(f"valid: webhook-id {webhook_id}")
    return 0
