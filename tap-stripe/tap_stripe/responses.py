"""What Stripe answers, read: the errors a request ends with (one line each, never the
key) and the checks of a body before the tap trusts it."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import msgspec
import orjson
import requests

from tap_stripe.secrets import scrub

# Characters of an unexpected body quoted in its error line.
BODY_HEAD_CHARS = 80


class StripeError(Exception):
    """A failure talking to Stripe; ``str()`` is one line and never holds the key."""


class Cancelled(BaseException):
    """A request refused because the sync is ending (another table failed, or the sync
    is done and prefetching stops). Not an ``Exception``: the table it stops is not the
    one that failed, so the SDK must not report it as failing."""


class StripeAPIError(StripeError):
    """Stripe answered with an error the tap does not retry."""

    def __init__(
        self,
        stream: str,
        status: int,
        error_type: str | None,
        message: str | None,
        request_id: str | None,
        path: str = "",
        code: str | None = None,
    ) -> None:
        self.stream = stream
        self.code = code
        self.status = status
        self.error_type = error_type
        self.message = message
        self.request_id = request_id
        self.path = path
        if status == 401:
            detail = "Stripe refused the API key (check api_key, its mode and its permissions)"
            if message:
                detail += f": {message}"
        else:
            detail = f"{error_type or 'error'}: {message or 'no message'}"
        super().__init__(
            f"stream '{stream}': HTTP {status} {detail} (Request-Id: {request_id or 'none'})"
        )


def one_line_object(content: bytes) -> bytes | None:
    """``content`` on one line if it is a JSON object, else ``None``. A body already on one
    line is only checked at its ends (the page reader decodes it anyway)."""
    stripped = content.strip()
    if not (stripped.startswith(b"{") and stripped.endswith(b"}")):
        return None
    if b"\n" not in content:
        return content
    try:
        return msgspec.json.format(content, indent=-1)
    except msgspec.DecodeError:
        return None


def stripe_error(content: bytes) -> dict | None:
    """The ``error`` object of a Stripe error body, if ``content`` is one."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def describe_body(response: requests.Response) -> str:
    """One line on an answer whose body is not what Stripe sends: its status, what the body
    is, its content type, its first characters and its ``Request-Id``; never the key."""
    return (
        f"HTTP {response.status_code} with {_body_kind(response.content)} "
        f"({_body_summary(response)}, Request-Id: {response.headers.get('Request-Id') or 'none'})"
    )


_JSON_KINDS = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def _body_kind(content: bytes) -> str:
    """What ``content`` is, when it is not the JSON object Stripe sends."""
    if not content.strip():
        return "an empty body"
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        if content.lstrip().startswith(b"{"):
            return "a body cut short or not JSON"
        return "a body that is not JSON"
    if isinstance(value, dict):
        return "a JSON object that is not a Stripe error"
    return f"JSON that is not an object ({_JSON_KINDS.get(type(value), 'a number')})"


def _body_summary(response: requests.Response) -> str:
    """Content type, size and first characters of ``response``'s body (printable, scrubbed
    before it is cut, so no part of a key a proxy's page echoes is shown)."""
    content = response.content
    text = scrub(content[:4096].decode("utf-8", "replace"))
    head = " ".join(text.split())[:BODY_HEAD_CHARS]
    content_type = scrub(response.headers.get("Content-Type") or "none")
    return f"Content-Type: {content_type}, {len(content)} bytes, starts: {head!r}"


def short_reason(text: str) -> str:
    """The OS error in a urllib3 message (``[Errno 111] Connection refused``), if any."""
    match = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    return match.group(0).strip() if match else text


def retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def api_error(stream: str, response: requests.Response) -> StripeAPIError:
    error = stripe_error(response.content)
    code = None
    if error is None:
        error_type = None
        message = f"{response.reason or 'no reason'}; {_body_kind(response.content)}"
        message += f" ({_body_summary(response)})"
    else:
        error_type, message = error.get("type"), error.get("message")
        code = error.get("code") if isinstance(error.get("code"), str) else None
    return StripeAPIError(
        stream,
        response.status_code,
        error_type if isinstance(error_type, str) else None,
        scrub(str(message)) if message else None,
        response.headers.get("Request-Id"),
        urlsplit(response.url or "").path,
        code,
    )
