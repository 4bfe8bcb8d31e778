"""The key is scrubbed in every form a message can show it in."""

from __future__ import annotations

import pytest
from tap_stripe.secrets import register_secret, scrub

KEY = "sk_test_51ScrubbedInEveryForm33333333333333"


@pytest.mark.parametrize(
    "shown",
    [
        KEY,
        repr(KEY + "\n"),
        repr(KEY[:12] + "\r\n" + KEY[12:]),
        str([KEY]),
        str({"api_key": KEY + "\t"}),
        (KEY + "\n").encode("unicode_escape").decode(),
    ],
)
def test_every_form_of_the_key_is_scrubbed(shown: str) -> None:
    register_secret([KEY + "\n", KEY[:12] + "\r\n" + KEY[12:], {"api_key": KEY + "\t"}])

    text = scrub(f"InvalidHeader: header value: Bearer {shown} (Request-Id: req_1)")

    assert "sk_test_51Scrubbed" not in text
    assert "<api_key>" in text
