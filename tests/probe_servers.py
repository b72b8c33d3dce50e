"""Probe targets the emergency tests start and stop: an HTTP server on a fixed loopback port and a tiny DNS server."""

import http.server
import socket
import threading

import dns.message


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Http:
    """An HTTP server on a fixed loopback port that can go away and come back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.srv: http.server.ThreadingHTTPServer | None = None

    def up(self) -> None:
        handler = type("H", (http.server.BaseHTTPRequestHandler,), {"do_GET": lambda s: (s.send_response(204), s.end_headers()),
                                                                   "log_message": lambda *a: None})
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self.srv is not None:
            self.srv.shutdown()
            self.srv.server_close()
            self.srv = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/generate_204"


class Dns:
    """A tiny DNS server on loopback that answers every question with NXDOMAIN-free empty answers."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._serve, daemon=True)
        self.t.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                continue
            self.sock.sendto(dns.message.make_response(dns.message.from_wire(data)).to_wire(), addr)

    def close(self) -> None:
        self.stop.set()
        self.t.join()
        self.sock.close()
