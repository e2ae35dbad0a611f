"""IAM action and ARN matching: the one implementation every engine and the evaluator use.

Actions compare case-insensitively ("EC2:deletevpc" is ec2:DeleteVpc) and support the IAM
wildcards `*` (any run of characters) and `?` (one character). ARNs compare per segment and
case-sensitively.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

# A `*` or `?` that a policy variable put into a pattern (`${*}`, `${?}`, or a value from the request) is a
# character, not a wildcard (IAM User Guide, "IAM policy elements: Variables and tags", special characters).
# Substitution marks such characters with these two Unicode noncharacters, which are reserved for a
# program's internal use; the matchers read them as the literal `*` and `?`.
LITERAL_MARKS = {"*": "\ufdd0", "?": "\ufdd1"}
_UNMARK = str.maketrans({mark: char for char, mark in LITERAL_MARKS.items()})
_MARK = str.maketrans(LITERAL_MARKS)


def literal(text: str) -> str:
    """text for a pattern, its `*` and `?` standing for themselves."""
    return text.translate(_MARK)


def unmark(pattern: str) -> str:
    """The plain text of a pattern, for the operators that compare without wildcards."""
    return pattern.translate(_UNMARK)


@lru_cache(maxsize=4096)
def wildcard_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(unmark(char)))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    """True when an IAM action pattern (e.g. ec2:Delete*) covers a concrete action."""
    return wildcard_regex(pattern, True).fullmatch(action) is not None


def actions_regex(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One regex whose fullmatch is true when any of the action patterns covers an action (None for no
    patterns): a statement's Action list is tested in one call, not one per pattern."""
    parts = [wildcard_regex(p, True).pattern for p in patterns]
    if not parts:
        return None
    return re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE | re.DOTALL)


def actions_granted(patterns: Iterable[str], candidates: Iterable[str], *, negated: bool = False) -> list[str]:
    """The candidate actions a statement's Action (or, with negated, NotAction) list grants."""
    patterns = list(patterns)
    granted = []
    for action in candidates:
        hit = any(action_matches(p, action) for p in patterns)
        if hit != negated:
            granted.append(action)
    return granted


def _segments_matcher(pattern_parts: list[str], maxsplit: int) -> Callable[[str], bool]:
    """A test that an ARN, split at its first maxsplit colons, has as many segments as pattern_parts,
    each matching its pattern segment (compiled once, not per ARN)."""
    count = len(pattern_parts)
    tests = tuple(wildcard_regex(p, False).fullmatch for p in pattern_parts)

    memo: dict[str, bool] = {}  # a trail names the same resources and principals again and again

    def matches(arn: str) -> bool:
        found = memo.get(arn)
        if found is None:
            parts = arn.split(":", maxsplit)
            found = len(parts) == count and all(test(part) is not None for test, part in zip(tests, parts, strict=True))
            if len(memo) >= 10_000:
                memo.clear()
            memo[arn] = found
        return found

    return matches


def _always(arn: str) -> bool:
    return True


def _never(arn: str) -> bool:
    return False


@lru_cache(maxsize=4096)
def arn_matcher(pattern: str) -> Callable[[str], bool]:
    """arn_matches with its pattern compiled once: the evaluator builds one per policy value."""
    if pattern == "*":
        return _always
    pattern_parts = pattern.split(":", 5)
    return _segments_matcher(pattern_parts, 5) if len(pattern_parts) == 6 else _never


def arn_matches(pattern: str, arn: str) -> bool:
    """ArnLike semantics: six colon-separated segments, each matched case-sensitively with wildcards."""
    return arn_matcher(pattern)(arn)


@lru_cache(maxsize=4096)
def resource_matcher(pattern: str) -> Callable[[str], bool]:
    """resource_matches with its pattern compiled once."""
    pattern_parts = pattern.split(":")
    if pattern == "*" or len(pattern_parts) >= 6 or "*" not in pattern_parts[-1]:
        return arn_matcher(pattern)
    segments = _segments_matcher(pattern_parts, len(pattern_parts) - 1)
    return lambda arn: arn.count(":") >= 5 and segments(arn)


def resource_matches(pattern: str, arn: str) -> bool:
    """The Resource element: as arn_matches, except that a pattern of fewer than six segments whose last
    one holds a wildcard (`arn:aws:ec2:*`) matches across the colons that remain, as IAM does (IAM User
    Guide, "IAM JSON policy elements: Resource", Using wildcards in resource ARNs: a `*` that is the last
    character of a segment can expand beyond the colon boundaries).

    Lenient on purpose: IAM Access Analyzer refuses such a pattern ("Missing ARN field", IAM policy
    validation check reference), so `netguard policy validate` reports it (NG-SCP-001), but a policy that
    already holds one is evaluated as IAM evaluates it."""
    return resource_matcher(pattern)(arn)


def resource_is_unrestricted(resource: str) -> bool:
    """True for `*` and for ARNs whose resource part is only a wildcard (e.g. .../vpc/*, arn:aws:ec2:*:*:*),
    including a pattern of fewer than six segments whose last ends in `*` (arn:aws:ec2:*): resource_matches
    lets that `*` cover the rest of the ARN, resource part and all."""
    if resource.strip() == "*":
        return True
    parts = resource.split(":", 5)
    if len(parts) != 6:
        return resource.startswith("arn:") and parts[-1].endswith("*")
    resource_part = parts[5]
    _type, _sep, ident = resource_part.rpartition("/")
    return ident == "*" or resource_part == "*"
