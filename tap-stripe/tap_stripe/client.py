"""The tap's one HTTP client for Stripe: auth, version pinning, rate budget, retries, errors.

Every request of every stream goes through one :class:`StripeClient`, so the rate
limiter is the single budget for the whole run and the retry rules live in one place.
The API key is only ever sent as a header and is scrubbed from every error message.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import orjson
import requests
from requests.adapters import HTTPAdapter

from tap_stripe import shutdown
from tap_stripe.account_budgets import AccountBudgets, Budgets
from tap_stripe.account_client import AccountClient
from tap_stripe.baton import Baton
from tap_stripe.budgets import (
    DEFAULT_ENDPOINT_RATE,
    EndpointBudgets,
    RateLimiter,
    Sleep,
    default_rate_for_key,
    endpoint_of,
    send_when_clear,
)
from tap_stripe.in_flight import ENDPOINT_CONCURRENCY, GLOBAL_CONCURRENCY, InFlights
from tap_stripe.log_once import OncePerMinute
from tap_stripe.responses import (
    Cancelled,
    StripeAPIError,
    StripeError,
    api_error,
    describe_body,
    one_line_object,
    retry_after,
    short_reason,
    stripe_error,
)
from tap_stripe.secrets import register_secret, scrub

__all__ = ["AccountClient", "Cancelled", "StripeAPIError", "StripeClient", "StripeError"]

LOGGER = logging.getLogger("tap-stripe")

DEFAULT_API_URL = "https://api.stripe.com"
DEFAULT_API_VERSION = "2023-08-16"
# Warn when this machine's clock runs this far ahead of Stripe's (HTTP Date: 1 s steps).
CLOCK_AHEAD_WARNING_SECONDS = 60
# A thread pausing before a retry looks this often whether the sync is ending.
PAUSE_STEP_SECONDS = 0.25


class StripeClient:
    """One HTTP session for the whole tap."""

    def __init__(
        self,
        *,
        api_key: str,
        api_url: str = DEFAULT_API_URL,
        api_version: str = DEFAULT_API_VERSION,
        timeout: float = 60.0,
        rate_limiter: RateLimiter | None = None,
        endpoint_rate: float | None = DEFAULT_ENDPOINT_RATE,
        baton: Baton | None = None,
        max_attempts: int = 8,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        pool_size: int = 10,
        sleep: Sleep | None = None,
        budget_per_account: bool = False,
    ) -> None:
        register_secret(api_key)
        self.api_url = api_url.rstrip("/")
        self.api_version = api_version
        self.timeout = timeout
        self.rate_limiter = rate_limiter or RateLimiter(default_rate_for_key(api_key))
        self.endpoint_budgets = EndpointBudgets(endpoint_rate)
        self.budgets = AccountBudgets(
            Budgets(self.rate_limiter, self.endpoint_budgets, InFlights(max(pool_size, 1))),
            per_account=budget_per_account,
        )
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
        self.session = _session(self.api_url, api_key, api_version, max(pool_size, 1))

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

    def counted(self, stream: str) -> str:
        """The name ``stream``'s requests are counted under."""
        return stream

    def requests_of(self, stream: str) -> tuple[int, int]:
        """Requests made for ``stream``, and how many were answered 429."""
        return self.requests_by_stream[stream], self.throttled_by_stream[stream]

    def for_account(
        self,
        account: str | None,
        label: str | None = None,
        answered: Mapping[str, bytes] | None = None,
    ) -> AccountClient:
        """This client acting for ``account`` (``Stripe-Account``; ``None``: the key's own
        account), its requests counted under ``label/stream`` when a label is given;
        ``answered`` holds bodies already fetched (by path, asked without parameters)."""
        return AccountClient(self, account, label, answered or {})

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        stream: str,
        account: str | None = None,
        stop: threading.Event | None = None,
    ) -> Any:
        """GET ``path`` and return the decoded JSON body, retrying what Stripe allows."""
        body = self.get_bytes(path, params, stream=stream, account=account, stop=stop)
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise StripeError(f"stream '{stream}': Stripe sent a body that is not JSON") from exc

    def get_bytes(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        stream: str,
        account: str | None = None,
        stop: threading.Event | None = None,
    ) -> bytes:
        """GET ``path`` (for ``account``: sent as ``Stripe-Account``) and return the JSON
        body on one line (Stripe pretty-prints it); ``stop`` set cancels it as
        :meth:`cancel` does."""
        with self.baton.released():
            return self._get_bytes(path, params, stream, account, stop)

    def _get_bytes(
        self,
        path: str,
        params: Mapping[str, Any] | None,
        stream: str,
        account: str | None,
        stop: threading.Event | None,
    ) -> bytes:
        """``get_bytes`` without the baton: the endpoint's budget, the global one, a slot
        for the request in flight, then the request and its retries."""
        url = f"{self.api_url}{path}"
        endpoint = endpoint_of(path)
        budgets = self.budgets.of(account)
        endpoint_budget = budgets.endpoints.get(endpoint)
        headers = {"Stripe-Account": account} if account else None
        attempt = 0

        def stopped() -> bool:
            return self.cancelled or (stop is not None and stop.is_set())

        while True:
            attempt += 1
            endpoint_budget.acquire()
            budgets.rate.acquire()
            if shutdown.stopping():
                raise StripeError(f"stream '{stream}': request cancelled, the sync is ending")
            if stopped():
                raise Cancelled(f"stream '{stream}': request cancelled, the sync is ending")
            with self._count_lock:
                self.requests_by_stream[stream] += 1
            place = budgets.in_flight.place(endpoint, self._in_flight, stopped)
            try:
                with place:
                    send_when_clear((endpoint_budget, budgets.rate))
                    response = self.session.get(
                        url, params=params, headers=headers, timeout=self.timeout
                    )
            except (
                requests.Timeout,
                requests.ConnectionError,
                # The body was cut off (connection closed before Content-Length bytes).
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
            ) as exc:
                reason = f"{type(exc).__name__}: {short_reason(scrub(str(exc)))}"
                self._retry_or_raise(stream, endpoint, attempt, reason, None)
                continue
            if self.stripe_time_at_start is None:
                self._note_stripe_time(response)  # any answer's Date is Stripe's clock
            status = response.status_code
            if status < 300:
                body = one_line_object(response.content)
                if body is None:
                    # Every Stripe answer is an object; anything else (a proxy's page, a
                    # body cut short) is a transient fault.
                    self._retry_or_raise(stream, endpoint, attempt, describe_body(response), None)
                    continue
                budgets.rate.succeeded()
                endpoint_budget.succeeded()
                place.succeeded()
                return body
            if status == 429:
                place.refused(response.headers.get("Stripe-Rate-Limited-Reason", ""))
            self._handle_error_response(stream, attempt, response, endpoint, budgets)

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
        self,
        stream: str,
        attempt: int,
        response: requests.Response,
        endpoint: str,
        budgets: Budgets,
    ) -> None:
        """Return to retry ``response``'s request, or raise the error it carries."""
        status = response.status_code
        should_retry = response.headers.get("Stripe-Should-Retry")
        if should_retry == "false":
            raise api_error(stream, response)
        if status == 429:
            with self._count_lock:
                self.throttled_by_stream[stream] += 1
            wait = retry_after(response)
            reason = response.headers.get("Stripe-Rate-Limited-Reason") or "rate limited"
            pause = wait if wait is not None else self._backoff(attempt)
            retry_pause = 0.0
            if reason in (GLOBAL_CONCURRENCY, ENDPOINT_CONCURRENCY):
                # Too many in flight, not too fast: the limit of requests in flight was
                # cut (in_flight.py). The first retry waits for a place only, later ones
                # back off too: the places may be another integration's.
                backoff = self._backoff(attempt - 1) if attempt > 1 else 0.0
                retry_pause = wait if wait is not None else backoff
            elif reason.startswith("endpoint"):
                budgets.endpoints.throttled(endpoint, pause)
            else:
                budgets.rate.throttled(pause)
            self._retry_or_raise(
                stream, endpoint, attempt, f"HTTP 429 ({reason})", response, retry_pause
            )
            return
        if status in (409,) or status >= 500 or should_retry == "true":
            if stripe_error(response.content) is None:
                self._retry_or_raise(stream, endpoint, attempt, describe_body(response), None)
            else:
                self._retry_or_raise(stream, endpoint, attempt, f"HTTP {status}", response)
            return
        raise api_error(stream, response)

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
                raise api_error(stream, response)
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


def _session(api_url: str, api_key: str, api_version: str, pool_size: int) -> requests.Session:
    """The HTTP session of every request: Stripe's headers, a pool of ``pool_size``."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update(
        {
            "Authorization": f"Bearer {api_key}",
            "Stripe-Version": api_version,
            "User-Agent": "tap-stripe (Singer tap)",
            "Accept": "application/json",
        }
    )
    # Resolve proxy and CA settings from the environment once, not on every request
    # (requests otherwise re-reads them, and ~/.netrc, per request; a netrc entry would
    # even replace the Authorization header).
    env = session.merge_environment_settings(api_url, {}, None, None, None)
    session.proxies.update(env["proxies"])
    session.verify = env["verify"]
    session.trust_env = False
    return session
