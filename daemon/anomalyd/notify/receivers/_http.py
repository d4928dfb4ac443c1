"""One HTTP POST for the webhook and Alertmanager receivers: auth headers, and the
answer turned into success or a DeliveryError that says whether retrying can help.

Two things a receiver's answer must not do to the daemon:
- A redirect is not followed. Following a 301/302/303 turns the POST into a body-less
  GET, whose 200 would count as delivered while nobody got the alert. Every 3xx is a
  delivery failure that retrying cannot fix (the URL in the config is wrong): it goes to
  the dead-letter topic saying where the receiver pointed (cut to the origin).
- Only the head of an answer is read (`ANSWER_BYTES`): enough for an error message. A
  receiver answering hundreds of megabytes would otherwise be held in memory whole; the
  rest is discarded by closing the connection.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import aiohttp

from anomalyd import __version__
from anomalyd.clock import Clock
from anomalyd.config import AlertmanagerReceiver, WebhookReceiver
from anomalyd.notify.retry import DeliveryError

USER_AGENT = f"anomalyd/{__version__}"
#: Besides 5xx: request timeout, too early, too many requests.
_RETRYABLE_STATUS = frozenset({408, 425, 429})
#: How much of an error answer goes into the failure's detail.
_DETAIL_BYTES = 200
#: At most this much of an answer is read; the rest is dropped with the connection.
ANSWER_BYTES = 64 * 1024


def base_headers(receiver: WebhookReceiver | AlertmanagerReceiver) -> dict[str, str]:
    """Content type, user agent, the receiver's own headers and its Authorization."""
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **receiver.headers}
    if receiver.bearer_token is not None:
        headers["Authorization"] = f"Bearer {receiver.bearer_token.get_secret_value()}"
    elif receiver.basic_auth is not None:
        auth = receiver.basic_auth
        password = auth.password.get_secret_value()
        headers["Authorization"] = aiohttp.encode_basic_auth(auth.username, password, "utf-8")
    return headers


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    time_limit: float,
    clock: Clock,
) -> None:
    """POST exactly `body`; return on 2xx, else raise DeliveryError."""
    try:
        async with session.post(
            url,
            data=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=time_limit),
            allow_redirects=False,
        ) as response:
            answer = await read_answer(response)
            if 300 <= response.status < 400:
                raise redirect_error(response.status, response.headers.get("Location"), url)
            raise_for_status(
                response.status, response.headers.get("Retry-After"), answer, clock.now()
            )
    except TimeoutError as error:
        raise DeliveryError("timeout", f"no answer in {time_limit:g}s", retryable=True) from error
    except aiohttp.ClientError as error:
        detail = redact_url(str(error) or type(error).__name__, url)
        raise DeliveryError("connection", detail, retryable=True) from error


async def read_answer(response: aiohttp.ClientResponse, limit: int = ANSWER_BYTES) -> bytes:
    """At most `limit` bytes of the answer's body. If there is more, the connection is
    closed rather than read to its end (and is not reused)."""
    head = bytearray()
    while len(head) < limit:
        chunk = await response.content.read(limit - len(head))
        if not chunk:
            return bytes(head)  # the whole answer: the connection can be reused
        head += chunk
    if not response.content.at_eof():
        response.close()
    return bytes(head)


def redirect_error(status: int, location: str | None, url: str) -> DeliveryError:
    """A 3xx: not followed, not retried. Says where the receiver pointed, cut to the
    origin (a Location can carry a token as well as the configured URL can)."""
    where = f" to {_origin(url, location)}" if location else " with no Location"
    return DeliveryError(f"http_{status}", f"redirect {status}{where}", retryable=False)


def _origin(base: str, location: str) -> str:
    """`location` (relative to `base`) as `scheme://host[:port]/…`."""
    try:
        parts = urlsplit(urljoin(base, location))
        port = parts.port
    except ValueError:  # a port out of range, a malformed IPv6 host: the receiver's text
        return "an invalid URL"
    if not parts.hostname:
        return "an invalid URL"
    return f"{parts.scheme}://{parts.hostname}" + (f":{port}" if port else "") + "/…"


def redact_url(text: str, url: str) -> str:
    """`text` with `url` cut to its origin: webhook URLs often carry a token in their path
    or query (and credentials before the host), and error details end up in logs."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return text.replace(url, origin + "/…") if url != origin else text


def raise_for_status(status: int, retry_after: str | None, answer: bytes, now: float) -> None:
    """2xx is success. 5xx, 408, 425 and 429 are worth retrying (after Retry-After, if
    given); any other answer will not change by asking again."""
    if 200 <= status < 300:
        return
    retryable = status >= 500 or status in _RETRYABLE_STATUS
    said = answer[:_DETAIL_BYTES].decode("utf-8", "replace").strip()
    raise DeliveryError(
        f"http_{status}",
        f"the receiver answered {status}" + (f": {said!r}" if said else ""),
        retryable=retryable,
        retry_after=parse_retry_after(retry_after, now) if retryable else None,
    )


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds, or an HTTP date relative to `now`."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # delta-seconds is ASCII digits; '²'.isdigit() too
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - now) if now is not None else None
