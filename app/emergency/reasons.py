"""Whether an emergency reason is one of substance: the agreement's `emergency.reason` rule, pure.

A reason passes when every check holds (policies/README.md, "Emergency access"):
`min_length` characters after trimming and collapsing spaces; no one character making up more
than `max_char_share` of the characters that are not spaces; at least `min_words` distinct words
of three or more letters, where a word of one letter repeated (`xxx`) or a filler word
(`lorem`, `test`, `asdf` …) does not count.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from app.policy.model import ReasonRule

_WORD = re.compile(r"[^\W\d_]{3,}")
FILLER = frozenset({
    "lorem", "ipsum", "dolor", "amet", "test", "testing", "asdf", "qwerty", "blah", "foo", "bar", "baz",
    "tbd", "todo", "placeholder", "dummy", "reason", "emergency", "urgent",
})


@dataclass(frozen=True, slots=True)
class Failure:
    """One check the reason fails: its name in the agreement and what it needs (never the text)."""

    rule: str
    message: str


def words_of_substance(text: str) -> set[str]:
    found = {w.casefold() for w in _WORD.findall(text)}
    return {w for w in found if len(set(w)) > 1 and w not in FILLER}


def check(text: str, rule: ReasonRule) -> list[Failure]:
    """Every check the reason fails, in the order the README lists them; empty when it passes."""
    failures: list[Failure] = []
    normal = " ".join(text.split())
    if len(normal) < rule.min_length:
        failures.append(Failure("min_length", f"at least {rule.min_length} characters (found {len(normal)})"))
    letters = [c.casefold() for c in normal if not c.isspace()]
    if letters:
        top = Counter(letters).most_common(1)[0][1]
        if top / len(letters) > rule.max_char_share:
            failures.append(Failure(
                "max_char_share",
                f"no one character may make up more than {rule.max_char_share:.0%} of it"
                f" (one makes up {top / len(letters):.0%})",
            ))
    words = len(words_of_substance(normal))
    if words < rule.min_words:
        failures.append(Failure(
            "min_words", f"at least {rule.min_words} distinct words of 3 or more letters, not filler (found {words})"
        ))
    return failures
