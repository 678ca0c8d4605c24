"""Numbers the stand-ins take from outside (control requests, their panel's forms, saved state): checked before
anything changes, so a malformed request answers 400 and leaves the stand-in as it was.

JSON as Python reads it allows ``NaN`` and ``Infinity``, and ``float("1e309")`` is infinite: such a value, once
stored (a clock offset, a limit), would make every later answer fail ("Out of range float values are not JSON
compliant") and be saved into ``demo-data/`` with the rest. Every number is therefore finite and within bounds
that make sense for what it measures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: The most a stand-in's clock may be moved forward in one step, and in all (ten and a hundred years).
MAX_CLOCK_STEP_SECONDS = 10 * 365 * 86400
MAX_CLOCK_OFFSET_SECONDS = 100 * 365 * 86400


@dataclass(frozen=True)
class Number:
    """What a number must be: finite, from ``low`` to ``high``, whole when ``integer``."""

    low: float
    high: float
    integer: bool = False

    def __str__(self) -> str:
        return f"{'a whole number' if self.integer else 'a number'} from {_show(self.low)} to {_show(self.high)}"

    def fits(self, value: Any) -> bool:
        """Whether ``value`` (a JSON value: no strings, no booleans) is such a number."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.integer and not (isinstance(value, int) or float(value).is_integer()):
            return False
        return self.low <= value <= self.high

    def read(self, value: Any, name: str) -> Any:
        """``value`` as such a number (an int when ``integer``); a numeric string (a form field) is read too.
        Raises ValueError that names ``name`` and says what it must be."""
        candidate = value
        if isinstance(value, str):
            try:
                candidate = float(value.strip()) if value.strip() else value
            except ValueError:
                candidate = value
        if not self.fits(candidate):
            raise ValueError(f"{name} must be {self}, not {_repr(value)}")
        return int(candidate) if self.integer else float(candidate)


def _show(bound: float) -> str:
    return f"{int(bound):,}" if float(bound).is_integer() else f"{bound:g}"


def _repr(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text[:60]


def number(value: Any, name: str, low: float, high: float, integer: bool = False) -> Any:
    """``value`` read as a finite number from ``low`` to ``high`` (ValueError naming ``name`` otherwise)."""
    return Number(low, high, integer).read(value, name)


def clock_offset(value: Any, name: str = "the clock offset") -> float:
    """A saved or computed clock offset: finite and within a hundred years either way."""
    return float(number(value, name, -MAX_CLOCK_OFFSET_SECONDS, MAX_CLOCK_OFFSET_SECONDS))


def advance(current_offset: float, seconds: Any, name: str = "seconds") -> float:
    """The clock offset after moving forward by ``seconds`` (0 to ten years); ValueError when ``seconds`` is not
    such a number or the clock would go more than a hundred years ahead. Nothing is changed here."""
    step = float(number(seconds, name, 0, MAX_CLOCK_STEP_SECONDS))
    return clock_offset(current_offset + step, f"the clock offset after moving {step:g} s")
