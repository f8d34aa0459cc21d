"""The built-in transport adapters; importing this package fills the scheme registry.

The kernel never imports it (it reaches adapters by URL scheme through
`mycelium_actors.transport`); `mycelium_actors/__init__.py` does.
"""

from ..transport import register, register_lazy
from .memory import MemoryTransport
from .stream import TcpTransport, UnixTransport

register("memory", MemoryTransport)
register("unix", UnixTransport)
register("tcp", TcpTransport)
register_lazy("nats", "mycelium_actors.transports.nats", "pip install 'mycelium-actors[nats]'")
