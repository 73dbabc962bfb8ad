"""Local addresses for tests: free ports, and the egress allow-list that admits the media
server on 127.0.0.1 (egress tests put canaries on other loopback addresses)."""

from __future__ import annotations

import socket

TEST_EGRESS_ALLOW = "127.0.0.1/32"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
