"""Hostile peers on loopback (standard library only).

- `HostilePostgres`: speaks just enough of PostgreSQL's protocol v3 to attack a client. The scenario is chosen by
  the user name in the StartupMessage, so one server serves every test; what the client sent (passwords, SQL) is
  recorded per scenario for the tests to inspect.
- `HostileHTTP`: answers LeetCode's GraphQL POST by the requested username with a hostile response.
"""
import base64
import collections
import hashlib
import hmac
import json
import os
import socket
import struct
import threading
import time


# --- Hostile servers ---

class LoopbackServer:
    """A listener on a free loopback port serving each connection in its own thread with `_serve(sock)`."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.listener.close()

    def _accept(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()


def _message(kind, body=b""):
    return kind + struct.pack("!I", len(body) + 4) + body


def auth(code, data=b""):
    return _message(b"R", struct.pack("!I", code) + data)


def ready(status=b"I"):
    return _message(b"Z", status)


def error(message, sqlstate="28P01", severity="FATAL"):
    body = b"".join(k + v.encode() + b"\0" for k, v in ((b"S", severity), (b"V", severity), (b"C", sqlstate),
                                                          (b"M", message))) + b"\0"
    return _message(b"E", body)


TRUSTED = auth(0) + _message(b"S", b"server_version\x0015.0\0") + _message(b"K", b"\0\0\0\1\0\0\0\2") + ready()


class Connection:
    def __init__(self, sock):
        self.sock = sock

    def exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("client closed")
            data += chunk
        return data

    def startup(self):
        """Reads SSLRequest (answers N) and the StartupMessage; returns its parameters."""
        while True:
            length, code = struct.unpack("!II", self.exact(8))
            body = self.exact(length - 8)
            if code == 80877103:
                self.sock.sendall(b"N")
                continue
            parts = body.split(b"\0")
            return {parts[i].decode(): parts[i + 1].decode() for i in range(0, len(parts) - 2, 2) if parts[i]}

    def message(self):
        kind = self.exact(1)
        (length,) = struct.unpack("!I", self.exact(4))
        return kind, self.exact(length - 4)

    def statements(self):
        """Reads one round trip up to its Sync; returns the SQL of each Parse."""
        sql = []
        while True:
            kind, body = self.message()
            if kind == b"P":
                sql.append(body.split(b"\0")[1].decode())
            if kind == b"S":
                return sql
            if kind == b"X":
                raise ConnectionError("terminated")


class HostilePostgres(LoopbackServer):
    """Scenarios by user name; `seen[scenario]` lists what clients sent: ("password", text), ("sql", text),
    ("scram-final", text)."""

    def __init__(self, password):
        self.password = password
        self.seen = collections.defaultdict(list)
        self.connections = collections.Counter()
        super().__init__()

    def url(self, scenario, password=None, **params):
        from urllib.parse import quote
        secret = quote(self.password if password is None else password, safe="")
        text = f"postgres://{scenario}:{secret}@127.0.0.1:{self.port}/claims?sslmode=disable"
        return text + "".join(f"&{k}={v}" for k, v in params.items())

    def _serve(self, sock):
        connection = Connection(sock)
        try:
            parameters = connection.startup()
            scenario = parameters.get("user", "")
            getattr(self, "scenario_" + scenario.replace("-", "_"), self.scenario_echo_password)(connection, scenario)
        except (ConnectionError, OSError, struct.error):
            pass
        finally:
            sock.close()

    # Authentication

    def _password(self, connection, scenario):
        kind, body = connection.message()
        if kind == b"p":
            self.seen[scenario].append(("password", body.rstrip(b"\0").decode(errors="replace")))

    def scenario_echo_password(self, connection, scenario):
        """Asks for a cleartext password and quotes it back in its error, as a hostile server may."""
        connection.sock.sendall(auth(3))
        kind, body = connection.message()
        password = body.rstrip(b"\0").decode(errors="replace")
        self.seen[scenario].append(("password", password))
        connection.sock.sendall(error(f'password authentication failed: "{password}" is not it'))

    def _scram_until_client_final(self, connection, scenario):
        """SASL with a correct server-first; returns what the server needs to sign, or None."""
        connection.sock.sendall(auth(10, b"SCRAM-SHA-256\0\0"))
        kind, body = connection.message()
        mechanism, rest = body.split(b"\0", 1)
        client_first = rest[4:].decode()
        client_nonce = client_first.split("r=", 1)[1]
        salt = os.urandom(16)
        server_first = f"r={client_nonce}{base64.b64encode(os.urandom(18)).decode()},s={base64.b64encode(salt).decode()},i=4096"
        connection.sock.sendall(auth(11, server_first.encode()))
        kind, body = connection.message()
        if kind != b"p":
            return None
        client_final = body.decode()
        self.seen[scenario].append(("scram-final", client_final))
        without_proof = client_final.rsplit(",p=", 1)[0]
        auth_message = f"{client_first[3:]},{server_first},{without_proof}".encode()
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, 4096)
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        return base64.b64encode(hmac.new(server_key, auth_message, "sha256").digest()).decode()

    def scenario_scram_skips_proof(self, connection, scenario):
        """After the client's proof: ReadyForQuery at once, neither SASLFinal nor AuthenticationOk."""
        if self._scram_until_client_final(connection, scenario):
            connection.sock.sendall(ready())
            self._record_queries(connection, scenario)

    def scenario_scram_skips_final(self, connection, scenario):
        """After the client's proof: AuthenticationOk and ReadyForQuery without SASLFinal."""
        if self._scram_until_client_final(connection, scenario):
            connection.sock.sendall(TRUSTED)
            self._record_queries(connection, scenario)

    def scenario_scram_wrong_signature(self, connection, scenario):
        if self._scram_until_client_final(connection, scenario):
            connection.sock.sendall(auth(12, b"v=" + base64.b64encode(bytes(32))) + TRUSTED)
            self._record_queries(connection, scenario)

    def _scram_then(self, connection, scenario, later):
        """A correct SCRAM login on a scenario's first connection (the server knows the password), `later` on the
        next ones: what `scram-keys` must not take for a second login with the keys it derived."""
        self.connections[scenario] += 1
        if self.connections[scenario] == 1:
            signature = self._scram_until_client_final(connection, scenario)
            if signature:
                connection.sock.sendall(auth(12, b"v=" + signature.encode()) + TRUSTED)
                self._record_queries(connection, scenario)
            return
        later(connection, scenario)

    def scenario_scram_keys_then_trust(self, connection, scenario):
        self._scram_then(connection, scenario, self.scenario_trust)

    def scenario_scram_keys_then_cleartext(self, connection, scenario):
        self._scram_then(connection, scenario, self.scenario_cleartext)

    def scenario_scram_then_cleartext(self, connection, scenario):
        """A downgrade: SASL began, then a cleartext password is asked for."""
        connection.sock.sendall(auth(10, b"SCRAM-SHA-256\0\0"))
        connection.message()
        connection.sock.sendall(auth(3))
        self._password(connection, scenario)

    def scenario_scram_then_md5(self, connection, scenario):
        connection.sock.sendall(auth(10, b"SCRAM-SHA-256\0\0"))
        connection.message()
        connection.sock.sendall(auth(5, b"salt"))
        self._password(connection, scenario)

    def scenario_cleartext(self, connection, scenario):
        connection.sock.sendall(auth(3))
        self._password(connection, scenario)
        connection.sock.sendall(TRUSTED)
        self._record_queries(connection, scenario)

    def scenario_md5(self, connection, scenario):
        connection.sock.sendall(auth(5, b"salt"))
        self._password(connection, scenario)
        connection.sock.sendall(TRUSTED)
        self._record_queries(connection, scenario)

    def scenario_trust(self, connection, scenario):
        connection.sock.sendall(TRUSTED)
        self._record_queries(connection, scenario)

    def scenario_ready_before_ok(self, connection, scenario):
        connection.sock.sendall(ready())
        self._record_queries(connection, scenario)

    def scenario_status_before_ok(self, connection, scenario):
        connection.sock.sendall(_message(b"S", b"a\0b\0") + TRUSTED)
        self._record_queries(connection, scenario)

    def _record_queries(self, connection, scenario):
        """Records every statement a client sends after start-up (a client that trusted a hostile server)."""
        while True:
            for sql in connection.statements():
                self.seen[scenario].append(("sql", sql))
            connection.sock.sendall(error("no", "XX000", "ERROR") + ready())

    # Answers to the first round trip of statements

    def _answer(self, connection, payload_chunks):
        connection.sock.sendall(TRUSTED)
        connection.statements()
        for chunk in payload_chunks:
            connection.sock.sendall(chunk)

    def scenario_flood_rows(self, connection, scenario):
        """400 DataRows of just under 1 MiB each (the issue's ~1 GB: each under the old per-message cap), after a
        valid ParseComplete and BindComplete."""
        size = (1 << 20) - 64
        row = _message(b"D", struct.pack("!HI", 1, size) + b"x" * size)
        self._answer(connection, [_message(b"1") + _message(b"2")] + [row] * 400)

    def scenario_many_small_rows(self, connection, scenario):
        """200,000 rows of 100 bytes: each far under any per-message cap, together 21 MB."""
        row = _message(b"D", struct.pack("!HI", 1, 94) + b"y" * 94)
        self._answer(connection, [_message(b"1") + _message(b"2")] + [row * 1000] * 200)

    def scenario_huge_message(self, connection, scenario):
        """One message announcing 1 GiB, then its body streamed."""
        self._answer(connection, [_message(b"1") + _message(b"2") + b"D" + struct.pack("!I", 1 << 30)]
                     + [b"z" * (1 << 20)] * 64)

    def scenario_many_columns(self, connection, scenario):
        """One DataRow of 32,767 NULL columns (128 KiB): over the answer budget though tiny per column."""
        self._answer(connection, [_message(b"1") + _message(b"2")
                                  + _message(b"D", struct.pack("!H", 32767) + b"\xff\xff\xff\xff" * 32767)])

    def scenario_data_before_bind(self, connection, scenario):
        self._answer(connection, [_message(b"1") + _message(b"D", struct.pack("!HI", 1, 1) + b"7")])

    def scenario_ready_too_early(self, connection, scenario):
        self._answer(connection, [_message(b"1") + ready()])

    def scenario_copy_in(self, connection, scenario):
        self._answer(connection, [_message(b"1") + _message(b"2") + _message(b"G", b"\0\0\0")])


# --- A hostile HTTP server for LeetCode's GraphQL endpoint ---

class HostileHTTP(LoopbackServer):
    """Plain HTTP on loopback; the scenario is the requested username, and `code` is put in About me."""

    def __init__(self):
        self.code = ""
        super().__init__()
        self.url = f"http://127.0.0.1:{self.port}/graphql"

    def _serve(self, sock):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            raw = b""
            while b"\r\n\r\n" not in raw:
                raw += sock.recv(65536)
            head, body = raw.split(b"\r\n\r\n", 1)
            length = int([line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")][0])
            while len(body) < length:
                body += sock.recv(65536)
            username = json.loads(body)["variables"]["username"]
            getattr(self, "scenario_" + username.replace("-", "_"))(sock, username)
        except (OSError, ValueError, KeyError, IndexError):
            pass
        finally:
            sock.close()

    def profile(self, username, about=None):
        return {"data": {"matchedUser": {"username": username, "profile": {
            "realName": "R", "aboutMe": self.code if about is None else about, "userAvatar": "a", "ranking": 1},
            "submitStatsGlobal": {"acSubmissionNum": [{"difficulty": "All", "count": 1}]}}}}

    @staticmethod
    def send(sock, head, body, piece=None):
        data = head + body
        if piece is None:
            sock.sendall(data)
            return
        for i in range(0, len(data), piece):
            sock.sendall(data[i:i + piece])
            time.sleep(0.0005)

    def _long_head(self, sock, username, piece):
        body = json.dumps(self.profile(username)).encode()
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        head += b"".join(b"X-Pad-%05d: %s\r\n" % (i, b"p" * 80) for i in range(850))  # 79 KiB of headers
        head += b"Content-Length: %d\r\n\r\n" % len(body)
        self.send(sock, head, body, piece)

    def scenario_head_one_write(self, sock, username):
        self._long_head(sock, username, None)

    def scenario_head_1000_byte_writes(self, sock, username):
        self._long_head(sock, username, 1000)

    def scenario_nested_arrays(self, sock, username):
        """A valid profile with the code, beside ~1 MiB of nested arrays (the issue's ~40 MB parse)."""
        valid = json.dumps(self.profile(username))[:-1]
        junk = ",".join(["[" * 60 + "]" * 60] * 8600)
        body = (valid + ',"extensions":[' + junk + "]}").encode()
        assert len(body) < 1024 * 1024
        self.send(sock, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body), body)

    def scenario_other_user(self, sock, username):
        """Another user's profile, with the code in its About me."""
        body = json.dumps(self.profile("somebody-else")).encode()
        self.send(sock, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body), body)

    def scenario_big_about_me(self, sock, username):
        """A valid answer just under the 1 MiB cap: 1,000,000 bytes of About me holding the code."""
        body = json.dumps(self.profile(username, about="a" * 1_000_000 + " " + self.code)).encode()
        self.send(sock, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body), body)

    def scenario_tiny_chunks(self, sock, username):
        """A chunked body of one-byte chunks, past the 1 MiB cap."""
        sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        piece = b"1\r\n[\r\n" * 65536
        for _ in range(20):
            sock.sendall(piece)
