"""Progress shown on stderr for long work: on only when asked for and stderr is a terminal."""

from __future__ import annotations

import sys

from tqdm import tqdm

__all__ = ["progress"]


def progress(total: int, desc: str, *, enabled: bool = True) -> tqdm:
    """A tqdm bar on stderr; silent when ``enabled`` is false or stderr is not a terminal."""
    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False,
                disable=not enabled or not sys.stderr.isatty())
