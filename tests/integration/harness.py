"""Integration-test harness: a real mosquitto with the built plugin.

Each test starts its own broker on a free loopback port, waits until it
accepts connections, talks to it with real MQTT clients, and stops it by its
pid when the test ends, whether the test passed or not. A broker that cannot
start fails the test with the broker's log in the message.

Paths come from the environment that `make check` sets (Makefile.am,
AM_TESTS_ENVIRONMENT), so a VPATH build and `make distcheck` work.
"""

import getpass
import importlib.util
import json
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import paho.mqtt.client as paho

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
CLIENT_TIMEOUT_S = 10.0


def env_path(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run the tests with `make check`")
    return value


VERSION = os.environ.get("TF_VERSION", "")
TFCTL = os.environ.get("TF_TFCTL", "tfctl")
TRACE_TAMPER = os.environ.get("TF_TRACE_TAMPER", "trace_tamper")
SRCDIR = os.path.abspath(os.environ.get("TF_SRCDIR",
                                        os.path.join(os.path.dirname(__file__), "..", "..")))


def stamp_verifier():
    """broker/examples/verify_stamps.py, the example verifier for Python
    subscribers, as a module: the tests check stamps with it, apart from
    the broker's own code."""
    spec = importlib.util.spec_from_file_location(
        "verify_stamps", os.path.join(SRCDIR, "broker", "examples", "verify_stamps.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
MOSQUITTO = os.environ.get("TF_MOSQUITTO", "mosquitto")
MOSQUITTO_PUB = os.environ.get("TF_MOSQUITTO_PUB", "mosquitto_pub")
MOSQUITTO_SUB = os.environ.get("TF_MOSQUITTO_SUB", "mosquitto_sub")
MOSQUITTO_PASSWD = os.environ.get("TF_MOSQUITTO_PASSWD", "mosquitto_passwd")

EMPTY_IDENTITIES = {"trustflow_identities": 1, "organizations": {}, "clients": {}}


def write_json(path, content):
    with open(path, "w", encoding="utf-8") as f:
        if isinstance(content, str):
            f.write(content)
        else:
            json.dump(content, f, indent=2)


def free_port():
    """A loopback TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BrokerStartError(AssertionError):
    pass


class Broker:
    """One mosquitto process with its own directory, config and log.

    `identities` (a dict) and `policies` (file name -> dict or raw text)
    are written as files the plugin loads; without them the broker has no
    identities, no policies and default_access allow, like a plain broker.
    `plugin_options` become plugin_opt_ lines (and override the defaults;
    None drops one);
    `passwords` (username -> password) makes a password file;
    `extra_conf` is appended verbatim; `with_plugin=False` gives a plain
    mosquitto (benchmarks); `conf_template` replaces the generated config
    with a file whose listeners and data directory are rewritten to this
    broker's own: its first listener to `port`, any further ones to free
    ports of their own (`other_ports`, in the file's order).
    """

    def __init__(self, plugin_options=None, extra_conf="", with_plugin=True,
                 conf_template=None, log_types=("all",), identities=None, policies=None,
                 passwords=None):
        self.plugin_options = {}
        self.extra_conf = extra_conf
        self.with_plugin = with_plugin
        self.conf_template = conf_template
        self.log_types = log_types
        self.dir = tempfile.mkdtemp(prefix="tf-broker-")
        self.conf_path = os.path.join(self.dir, "mosquitto.conf")
        self.log_path = os.path.join(self.dir, "broker.log")
        self.data_dir = os.path.join(self.dir, "data")
        self.trace_dir = os.path.join(self.data_dir if conf_template else self.dir, "trace")
        os.mkdir(self.data_dir)
        self.port = None
        self.other_ports = []
        self.proc = None
        self.passwords = passwords
        self.identities_path = os.path.join(self.dir, "identities.json")
        self.policy_dir = os.path.join(self.dir, "policies")
        os.mkdir(self.policy_dir)
        if conf_template is None and with_plugin:
            self.write_identities(identities or EMPTY_IDENTITIES)
            for name, policy in (policies or {}).items():
                self.write_policy(name, policy)
            self.plugin_options = {
                "identities": self.identities_path,
                "policy_dir": self.policy_dir,
                "default_access": "allow" if identities is None and policies is None else "deny",
                "signing_key": os.path.join(self.dir, "signing-key.pem"),
                "dev_key_autogen": "true",
                "trace_db": self.trace_dir,
            }
        self.plugin_options.update(plugin_options or {})

    # -- policy files ------------------------------------------------------

    def write_identities(self, identities):
        write_json(self.identities_path, identities)

    def write_policy(self, name, policy):
        """Writes (or replaces) a policy file; policy is a dict or raw text."""
        write_json(os.path.join(self.policy_dir, name), policy)

    def reload(self):
        """Sends SIGHUP, as an operator would, and waits until the plugin
        has handled it (its log says the policies loaded or were
        rejected)."""
        before = self._reload_outcomes()
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + START_TIMEOUT_S
        while self._reload_outcomes() == before:
            if time.monotonic() > deadline:
                raise AssertionError("the broker did not reload; log:\n" + self.log())
            time.sleep(0.05)

    def _reload_outcomes(self):
        log = self.log()
        return log.count("clients loaded (default_access") + log.count("policy reload rejected")

    # -- configuration -----------------------------------------------------

    def _generated_conf(self):
        lines = [
            "per_listener_settings false",
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"user {getpass.getuser()}",
            "persistence false",
            "log_dest stderr",
        ]
        lines += [f"log_type {t}" for t in self.log_types]
        if self.passwords is not None:
            path = os.path.join(self.dir, "passwords")
            with open(path, "w", encoding="utf-8") as f:
                f.writelines(f"{u}:{p}\n" for u, p in self.passwords.items())
            run([MOSQUITTO_PASSWD, "-U", path])
            lines.append(f"password_file {path}")
        if self.with_plugin:
            lines.append(f"plugin {env_path('TF_PLUGIN')}")
            lines += [f"plugin_opt_{k} {v}" for k, v in self.plugin_options.items()
                      if v is not None]
        return "\n".join(lines) + "\n" + self.extra_conf + "\n"

    def _templated_conf(self):
        out = []
        self.other_ports = []
        first_listener = True
        with open(self.conf_template, encoding="utf-8") as f:
            for line in f:
                words = line.split()
                if words[:1] == ["listener"] and first_listener:
                    first_listener = False
                    line = f"listener {self.port} 127.0.0.1\n"
                elif words[:1] == ["listener"]:
                    self.other_ports.append(free_port())
                    line = f"listener {self.other_ports[-1]} 127.0.0.1\n"
                elif words[:1] == ["persistence_location"]:
                    line = f"persistence_location {self.data_dir}/\n"
                elif words[:1] == ["plugin_opt_signing_key"]:
                    line = f"plugin_opt_signing_key {self.data_dir}/signing-key.pem\n"
                elif words[:1] == ["plugin_opt_trace_db"]:
                    line = f"plugin_opt_trace_db {self.trace_dir}\n"
                elif words[:1] == ["log_dest"]:
                    line = "log_dest stderr\n"
                out.append(line)
        return "".join(out) + self.extra_conf + "\n"

    def write_conf(self):
        text = self._templated_conf() if self.conf_template else self._generated_conf()
        with open(self.conf_path, "w", encoding="utf-8") as f:
            f.write(text)

    # -- life cycle --------------------------------------------------------

    def _spawn(self):
        env = dict(os.environ)
        asan = os.environ.get("TF_ASAN_RUNTIME")
        if asan and self.with_plugin:
            # The plugin was built with ASan; mosquitto was not.
            env["LD_PRELOAD"] = asan
            env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1"
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf_path],
                                         stdout=log, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)
        finally:
            log.close()

    def _wait_accepting(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def start(self):
        """Starts the broker; raises BrokerStartError with its log if it
        does not accept connections. Retries on a port taken meanwhile."""
        for _attempt in range(3):
            self.port = free_port()
            self.write_conf()
            self._spawn()
            if self._wait_accepting():
                return self
            self.stop()
            if "Address already in use" not in self.log():
                break
        raise BrokerStartError(
            f"mosquitto did not start (exit status {self.proc.returncode}); log:\n"
            + self.log())

    def start_expecting_failure(self):
        """Starts the broker and waits for it to exit on its own; returns
        its exit status. Fails if it starts accepting connections."""
        self.port = free_port()
        self.write_conf()
        self._spawn()
        try:
            status = self.proc.wait(timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError("mosquitto started although it should have refused; log:\n"
                                 + self.log())
        return status

    def stop(self):
        """Stops the broker by its pid (SIGTERM, then SIGKILL). Idempotent."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


class Client:
    """A paho-mqtt client (MQTT v5 by default) that queues what it receives."""

    def __init__(self, broker, client_id, username=None, password=None,
                 protocol=paho.MQTTv5, clean_session=True):
        self.messages = queue.Queue()
        self._connected = queue.Queue()
        if protocol == paho.MQTTv5:
            self.mqtt = paho.Client(client_id=client_id, protocol=protocol)
        else:
            self.mqtt = paho.Client(client_id=client_id, protocol=protocol,
                                    clean_session=clean_session)
        if username is not None:
            self.mqtt.username_pw_set(username, password)
        self.mqtt.on_connect = self._on_connect
        self.mqtt.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.mqtt.connect("127.0.0.1", broker.port, keepalive=30)
        self.mqtt.loop_start()
        rc = self._connected.get(timeout=CLIENT_TIMEOUT_S)
        if rc != 0:
            self.close()
            raise AssertionError(f"{client_id}: connection refused ({rc})")

    def _on_connect(self, _client, _userdata, _flags, rc, _properties=None):
        self._connected.put(int(rc.value if hasattr(rc, "value") else rc))

    def subscribe(self, topic_filter, qos=1):
        """Subscribes and waits for the SUBACK; returns its reason code (an
        int: the granted QoS, or 0x80 and above for a refusal)."""
        acked = queue.Queue()
        self.mqtt.on_subscribe = lambda _c, _u, _mid, codes, *_: acked.put(codes)
        self.mqtt.subscribe(topic_filter, qos=qos)
        code = acked.get(timeout=CLIENT_TIMEOUT_S)[0]
        return code.value if hasattr(code, "value") else code

    def receive_until(self, sentinel_topic, timeout=CLIENT_TIMEOUT_S):
        """Every message up to and including the first on sentinel_topic.
        The broker keeps each subscriber's messages in order, so what was
        published before the sentinel and is not in the list was withheld."""
        got = []
        while True:
            msg = self.receive(timeout)
            got.append(msg)
            if msg.topic == sentinel_topic:
                return got

    def publish(self, topic, payload, qos=1, retain=False, properties=None):
        info = self.mqtt.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        info.wait_for_publish(timeout=CLIENT_TIMEOUT_S)
        return info

    def receive(self, timeout=CLIENT_TIMEOUT_S):
        """The next message, or AssertionError when none arrives in time."""
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no message within {timeout} s") from None

    def close(self):
        self.mqtt.disconnect()
        self.mqtt.loop_stop()


class RawSession:
    """An MQTT 5 client written out by hand, to do what client libraries
    will not: drop a connection in the middle of a QoS 2 exchange and send
    the PUBLISH again, with DUP set, after reconnecting; leave a message it
    received unacknowledged."""

    def __init__(self, port, client_id, username):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        props = b"\x11" + struct.pack(">I", 300)          # session expiry: keep the session
        var = utf8(b"MQTT") + b"\x05" + b"\xc0" + struct.pack(">H", 60) + varint(len(props)) + props
        self.send(0x10, var + utf8(client_id.encode()) + utf8(username.encode()) + utf8(b"demo"))
        kind, body = self.read()
        assert kind == 0x20 and body[1] == 0, f"CONNACK {body!r}"
        self.session_present = bool(body[0] & 1)

    def send(self, first, body):
        self.sock.sendall(bytes([first]) + varint(len(body)) + body)

    def read(self):
        return self._read_rest(self.sock.recv(1)[0])

    def _read_rest(self, first):
        length, shift = 0, 0
        while True:
            b = self.sock.recv(1)[0]
            length |= (b & 0x7f) << shift
            shift += 7
            if b < 0x80:
                break
        body = b""
        while len(body) < length:
            body += self.sock.recv(length - len(body))
        return first & 0xf0, body

    def publish_qos2(self, topic, payload, pid, dup=False):
        self.send(0x34 | (0x08 if dup else 0), utf8(topic.encode()) + struct.pack(">H", pid)
                  + b"\x00" + payload.encode())
        kind, body = self.read()
        assert kind == 0x50 and body[:2] == struct.pack(">H", pid), f"PUBREC {body!r}"

    def publish_qos2_unanswered(self, topic, payload, pids):
        """Sends QoS 2 PUBLISHes without waiting, and never their PUBREL;
        returns the reason code of each PUBREC."""
        for pid in pids:
            self.send(0x34, utf8(topic.encode()) + struct.pack(">H", pid) + b"\x00"
                      + payload.encode())
        codes = []
        for _ in pids:
            kind, body = self.read()
            assert kind == 0x50, f"PUBREC {body!r}"
            codes.append(body[2] if len(body) > 2 else 0)
        return codes

    def release(self, pid):
        self.send(0x62, struct.pack(">H", pid))
        kind, _body = self.read()
        assert kind == 0x70, "no PUBCOMP"

    def subscribe(self, topic_filter, qos=1, pid=1):
        self.send(0x82, struct.pack(">H", pid) + b"\x00" + utf8(topic_filter.encode())
                  + bytes([qos]))
        kind, body = self.read()
        assert kind == 0x90 and body[3] == qos, f"SUBACK {body!r}"

    def receive_publish(self):
        """The next PUBLISH, not acknowledged: (dup, packet id, topic)."""
        first = self.sock.recv(1)[0]
        kind, body = self._read_rest(first)
        assert kind == 0x30, f"not a PUBLISH: {kind:#x}"
        n = struct.unpack(">H", body[:2])[0]
        return bool(first & 0x08), struct.unpack(">H", body[2 + n:4 + n])[0], body[2:2 + n]

    def acknowledge(self, pid):
        self.send(0x40, struct.pack(">H", pid))

    def drop(self):
        self.sock.close()


def utf8(b):
    return struct.pack(">H", len(b)) + b


def varint(n):
    out = b""
    while True:
        n, digit = n >> 7, n & 0x7f
        out += bytes([digit | (0x80 if n else 0)])
        if not n:
            return out


class BrokerTestCase(unittest.TestCase):
    """Starts brokers that are stopped, and whose logs are printed, when the
    test ends, whatever its outcome."""

    def start_broker(self, **kwargs):
        broker = Broker(**kwargs)
        self.addCleanup(self._finish_broker, broker)
        return broker.start()

    def broker_expecting_failure(self, **kwargs):
        broker = Broker(**kwargs)
        self.addCleanup(self._finish_broker, broker)
        return broker

    def unstarted_broker(self, **kwargs):
        """A broker whose files the test puts in place (in broker.dir and
        broker.data_dir) before it calls start(); stopped and removed as
        start_broker's are."""
        return self.broker_expecting_failure(**kwargs)

    def client(self, broker, client_id, **kwargs):
        c = Client(broker, client_id, **kwargs)
        self.addCleanup(c.close)
        return c

    @staticmethod
    def _finish_broker(broker):
        broker.stop()
        sys.stderr.write(f"--- broker log ({broker.conf_path}) ---\n{broker.log()}--- end ---\n")
        shutil.rmtree(broker.dir, ignore_errors=True)


def run(cmd, timeout=CLIENT_TIMEOUT_S, check=True, **kwargs):
    """Runs a command-line client; returns the CompletedProcess."""
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


def trace_message(trace_dir, msg_id):
    """`tfctl trace message`'s object for msg_id, or None while the store
    has no such message (the writer commits in batches)."""
    out = run([TFCTL, "trace", "--db", trace_dir, "message", msg_id], check=False)
    return json.loads(out.stdout) if out.returncode == 0 else None


def wait_for(what, probe, timeout=10):
    """Polls probe() until it returns something true, and returns that;
    fails after timeout. The trace store shows an event some ms after it
    happened (its writer commits in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def publish_v5(broker, username, topic, payload, password="demo", qos=1, retain=False):
    """Publishes with mosquitto_pub over MQTT v5; returns the PUBACK reason
    code (0 success, 16 no subscribers, 135 not authorized, ...)."""
    cmd = [MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(broker.port), "-V", "mqttv5", "-d",
           "-q", str(qos), "-t", topic, "-m", payload]
    if username is not None:
        cmd += ["-u", username, "-P", password]
    if retain:
        cmd.append("-r")
    out = run(cmd, check=False)
    for line in out.stdout.splitlines():
        if "received PUBACK" in line:
            return int(line.rsplit("RC:", 1)[1].rstrip(")"))
    raise AssertionError(f"no PUBACK from {cmd}:\n{out.stdout}{out.stderr}")


def main():
    unittest.main(verbosity=2)
