"""Provider kinds: one package per upstream API (`providers/<kind>/`), and the machinery they
share (the gated transport, throttle signals, pagination checks). See `kinds.py` for which
kinds this process knows."""
