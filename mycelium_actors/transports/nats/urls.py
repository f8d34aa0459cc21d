"""nats:// URLs: `nats://[user[:password]@]host[:port]/<node name>[/actor/path]`."""

from __future__ import annotations

import re

DEFAULT_PORT = 4222
_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")  # one NATS subject token, no wildcards


def parse(url: str) -> tuple[str, str, str, str]:
    """(userinfo, host:port, node name, actor path) of a nats URL; ValueError when bad.

    A node URL has the path "/"; a URL naming only the server has the name "".
    """
    if not url.startswith("nats://"):
        raise ValueError(f"{url!r} is not a nats:// URL")
    rest = url[len("nats://") :]
    if "?" in rest or "#" in rest:
        raise ValueError(f"{url!r}: node URLs take no query or fragment")
    authority, _, path = rest.partition("/")
    userinfo, _, hostport = authority.rpartition("@")
    host, colon, port = hostport.rpartition(":")
    if not colon:
        host, port = hostport, str(DEFAULT_PORT)
    if not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError(f"{url!r} needs a NATS server as host or host:port")
    name, _, actor = path.partition("/")
    if name and not _NAME.match(name):
        raise ValueError(f"{url!r}: a node name is letters, digits, '-' and '_' only")
    return userinfo, f"{host}:{port}", name, "/" + actor


def is_node_url(url: str) -> bool:
    try:
        _, _, name, path = parse(url)
    except ValueError:
        return False
    return bool(name) and path == "/"
