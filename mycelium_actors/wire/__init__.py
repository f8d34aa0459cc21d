"""Values <-> bytes: contract types, the codec, node-protocol frames, errors on the wire.

No sockets, no peers, no tasks; imports the kernel only.
"""
