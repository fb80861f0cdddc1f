"""loopbridge.bridge: every way into the engine (CLI, ZeroMQ, OSC)."""

if __name__ != "loopbridge.bridge":
    # a checkout's root on sys.path makes bridge/ importable as `bridge`: a second copy of every class, whose
    # errors an `except loopbridge.bridge...` would miss
    raise ImportError(f"{__name__} is loopbridge.bridge: import it as loopbridge.bridge (pip install -e .)")
