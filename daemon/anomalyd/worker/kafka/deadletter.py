"""What goes to the events dead-letter topic for a record, and which send failures are
the record's own. Pure.

A dead letter is the record's original key and value with its reason. One that does
not fit a producer request (an event of megabytes, compressed by its producer to a few
KB on the wire, is read whole and rejected as oversized; its copy would be refused) is
cut to fit, its original sizes in headers (`truncated: true`, `original_size`,
`original_key_size`). If even that cannot be sent, the record is named by its
coordinates alone (`coordinates_only`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

#: Keys longer than this are cut in a dead letter (a stream name is 200 bytes at most).
MAX_KEY_BYTES = 1024
#: Room left in a request for the record's framing and headers.
HEADROOM = 16 * 1024
#: A reason header is cut to this many bytes.
MAX_REASON_BYTES = 1024
_RECORD_ERRORS = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    truncated: bool = False


def dead_letter(record: Any, code: str, detail: str, max_request_size: int) -> DeadLetter:
    """The record as it came, with its reason; cut to fit `max_request_size` if need be."""
    headers = _reason(record, code, detail)
    key, value, truncated = record.key, record.value, False
    if key is not None and len(key) > MAX_KEY_BYTES:
        headers.append(("original_key_size", str(len(key)).encode()))
        key, truncated = key[:MAX_KEY_BYTES], True
    budget = max(0, max_request_size - HEADROOM - MAX_KEY_BYTES)
    if value is not None and len(value) > budget:
        headers.append(("original_size", str(len(value)).encode()))
        value, truncated = value[:budget], True
    if truncated:
        headers.append(("truncated", b"true"))
    return DeadLetter(key, value, headers, truncated)


def coordinates_only(record: Any, code: str, detail: str) -> DeadLetter:
    """The record named by topic/partition/offset (the `source` header) and its sizes,
    without its bytes: for when the record itself could not be sent."""
    headers = _reason(record, code, detail)
    headers.append(("original_size", str(len(record.value or b"")).encode()))
    headers.append(("original_key_size", str(len(record.key or b"")).encode()))
    headers.append(("content", b"omitted"))
    return DeadLetter(None, b"", headers, truncated=True)


def record_at_fault(error: BaseException) -> bool:
    """Whether a send failed because of the record itself (its size, its content), not
    because of the broker or the connection: the former is dead-lettered and the worker
    goes on; the latter is raised (the batch is retried after a restart)."""
    cause = error.__cause__ if error.__cause__ is not None else error
    if isinstance(cause, KafkaError):
        return isinstance(cause, _RECORD_ERRORS)
    return not isinstance(error, KafkaError | OSError | TimeoutError)


def _reason(record: Any, code: str, detail: str) -> list[tuple[str, bytes]]:
    reason = f"{code}: {detail}".encode()[:MAX_REASON_BYTES]
    source = f"{record.topic}/{record.partition}/{record.offset}".encode()
    return [("reason", reason), ("source", source)]
