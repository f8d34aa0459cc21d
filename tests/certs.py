"""Certificates for the TLS tests (trustme): a CA, a node certificate for 127.0.0.1,
a client certificate, and the `ssl` contexts and PEM files built from them."""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme


class Certs:
    """One CA with a server certificate for 127.0.0.1 and a client certificate."""

    def __init__(self) -> None:
        self.ca = trustme.CA()
        self.node = self.ca.issue_cert("127.0.0.1")
        self.client = self.ca.issue_cert("client.example")

    def server_context(self, *, mutual: bool = False) -> ssl.SSLContext:
        """A listening node's context; `mutual`: it wants a client certificate from our CA."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.node.configure_cert(context)
        if mutual:
            context.verify_mode = ssl.CERT_REQUIRED
            self.ca.configure_trust(context)
        return context

    def client_context(
        self, *, with_cert: bool = False, ca: trustme.CA | None = None
    ) -> ssl.SSLContext:
        """A connecting node's context, trusting `ca` (default: ours)."""
        context = ssl.create_default_context()
        (ca or self.ca).configure_trust(context)
        if with_cert:
            self.client.configure_cert(context)
        return context

    def write(self, folder: Path) -> dict[str, Path]:
        """PEM files in `folder`: ca, node cert and key, client cert and key."""
        files = {
            name: folder / f"{name}.pem"
            for name in ("ca", "node-cert", "node-key", "client-cert", "client-key")
        }
        self.ca.cert_pem.write_to_path(str(files["ca"]))
        for who, issued in (("node", self.node), ("client", self.client)):
            with files[f"{who}-cert"].open("wb") as out:
                for pem in issued.cert_chain_pems:
                    out.write(pem.bytes())
            issued.private_key_pem.write_to_path(str(files[f"{who}-key"]))
        return files
