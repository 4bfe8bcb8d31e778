"""What the user gives the tap, checked before any request: input files and settings.

Every problem is one line naming the file or the setting (``main`` prints it after
``tap-stripe: error:``), and none holds the API key: values are described by their kind,
or shown only when they are numbers or dates.
"""

from __future__ import annotations

import datetime
import decimal
import difflib
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from singer_sdk.plugin_base import JSONSchemaValidator

from tap_stripe.secrets import register_secret, scrub

KEY_PREFIXES = ("sk_live_", "sk_test_", "rk_live_", "rk_test_")
# A value shown in a message is cut to this many characters.
SHOWN_VALUE_LENGTH = 40
# Upper bounds: a longer timeout overflows the clock's arithmetic, and every request in
# flight is a thread (Stripe refuses far fewer concurrent requests than this anyway).
MAX_REQUEST_TIMEOUT = 3600
MAX_CONCURRENCY_SETTING = 256

Check = Callable[[str, object], str | None]


class InputError(Exception):
    """Bad input (a file, a setting, the state): one line per problem, never the key."""

    def __init__(self, *lines: str) -> None:
        self.lines = [scrub(line) for line in lines]
        super().__init__("; ".join(self.lines))


@dataclass
class ConfigInput:
    """The ``--config`` options: the settings of every file, and whether to read ``ENV``."""

    config: dict[str, Any] = field(default_factory=dict)
    parse_env: bool = False


def kind(value: object) -> str:
    """What ``value`` is, in words, without showing it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float, decimal.Decimal)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def parse_json_object(text: str, source: str) -> dict[str, Any]:
    """``text`` as a JSON object (decimals kept exact, as the SDK reads them)."""
    try:
        value = json.loads(text, parse_float=decimal.Decimal, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{source}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{source}: not JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise InputError(f"{source}: not a JSON object but {kind(value)}")
    return value


def read_json_object(path: str, what: str) -> dict[str, Any]:
    """The JSON object in file ``path`` (``what``: ``config``, ``catalog`` or ``state``)."""
    source = f"{what} file {path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"{source}: not found") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}: not UTF-8 text") from exc
    except OSError as exc:
        raise InputError(f"{source}: cannot be read ({exc.strerror or exc})") from exc
    return parse_json_object(text, source)


def config_from_cli(paths: Iterable[str]) -> ConfigInput:
    """The settings of the ``--config`` files, later files overriding earlier ones."""
    config: dict[str, Any] = {}
    parse_env = False
    for path in paths:
        if path == "ENV":
            parse_env = True
        else:
            config |= read_json_object(path, "config")
    return ConfigInput(config, parse_env)


# ---- settings --------------------------------------------------------------------------


def _shown(value: object) -> str:
    """``value`` in a message: numbers as they are, strings quoted and cut, else its kind."""
    if isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool):
        text = str(value)
        return text if len(text) <= SHOWN_VALUE_LENGTH else "a very large number"
    if isinstance(value, str):
        return repr(value[:SHOWN_VALUE_LENGTH] + ("..." if len(value) > SHOWN_VALUE_LENGTH else ""))
    return kind(value)


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal)):
        return False
    return isinstance(value, int) or math.isfinite(value)


def _whole(minimum: int, what: str, maximum: int | None = None) -> Check:
    """A check that a setting is an integer of at least ``minimum`` (and at most ``maximum``)."""

    def check(name: str, value: object) -> str | None:
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value >= minimum
            and (maximum is None or value <= maximum)
        ):
            return None
        return f"{name} must be {what}, not {_shown(value)}"

    return check


def _number_at_least_zero(name: str, value: object) -> str | None:
    if _is_number(value) and value >= 0:  # type: ignore[operator]
        return None
    return f"{name} must be a number of seconds of 0 or more, not {_shown(value)}"


def _string(name: str, value: object) -> str | None:
    return None if isinstance(value, str) else f"{name} must be a string, not {kind(value)}"


def _header(name: str, value: object) -> str | None:
    """A setting sent as an HTTP header: a string without line breaks or control characters."""
    if not isinstance(value, str):
        return f"{name} must be a string, not {kind(value)}"
    if not value.isprintable():
        return f"{name} holds a line break or another control character"
    return None


def _boolean(name: str, value: object) -> str | None:
    return None if isinstance(value, bool) else f"{name} must be true or false, not {_shown(value)}"


def account_list(value: object) -> list[str]:
    """``account_ids`` as a list: a JSON list, or one string of ids split at commas (as
    an environment variable gives it)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return list(value) if isinstance(value, list) else []


def _account_ids(name: str, value: object) -> str | None:
    if not isinstance(value, (list, str)):
        return f"{name} must be a list of account ids (acct_...), not {kind(value)}"
    if isinstance(value, list) and not all(isinstance(item, str) for item in value):
        return f"{name} must hold only strings (account ids such as acct_1A2b3C)"
    for account in account_list(value):
        if not account.isprintable() or not account.startswith("acct_"):
            return f"{name} holds {_shown(account)}, which is not a Stripe account id (acct_...)"
    return None


def _start_date(name: str, value: object) -> str | None:
    if isinstance(value, str):
        try:
            datetime.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return None
    return (
        f"{name} must be an ISO 8601 date or date-time that exists, such as 2024-01-31 or "
        f"2024-01-31T00:00:00Z, not {_shown(value)}"
    )


def _api_key(name: str, value: object) -> str | None:
    if not isinstance(value, str):
        return f"{name} must be a string, not {kind(value)}"
    if not value:
        return f"{name} is required (in the config file or TAP_STRIPE_API_KEY)"
    if any(character.isspace() or not character.isprintable() for character in value):
        return f"{name} holds whitespace or a control character inside it (check the key)"
    if not value.startswith(KEY_PREFIXES):
        return (
            f"{name} is not a Stripe secret or restricted key: expected a key starting with "
            f"one of {', '.join(KEY_PREFIXES)}"
        )
    return None


CHECKS: dict[str, Check] = {
    "api_key": _api_key,
    "start_date": _start_date,
    "account_id": _header,
    "api_url": _string,
    "api_version": _header,
    "lookback_window": _whole(0, "a whole number of seconds of 0 or more"),
    "relist_children_hours": _whole(0, "a whole number of hours of 0 or more"),
    "request_timeout": _whole(
        1, f"a whole number of seconds from 1 to {MAX_REQUEST_TIMEOUT}", MAX_REQUEST_TIMEOUT
    ),
    "max_requests_per_second": _whole(0, "a whole number of 0 or more (0 = unlimited)"),
    "max_concurrency": _whole(
        1, f"a whole number from 1 to {MAX_CONCURRENCY_SETTING}", MAX_CONCURRENCY_SETTING
    ),
    "retry_backoff_seconds": _number_at_least_zero,
    "account_ids": _account_ids,
    "all_connected_accounts": _boolean,
    "include_platform": _boolean,
    "budget_per_account": _boolean,
    "max_accounts_at_once": _whole(1, "a whole number of 1 or more"),
}


def prepared_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` ready to check: the key registered as a secret, in whatever
    shape it came, and stripped of surrounding whitespace (a secrets file's newline);
    settings set to null left out, as if unset."""
    prepared = {name: value for name, value in config.items() if value is not None}
    api_key = prepared.get("api_key")
    register_secret(api_key)
    if isinstance(api_key, str):
        prepared["api_key"] = api_key.strip()
    return prepared


def warn_unknown(config: Mapping[str, Any], known: Iterable[str], logger: logging.Logger) -> None:
    """Warn about each setting the tap does not know, naming the closest known one."""
    names = sorted(known)
    for name in config:
        if name not in names:
            closest = difflib.get_close_matches(name, names, n=1, cutoff=0.0)
            hint = f" (did you mean '{closest[0]}'?)" if closest else ""
            logger.warning("config: unknown setting '%s' is ignored%s", scrub(name), hint)


def config_problems(config: dict[str, Any], schema: dict) -> list[str]:
    """Every problem of ``config``, one line each; once there is none, the schema's
    defaults are filled in.

    The tap's own settings are checked here; the SDK's (stream maps, flattening, batches)
    by the schema, whose messages are rewritten not to show values.
    """
    values = {"api_key": "", **config}
    problems = [
        problem
        for name, check in CHECKS.items()
        if name in values and (problem := check(name, values[name]))
    ]
    if problems:
        return [f"config: {problem}" for problem in problems]
    return [
        f"config: {_schema_problem(error)}"
        for error in JSONSchemaValidator(schema).iter_errors(config)
    ]


def _schema_problem(error: Any) -> str:
    """A jsonschema error without the offending value (it may hold anything)."""
    where = ".".join(str(part) for part in error.absolute_path) or "the config"
    if error.validator == "type":
        types = error.validator_value
        expected = " or ".join(types) if isinstance(types, list) else types
        return f"{where} must be of type {expected}, not {kind(error.instance)}"
    if error.validator == "required":
        return f"{where}: {error.message}"
    return f"{where} is not valid ({error.validator}: {_shown(str(error.validator_value))})"
