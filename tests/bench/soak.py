"""`make soak`: memory of plain mosquitto and of mosquitto with trustflow
under the same steady, mixed load, for a given time and then idle.

Brokers run side by side on loopback with the same mosquitto settings:
plain mosquitto and trustflow as shipped (policies, stamps, the trace
store, the guard) by default; --variants adds trustflow with parts turned
off by their plugin options, to find which part grows. Each broker gets a
load driver of its own (this script again, as a child process with
--drive) that offers the same mixed load:

- many clients (--clients): sensors that stay connected, gateways that
  come and go with a will and drop without DISCONNECT half the time
  (fresh client ids, clean sessions), subscribers that stay, and
  subscribers with persistent sessions that disconnect and come back
  (their messages queue in the broker meanwhile);
- publishes at a steady offered rate (--rate, in all), QoS 0, 1 and 2,
  some retained, on topics three owners' policies govern (a schema, a
  view, a retention, forwarding deny, a rate limit) and on ungoverned
  ones, a few on fresh topics, and some that the policies refuse (a
  sensor publishing on another owner's topic);
- a policy reload (SIGHUP, one policy's version raised) every
  --reload-every seconds, on every broker alike.

The driver never sends more than the rate: when it falls behind it skips
(and counts) rather than bursts, so the brokers' queues hold what a
steady load makes them hold.

Every --sample seconds the memory of each broker is read: VmRSS, RssAnon
(its heap and other private memory: what the issue calls heap) and
RssFile (mapped files: the trace store's LMDB map) from /proc/PID/status,
and mosquitto's own accounted heap, $SYS/broker/heap/current, to which a
sampler client subscribes. After the load, sampling goes on for --idle
seconds with no load, to show whether memory comes back.

mosquitto's counter overstates: mosquitto (2.0.11, and later 2.0 releases)
allocates each MQTT v5 property through its accounting and frees the
property itself with free(), so every property a message carries adds
about 56 bytes that never come off. trustflow's stamp is eleven user
properties: about 616 bytes more in the counter per stamped message, with
no memory behind them (RssAnon shows it). The plugin's share is read from
RssAnon and RSS; the $SYS figures are reported for what they are.

The report gives, per broker: start, peak, end of load and after idle;
the growth in MB a minute over the second half of the load (least
squares); the plugin's share, estimated as (trustflow - plain) and as
(RSS - $SYS heap) of trustflow against plain; and the messages sent and
delivered. --json writes it all, with every sample.

Everything lives in temporary directories that are removed at the end, also
when the run is interrupted (SIGINT, SIGTERM, SIGHUP): the brokers and
drivers are stopped by their pids.
"""

import argparse
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
import paho.mqtt.client as paho  # noqa: E402

PASSWORD = "soak"
SAMPLER = "soak-sampler"
OWNERS = ("water", "power", "freight")
SHARDS = 32             # subscribers split the telemetry by shard: fan-out ~2
KEEPALIVE_S = 60

# Plugin options of the variants --variants may name. "mosquitto" is the
# plain broker; the rest are trustflow with some parts off.
GUARD_OFF = {"guard_rate_factor": "0", "guard_size_factor": "0", "guard_denied_burst": "0",
             "guard_leak_window_s": "0"}
VARIANTS = {
    "mosquitto": None,
    "trustflow": {},
    "no-trace": {"trace_db": None},
    "no-guard": GUARD_OFF,
    "no-stamp-all": {"stamp_all": "false"},
    "bare": dict(GUARD_OFF, trace_db=None, stamp_all="false"),
}


# --- the population ---------------------------------------------------------

def population(n_clients):
    """The clients of the load: (name, kind, org). Kinds: sensor (stays
    connected, publishes), gateway (publishes, comes and goes with a
    will), subscriber (stays), persistent (a persistent session that
    disconnects and comes back). Usernames are the names; the consumer
    orgs are city (monitoring) and lab (research, a view of water)."""
    counts = {"sensor": n_clients * 35 // 100, "gateway": n_clients * 15 // 100}
    counts["subscriber"] = (n_clients - counts["sensor"] - counts["gateway"]) // 2
    counts["persistent"] = n_clients - sum(counts.values())
    readers = ("city", "lab", "city", "lab") + OWNERS
    out = []
    for kind, count in counts.items():
        for i in range(count):
            org = OWNERS[i % len(OWNERS)] if kind in ("sensor", "gateway") \
                else readers[i % len(readers)]
            out.append((f"{kind}-{org}-{i}", kind, org))
    return out


def identities(clients):
    ids = {"trustflow_identities": 1,
           "organizations": {org: {} for org in OWNERS + ("city", "lab")},
           "clients": {SAMPLER: {"org": "water", "roles": ["trustflow-admin"]}}}
    for name, kind, org in clients:
        entry = {"org": org}
        if kind in ("sensor", "gateway"):
            entry["roles"] = ["sensor"]
        elif org == "city":
            entry["purposes"] = ["monitoring"]
        elif org == "lab":
            entry["purposes"] = ["research"]
        ids["clients"][name] = entry
    return ids


def policies(version):
    """The three owners' policies; version goes into water's, which each
    reload raises."""
    common = {"trustflow_policy": 1, "publishers": {"roles": ["sensor"]}}
    far = "2099-01-01T00:00:00Z"
    return {
        "water.json": dict(common, id="water", version=version, owner="water",
                           topics=["water/telemetry/#", "water/status/+"],
                           consumers=[{"orgs": ["city"], "purposes": ["monitoring"],
                                       "not_after": far},
                                      {"orgs": ["lab"], "fields": ["flow"],
                                       "view": "views/lab"}],
                           retention_seconds=300, forwarding="deny",
                           limits={"max_messages_per_second": 50, "max_payload_bytes": 4096},
                           schema={"type": "object", "required": ["flow"],
                                   "properties": {"flow": {"type": "number"}}}),
        "power.json": dict(common, id="power", version=1, owner="power",
                           topics=["power/telemetry/#", "power/status/+"],
                           consumers=[{"orgs": ["city", "lab"]}]),
        "freight.json": dict(common, id="freight", version=1, owner="freight",
                             topics=["freight/telemetry/#", "freight/status/+"],
                             consumers=[{"orgs": ["lab"], "purposes": ["research"]}],
                             on_anomaly={"action": "alert"}),
    }


def subscriptions(name, org, index):
    """(filter, QoS) of a subscriber: its shard of what its org may read
    (and, for some, what it may not: those deliveries are withheld), the
    ungoverned topics of its shard, and for one in four the retained
    status topics."""
    shard = index % SHARDS
    reads = {"city": ["water", "power"], "lab": ["power", "freight"]}.get(org, [org])
    subs = [f"{o}/telemetry/{shard}/#" for o in reads]
    if org == "lab":
        subs.append(f"views/lab/water/telemetry/{shard}/#")
        if index % 4 == 1:
            subs.append(f"water/telemetry/{shard}/#")        # refused or withheld
    subs.append(f"open/{shard}/#")
    if index % 4 == 0:
        subs += [f"{o}/status/+" for o in reads]
    qos = 1 if name.startswith("subscriber") else 1 + index % 2
    return [(s, qos) for s in subs]


# --- the load driver (a child process per broker) ----------------------------

class Actor:
    """One client of the load and its life cycle."""

    def __init__(self, driver, name, kind, org, index):
        self.driver, self.name, self.kind, self.org, self.index = driver, name, kind, org, index
        self.mqtt = None
        self.fd = None
        self.connected = False
        self.generation = 0          # gateways: a fresh client id each time
        self.next_change = 0.0       # when to disconnect or come back
        self.next_misc = 0.0
        self.seq = 0

    def client_id(self):
        if self.kind == "gateway":
            return f"{self.name}-{self.generation}"
        return self.name

    def connect(self, now):
        rng = self.driver.rng
        persistent = self.kind == "persistent"
        version = paho.MQTTv5 if self.kind == "gateway" and self.index % 2 else paho.MQTTv311
        if version == paho.MQTTv5:
            c = paho.Client(client_id=self.client_id(), protocol=version)
        else:
            c = paho.Client(client_id=self.client_id(), protocol=version,
                            clean_session=not persistent)
        c.username_pw_set(self.name, PASSWORD)
        c.max_queued_messages_set(1000)
        c.on_connect = self.on_connect
        c.on_message = self.on_message
        c.on_disconnect = self.on_disconnect
        c.on_socket_close = self.on_socket_close
        if self.kind == "gateway":
            # A will on its own status topic, retained, as devices do.
            c.will_set(f"{self.org}/status/{self.name}",
                       json.dumps({"flow": 0, "online": False}), qos=1, retain=True)
        try:
            c.connect("127.0.0.1", self.driver.port, keepalive=KEEPALIVE_S)
        except OSError:
            self.driver.stats["connect_errors"] += 1
            self.next_change = now + 1.0
            return
        self.mqtt = c
        self.fd = c.socket().fileno()
        self.driver.register(self)
        self.next_misc = now + 1.0
        self.driver.stats["connects"] += 1
        if self.kind == "gateway":
            self.next_change = now + rng.uniform(5, 20)
        elif self.kind == "persistent":
            self.next_change = now + rng.uniform(20, 60)
        else:
            self.next_change = float("inf")

    def on_connect(self, client, _userdata, _flags, rc, _props=None):
        if int(getattr(rc, "value", rc)) != 0:
            self.driver.stats["connect_refused"] += 1
            return
        self.connected = True
        if self.kind in ("subscriber", "persistent"):
            client.subscribe(subscriptions(self.name, self.org, self.index))
        if self.kind == "gateway":
            client.publish(f"{self.org}/status/{self.name}",
                           json.dumps({"flow": 1, "online": True}), qos=1, retain=True)

    def on_message(self, _client, _userdata, msg):
        self.driver.stats["received"] += 1
        if msg.retain:
            self.driver.stats["received_retained"] += 1

    def on_disconnect(self, _client, _userdata, rc, _props=None):
        self.connected = False
        if self.mqtt is not None and self.driver.phase == "load":
            # Not ours: the broker closed it. Come back in a while.
            self.driver.stats["dropped_by_broker"] += 1
            self.next_change = time.monotonic() + 2.0

    def on_socket_close(self, _client, _userdata, _sock):
        self.driver.unregister(self)

    def go(self, now, abrupt):
        """Leaves: DISCONNECT, or (abrupt) a closed socket, after which the
        broker publishes the will."""
        c, self.mqtt = self.mqtt, None
        self.connected = False
        if c is not None:
            if abrupt:
                self.driver.stats["abrupt_drops"] += 1
                c._reset_sockets()          # no DISCONNECT: the will goes out
            else:
                c.disconnect()
                c._reset_sockets()
        self.driver.unregister(self)
        self.generation += 1
        rng = self.driver.rng
        self.next_change = now + (rng.uniform(1, 3) if self.kind == "gateway"
                                  else rng.uniform(3, 10))

    def change(self, now):
        if self.mqtt is None:
            self.connect(now)
        elif self.kind == "gateway":
            self.go(now, abrupt=self.driver.rng.random() < 0.5)
        elif self.kind == "persistent":
            self.go(now, abrupt=False)

    def publish(self):
        """One publish of the mixed load; returns its kind for the counts."""
        rng = self.driver.rng
        self.seq += 1
        shard = rng.randrange(SHARDS)
        qos = rng.choices((0, 1, 2), weights=(50, 35, 15))[0]
        retain = False
        r = rng.random()
        payload = {"flow": round(rng.uniform(0, 100), 3), "seq": self.seq, "pad": "x" * 120}
        if r < 0.02:
            # Another owner's topic: the policies refuse it.
            other = OWNERS[(OWNERS.index(self.org) + 1) % len(OWNERS)]
            topic, kind = f"{other}/telemetry/{shard}/{self.name}", "refused"
        elif r < 0.07:
            topic, retain, kind = f"{self.org}/status/{self.name}", True, "retained"
        elif r < 0.12:
            # A fresh topic every time: tables keyed by topic must not grow.
            topic, kind = f"{self.org}/telemetry/{shard}/{self.name}/{self.seq}", "fresh"
        elif r < 0.25:
            topic, kind = f"open/{shard}/{self.org}/{self.name}", "ungoverned"
        else:
            topic, kind = f"{self.org}/telemetry/{shard}/{self.name}", "governed"
        self.mqtt.publish(topic, json.dumps(payload), qos=qos, retain=retain)
        return kind, qos


class Driver:
    def __init__(self, port, clients, rate, seconds, seed):
        self.port, self.rate, self.seconds = port, rate, seconds
        self.rng = random.Random(seed)
        self.epoll = select.epoll()
        self.by_fd = {}
        self.phase = "load"
        self.stats = {k: 0 for k in ("sent", "skipped", "received", "received_retained",
                                     "connects", "connect_errors", "connect_refused",
                                     "abrupt_drops", "dropped_by_broker")}
        self.sent_by = {}
        self.actors = [Actor(self, name, kind, org, i)
                       for i, (name, kind, org) in enumerate(clients)]
        self.stop = False

    def register(self, actor):
        self.by_fd[actor.fd] = actor
        try:
            self.epoll.register(actor.fd, select.EPOLLIN)
        except FileExistsError:
            self.epoll.modify(actor.fd, select.EPOLLIN)

    def unregister(self, actor):
        if actor.fd is not None and self.by_fd.get(actor.fd) is actor:
            del self.by_fd[actor.fd]
            try:
                self.epoll.unregister(actor.fd)
            except (OSError, ValueError):
                pass                        # closed already: epoll forgot it
        actor.fd = None

    def publishers(self):
        return [a for a in self.actors
                if a.kind in ("sensor", "gateway") and a.connected and a.mqtt is not None]

    def run(self):
        start = time.monotonic()
        for a in self.actors:
            a.connect(start)
        sent = 0
        t0 = time.monotonic()
        end = t0 + self.seconds
        while not self.stop and time.monotonic() < end:
            now = time.monotonic()
            due = int((now - t0) * self.rate) - sent
            if due > self.rate:             # over a second behind: skip, never burst
                self.stats["skipped"] += due - 1
                sent += due - 1
                due = 1
            pubs = self.publishers() if due > 0 else []
            for _ in range(due if pubs else 0):
                actor = self.rng.choice(pubs)
                kind, qos = actor.publish()
                key = f"{kind} qos{qos}"
                self.sent_by[key] = self.sent_by.get(key, 0) + 1
                self.stats["sent"] += 1
            sent += due
            for a in self.actors:
                if now >= a.next_change:
                    a.change(now)
                if a.mqtt is not None and now >= a.next_misc:
                    a.mqtt.loop_misc()
                    a.next_misc = now + 1.0
            self.poll(0.005)
        self.phase = "done"
        # Let the last deliveries arrive, then leave cleanly.
        drain_end = time.monotonic() + 3.0
        while not self.stop and time.monotonic() < drain_end:
            self.poll(0.05)
        for a in self.actors:
            if a.mqtt is not None:
                a.go(time.monotonic(), abrupt=False)
        return dict(self.stats, sent_by=self.sent_by, seconds=time.monotonic() - t0)

    def poll(self, timeout):
        for fd, _events in self.epoll.poll(timeout):
            actor = self.by_fd.get(fd)
            if actor is None or actor.mqtt is None:
                continue
            c = actor.mqtt
            # loop_read takes a packet or so a call: read on while bytes wait.
            for _ in range(64):
                if c.loop_read() != paho.MQTT_ERR_SUCCESS or actor.mqtt is None \
                        or not readable(c):
                    break
        for a in self.actors:
            if a.mqtt is not None and a.mqtt.want_write():
                a.mqtt.loop_write()


def readable(client):
    """Whether the client's socket holds unread bytes."""
    sock = client.socket()
    if sock is None:
        return False
    p = select.poll()
    p.register(sock, select.POLLIN)
    return bool(p.poll(0))


def drive(opts):
    clients = population(opts.clients)
    driver = Driver(opts.port, clients, opts.rate, opts.seconds, opts.seed)

    def stop(_sig, _frame):
        driver.stop = True
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    result = driver.run()
    print(json.dumps(result), flush=True)


# --- sampling -----------------------------------------------------------------

def proc_memory(pid):
    """kB figures of /proc/PID/status: VmRSS, RssAnon, RssFile, VmHWM."""
    out = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


class SysHeap:
    """mosquitto's own heap counter ($SYS/broker/heap/current), as a
    client allowed to read $SYS sees it."""

    def __init__(self, broker):
        self.value = None
        self.messages_stored = None
        self.lock = threading.Lock()
        self.mqtt = paho.Client(client_id=SAMPLER, protocol=paho.MQTTv311)
        self.mqtt.username_pw_set(SAMPLER, PASSWORD)
        self.mqtt.on_connect = lambda c, *_: c.subscribe([
            ("$SYS/broker/heap/current", 0), ("$SYS/broker/store/messages/count", 0)])
        self.mqtt.on_message = self.on_message
        self.mqtt.connect("127.0.0.1", broker.port, keepalive=KEEPALIVE_S)
        self.mqtt.loop_start()

    def on_message(self, _c, _u, msg):
        try:
            value = int(msg.payload.split()[0])
        except (ValueError, IndexError):
            return
        with self.lock:
            if msg.topic.endswith("heap/current"):
                self.value = value
            else:
                self.messages_stored = value

    def read(self):
        with self.lock:
            return self.value, self.messages_stored

    def close(self):
        self.mqtt.disconnect()
        self.mqtt.loop_stop()


# --- the run --------------------------------------------------------------------

def make_broker(variant, clients, quiet):
    passwords = {name: PASSWORD for name, _k, _o in clients}
    passwords[SAMPLER] = PASSWORD
    options = VARIANTS[variant]
    if options is None:
        broker = harness.Broker(with_plugin=False, log_types=quiet, passwords=passwords)
    else:
        # default_access allow: the ungoverned topics carry traffic too.
        opts = {"default_access": "allow"}
        opts.update(options)
        broker = harness.Broker(with_plugin=True, log_types=quiet, passwords=passwords,
                                identities=identities(clients), policies=policies(1),
                                plugin_options=opts)
    # trustflow defers on $SYS topics to mosquitto's other controls; this
    # ACL file lets every client read $SYS and leaves all else open (the
    # plugin decides it first). Every broker gets it, for the same settings.
    acl = os.path.join(broker.dir, "acl")
    with open(acl, "w", encoding="utf-8") as f:
        f.write("pattern readwrite #\npattern read $SYS/#\n")
    broker.extra_conf = f"acl_file {acl}\nsys_interval 5\n"
    broker.variant = variant
    return broker


def slope_mb_per_min(points):
    """Least-squares slope of (seconds, kB) points, in MB a minute."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    if sxx == 0:
        return None
    sxy = sum((t - mx) * (v - my) for t, v in points)
    return sxy / sxx * 60 / 1024


def summarize(samples, key, load_s):
    """start, peak, end of load, after idle (MB) and the steady slope."""
    series = [(s["t"], s[key]) for s in samples if s.get(key) is not None]
    if not series:
        return None
    during = [p for p in series if p[0] <= load_s]
    second_half = [p for p in during if p[0] >= load_s / 2]
    mb = lambda kb: round(kb / 1024, 1)  # noqa: E731
    return {"start_mb": mb(series[0][1]), "peak_mb": mb(max(v for _, v in series)),
            "end_of_load_mb": mb(during[-1][1]) if during else None,
            "after_idle_mb": mb(series[-1][1]),
            "slope_mb_per_min": (round(slope_mb_per_min(second_half), 3)
                                 if len(second_half) >= 2 else None)}


class Run:
    def __init__(self, opts):
        self.opts = opts
        self.clients = population(opts.clients)
        quiet = ("error", "warning")
        self.brokers = [make_broker(v, self.clients, quiet) for v in opts.variants]
        self.drivers = {}
        self.heaps = {}
        self.samples = {b.variant: [] for b in self.brokers}
        self.version = 1

    def start(self):
        for b in self.brokers:
            b.start()
            self.heaps[b.variant] = SysHeap(b)
        for b in self.brokers:
            self.drivers[b.variant] = subprocess.Popen(
                [sys.executable, "-B", os.path.abspath(__file__), "--drive",
                 "--port", str(b.port), "--clients", str(self.opts.clients),
                 "--rate", str(self.opts.rate), "--seconds", str(self.opts.seconds),
                 "--seed", str(self.opts.seed)],
                stdout=subprocess.PIPE, text=True, start_new_session=True)

    def sample(self, t):
        for b in self.brokers:
            heap, stored = self.heaps[b.variant].read()
            row = {"t": round(t, 1)}
            row.update(proc_memory(b.proc.pid))
            row["sys_heap_kb"] = heap // 1024 if heap is not None else None
            row["messages_stored"] = stored
            row["rss_minus_sys_kb"] = row["VmRSS"] - row["sys_heap_kb"] \
                if heap is not None else None
            self.samples[b.variant].append(row)

    def reload(self):
        """A policy reload on every broker: water's version goes up by one
        (plain mosquitto rereads its configuration)."""
        self.version += 1
        for b in self.brokers:
            if b.with_plugin:
                b.write_policy("water.json", policies(self.version)["water.json"])
            b.proc.send_signal(signal.SIGHUP)

    def go(self):
        o = self.opts
        self.start()
        t0 = time.monotonic()
        next_sample, next_reload = 0.0, o.reload_every
        load_end, end = o.seconds, o.seconds + o.idle
        last_print = -60.0
        while True:
            t = time.monotonic() - t0
            if t >= end:
                break
            for b in self.brokers:
                if b.proc.poll() is not None:
                    raise SystemExit(f"{b.variant} stopped (status {b.proc.returncode});"
                                     f" log:\n{b.log()}")
            if t >= next_sample:
                self.sample(t)
                next_sample += o.sample
                if t - last_print >= 60 or t < 1:
                    last_print = t
                    print(f"{t:6.0f} s " + "  ".join(
                        f"{v}: RSS {s[-1]['VmRSS'] / 1024:.1f} MB" for v, s in
                        self.samples.items()), flush=True)
            if t < load_end and t >= next_reload:
                self.reload()
                next_reload += o.reload_every
            time.sleep(0.2)
        return {v: json.loads(d.communicate(timeout=60)[0] or "{}")
                for v, d in self.drivers.items()}

    def stop(self):
        for d in self.drivers.values():
            if d.poll() is None:
                d.send_signal(signal.SIGTERM)
                try:
                    d.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    d.kill()
                    d.wait()
        for h in self.heaps.values():
            h.close()
        for b in self.brokers:
            b.stop()
            shutil.rmtree(b.dir, ignore_errors=True)


def report(opts, samples, loads):
    out = {"date": time.strftime("%Y-%m-%d"), "seconds": opts.seconds, "idle": opts.idle,
           "rate": opts.rate, "clients": opts.clients, "reload_every": opts.reload_every,
           "brokers": {}}
    for variant, rows in samples.items():
        out["brokers"][variant] = {
            "rss": summarize(rows, "VmRSS", opts.seconds),
            "anon": summarize(rows, "RssAnon", opts.seconds),
            "file": summarize(rows, "RssFile", opts.seconds),
            "sys_heap": summarize(rows, "sys_heap_kb", opts.seconds),
            "rss_minus_sys_heap": summarize(rows, "rss_minus_sys_kb", opts.seconds),
            "load": loads.get(variant, {}),
        }
    plain = out["brokers"].get("mosquitto")
    print(f"\nsoak: {opts.seconds} s of load at {opts.rate} msg/s offered, {opts.clients}"
          f" clients, a reload every {opts.reload_every} s, then {opts.idle} s idle")
    print("MB: start / peak / end of load / after idle; slope: MB a minute over the second"
          " half of the load")
    for variant, b in out["brokers"].items():
        print(f"\n{variant}: sent {b['load'].get('sent', 0):,} (skipped"
              f" {b['load'].get('skipped', 0):,}), delivered {b['load'].get('received', 0):,}")
        for key, label in (("rss", "RSS"), ("anon", "RssAnon (heap)"),
                           ("file", "RssFile (maps)"), ("sys_heap", "$SYS heap"),
                           ("rss_minus_sys_heap", "RSS - $SYS heap")):
            s = b[key]
            if s is None:
                print(f"  {label:<16} not available")
                continue
            print(f"  {label:<16} {s['start_mb']:8.1f} {s['peak_mb']:8.1f}"
                  f" {s['end_of_load_mb']:8.1f} {s['after_idle_mb']:8.1f}"
                  f"   slope {s['slope_mb_per_min']} MB/min")
        if plain is not None and b is not plain:
            share = {}
            for key in ("rss", "anon", "rss_minus_sys_heap"):
                if b[key] and plain[key]:
                    share[key] = {
                        "end_of_load_mb": round(b[key]["end_of_load_mb"]
                                                - plain[key]["end_of_load_mb"], 1),
                        "after_idle_mb": round(b[key]["after_idle_mb"]
                                               - plain[key]["after_idle_mb"], 1),
                        "slope_mb_per_min": round((b[key]["slope_mb_per_min"] or 0)
                                                  - (plain[key]["slope_mb_per_min"] or 0), 3)}
            b["plugin_share"] = share
            for key, s in share.items():
                print(f"  plugin's share by {key} (this - mosquitto): end of load"
                      f" {s['end_of_load_mb']} MB, after idle {s['after_idle_mb']} MB,"
                      f" slope {s['slope_mb_per_min']} MB/min")
    if any(v != "mosquitto" for v in out["brokers"]):
        print("\nnote: $SYS heap counts about 56 bytes for each MQTT v5 property ever freed"
              " (mosquitto frees them with free()): a stamp's 11 properties add ~616 bytes a"
              " message that are not memory. Judge by RssAnon and RSS.")
    if opts.json:
        out["samples"] = samples
        with open(opts.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    env = os.environ.get
    parser.add_argument("--seconds", type=int, default=int(env("SOAK_SECONDS", "600")),
                        help="of load (SOAK_SECONDS; default 600)")
    parser.add_argument("--idle", type=int, default=int(env("SOAK_IDLE", "60")),
                        help="of sampling after the load (SOAK_IDLE; default 60)")
    parser.add_argument("--rate", type=int, default=int(env("SOAK_RATE", "600")),
                        help="publishes a second offered to each broker (default 600)")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--reload-every", type=int, default=20)
    parser.add_argument("--sample", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--variants", default="mosquitto,trustflow",
                        help="comma-separated, of: " + ", ".join(VARIANTS))
    parser.add_argument("--json", help="also write the report and every sample here")
    parser.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.drive:
        drive(opts)
        return
    opts.variants = [v for v in opts.variants.split(",") if v]
    for v in opts.variants:
        if v not in VARIANTS:
            parser.error(f"unknown variant {v!r}")
    if not 10 <= opts.clients <= 1000 or not 1 <= opts.rate <= 100000 or opts.seconds < 10 \
            or opts.idle < 0 or opts.sample <= 0 or opts.reload_every < 1:
        parser.error("out of range: --clients 10..1000, --rate 1..100000, --seconds >= 10")
    if os.environ.get("TF_ASAN_RUNTIME"):
        print("warning: this build has sanitizers on; its memory says nothing", flush=True)

    def interrupted(sig, _frame):
        raise SystemExit(f"soak: stopped by signal {sig}")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    run = Run(opts)
    try:
        loads = run.go()
    finally:
        run.stop()
    report(opts, run.samples, loads)


if __name__ == "__main__":
    main()
