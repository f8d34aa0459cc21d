"""The live conversation between nodes: the node, handshakes, peers, credit, remote refs.

Importing `remote.node` fills the kernel's node seam.
"""
