"""OSC address patterns against the protocol's table: the matcher agrees with a plain reading of OSC 1.0."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loopbridge.bridge import protocol as p
from loopbridge.bridge.osc_pattern import AddressTable, PatternError, is_pattern

R = p.OSC_ROOT
TABLE = AddressTable(entry.address for entry in p.OSC_ADDRESSES)


@pytest.mark.parametrize(("pattern", "expected"), [
    (f"{R}/engine/ping", [f"{R}/engine/ping"]),
    (f"{R}/engine/p?ng", [f"{R}/engine/ping"]),
    (f"{R}/engine/p*ng", [f"{R}/engine/ping"]),
    (f"{R}/engine/p***ng", [f"{R}/engine/ping"]),
    (f"{R}/engine/*status", [f"{R}/engine/status"]),
    (f"{R}/engine/status*", [f"{R}/engine/status"]),
    (f"{R}/engine/[a-p]ing", [f"{R}/engine/ping"]),
    (f"{R}/engine/[!a-o]ing", [f"{R}/engine/ping"]),
    (f"{R}/engine/[!p]ing", []),
    (f"{R}/engine/[]ing", []),
    (f"{R}/engine/[-p]ing", [f"{R}/engine/ping"]),
    (f"{R}/session/get/{{tempo,bars}}", [f"{R}/session/get/bars", f"{R}/session/get/tempo"]),
    (f"{R}/session/get/{{,x}}tempo", [f"{R}/session/get/tempo"]),
    (f"{R}/session/{{get/tempo,set/bars}}", [f"{R}/session/set/bars", f"{R}/session/get/tempo"]),
    ("/*/engine/ping", [f"{R}/engine/ping"]),
    (f"{R}/*", []),  # a star matches within one part, never a "/"
    (f"{R}/engine?ping", []),
    (f"{R}/engine[/]ping", []),
    (f"{R}/engine/ping/", []),
    ("", []),
])
def test_patterns(pattern: str, expected: list[str]) -> None:
    assert sorted(TABLE.match(pattern)) == sorted(expected)


def test_every_session_name_and_the_table_order() -> None:
    names = [*p.SESSION_PARAMS, *p.SESSION_ALIASES]
    assert TABLE.match(f"{R}/session/get/*") == [f"{R}/session/get/{name}" for name in names]
    assert TABLE.match(f"{R}/*/*/*") == [a for a in TABLE.addresses if a.count("/") == 4]


@pytest.mark.parametrize("pattern", [f"{R}/engine/[ping", f"{R}/session/get/{{tempo,bars", f"{R}/[a-z/{{x}}"])
def test_a_bracket_or_brace_never_closed_is_refused(pattern: str) -> None:
    with pytest.raises(PatternError, match="never closed"):
        TABLE.match(pattern)


def test_what_is_a_pattern() -> None:
    assert not is_pattern(f"{R}/engine/ping") and not is_pattern(f"{R}/engine/ping]}},!")
    assert all(is_pattern(f"{R}/{c}") for c in "?*[{")


def test_patterns_that_make_a_regular_expression_backtrack_are_matched() -> None:
    # each brace may match nothing or one letter: a regular expression tries every way to share the
    # address between them (a minute for 28 of them); here each is a few operations
    letters = "{," + ",".join(sorted(set("audio_prompt_strength"))) + "}"
    assert TABLE.match(f"{R}/session/set/" + letters * 1500 + "Z") == []
    assert TABLE.match(f"{R}/session/set/" + letters * 1500) == [a for a in TABLE.addresses
                                                                 if a.startswith(f"{R}/session/set/")
                                                                 and len(a) - len(f"{R}/session/set/") <= 1500
                                                                 and set(a.rsplit("/", 1)[1]) <= set(letters)]
    assert TABLE.match(f"{R}/session/set/" + "*?" * 20 + "Z") == []
    assert TABLE.match(f"{R}/session/set/" + "*{}" * 20_000 + "tempo") == [f"{R}/session/set/tempo"]


# ---- the same as a plain reading of OSC 1.0 ----------------------------------------------------------------


def reference(pattern: str, address: str) -> bool | None:
    """Whether ``pattern`` matches ``address``, read token by token with backtracking (None: unreadable)."""
    tokens: list[tuple[str, object]] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c in "[{":
            close = pattern.find("]" if c == "[" else "}", i + 1)
            if close < 0:
                return None
            body = pattern[i + 1:close]
            if c == "{":
                tokens.append(("words", body.split(",")))
            else:
                negate, body = body.startswith("!"), body.removeprefix("!")
                chars = set()
                j = 0
                while j < len(body):
                    if j + 2 < len(body) and body[j + 1] == "-":
                        chars |= {chr(k) for k in range(ord(body[j]), ord(body[j + 2]) + 1)}
                        j += 3
                    else:
                        chars.add(body[j])
                        j += 1
                tokens.append(("class", (negate, chars)))
            i = close + 1
            continue
        tokens.append(("star", None) if c == "*" else ("one", None) if c == "?" else ("char", c))
        i += 1

    @functools.cache
    def at(t: int, a: int) -> bool:
        if t == len(tokens):
            return a == len(address)
        kind, arg = tokens[t]
        here = address[a] if a < len(address) else None
        if kind == "star":
            return at(t + 1, a) or (here not in (None, "/") and at(t, a + 1))
        if kind == "words":
            return any(address.startswith(word, a) and at(t + 1, a + len(word)) for word in arg)  # type: ignore[attr-defined]
        if here is None:
            return False
        if kind == "char":
            return here == arg and at(t + 1, a + 1)
        if here == "/":
            return False
        if kind == "class":
            negate, chars = arg  # type: ignore[misc]
            return (here in chars) != negate and at(t + 1, a + 1)
        return at(t + 1, a + 1)  # "?"

    return at(0, 0)


wildcards = st.sampled_from(["*", "?", "**", "*?", "[a-m]", "[!a-m]", "[!/]", "[/]", "[tp]", "[a-]", "[!]", "[",
                             "]", "{", "}", "{get,set}", "{,s}", "{tempo,bars,}", "{/}", "{session/get,engine}", ""])


@st.composite
def patterns(draw: st.DrawFn) -> str:
    """A table address with some of its pieces turned into wildcards (or other text), or text alone."""
    if draw(st.integers(0, 4)) == 0:
        return "".join(draw(st.lists(wildcards | st.text(alphabet="/aeglmnoprstbi_", max_size=4), max_size=10)))
    address = draw(st.sampled_from(TABLE.addresses))
    out, i = [], 0
    while i < len(address):
        chunk = address[i:i + draw(st.integers(1, 8))]
        i += len(chunk)
        choice = draw(st.integers(0, 5))
        if choice <= 1 or ("/" in chunk and choice <= 3):
            out.append(chunk)
        elif choice == 2:
            out.append("*" if "/" not in chunk else chunk.replace(chunk.split("/")[-1], "*"))
        elif choice == 3:
            out.append("".join("?" if c != "/" else c for c in chunk))
        elif choice == 4:
            out.append(f"{{{chunk},{draw(st.text(alphabet='/aegmnoprst_', max_size=3))}}}")
        else:
            out.append(draw(wildcards | st.text(alphabet="/aegmnoprst_", max_size=3)))
    return "".join(out)


@settings(max_examples=1000, deadline=None)
@given(pattern=patterns())
def test_the_matcher_agrees_with_a_plain_reading_of_osc(pattern: str) -> None:
    expected = [reference(pattern, address) for address in TABLE.addresses]
    if None in expected:
        with pytest.raises(PatternError):
            TABLE.match(pattern)
        return
    assert TABLE.match(pattern) == [a for a, hit in zip(TABLE.addresses, expected, strict=True) if hit]
