"""The API key kept out of every message: secrets registered once, scrubbed from any text."""

from __future__ import annotations

_SECRETS: set[str] = set()
# Shorter strings are not scrubbed: no key is that short, and replacing every "a" of a
# message would make it unreadable.
MIN_SECRET_LENGTH = 8


def register_secret(secret: object) -> None:
    """Remember ``secret`` so that :func:`scrub` removes it from any text.

    A key may come in any shape (a string ending in a secrets file's newline, a list, an
    object, by mistake): every string inside it is a secret, as given and stripped.
    """
    pending = [secret]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            _SECRETS.update(form for form in _forms(value) if len(form) >= MIN_SECRET_LENGTH)
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, (list, tuple)):
            pending.extend(value)


def _forms(secret: str) -> set[str]:
    """The ways ``secret`` can show up in a message: as given, stripped, each of its lines,
    and escaped as Python's ``repr`` shows it (``'sk_test_…\\n'`` in an exception)."""
    forms = {secret, secret.strip(), *secret.splitlines()}
    forms |= {repr(form)[1:-1] for form in list(forms)}
    forms |= {form.encode("unicode_escape").decode("ascii") for form in list(forms)}
    return forms


def scrub(text: str) -> str:
    """``text`` with every registered secret replaced, longest first (a key's stripped
    form is part of the form with its newline)."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "<api_key>")
    return text
