"""The real FaaS runtimes in front of the real binary: building them, their images, and running them in namespaces.

The runtimes' own source is pinned in ../shared/runtimes (beside the checkout); `build.sh` there builds the Go ones
into .build/runtimes. Without it (a user's clone) the runtime tests skip with a message naming what is missing;
under CI (CI=true) a missing piece fails them instead, so CI cannot pass with the runtime tests skipped.

Watchdogs and the OpenWhisk proxy listen on fixed ports (8080, metrics 8081): each instance runs in a network
namespace of its own (`unshare -n`, loopback up) and curl talks to it from inside (`nsenter --net`). Images are
built with podman into a private store, exported, and their entrypoint runs with the image's environment and user
in the exported root (chroot), in a private mount namespace where the test's own folder is bound at /data.
"""
import base64
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from conftest import BINARY, ROOT

SHARED_RUNTIMES = ROOT.parent / "shared" / "runtimes"
RUNTIMES_BIN = ROOT / ".build" / "runtimes"
ACTIONPROXY = SHARED_RUNTIMES / "src" / "openwhisk-actionproxy"
TIMEOUT = 120  # generous: the machine is shared; never an assertion about speed


def unavailable(what):
    """Skips the test naming what is missing, or fails it under CI, where the runtime tests must run."""
    message = f"runtime tests need {what}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " (and CI must run them)", pytrace=False)
    pytest.skip(message)


def require_tools():
    if not SHARED_RUNTIMES.is_dir():
        unavailable(f"{SHARED_RUNTIMES} (the FaaS runtimes' pinned source; it sits beside the checkout)")
    for tool in ("podman", "unshare", "nsenter", "ip", "curl", "sqlite3"):
        if not shutil.which(tool):
            unavailable(f"the `{tool}` command (scripts/deps.sh --tests installs it)")
    for module in ("flask", "gevent", "yaml"):
        try:
            __import__(module)
        except ImportError:
            unavailable(f"the Python module {module} (Tests/blackbox/requirements.txt)")


def build_runtimes():
    """The Go runtimes, built once into .build/runtimes by the pinned build.sh (idempotent, cached)."""
    require_tools()
    subprocess.run([str(SHARED_RUNTIMES / "build.sh"), str(RUNTIMES_BIN)], check=True, stdout=subprocess.DEVNULL)
    return RUNTIMES_BIN


# --- Images -------------------------------------------------------------------------------------------------------

class Image:
    """An image built by deploy/build-image.sh, exported to a folder: its files and its configuration."""

    def __init__(self, runtime, rootfs, config):
        self.runtime = runtime
        self.rootfs = rootfs
        self.env = dict(item.split("=", 1) for item in config.get("Env") or [])
        self.command = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
        self.user = config.get("User") or ""

    def files(self):
        """(path, size) of every regular file in the image."""
        return sorted((str(p.relative_to(self.rootfs)), p.stat().st_size)
                      for p in self.rootfs.rglob("*") if p.is_file() and not p.is_symlink())


class Podman:
    """podman with a private store under `folder`, so tests neither see nor leave images in the machine's store."""

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        self.command = ["podman", "--root", str(self.folder / "root"), "--runroot", str(self.folder / "run"),
                        "--storage-driver", "vfs"]

    def build(self, runtime, runtimes_bin):
        tag = f"localhost/leetcode-claim-test:{runtime}"
        env = dict(os.environ, PODMAN=" ".join(self.command), RUNTIMES=str(runtimes_bin),
                   LEETCODE_CLAIM_BIN=BINARY)
        subprocess.run([str(ROOT / "deploy" / "build-image.sh"), runtime, tag], env=env, check=True,
                       stdout=subprocess.DEVNULL, timeout=900)
        config = json.loads(subprocess.run(self.command + ["image", "inspect", tag], check=True,
                                           capture_output=True, text=True).stdout)[0]["Config"]
        container = subprocess.run(self.command + ["create", tag], check=True, capture_output=True,
                                   text=True).stdout.strip()
        rootfs = self.folder / f"rootfs-{runtime}"
        rootfs.mkdir()
        try:
            export = subprocess.Popen(self.command + ["export", container], stdout=subprocess.PIPE)
            subprocess.run(["tar", "-x", "-C", str(rootfs)], stdin=export.stdout, check=True)
            assert export.wait() == 0
        finally:
            subprocess.run(self.command + ["rm", container], check=True, stdout=subprocess.DEVNULL)
        return Image(runtime, rootfs, config)

    def remove_store(self):
        # Container storage holds read-only layers and mounts; podman's own reset removes them cleanly.
        subprocess.run(self.command + ["system", "reset", "--force"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(self.folder, ignore_errors=True)


# --- Processes in namespaces --------------------------------------------------------------------------------------

class Sandbox:
    """One runtime process in its own network and mount namespaces; `log` collects its stdout and stderr."""

    def __init__(self, setup, command, env, log_path):
        self.log_path = pathlib.Path(log_path)
        self.log_file = open(self.log_path, "wb")
        script = "set -e\nip link set lo up\n" + setup + '\nexec "$@"\n'
        self.proc = subprocess.Popen(["unshare", "--net", "--mount", "--fork", "--", "sh", "-c", script, "sandbox",
                                      *command], env=env, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def netns(self):
        return f"/proc/{self.proc.pid}/ns/net"

    def in_netns(self, argv):
        """argv run inside this sandbox's network namespace."""
        return ["nsenter", f"--net={self.netns}", *argv]

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        # The watchdogs drain for their whole healthcheck interval on SIGTERM: a test instance goes at once.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=TIMEOUT)
        self.log_file.close()


def chroot_command(image, data_dir):
    """Setup and command that run the image's entrypoint in its exported root, with `data_dir` bound at /data and a
    fresh /tmp, as the image's user."""
    root = image.rootfs
    (root / "data").mkdir(exist_ok=True)
    # Read-only, as stack.yml's readonly_root_filesystem asks: only /tmp and /data are writable.
    setup = (f"mount --bind {root} {root}\n"
             f"mount -o remount,bind,ro {root}\n"
             f"mount --bind {data_dir} {root}/data\n"
             f"mount -t tmpfs -o mode=1777 tmpfs {root}/tmp")
    userspec = [f"--userspec={image.user}"] if image.user else []
    return setup, ["chroot", *userspec, str(root), *image.command]


class HTTPResponse:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        return self.headers.get(name.lower())


def parse_curl(output):
    """curl --include output (possibly after interim 1xx responses) as an HTTPResponse."""
    while True:
        head, _, rest = output.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        if status >= 200 or not rest.startswith(b"HTTP/"):
            break
        output = rest
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return HTTPResponse(status, headers, rest)


def curl_argv(url, body, headers, unix_socket=None):
    argv = ["curl", "-sS", "--include", "--max-time", str(TIMEOUT), "--data-binary", "@-", "-H", "Expect:"]
    if unix_socket:
        argv += ["--unix-socket", str(unix_socket)]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    return argv + [url]


def curl(argv, body):
    proc = subprocess.run(argv, input=body, capture_output=True, timeout=TIMEOUT + 10)
    assert proc.returncode == 0, f"curl failed: {proc.stderr.decode(errors='replace')}"
    return parse_curl(proc.stdout)


def curl_many(argvs_and_bodies):
    """Starts every curl first, then feeds them: the requests reach the runtime as close together as possible."""
    procs = [subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for argv, _ in argvs_and_bodies]
    for proc, (_, body) in zip(procs, argvs_and_bodies):
        proc.stdin.write(body)
        proc.stdin.close()
    responses = []
    for proc in procs:
        out = proc.stdout.read()
        err = proc.stderr.read()
        assert proc.wait(timeout=TIMEOUT + 10) == 0, f"curl failed: {err.decode(errors='replace')}"
        responses.append(parse_curl(out))
    return responses


def wait_until(probe, what, sandbox=None):
    """Polls `probe` (True when ready) until it is, within TIMEOUT seconds."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if sandbox is not None and sandbox.proc.poll() is not None:
            raise AssertionError(f"{what} exited: {sandbox.log()}")
        if probe():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not ready after {TIMEOUT} s: {sandbox.log() if sandbox else ''}")


# --- The runtimes, each as an HTTP client would use it ------------------------------------------------------------

class Watchdog:
    """An OpenFaaS watchdog (classic or of-watchdog) running an image's entrypoint, reached on its port 8080."""

    def __init__(self, image, env, data_dir, log_path):
        setup, command = chroot_command(image, data_dir)
        self.sandbox = Sandbox(setup, command, env, log_path)
        wait_until(self._healthy, f"{image.runtime} watchdog", self.sandbox)

    def _healthy(self):
        proc = subprocess.run(self.sandbox.in_netns(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                                     "http://127.0.0.1:8080/_/health"]), capture_output=True)
        return proc.stdout == b"200"

    def request_argv(self, body, authorization=None, content_type="application/json"):
        headers = {"Content-Type": content_type}
        if authorization:
            headers["Authorization"] = authorization
        return self.sandbox.in_netns(curl_argv("http://127.0.0.1:8080/", body, headers)), body

    def post(self, body, **kwargs):
        return curl(*self.request_argv(body, **kwargs))

    def stop(self):
        self.sandbox.stop()


class Hotwrap:
    """Fn's hotwrap running the Fn image's entrypoint; curl plays the Fn agent on the Unix socket FN_LISTENER names,
    sending a call as Fn's HTTP gateway does (the client's headers as Fn-Http-H-*)."""

    def __init__(self, image, env, data_dir, log_path):
        self.iofs = pathlib.Path(data_dir).parent / "iofs"
        self.iofs.mkdir()
        setup, command = chroot_command(image, data_dir)
        (image.rootfs / "iofs").mkdir(exist_ok=True)
        setup += f"\nmount --bind {self.iofs} {image.rootfs}/iofs"
        env = dict(env, FN_LISTENER="unix:/iofs/lsnr.sock", FN_FORMAT="http-stream")
        self.sandbox = Sandbox(setup, command, env, log_path)
        wait_until(lambda: (self.iofs / "lsnr.sock").exists(), "hotwrap", self.sandbox)

    def request_argv(self, body, authorization=None, content_type="application/json"):
        deadline = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
        headers = {"Fn-Call-Id": uuid.uuid4().hex, "Fn-Deadline": deadline, "Fn-Intent": "httprequest",
                   "Fn-Invoke-Type": "sync", "Fn-Http-Method": "POST",
                   "Fn-Http-Request-Url": "http://fn.example/t/claims/claim", "Content-Type": content_type,
                   "Fn-Http-H-Content-Type": content_type, "Fn-Http-H-Accept": "*/*"}
        if authorization:
            headers["Fn-Http-H-Authorization"] = authorization
        return curl_argv("http://localhost/call", body, headers, unix_socket=self.iofs / "lsnr.sock"), body

    def post(self, body, **kwargs):
        return curl(*self.request_argv(body, **kwargs))

    def stop(self):
        self.sandbox.stop()


def build_zip(settings):
    """deploy/openwhisk/build-zip.sh with `settings` (claim.env lines) → the zip's bytes."""
    with tempfile.TemporaryDirectory() as folder:
        settings_path = pathlib.Path(folder) / "claim.env"
        settings_path.write_text("".join(f"{k}='{v}'\n" for k, v in settings.items()))
        out = pathlib.Path(folder) / "action.zip"
        env = dict(os.environ, LEETCODE_CLAIM_BIN=BINARY)
        subprocess.run([str(ROOT / "deploy" / "openwhisk" / "build-zip.sh"), str(settings_path), str(out)],
                       env=env, check=True)
        return out.read_bytes()


class OpenWhiskProxy:
    """OpenWhisk's docker-skeleton action proxy (actionproxy.py from the pinned source), as its image runs it: the
    host's files with a private /action holding the skeleton's executable stub, in private mount and network
    namespaces. `init` sends the action as the invoker does; `run` sends one activation."""

    def __init__(self, folder, log_path, env=None):
        root = pathlib.Path(folder) / "root"
        root.mkdir(parents=True)
        # A new root made of the host's top-level folders, plus /action: nothing on the host is touched.
        setup = "\n".join([
            f"mount -t tmpfs tmpfs {root}",
            "for entry in /*; do",
            '  name=${entry#/}; [ "$name" = action ] && continue',
            f'  if [ -L "$entry" ]; then cp -P "$entry" "{root}/$name"',
            f'  elif [ -d "$entry" ]; then mkdir "{root}/$name"; mount --rbind "$entry" "{root}/$name"; fi',
            "done",
            f"mkdir {root}/action",
            f"install -m 755 {ACTIONPROXY}/stub.sh {root}/action/exec",
        ])
        command = ["chroot", str(root), sys.executable, "-u", str(ACTIONPROXY / "actionproxy.py")]
        base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "FLASK_PROXY_PORT": "8080"}
        self.sandbox = Sandbox(setup, command, dict(base, **(env or {})), log_path)
        wait_until(self._up, "OpenWhisk action proxy", self.sandbox)

    def _up(self):
        proc = subprocess.run(self.sandbox.in_netns(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                                     "http://127.0.0.1:8080/"]), capture_output=True)
        return proc.stdout not in (b"", b"000")

    def _post(self, path, message):
        return self.sandbox.in_netns(curl_argv(f"http://127.0.0.1:8080/{path}", None,
                                               {"Content-Type": "application/json"})), json.dumps(message).encode()

    def init(self, zip_bytes):
        response = curl(*self._post("init", {"value": {"binary": True, "main": "main",
                                                       "code": base64.b64encode(zip_bytes).decode()}}))
        assert response.status == 200, (response.status, response.body, self.sandbox.log())

    def run_argv(self, parameters):
        """The /run message OpenWhisk's invoker sends for one activation of the action."""
        return self._post("run", {
            "value": parameters, "namespace": "guest", "action_name": "/guest/leetcode-claim",
            "action_version": "0.0.1", "activation_id": uuid.uuid4().hex, "transaction_id": uuid.uuid4().hex,
            "deadline": str(int(time.time() * 1000) + 60000)})

    def run(self, parameters):
        return curl(*self.run_argv(parameters))

    def stop(self):
        self.sandbox.stop()


def web_parameters(body_fields, authorization=None):
    """A non-raw web action's parameters for a JSON POST: the body's fields plus what OpenWhisk's controller adds."""
    headers = {"accept": "*/*", "content-type": "application/json", "host": "openwhisk.example",
               "user-agent": "curl/7.88.1", "x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"}
    if authorization:
        headers["authorization"] = authorization
    return dict(body_fields, __ow_method="post", __ow_headers=headers, __ow_path="")


def one_json_object(body):
    """The body must be exactly one JSON object followed by one newline (or nothing): nothing before, nothing
    after, no log line, no `exit status` text. Returns it."""
    text = body.decode("utf-8")
    decoder = json.JSONDecoder()
    value, end = decoder.raw_decode(text)
    assert isinstance(value, dict), f"not a JSON object: {text!r}"
    assert text[end:] in ("", "\n"), f"more after the JSON object: {text[end:]!r}"
    return value

