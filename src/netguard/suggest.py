"""`did you mean ...?` for a word that names nothing netguard knows: a control id, a flag, a guardrail."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`did you mean X?` with the choice closest to word, ignoring case, or "" when none is close."""
    folded: dict[str, str] = {}
    for choice in choices:
        folded.setdefault(choice.casefold(), choice)
    close = difflib.get_close_matches(word.casefold(), folded, n=1)
    return f"did you mean {folded[close[0]]}?" if close else ""
