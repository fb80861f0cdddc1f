"""OSC 1.0 address patterns matched against a fixed table of addresses, in time linear in the pattern.

A pattern's ``?`` matches one character of an address part, ``*`` any run of them, ``[a-z]`` /
``[!a-z]`` one character in (not in) a list of characters and ranges, ``{foo,bar}`` one of the
words; every other character matches itself. No wildcard matches a ``/``, so a pattern matches an
address part by part, as OSC 1.0 says.

python-osc's dispatcher turns a pattern into a regular expression, which backtracks: a run of ``*``,
or words that may match nothing (``{,a}{,u}{,d}...``), take time exponential in their count (28
such braces against the table, 921 bytes, took a minute). Here every address of the table is one
stretch of one text, and the places a pattern's prefix can have reached in that text are one
integer, a bit per character (the shift-and, or bitap, method): each character or wildcard of the
pattern is a few operations on that integer, whatever came before it.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable

#: the characters that make an address a pattern
WILDCARDS = frozenset("?*[{")


class PatternError(ValueError):
    """A pattern that cannot be read: a ``[`` or ``{`` that is never closed."""


def is_pattern(address: str) -> bool:
    return any(c in WILDCARDS for c in address)


class AddressTable:
    """The addresses a pattern may match. ``match`` raises PatternError for an unreadable pattern."""

    def __init__(self, addresses: Iterable[str]) -> None:
        self.addresses = tuple(dict.fromkeys(addresses))
        starts = ends = 0
        offset = 0
        self._at_end: dict[int, str] = {}
        for address in self.addresses:
            if "\0" in address:
                raise ValueError(f"{address!r}: an OSC address holds no NUL")
            starts |= 1 << offset
            offset += len(address)
            ends |= 1 << offset  # the separator after the address: where a whole match ends
            self._at_end[offset] = address
            offset += 1
        self._text = "".join(f"{address}\0" for address in self.addresses)
        self._starts, self._ends = starts, ends
        #: each character's positions in the text (separators are no character's)
        self._chars: dict[str, int] = {}
        for position, c in enumerate(self._text):
            if c != "\0":
                self._chars[c] = self._chars.get(c, 0) | 1 << position
        #: positions a wildcard may consume: any character but "/"
        self._part = 0
        for c, positions in self._chars.items():
            if c != "/":
                self._part |= positions
        # runs[k]: positions followed by 2**k characters a "*" may consume, so "*" moves any distance
        # up to the longest address in one step per power of two
        longest = max((len(a) for a in self.addresses), default=0)
        self._runs = [self._part]
        while 1 << len(self._runs) <= longest:
            shift = 1 << (len(self._runs) - 1)
            self._runs.append(self._runs[-1] & (self._runs[-1] >> shift))
        self._longest = longest

    def match(self, pattern: str) -> list[str]:
        """The table's addresses ``pattern`` matches, in table order."""
        reach = self._starts  # where a prefix of the pattern may have brought each address
        words: dict[str, int] = {}
        i, n = 0, len(pattern)
        spread = False  # reach holds every place a "*" would add: another "*" (a run of them) is free
        while i < n:
            c = pattern[i]
            if c == "*":
                if not spread:
                    for step, run in enumerate(self._runs):
                        reach |= (reach & run) << (1 << step)
                    spread = True
                i += 1
                continue
            if c == "?":
                moved = (reach & self._part) << 1
            elif c == "[":
                close = pattern.find("]", i + 1)
                if close < 0:
                    raise PatternError(f"'[' at character {i} is never closed by ']'")
                moved = (reach & self._class(pattern[i + 1:close])) << 1 if reach else 0
                i = close
            elif c == "{":
                close = pattern.find("}", i + 1)
                if close < 0:
                    raise PatternError(f"'{{' at character {i} is never closed by '}}'")
                moved = 0
                for word in pattern[i + 1:close].split(",") if reach else ():
                    if word not in words:
                        words[word] = self._occurrences(word)
                    moved |= (reach & words[word]) << len(word)
                i = close
            else:
                moved = (reach & self._chars.get(c, 0)) << 1
            if moved != reach:
                reach, spread = moved, False
            i += 1
        found = reach & self._ends
        matched = []
        while found:
            lowest = found & -found
            matched.append(self._at_end[lowest.bit_length() - 1])
            found ^= lowest
        return matched

    def _class(self, spec: str) -> int:
        """Positions holding a character of the list ``spec`` (``a-z`` ranges; ``!`` first: not in it)."""
        negate = spec.startswith("!")
        if negate:
            spec = spec[1:]
        spans: list[tuple[str, str]] = []
        j = 0
        while j < len(spec):
            if j + 2 < len(spec) and spec[j + 1] == "-":
                spans.append((spec[j], spec[j + 2]))
                j += 3
            else:
                spans.append((spec[j], spec[j]))
                j += 1
        spans.sort()
        lows = [low for low, _ in spans]
        highest = list(itertools.accumulate((high for _, high in spans), max))  # of the spans from the first on
        listed = 0
        for c, positions in self._chars.items():  # the table's few characters, not the list's many
            k = bisect.bisect_right(lows, c)
            if k and highest[k - 1] >= c:
                listed |= positions
        listed &= self._part
        return self._part & ~listed if negate else listed

    def _occurrences(self, word: str) -> int:
        """Positions where ``word`` begins in the text (every position for the empty word)."""
        if not word:
            return (1 << len(self._text)) - 1
        if len(word) > self._longest or "\0" in word:
            return 0
        positions = 0
        start = self._text.find(word)
        while start >= 0:
            positions |= 1 << start
            start = self._text.find(word, start + 1)
        return positions


__all__ = ["WILDCARDS", "AddressTable", "PatternError", "is_pattern"]
