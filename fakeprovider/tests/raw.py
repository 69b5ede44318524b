"""A raw HTTP/1.1 POST read to EOF: sees exactly what a cut connection delivered."""

from __future__ import annotations

import json
import socket
from typing import Any

from fakeprovider.process import FakeProvider


def raw_post(fp: FakeProvider, path: str, body: Any, headers: dict[str, str]) -> bytes:
    data = json.dumps(body).encode()
    lines = [f"POST {path} HTTP/1.1", "Host: x", *(f"{k}: {v}" for k, v in headers.items())]
    lines += ["Content-Type: application/json", f"Content-Length: {len(data)}", "Connection: close", "", ""]
    with socket.create_connection((fp.host, fp.port), timeout=5) as sock:
        sock.sendall("\r\n".join(lines).encode() + data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)
