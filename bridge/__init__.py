"""loopbridge.bridge: every way into the engine (CLI, ZeroMQ, OSC)."""
