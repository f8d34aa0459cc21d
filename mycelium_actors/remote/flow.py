"""Flow control between nodes, by credit.

A sender may have at most `WINDOW` messages in flight per target actor; the
receiver returns credit as it puts messages into the target's mailbox, so a
full `"block"` mailbox makes only its own remote senders wait, and memory
stays bounded on both sides. Credit goes back in batches (`CREDIT_BATCH`), and
the heartbeat returns the rest. The window's bookkeeping is `Peer`'s.
"""

#: Messages in flight per sender and target before an `await tell` waits (API.md 6).
WINDOW = 256
#: Asks from one peer this node holds unanswered at most; more are refused at once.
MAX_OPEN_ASKS = 4096
#: Credit goes back in batches of this many (the heartbeat returns the rest).
CREDIT_BATCH = WINDOW // 4
#: Bytes of replies a peer may leave unread (or twice its maximum frame, if
#: larger) before it is cut off: a peer that asks and never reads cannot grow
#: this node without bound.
MAX_UNREAD = 8 * 1024 * 1024
