#!/usr/bin/env python3
"""A tiny HTTP CONNECT proxy for tests (Python 3.11 standard library only).

Tunnels `CONNECT host:port` to loopback targets only (127.0.0.0/8, ::1, localhost; anything else gets 403),
answers other methods with 405, and appends one line per tunnel, "CONNECT host:port", to --log when given.
The first stdout line is JSON {"port": N}. With --watch-stdin it exits when its standard input closes.
"""

import argparse
import ipaddress
import json
import os
import signal
import socket
import socketserver
import sys
import threading


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Tunnel(socketserver.BaseRequestHandler):
    def handle(self):
        client = self.request
        client.settimeout(30)
        head = b""
        while b"\r\n\r\n" not in head:
            data = client.recv(4096)
            if not data or len(head) > 65536:
                return
            head += data
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3 or parts[0] != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        host, _, port = parts[1].rpartition(":")
        host = host.strip("[]")
        if not is_loopback(host) or not port.isdigit():
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        sys.stderr.write("proxy CONNECT %s\n" % parts[1])
        if self.server.log:
            with open(self.server.log, "a", encoding="utf-8") as f:
                f.write("CONNECT %s\n" % parts[1])
        try:
            upstream = socket.create_connection((host, int(port)), timeout=5)
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        upstream.settimeout(30)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pump(source, sink):
            try:
                while data := source.recv(65536):
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    sink.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        other = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        other.start()
        pump(client, upstream)
        other.join()
        upstream.close()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", help="append one line per CONNECT to this file")
    parser.add_argument("--watch-stdin", action="store_true")
    options = parser.parse_args()
    # A parent may spawn us from a thread that blocks signals (Swift's Foundation.Process does); the mask is
    # inherited, and a blocked SIGTERM would make terminate() a no-op.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
    server = Server((options.host, options.port), Tunnel)
    server.log = options.log
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    if options.watch_stdin:
        sys.stdin.buffer.read()
        os._exit(0)
    threading.Event().wait()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
