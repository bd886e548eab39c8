"""One HTTP/1.1 request as raw bytes on a fresh loopback connection, and its answer.

Why raw: the fuzzer sends what no HTTP client library would (every byte value in a
header, repeated headers, heads near the edge's 480 KiB bound, unknown methods), and
must see exactly what the server answered.
"""
from __future__ import annotations

import socket


def send(port: int, head: bytes, body: bytes, timeout: float = 15.0) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection (Connection: close), read to EOF. A server may answer
    (431) and close before it has read all of a huge head, as HTTP allows: what it answered
    is still read, and a reset after it is not an error."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(head + b"\r\n" + body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        chunks = []
        while True:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
    raw = b"".join(chunks)
    status_line, _, rest = raw.partition(b"\r\n")
    head_text, _, payload = rest.partition(b"\r\n\r\n")
    headers: dict[str, str] = {}
    for line in head_text.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    parts = status_line.split()
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1), headers, payload
