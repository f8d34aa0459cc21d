"""Node URLs of the built-in adapters: splitting and checking, ValueError when bad.

`memory://name/a/b` and `tcp://host:port/a/b` split after the authority;
`unix:///dir/node.sock/a/b` after the first path segment ending in `.sock`
(API.md section 6). A URL without an actor path has the path "/".
"""

from __future__ import annotations

import ipaddress

LOOPBACK = "127.0.0.1"  # where a server binds when the URL names no host


def split_simple(scheme: str, url: str) -> tuple[str, str]:
    """(scheme://authority, path) of `url`."""
    rest = _after_scheme(scheme, url)
    authority, slash, path = rest.partition("/")
    if not authority:
        raise ValueError(f"{url!r} names no {scheme} node")
    return f"{scheme}://{authority}", slash + path or "/"


def split_unix(url: str) -> tuple[str, str]:
    """(unix://socket path, path): the socket path ends at the first `*.sock` segment."""
    segments = _after_scheme("unix", url).split("/")
    for i, segment in enumerate(segments):
        if segment.endswith(".sock") and len(segment) > len(".sock"):
            return "unix://" + "/".join(segments[: i + 1]), "/" + "/".join(segments[i + 1 :])
    raise ValueError(f"{url!r} names no socket file (a path segment ending in .sock)")


def tcp_endpoint(node_url: str, *, listening: bool) -> tuple[str, int]:
    """(host, port) of a tcp node URL; a server's host defaults to loopback."""
    node, path = split_simple("tcp", node_url)
    if path != "/":
        raise ValueError(f"{node_url!r} is an actor URL, not a node URL")
    authority = node.removeprefix("tcp://")
    if authority.startswith("["):  # an IPv6 literal, [::1]:7001
        host, bracket, port = authority[1:].partition("]")
        if not bracket or not port.startswith(":"):
            raise ValueError(f"{node_url!r}: an IPv6 host is written [addr]:port")
        port = port[1:]
    else:
        host, _, port = authority.rpartition(":")
        if ":" in host:
            raise ValueError(f"{node_url!r}: an IPv6 host is written [addr]:port")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{node_url!r} needs a port between 0 and 65535 (0: any, to listen)")
    if not host:
        if not listening:
            raise ValueError(f"{node_url!r} names no host to connect to")
        host = LOOPBACK
    if not listening and int(port) == 0:
        raise ValueError(f"{node_url!r}: cannot connect to port 0")
    return host, int(port)


def tcp_exposed(url: str) -> bool:
    """True for a `tcp://` listen URL that other hosts can reach (not loopback).

    A host name other than `localhost` counts as exposed: it may resolve anywhere.
    """
    if not url.startswith("tcp://"):
        return False
    host, _ = tcp_endpoint(split_simple("tcp", url)[0], listening=True)
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def tcp_url(host: str, port: int) -> str:
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


def unix_path(node_url: str) -> str:
    """The socket file of a unix node URL."""
    node, path = split_unix(node_url)
    if path != "/":
        raise ValueError(f"{node_url!r} is an actor URL, not a node URL")
    return node.removeprefix("unix://")


def _after_scheme(scheme: str, url: str) -> str:
    prefix = f"{scheme}://"
    if not url.startswith(prefix):
        raise ValueError(f"{url!r} is not a {prefix} URL")
    rest = url[len(prefix) :]
    if "?" in rest or "#" in rest:
        raise ValueError(f"{url!r}: node URLs take no query or fragment")
    return rest
