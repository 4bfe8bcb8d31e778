"""The results table: one row per figure, rendered as Markdown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One figure: its measured value against a target.

    ``ratio`` is measured / target (``None`` for yes/no figures); ``passed`` is ``None``
    for reference figures that have no target of their own.
    """

    figure: str
    value: str
    target: str
    ratio: float | None
    passed: bool | None
    command: str


def at_least(figure: str, measured: float, target: float, unit: str, command: str) -> Row:
    """A figure that must reach ``target``."""
    return Row(
        figure,
        f"{measured:,.0f} {unit}" if measured >= 100 else f"{measured:,.2f} {unit}",
        f">= {target:,g} {unit}",
        measured / target,
        measured >= target,
        command,
    )


def at_most(
    figure: str, measured: float, target: float, unit: str, command: str, *, strict: bool = False
) -> Row:
    """A figure that must stay at or below ``target`` (below it when ``strict``)."""
    passed = measured < target if strict else measured <= target
    shown = f"{measured:,.0f}" if measured >= 100 else f"{measured:,.2f}"
    return Row(
        figure,
        f"{shown} {unit}",
        f"{'<' if strict else '<='} {target:,g} {unit}",
        measured / target,
        passed,
        command,
    )


def reference(figure: str, value: str, command: str) -> Row:
    """A measured figure shown for comparison, with no target of its own."""
    return Row(figure, value, "(reference)", None, None, command)


def failed(figure: str, target: str, error: str, command: str) -> Row:
    """A figure that could not be measured."""
    return Row(figure, f"error: {error}", target, None, False, command)


def render(rows: Sequence[Row], *, escape_pipes: bool = True) -> str:
    """A Markdown table of ``rows``.

    ``escape_pipes=False`` (for the terminal) leaves the ``|`` of shell pipelines in the
    commands as is, so they copy and paste straight into a shell.
    """
    lines = [
        "| figure | measured | target | ratio to target | pass | command |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
        verdict = {True: "PASS", False: "FAIL", None: ""}[row.passed]
        command = f"`{row.command}`" if row.command else ""
        cells = (row.figure, row.value, row.target, ratio, verdict, command)
        if escape_pipes:
            cells = tuple(c.replace("|", "\\|") for c in cells)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
