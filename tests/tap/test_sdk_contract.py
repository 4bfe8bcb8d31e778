"""The SDK's private names the tap relies on: each must exist with the signature it had in
singer-sdk 0.54 and still be called where the tap expects it, so that lifting the
``<0.55`` pin is done on purpose. A failure names the method.

Kept, and why (one line each; the docstrings in the tap say the same):

* ``PluginBase._validate_config`` (overridden): the SDK's messages show the values, the key
  included; the tap's are one line each (settings.py).
* ``Tap._handle_termination`` (overridden): the SDK's handler writes a STATE through a
  writer an interrupted flush holds (shutdown.py).
* ``Stream._sync_records`` (overridden): the record path, raw bytes and the windows'
  bookmark instead of the SDK's per-record loop and max-value bookmark.
* ``Stream._write_state_message`` (called): the one way to send the tap's STATE through the
  SDK's state writer and its flush flag.
* ``Stream._tap`` (read): the SDK gives a stream no public way to its tap's message writer.
* ``PluginBase._config`` (replaced in ``_validate_config``): the settings once prepared.
* ``singer_sdk.helpers._catalog.pop_deselected_record_properties`` (called): the SDK's own
  field selection of nested properties, for a catalog that deselects some.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
from singer_sdk import Stream, Tap
from singer_sdk.helpers import _catalog
from singer_sdk.plugin_base import PluginBase
from tap_stripe.streams import StripeStream
from tap_stripe.tap import TapStripe

P = inspect.Parameter
EMPTY = P.empty

# (owner, name) -> [(parameter, kind, default)], as in singer-sdk 0.54.
EXPECTED: dict[tuple[Any, str], list[tuple[str, Any, Any]]] = {
    (PluginBase, "_validate_config"): [
        ("self", P.POSITIONAL_OR_KEYWORD, EMPTY),
        ("raise_errors", P.KEYWORD_ONLY, True),
    ],
    (Tap, "_handle_termination"): [
        ("self", P.POSITIONAL_OR_KEYWORD, EMPTY),
        ("signum", P.POSITIONAL_OR_KEYWORD, EMPTY),
        ("frame", P.POSITIONAL_OR_KEYWORD, EMPTY),
    ],
    (Stream, "_sync_records"): [
        ("self", P.POSITIONAL_OR_KEYWORD, EMPTY),
        ("context", P.POSITIONAL_OR_KEYWORD, None),
        ("write_messages", P.KEYWORD_ONLY, True),
    ],
    (Stream, "_write_state_message"): [("self", P.POSITIONAL_OR_KEYWORD, EMPTY)],
    (_catalog, "pop_deselected_record_properties"): [
        ("record", P.POSITIONAL_OR_KEYWORD, EMPTY),
        ("schema", P.POSITIONAL_OR_KEYWORD, EMPTY),
        ("mask", P.POSITIONAL_OR_KEYWORD, EMPTY),
        ("breadcrumb", P.POSITIONAL_OR_KEYWORD, ()),
    ],
}

# The tap's overrides: each must keep the SDK's signature.
OVERRIDES = {
    (PluginBase, "_validate_config"): TapStripe._validate_config,
    (Tap, "_handle_termination"): TapStripe._handle_termination,
    (Stream, "_sync_records"): StripeStream._sync_records,
}

# Where the SDK must still call what the tap overrides (else the override does nothing).
CALLERS: dict[str, tuple[Any, str, str]] = {
    "_validate_config": (PluginBase, "__init__", "self._validate_config("),
    "_handle_termination": (PluginBase, "_setup_signal_handlers", "self._handle_termination"),
    "_sync_records": (Stream, "sync", "self._sync_records("),
}


def _shape(function: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    parameters = inspect.signature(function).parameters.values()
    return [(p.name, p.kind, p.default) for p in parameters]


def _label(key: tuple[Any, str]) -> str:
    owner, name = key
    return f"{getattr(owner, '__name__', owner)}.{name}"


@pytest.mark.parametrize("key", list(EXPECTED), ids=_label)
def test_the_sdk_private_name_keeps_its_signature(key):
    owner, name = key
    function = getattr(owner, name, None)
    assert function is not None, f"singer-sdk no longer has {_label(key)}: the tap relies on it"
    assert _shape(function) == EXPECTED[key], (
        f"singer-sdk changed the signature of {_label(key)}: {inspect.signature(function)}; "
        "check the tap's use of it before lifting the pin"
    )


@pytest.mark.parametrize("key", list(OVERRIDES), ids=_label)
def test_the_tap_overrides_with_the_same_signature(key):
    assert _shape(OVERRIDES[key]) == EXPECTED[key], f"the tap's {_label(key)} drifted"


@pytest.mark.parametrize("name", list(CALLERS))
def test_the_sdk_still_calls_what_the_tap_overrides(name):
    owner, caller_name, call = CALLERS[name]
    caller = getattr(owner, caller_name, None)
    assert caller is not None and call in inspect.getsource(caller), (
        f"singer-sdk's {owner.__name__}.{caller_name} no longer calls {name}: the tap's "
        "override of it would do nothing"
    )


def test_the_private_attributes_the_tap_reads_exist():
    tap = TapStripe(config={"api_key": "sk_test_contract"}, parse_env_config=False)
    stream = tap.streams["charge"]
    assert stream._tap is tap, "singer-sdk's Stream._tap is gone: the emitter writes through it"
    assert isinstance(tap._config, dict), "singer-sdk's PluginBase._config is gone"
    assert hasattr(stream.state_manager, "is_flushed"), (
        "singer-sdk's StreamStateManager.is_flushed is gone: the tap marks its state unflushed"
    )
