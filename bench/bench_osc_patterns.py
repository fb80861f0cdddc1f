"""OSC address patterns: how long one pattern takes to match against the engine's address table.

Prints, measured side by side in one run:

1. Words that may match nothing (``{,a,d,e,...}`` repeated k times, then ``Z``): python-osc's
   dispatcher (a regular expression per pattern, which backtracks) against the engine's linear
   matcher (``bridge/osc_pattern.py``), k growing until python-osc takes longer than ``--limit``
   seconds. Neither holds a ``*``, so the old limit on stars never refused them.
2. The slowest shapes the linear matcher was found to have, each as long as the largest OSC packet
   lets an address be (``MAX_OSC_PACKET_BYTES``), beside the time python-osc takes to decode a
   packet of that size at all: the matcher's worst case is of the order of reading the packet.

Times are the best of ``--repeats`` runs; the load average is printed because on a shared machine
every figure scales with it.

    python bench/bench_osc_patterns.py [--repeats 5] [--limit 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loopbridge.bridge import protocol as p
from loopbridge.bridge.osc_pattern import AddressTable
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

R = p.OSC_ROOT
SET = f"{R}/session/set/"
LETTERS = "{," + ",".join(sorted(set("audio_prompt_strength"))) + "}"


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def largest(prefix: str, unit: str, suffix: str = "") -> str:
    """``prefix`` + ``unit`` repeated + ``suffix``, as long as an address in the largest packet may be."""
    room = p.MAX_OSC_PACKET_BYTES - 16 - len(prefix) - len(suffix)  # the type tags and padding
    return prefix + unit * (room // len(unit)) + suffix


def words_of(addresses: list[str], prefix: str) -> str:
    """``prefix{...}`` listing the table's distinct substrings, shortest first, as many as fit the largest
    packet: every word is looked for in the table, and found."""
    words = dict.fromkeys(a[i:i + n] for n in range(1, 40) for a in addresses for i in range(len(a) - n + 1))
    room = p.MAX_OSC_PACKET_BYTES - 16 - len(prefix) - 2
    listed, used = [], 0
    for word in words:
        if used + len(word) + 1 > room:
            break
        listed.append(word)
        used += len(word) + 1
    return prefix + "{" + ",".join(listed) + "}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--limit", type=float, default=5.0, help="stop python-osc once one match takes this long (s)")
    args = parser.parse_args()

    addresses = [entry.address for entry in p.OSC_ADDRESSES]
    table = AddressTable(addresses)
    dispatcher = Dispatcher()
    for address in addresses:
        dispatcher.map(address, print)
    print(f"{len(addresses)} addresses in the table; load average {os.getloadavg()[0]:.2f}")

    print("\n1. k braces that may match nothing, then Z (no '*' at all)")
    print(f"   {'k':>3} {'bytes':>6} {'python-osc':>12} {'linear':>10} {'ratio':>9}")
    k = 4
    while True:
        pattern = SET + LETTERS * k + "Z"
        regex_s = best_of(1 if k > 16 else args.repeats,
                          lambda pattern=pattern: list(dispatcher.handlers_for_address(pattern)))
        linear_s = best_of(args.repeats, lambda pattern=pattern: table.match(pattern))
        print(f"   {k:>3} {len(pattern):>6} {regex_s * 1000:>10.1f} ms {linear_s * 1000:>7.3f} ms "
              f"{regex_s / linear_s:>8.0f}x", flush=True)
        if regex_s > args.limit:
            break
        k += 4

    print(f"\n2. the linear matcher's slowest shapes, each in a packet of {p.MAX_OSC_PACKET_BYTES} bytes")
    shapes = {
        "'{}' (a word that matches nothing) repeated": largest(SET, "{}"),
        "'{,a}' repeated": largest(SET, "{,a}"),
        "'*{}' repeated, then a name": largest(SET, "*{}", "tempo"),
        "'{,a,d,e,...}' repeated, then Z": largest(SET, LETTERS, "Z"),
        "'*?' repeated": largest(SET, "*?"),
        "one '[a-z...]' list": largest(SET + "*[", "a-z", "]"),
        "'/*' repeated": largest("", "/*"),
        "one '{...}' of every word the table holds": words_of(addresses, SET),
    }
    plain = OscMessageBuilder(largest(SET, "x"))
    plain.add_arg(1)
    packet = plain.build().dgram
    decode_s = best_of(args.repeats, lambda: OscPacket(packet))
    print(f"   python-osc decoding a plain message of {len(packet)} bytes: {decode_s * 1000:.2f} ms")
    worst = 0.0
    for name, pattern in shapes.items():
        seconds = best_of(args.repeats, lambda pattern=pattern: table.match(pattern))
        worst = max(worst, seconds)
        print(f"   {name:<45} {len(pattern):>6} bytes {seconds * 1000:>7.2f} ms  {seconds / decode_s:>6.1f}x decoding")
    print(f"   worst: {worst * 1000:.2f} ms for one pattern of the largest size")


if __name__ == "__main__":
    main()
