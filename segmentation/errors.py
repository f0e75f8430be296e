"""Error types the engine raises: each carries a sentence fit to show a user.

The CLI prints ``str(error)`` on one line and the app wraps it in ``gr.Error``,
so messages name the input or model and say what to do, never a traceback.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

E = TypeVar("E", bound=StrEnum)


class SegmentationError(Exception):
    """Base class for every error the engine raises on purpose."""


class InputError(SegmentationError):
    """The input file or array cannot be used (not an image/video, too big, ...)."""


class ModelError(SegmentationError):
    """A model cannot be found, loaded or run."""


class WeightsError(ModelError):
    """Weights could not be found in the cache, downloaded or verified."""


def parse_choice(kind: type[E], value: object, what: str) -> E:
    """``value`` as a member of the option enum ``kind``; anything else: InputError naming the choices."""
    try:
        return kind(value)
    except ValueError:
        raise InputError(f"Unknown {what} {value!r}; use one of: {', '.join(kind)}.") from None
