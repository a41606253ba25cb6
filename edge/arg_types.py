"""argparse types shared by the `edge` and `train-host` command lines: a bad number is a
usage error naming the flag, not a crash (or a silent default) later."""

from __future__ import annotations

import argparse


def _number(text: str, kind: type, least: float, inclusive: bool) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        name = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {name}") from None
    if value < least or (value == least and not inclusive):
        bound = f"at least {least}" if inclusive else f"more than {least}"
        raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (0 runs, epochs or threads is a usage error)."""
    return _number(text, int, 1, inclusive=True)


def non_negative_int(text: str) -> int:
    """An integer >= 0 (a count that may be none)."""
    return _number(text, int, 0, inclusive=True)


def positive_float(text: str) -> float:
    """A number > 0 (a rate or a fraction)."""
    return _number(text, float, 0.0, inclusive=False)
