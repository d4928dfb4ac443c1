"""One HTTP POST for the webhook and Alertmanager receivers: auth headers, and the
answer turned into success or a DeliveryError that says whether retrying can help."""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

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
            url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=time_limit)
        ) as response:
            answer = await response.read()
            raise_for_status(
                response.status, response.headers.get("Retry-After"), answer, clock.now()
            )
    except TimeoutError as error:
        raise DeliveryError("timeout", f"no answer in {time_limit:g}s", retryable=True) from error
    except aiohttp.ClientError as error:
        detail = redact_url(str(error) or type(error).__name__, url)
        raise DeliveryError("connection", detail, retryable=True) from error


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
