"""A running `tfctl console` for the tests, and a small HTTP client that
keeps the session's cookie and CSRF token as the page does.

The console is started on a free port (--http-port 0) and says which on
its first line; it is stopped by its pid (SIGTERM) when the test ends, and
must then exit 0 (under the sanitizer build, leaks make that fail)."""

import http.client
import json
import re
import selectors
import signal
import ssl
import subprocess
import time

from harness import TFCTL

START_TIMEOUT_S = 20.0


class Console:
    def __init__(self, broker_port, *extra, cafile=None):
        self.proc = subprocess.Popen(
            [TFCTL, "console", "--http-port", "0", "--port", str(broker_port)] + list(extra),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        line = self._first_line()
        m = re.match(r"tfctl console: serving (https?)://([0-9.]+):(\d+)/ ", line)
        if not m:
            self.stop()
            raise AssertionError(f"tfctl console did not start: {line!r}\n{self.stderr}")
        self.scheme, self.host, self.port = m.group(1), m.group(2), int(m.group(3))
        self.url = f"{self.scheme}://{self.host}:{self.port}/"
        self.cafile = cafile
        self.stderr = ""

    def _first_line(self):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if sel.select(timeout=0.2):
                return self.proc.stdout.readline()
            if self.proc.poll() is not None:
                break
        self.stderr = self.proc.stderr.read() if self.proc.poll() is not None else ""
        return ""

    def connection(self):
        if self.scheme == "https":
            ctx = ssl.create_default_context(cafile=self.cafile)
            return http.client.HTTPSConnection(self.host, self.port, context=ctx, timeout=30)
        return http.client.HTTPConnection(self.host, self.port, timeout=30)

    def stop(self):
        """Stops it by its pid; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.stderr:
            self.stderr = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name)

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class Web:
    """One browser's worth of state: the session cookie and CSRF token."""

    def __init__(self, console):
        self.console = console
        self.cookie = None
        self.csrf = None

    def request(self, method, path, body=None, headers=None, csrf=True, cookie=True,
                content_type="application/json"):
        conn = self.console.connection()
        h = dict(headers or {})
        if cookie and self.cookie:
            h["Cookie"] = self.cookie
        if method == "POST" and csrf and self.csrf:
            h["X-CSRF-Token"] = self.csrf
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            if content_type:
                h["Content-Type"] = content_type
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        out = Response(r.status, r.headers, r.read())
        conn.close()
        return out

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, body=None, **kwargs):
        return self.request("POST", path, body=body if body is not None else {}, **kwargs)

    def login(self, username, password="demo"):
        r = self.post("/api/login", {"username": username, "password": password})
        if r.status == 200:
            cookie = r.header("Set-Cookie")
            self.cookie = cookie.split(";", 1)[0]
            self.csrf = r.json()["csrf"]
        return r


def basic_auth(username, password="demo"):
    import base64
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def broker_env_has_metrics():
    """Whether the plugin knows the metrics_interval_s option (the broker
    publishes metrics)."""
    out = subprocess.run([TFCTL, "--help"], capture_output=True, text=True)
    return "metrics_interval_s" in out.stdout


