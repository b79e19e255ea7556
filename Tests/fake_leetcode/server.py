#!/usr/bin/env python3
"""A fake LeetCode GraphQL server for tests (Python 3.11 standard library only).

Answers POST /graphql (and /graphql/) by the requested `variables.username`, shaped like LeetCode's real
answers (shared/leetcode-api.md). One server serves every scenario:

  a name in --profiles   200 {"data":{"matchedUser":{...}}} from that file, re-read on each request;
                         looked up exactly, then case-insensitively (the file's spelling is returned)
  cf-blocked             403 text/html Cloudflare "Just a moment..." page
  rate-limited           429 with Retry-After: 17
  server-error           500 text/html
  slow                   sleeps --slow-seconds (default 10) and then answers like an unknown user
  slow-body              sends the headers and half the body, sleeps --slow-seconds, then the rest
  chunked                a valid profile sent with Transfer-Encoding: chunked in several chunks; its aboutMe is
                         the profiles file's "chunked" entry, else "sent in chunks"
  close-delimited        a valid profile with neither Content-Length nor chunking: the body ends at close
  huge                   200 with a valid JSON body over 1 MiB (Content-Length)
  huge-chunked           the same, chunked
  huge-close             the same, ended by closing the connection
  malformed              200 with broken JSON
  wrong-shape            200 {"data":{"matchedUser":"wrong-shape"}}
  anything else          200 {"errors":[{"message":"That user does not exist.",...}],"data":{"matchedUser":null}}

Like LeetCode, a request without a Referer header gets 403 "CSRF verification failed. Request aborted.".
Requests are logged to stderr, one line each.

Test controls (any listener, no Referer needed), for tests that count what reached LeetCode:
  GET  /_stats    {"total": N, "by_username": {name: N}, "arrivals": [[unix time, name], ...]}: the GraphQL
                  requests received since the start or the last reset
  POST /_reset    forgets the counts, the arrivals and any scripted answers
  POST /_script   {"answers": [{"as": "rate-limited", "retry_after": 3}, {"as": "cf-blocked"}, ...]}: the next
                  GraphQL requests, whatever their username, are answered as these behaviours, one each, in order
                  ("retry_after" sets the Retry-After of rate-limited, else 17); then answers go by username again

Profiles file: {"alice": {"realName": "Alice", "aboutMe": "LCC-1234", "userAvatar": "https://...",
                          "ranking": 1234, "easy": 1, "medium": 2, "hard": 3, "all": 6}, ...}
Every field is optional.

Listeners (all on --host, default 127.0.0.1; port 0 picks a free one):
  --cert C --key K                HTTPS on --port
  --http                          plain HTTP on --http-port
  --extra-https C K  (repeatable) more HTTPS listeners, e.g. with an untrusted or wrong-host certificate
The first stdout line is JSON: {"port": <https port, else http port>, "https_port": N|null,
"http_port": N|null, "extra_https_ports": [...]}. With --watch-stdin the server exits when its standard
input reaches end of file, so it dies with the test process that holds the pipe.
"""

import argparse
import json
import os
import signal
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CLOUDFLARE_PAGE = (
    "<!DOCTYPE html><html lang=\"en-US\"><head><title>Just a moment...</title>"
    "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\"></head><body>"
    "<div class=\"main-wrapper\" role=\"main\"><div class=\"main-content\"><h1>leetcode.com</h1>"
    "<h2>Checking if the site connection is secure</h2></div></div></body></html>"
)
NOT_FOUND = {
    "errors": [
        {
            "message": "That user does not exist.",
            "locations": [{"line": 2, "column": 3}],
            "path": ["matchedUser"],
            "extensions": {"handled": True, "skip_sentry": True},
        }
    ],
    "data": {"matchedUser": None},
}


def matched_user(username, entry):
    entry = entry or {}
    counts = [("All", "all"), ("Easy", "easy"), ("Medium", "medium"), ("Hard", "hard")]
    return {
        "data": {
            "matchedUser": {
                "username": username,
                "githubUrl": None,
                "profile": {
                    "realName": entry.get("realName", ""),
                    "aboutMe": entry.get("aboutMe", ""),
                    "userAvatar": entry.get(
                        "userAvatar", "https://assets.leetcode.com/users/default_avatar.jpg"),
                    "ranking": entry.get("ranking", 5000000),
                    "countryName": None,
                },
                "submitStatsGlobal": {
                    "acSubmissionNum": [
                        {"difficulty": d, "count": entry.get(k, 0), "submissions": 2 * entry.get(k, 0)}
                        for d, k in counts
                    ]
                },
            }
        }
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # a stuck client cannot hold a thread forever
    server_version = "fake-leetcode"

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()  # here, in the request's thread, not in the accept loop
        super().setup()

    def log_message(self, fmt, *args):
        sys.stderr.write("fake_leetcode %s %s\n" % (self.address_string(), fmt % args))

    def version_string(self):
        return getattr(self, "server_header", None) or super().version_string()

    def send(self, status, body, content_type="application/json", headers=(), server=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        data = body.encode() if isinstance(body, str) else body
        self.server_header = server
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_chunked(self, data, pieces):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        size = max(1, -(-len(data) // pieces))
        for i in range(0, len(data), size):
            piece = data[i:i + size]
            self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
            time.sleep(0.01)
        self.wfile.write(b"0\r\nX-Trailer: yes\r\n\r\n")

    def send_close_delimited(self, data):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def do_GET(self):
        if self.path == "/_stats":
            state = self.server.state
            with state.lock:
                self.send(200, {"total": sum(state.counts.values()), "by_username": state.counts,
                                "arrivals": state.arrivals})
            return
        self.send(405, {"detail": "Method \"GET\" not allowed."})

    def control(self, raw):
        state = self.server.state
        with state.lock:
            if self.path == "/_reset":
                state.counts, state.arrivals, state.script = {}, [], []
            else:
                state.script.extend(json.loads(raw)["answers"])
        self.send(200, {"ok": True})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(length, 1 << 20))
        if self.path in ("/_reset", "/_script"):
            self.control(raw)
            return
        if self.path.split("?")[0] not in ("/graphql", "/graphql/"):
            self.send(404, "<h1>Not Found</h1>", "text/html")
            return
        if not self.headers.get("Referer"):
            self.send(403, "CSRF verification failed. Request aborted.", "text/html")
            return
        try:
            request = json.loads(raw)
            query = request["query"]
            username = request["variables"]["username"]
            assert isinstance(query, str) and "matchedUser" in query and isinstance(username, str)
        except Exception:
            self.send(400, {"errors": [{"message": "Must provide query string and variables.username."}]})
            return
        self.log_message("graphql username=%r user-agent=%r origin=%r", username, self.headers.get("User-Agent"),
                         self.headers.get("Origin"))
        state = self.server.state
        with state.lock:
            state.counts[username] = state.counts.get(username, 0) + 1
            state.arrivals.append([time.time(), username])
            scripted = state.script.pop(0) if state.script else None
        if scripted:
            self.answer(username, scripted["as"], str(scripted.get("retry_after", 17)))
        else:
            self.answer(username)

    def answer(self, username, behaviour=None, retry_after="17"):
        options = self.server.options
        behaviour = behaviour or username
        big = matched_user(username, {"aboutMe": "x" * (1024 * 1024 + 100)})
        if behaviour == "cf-blocked":
            self.send(403, CLOUDFLARE_PAGE, "text/html; charset=UTF-8",
                      [("cf-mitigated", "challenge")], server="cloudflare")
        elif behaviour == "rate-limited":
            self.send(429, "<html><body>Too Many Requests</body></html>", "text/html", [("Retry-After", retry_after)])
        elif behaviour == "server-error":
            self.send(500, "<html><body>Server Error (500)</body></html>", "text/html")
        elif behaviour == "slow":
            time.sleep(options.slow_seconds)
            self.send(200, NOT_FOUND)
        elif behaviour == "slow-body":
            data = json.dumps(matched_user(username, {})).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            time.sleep(options.slow_seconds)
            self.wfile.write(data[len(data) // 2:])
        elif behaviour == "chunked":
            entry = self.profiles().get("chunked") or {"aboutMe": "sent in chunks"}
            self.send_chunked(json.dumps(matched_user(username, entry)).encode(), 5)
        elif behaviour == "close-delimited":
            self.send_close_delimited(json.dumps(matched_user(username, {"aboutMe": "ended by close"})).encode())
        elif behaviour == "huge":
            self.send(200, big)
        elif behaviour == "huge-chunked":
            self.send_chunked(json.dumps(big).encode(), 40)
        elif behaviour == "huge-close":
            self.send_close_delimited(json.dumps(big).encode())
        elif behaviour == "malformed":
            self.send(200, '{"data": {"matchedUser": {"username": "malformed", "profile": {"aboutMe": ')
        elif behaviour == "wrong-shape":
            self.send(200, {"data": {"matchedUser": "wrong-shape"}})
        else:
            profiles = self.profiles()
            name = username if username in profiles else next(
                (k for k in profiles if k.lower() == username.lower()), None)
            self.send(200, NOT_FOUND if name is None else matched_user(name, profiles[name]))

    def profiles(self):
        path = self.server.options.profiles
        if not path:
            return {}
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return {}


class State:
    """What the test controls see and set, shared by every listener and request thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts, self.arrivals, self.script = {}, [], []


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, options, context=None):
        super().__init__(address, Handler)
        self.options = options
        self.context = context
        self.state = options.state

    def get_request(self):
        sock, address = super().get_request()
        if self.context:
            sock = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request, client_address):
        # A client that rejects our certificate or hangs up early is a test scenario, not a server bug.
        error = sys.exc_info()[1]
        sys.stderr.write("fake_leetcode %s connection ended: %s\n" % (client_address[0], error))


def tls_context(cert, key):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", help="JSON file of username -> profile fields, re-read per request")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--cert", help="certificate chain (PEM) for the HTTPS listener")
    parser.add_argument("--key", help="private key (PEM) for the HTTPS listener")
    parser.add_argument("--port", type=int, default=0, help="HTTPS port (0: any free port)")
    parser.add_argument("--http", action="store_true", help="also listen for plain HTTP")
    parser.add_argument("--http-port", type=int, default=0)
    parser.add_argument("--extra-https", nargs=2, action="append", default=[], metavar=("CERT", "KEY"))
    parser.add_argument("--slow-seconds", type=float, default=10.0)
    parser.add_argument("--watch-stdin", action="store_true", help="exit when standard input closes")
    options = parser.parse_args()
    options.state = State()
    # A parent may spawn us from a thread that blocks signals (Swift's Foundation.Process does); the mask is
    # inherited, and a blocked SIGTERM would make terminate() a no-op.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
    if bool(options.cert) != bool(options.key):
        parser.error("--cert and --key go together")
    if not options.cert and not options.http and not options.extra_https:
        parser.error("nothing to listen on: give --cert/--key, --http or --extra-https")

    https = Server((options.host, options.port), options, tls_context(options.cert, options.key)) \
        if options.cert else None
    http = Server((options.host, options.http_port), options) if options.http else None
    extra = [Server((options.host, 0), options, tls_context(c, k)) for c, k in options.extra_https]
    servers = [s for s in [https, http, *extra] if s]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def port(server):
        return server.server_address[1] if server else None

    print(json.dumps({
        "port": port(https or http),
        "https_port": port(https),
        "http_port": port(http),
        "extra_https_ports": [port(s) for s in extra],
    }), flush=True)
    if options.watch_stdin:
        sys.stdin.buffer.read()
        os._exit(0)
    threading.Event().wait()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
