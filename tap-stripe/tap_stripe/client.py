"""The tap's one HTTP client for Stripe: auth, version pinning, rate budget, retries, errors.

Every request of every stream goes through one :class:`StripeClient`, so the rate
limiter is the single budget for the whole run and the retry rules live in one place.
The API key is only ever sent as a header and is scrubbed from every error message.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec
import orjson
import requests
from requests.adapters import HTTPAdapter

from tap_stripe import shutdown
from tap_stripe.baton import Baton
from tap_stripe.budgets import (
    DEFAULT_ENDPOINT_RATE,
    EndpointBudgets,
    RateLimiter,
    Sleep,
    default_rate_for_key,
    endpoint_of,
)
from tap_stripe.log_once import OncePerMinute
from tap_stripe.secrets import register_secret, scrub

LOGGER = logging.getLogger("tap-stripe")

DEFAULT_API_URL = "https://api.stripe.com"
DEFAULT_API_VERSION = "2023-08-16"
# Warn when this machine's clock runs this far ahead of Stripe's (HTTP Date: 1 s steps).
CLOCK_AHEAD_WARNING_SECONDS = 60
# A thread pausing before a retry looks this often whether the sync is ending.
PAUSE_STEP_SECONDS = 0.25
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
    ) -> None:
        self.stream = stream
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


class StripeClient:
    """One HTTP session for the whole tap."""

    def __init__(
        self,
        *,
        api_key: str,
        api_url: str = DEFAULT_API_URL,
        api_version: str = DEFAULT_API_VERSION,
        account_id: str | None = None,
        timeout: float = 60.0,
        rate_limiter: RateLimiter | None = None,
        endpoint_rate: float | None = DEFAULT_ENDPOINT_RATE,
        baton: Baton | None = None,
        max_attempts: int = 8,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        pool_size: int = 10,
        sleep: Sleep | None = None,
    ) -> None:
        register_secret(api_key)
        self.api_url = api_url.rstrip("/")
        self.api_version = api_version
        self.timeout = timeout
        self.rate_limiter = rate_limiter or RateLimiter(default_rate_for_key(api_key))
        self.endpoint_budgets = EndpointBudgets(endpoint_rate)
        self.baton = baton or Baton()
        # Requests in flight at once, whoever makes them (fetchers, pools, writers).
        self._in_flight = threading.BoundedSemaphore(max(pool_size, 1))
        self._retry_warnings = OncePerMinute()
        self.stripe_time_at_start: float | None = None
        self.max_attempts = max(1, max_attempts)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep or time.sleep
        self.requests_by_stream: Counter[str] = Counter()
        self.throttled_by_stream: Counter[str] = Counter()
        self._count_lock = threading.Lock()
        self._cancelled = threading.Event()
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(pool_size, 1))
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update(
            {
                "Authorization": f"Bearer {api_key}",
                "Stripe-Version": api_version,
                "User-Agent": "tap-stripe (Singer tap)",
                "Accept": "application/json",
            }
        )
        if account_id:
            self.session.headers["Stripe-Account"] = account_id
        # Resolve proxy and CA settings from the environment once, not on every request
        # (requests otherwise re-reads them, and ~/.netrc, per request; a netrc entry
        # would even replace the Authorization header).
        env = self.session.merge_environment_settings(self.api_url, {}, None, None, None)
        self.session.proxies.update(env["proxies"])
        self.session.verify = env["verify"]
        self.session.trust_env = False

    def cancel(self, cancelled: bool = True) -> None:
        """Make every request from now on fail at once (or work again), e.g. when the
        sync failed and fetching still under way must stop instead of retrying."""
        if cancelled:
            self._cancelled.set()
        else:
            self._cancelled.clear()

    @property
    def cancelled(self) -> bool:
        """Whether requests fail at once: cancelled, or the tap is stopping (a signal)."""
        return self._cancelled.is_set() or shutdown.stopping()

    def get(self, path: str, params: Mapping[str, Any] | None = None, *, stream: str) -> Any:
        """GET ``path`` and return the decoded JSON body, retrying what Stripe allows."""
        body = self.get_bytes(path, params, stream=stream)
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise StripeError(f"stream '{stream}': Stripe sent a body that is not JSON") from exc

    def get_bytes(
        self, path: str, params: Mapping[str, Any] | None = None, *, stream: str
    ) -> bytes:
        """GET ``path`` and return the JSON body on one line (Stripe pretty-prints it)."""
        with self.baton.released():
            return self._get_bytes(path, params, stream)

    def _get_bytes(self, path: str, params: Mapping[str, Any] | None, stream: str) -> bytes:
        """``get_bytes`` without the baton: the endpoint's budget, the global one, a slot
        for the request in flight, then the request and its retries."""
        url = f"{self.api_url}{path}"
        endpoint = endpoint_of(path)
        endpoint_budget = self.endpoint_budgets.get(endpoint)
        attempt = 0
        while True:
            attempt += 1
            endpoint_budget.acquire()
            self.rate_limiter.acquire()
            if shutdown.stopping():
                raise StripeError(f"stream '{stream}': request cancelled, the sync is ending")
            if self._cancelled.is_set():
                raise Cancelled(f"stream '{stream}': request cancelled, the sync is ending")
            with self._count_lock:
                self.requests_by_stream[stream] += 1
            try:
                with self._in_flight:
                    response = self.session.get(url, params=params, timeout=self.timeout)
            except (
                requests.Timeout,
                requests.ConnectionError,
                # The body was cut off (connection closed before Content-Length bytes).
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
            ) as exc:
                reason = f"{type(exc).__name__}: {_short_reason(scrub(str(exc)))}"
                self._retry_or_raise(stream, endpoint, attempt, reason, None)
                continue
            status = response.status_code
            if status < 300:
                body = _one_line_object(response.content)
                if body is None:
                    # Every Stripe answer is an object; anything else (a proxy's page, a
                    # body cut short) is a transient fault.
                    self._retry_or_raise(stream, endpoint, attempt, describe_body(response), None)
                    continue
                if self.stripe_time_at_start is None:
                    self._note_stripe_time(response)
                self.rate_limiter.succeeded()
                endpoint_budget.succeeded()
                return body
            self._handle_error_response(stream, attempt, response, endpoint)

    def learn_stripe_time(self, path: str = "/v1/account") -> float | None:
        """Stripe's clock, from the ``Date`` of one cheap request's answer, error or not.

        Only a state that seems to lie in the future costs this request: the time is kept
        as the client's time at the run's first answer, so the plans made next use it.
        """
        if self.stripe_time_at_start is None:
            self.rate_limiter.acquire()
            try:
                response = self.session.get(self.api_url + path, timeout=self.timeout)
            except requests.RequestException:
                return None
            self._note_stripe_time(response)
        return self.stripe_time_at_start

    def _note_stripe_time(self, response: requests.Response) -> None:
        """Keep Stripe's clock (the ``Date`` of the first answer), once."""
        try:
            answered = parsedate_to_datetime(response.headers["Date"]).timestamp()
        except (KeyError, TypeError, ValueError):
            return
        with self._count_lock:
            if self.stripe_time_at_start is not None:
                return
            self.stripe_time_at_start = answered
        ahead = time.time() - answered
        if ahead > CLOCK_AHEAD_WARNING_SECONDS:
            LOGGER.warning(
                "This machine's clock is %.0f s ahead of Stripe's (its Date header): "
                "bookmarks follow Stripe's clock; fix the clock (NTP)",
                ahead,
            )

    def _handle_error_response(
        self, stream: str, attempt: int, response: requests.Response, endpoint: str
    ) -> None:
        """Return to retry ``response``'s request, or raise the error it carries."""
        status = response.status_code
        should_retry = response.headers.get("Stripe-Should-Retry")
        if should_retry == "false":
            raise self._api_error(stream, response)
        if status == 429:
            with self._count_lock:
                self.throttled_by_stream[stream] += 1
            wait = _retry_after(response)
            reason = response.headers.get("Stripe-Rate-Limited-Reason") or "rate limited"
            pause = wait if wait is not None else self._backoff(attempt)
            if reason.startswith("endpoint"):
                self.endpoint_budgets.throttled(endpoint, pause)
            else:
                self.rate_limiter.throttled(pause)
            self._retry_or_raise(
                stream, endpoint, attempt, f"HTTP 429 ({reason})", response, pause=0.0
            )
            return
        if status in (409,) or status >= 500 or should_retry == "true":
            if _stripe_error(response.content) is None:
                self._retry_or_raise(stream, endpoint, attempt, describe_body(response), None)
            else:
                self._retry_or_raise(stream, endpoint, attempt, f"HTTP {status}", response)
            return
        raise self._api_error(stream, response)

    def _retry_or_raise(
        self,
        stream: str,
        endpoint: str,
        attempt: int,
        reason: str,
        response: requests.Response | None,
        pause: float | None = None,
    ) -> None:
        if attempt >= self.max_attempts:
            if response is not None:
                raise self._api_error(stream, response)
            raise StripeError(
                f"stream '{stream}': giving up after {attempt} attempts, last error {reason}"
            )
        delay = self._backoff(attempt) if pause is None else pause
        kind = reason.split(" (")[0].split(":")[0]
        unsaid = self._retry_warnings.due((endpoint, kind))
        if unsaid is not None:
            LOGGER.warning(
                "stream '%s': GET %s: %s, retry %d of %d in %.1fs%s",
                stream,
                endpoint,
                reason,
                attempt,
                self.max_attempts - 1,
                delay,
                f" ({unsaid} more like it in the last minute)" if unsaid else "",
            )
        self._pause(delay)

    def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` before a retry, in steps, ending early once :attr:`cancelled`."""
        while seconds > 0 and not self.cancelled:
            step = min(seconds, PAUSE_STEP_SECONDS)
            self._sleep(step)
            seconds -= step

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter, bounded by ``backoff_max``."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return ceiling * (0.5 + random.random() / 2)

    def _api_error(self, stream: str, response: requests.Response) -> StripeAPIError:
        error = _stripe_error(response.content)
        if error is None:
            error_type = None
            message = f"{response.reason or 'no reason'}; {_body_kind(response.content)}"
            message += f" ({_body_summary(response)})"
        else:
            error_type, message = error.get("type"), error.get("message")
        return StripeAPIError(
            stream,
            response.status_code,
            error_type if isinstance(error_type, str) else None,
            scrub(str(message)) if message else None,
            response.headers.get("Request-Id"),
            urlsplit(response.url or "").path,
        )


def _one_line_object(content: bytes) -> bytes | None:
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


def _stripe_error(content: bytes) -> dict | None:
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


def _short_reason(text: str) -> str:
    """The OS error in a urllib3 message (``[Errno 111] Connection refused``), if any."""
    match = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    return match.group(0).strip() if match else text


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
