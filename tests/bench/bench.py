"""`make bench`: plain mosquitto against mosquitto with trustflow, and
trustflow's policy engine and trace store at scale.

Throughput: three brokers run side by side on loopback with the same
settings: plain mosquitto, trustflow as shipped (policies, stamps, trace)
and trustflow without a trace store. The same load (tests/bench/loadgen)
runs against each in turn, in rotating order, for several rounds, and the
median msg/s of each and their ratios are reported. On the trustflow
brokers the load is governed: a policy covers the topic, the publisher
and subscribers are identified clients, and every delivery is decided.
Deliveries lost are reported too: a run that loses messages is not a fast
run.

Trace: tracebench records events through the trace writer as the broker
does and queries a store of over 10 million events.

Scale: gen_policies.py writes 100,000 policies and 1,000,000 identities;
policybench loads them and times per-delivery decisions, and what counting
a delivery for the metrics costs.

Relay (`--only relay` runs it alone): two brokers A -> B joined by
mosquitto's MQTT v5 bridge, opened by A, out only; loadgen publishes at A
and subscribes at B. The same for plain mosquitto and for trustflow (B
checks A's stamp and adds its own): msg/s at B and their ratio, then the
latency from publish at A to delivery at B at a steady moderate rate, and
what a relayed message costs B's thread (stampbench relay).
"""

import argparse
import base64
import copy
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402

LOADGEN = os.environ.get("TF_LOADGEN", "loadgen")
POLICYBENCH = os.environ.get("TF_POLICYBENCH", "policybench")
STAMPBENCH = os.environ.get("TF_STAMPBENCH", "stampbench")
TRACEBENCH = os.environ.get("TF_TRACEBENCH", "tracebench")
HERE = os.path.dirname(os.path.abspath(__file__))

# The trustflow broker governs the benchmark topic: the publisher is a
# sensor of the owner, the subscribers a consumer org's clients.
BENCH_IDENTITIES = {
    "trustflow_identities": 1,
    "organizations": {"bench-owner": {}, "bench-consumer": {}},
    "clients": {
        "bench-pub": {"org": "bench-owner", "roles": ["sensor"]},
        "bench-sub": {"org": "bench-consumer", "purposes": ["monitoring"]},
        "bench-pub-2": {"org": "bench-owner", "roles": ["sensor"]},
        "bench-admin": {"org": "bench-owner", "roles": ["trustflow-admin"]},
    },
}
BENCH_POLICY = {
    "trustflow_policy": 1, "id": "bench", "version": 1, "owner": "bench-owner",
    "topics": ["bench/+"],
    "publishers": {"roles": ["sensor"]},
    "consumers": [{"orgs": ["bench-consumer"], "purposes": ["monitoring"],
                   "not_after": "2099-01-01T00:00:00Z"}],
}
# Usernames are checked against a password file, as in production (a
# username nothing checks is refused).
PASSWORDS = {name: "bench" for name in BENCH_IDENTITIES["clients"]}
USERS = ["--pub-user", "bench-pub", "--sub-user", "bench-sub", "--password", "bench"]

# name, loadgen arguments. The trustflow brokers run with the plugin's
# defaults, so they sign with the pool of precomputed nonces.
SCENARIOS = [
    ("1 -> 1, QoS 0", ["--qos", "0", "--messages", "200000", "--subscribers", "1"]),
    ("1 -> 1, QoS 1", ["--qos", "1", "--messages", "200000", "--subscribers", "1"]),
    ("1 -> 50, QoS 0", ["--qos", "0", "--messages", "20000", "--subscribers", "50"]),
    # A city's meters all reporting at the top of the minute: 20,000
    # messages after a quiet spell, in which the signing pool fills.
    ("burst of 20,000", ["--qos", "0", "--messages", "20000", "--subscribers", "1"]),
]
# Seconds of quiet before each run of a scenario (the others need none).
QUIET_S = {"burst of 20,000": 3.0}
# Signing worker counts for the curve of 1 -> 1 QoS 0 against them.
CURVE_WORKERS = [1, 2, 4]
SIZE = 256


# -- relaying between brokers (federation-v1) --------------------------------
# A -> B, one MQTT v5 bridge opened by A, out only, as docs/federation.md
# configures it. Its link logs in at B with a password on loopback TCP, for
# plain mosquitto and trustflow alike (TLS would add the same cost to both,
# and hide the plugin's). The bridge's topic line is the only difference:
# plain mosquitto bridges the benchmark's topics; trustflow bridges the
# egress prefix its plugin publishes each peer's copies on, mapped away.
RELAY_LINK = "bridge-broker-a"
RELAY_PASSWORDS = dict(PASSWORDS, **{RELAY_LINK: "bench"})
RELAY_BRIDGE = """
connection to-broker-b
address 127.0.0.1:{port}
bridge_protocol_version mqttv50
remote_clientid broker-a
remote_username {link}
remote_password bench
cleansession false
notifications false
bridge_attempt_unsubscribe false
topic {topic}
"""
RELAY_TOPIC = {"mosquitto": "bench/# out 1",
               "trustflow": '# out 1 $trustflow/egress/broker-b/ ""'}
# B's organization runs B; the owner's policy lets it have the data (a
# consumer rule without purposes: a broker has none) besides the consumer
# organization whose client subscribes at B. The same file, signed by the
# owner, is in both brokers' policy directories (a peer's copy of the same
# version and bytes changes nothing), so both start governed.
RELAY_POLICY = dict(BENCH_POLICY,
                    consumers=BENCH_POLICY["consumers"] + [{"orgs": ["bench-relay"]}])
RELAY_SCENARIOS = [
    ("relay, QoS 0", ["--qos", "0", "--messages", "100000", "--subscribers", "1"]),
    ("relay, QoS 1", ["--qos", "1", "--messages", "100000", "--subscribers", "1"]),
]
# The latency of a hop: a steady rate well below either's capacity.
RELAY_LATENCY_RATE = 500
RELAY_LATENCY_S = 10
RELAY_LATENCY_QOS = 1
RELAY_STAMPBENCH = 20000


def run_load(broker, args):
    cmd = [LOADGEN, "--port", str(broker.port), "--size", str(SIZE)] + USERS + args
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"loadgen failed ({out.returncode}): {out.stderr}\nbroker log:\n"
                         + broker.log())
    return json.loads(out.stdout)


def machine():
    """One line naming what the numbers were measured on."""
    model = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mosq = subprocess.run([harness.MOSQUITTO, "-h"], capture_output=True, text=True)
    version = (mosq.stdout or mosq.stderr).splitlines()[0]
    return f"{model}, {os.cpu_count()} cores; {version}"


def ed25519_sign_rate():
    """Signatures per second of this machine's OpenSSL (one core)."""
    return ed25519_rates()[0]


def ed25519_rates():
    """Signatures and verifications per second of this machine's OpenSSL
    (one core)."""
    out = subprocess.run(["openssl", "speed", "-seconds", "3", "ed25519"], capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        if "Ed25519" in line and "EdDSA" in line:
            return float(line.split()[-2]), float(line.split()[-1])
    raise SystemExit("openssl speed printed no Ed25519 line:\n" + out)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--scale-policies", type=int, default=100000)
    parser.add_argument("--scale-clients", type=int, default=1000000)
    parser.add_argument("--scale-orgs", type=int, default=100000)
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--only", metavar="SCENARIO",
                        help="run only the throughput scenarios whose name starts so;"
                        " 'relay' runs the relay part alone")
    opts = parser.parse_args()

    print(f"machine: {machine()}")
    print(f"load: {SIZE}-byte payloads, median of {opts.rounds} alternating rounds;"
          " 1 -> 50 counts deliveries", flush=True)
    if os.environ.get("TF_ASAN_RUNTIME"):
        print("warning: this build has sanitizers on; its numbers say nothing about speed")
    # Logging stays off the per-message path in both brokers.
    quiet = ("error", "warning", "notice")
    governed = {"identities": BENCH_IDENTITIES, "policies": {"bench.json": BENCH_POLICY}}
    brokers = {
        "mosquitto": harness.Broker(with_plugin=False, log_types=quiet, passwords=PASSWORDS),
        "trustflow": harness.Broker(with_plugin=True, log_types=quiet, passwords=PASSWORDS,
                                    **governed),
        "no trace": harness.Broker(with_plugin=True, log_types=quiet, passwords=PASSWORDS,
                                   plugin_options={"trace_db": None}, **governed),
    }
    results = []
    scenarios = [(name, args) for name, args in SCENARIOS
                 if not opts.only or name.startswith(opts.only)]
    try:
        for b in brokers.values():
            if scenarios:
                b.start()
        for name, args in scenarios:
            runs = {k: [] for k in brokers}
            for r in range(opts.rounds):
                # Rotate which broker goes first, so none always meets a
                # warmer (or more tired) machine.
                names = list(brokers)
                order = names[r % len(names):] + names[:r % len(names)]
                for k in order:
                    time.sleep(QUIET_S.get(name, 0))
                    runs[k].append(run_load(brokers[k], args))
            row = {"scenario": name, "size": SIZE, "rounds": opts.rounds}
            for k, rs in runs.items():
                row[k] = {
                    "msg_per_s": statistics.median(x["msg_per_s"] for x in rs),
                    "lost": sum(x["lost"] for x in rs),
                    "deliveries": rs[0]["expected"],
                }
            row["ratio"] = row["trustflow"]["msg_per_s"] / row["mosquitto"]["msg_per_s"]
            row["ratio_no_trace"] = row["no trace"]["msg_per_s"] / row["mosquitto"]["msg_per_s"]
            row["trace_cost"] = 1 - row["trustflow"]["msg_per_s"] / row["no trace"]["msg_per_s"]
            results.append(row)
            print(f"{name:<16}" + "".join(
                f" {k} {row[k]['msg_per_s']:>9,.0f} msg/s (lost {row[k]['lost']}) "
                for k in brokers) + f" ratio {row['ratio']:.2f} (without trace"
                f" {row['ratio_no_trace']:.2f}; the trace costs {row['trace_cost']:.0%})",
                flush=True)
    finally:
        for b in brokers.values():
            b.stop()
    for b in brokers.values():
        harness.shutil.rmtree(b.dir, ignore_errors=True)
    if not opts.only:
        results += signing(results[0]["trustflow"]["msg_per_s"], opts.rounds, governed, quiet)
    results += relay(opts, quiet)
    if not opts.only and not opts.skip_scale:
        results += trace_store()
        results.append(scale(opts))
    if opts.json:
        with open(opts.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


def signing(tf_qos0, rounds, governed, quiet):
    """The raw signing rate against trustflow's 1 -> 1 QoS 0 rate, a
    stamp's cost, the signing curve and the guard's alerts."""
    results = []
    # Every stamped message costs one Ed25519 signature on the broker's
    # thread: the raw signing rate bounds a single publisher's rate.
    rate = ed25519_sign_rate()
    print(f"raw Ed25519 signing (openssl speed): {rate:,.0f}/s; trustflow 1 -> 1 QoS 0 reaches"
          f" {tf_qos0 / rate:.0%} of it", flush=True)
    results.append({"scenario": "ed25519", "sign_per_s": rate, "fraction": tf_qos0 / rate})
    cost = json.loads(subprocess.run([STAMPBENCH, "100000"], capture_output=True, text=True,
                                     check=True).stdout)
    print(f"stamp cost, deterministic signing: {cost['stamp_us']:.2f} us per message, of which"
          f" the Ed25519 signature {cost['signature_us']:.2f} us and everything else"
          f" {cost['rest_us']:.2f} us", flush=True)
    print(f"stamp cost with the signing pool (the default): {cost['pool_stamp_us']:.2f} us per"
          f" message on the broker's thread ({cost['pool_workers']} workers filling it;"
          f" {cost['pool_fallbacks']} found it empty; target: at most 4 us)", flush=True)
    results.append(dict(cost, scenario="stamp cost"))
    results.append(signing_curve(rounds, governed, quiet))
    results.append(guard_latency(rounds))
    return results


def signing_curve(rounds, governed, quiet):
    """1 -> 1 QoS 0 with deterministic signing and with the pool filled by
    1, 2, 4 workers, each against plain mosquitto: how the rate follows
    the cores that compute nonces (this machine has os.cpu_count())."""
    args = ["--qos", "0", "--messages", "100000", "--subscribers", "1"]
    brokers = {"mosquitto": harness.Broker(with_plugin=False, log_types=quiet,
                                           passwords=PASSWORDS),
               "deterministic": harness.Broker(with_plugin=True, log_types=quiet,
                                               passwords=PASSWORDS,
                                               plugin_options={"signing": "deterministic"},
                                               **governed)}
    for n in CURVE_WORKERS:
        brokers[f"{n} workers"] = harness.Broker(
            with_plugin=True, log_types=quiet, passwords=PASSWORDS,
            plugin_options={"signing_workers": str(n)}, **governed)
    runs = {k: [] for k in brokers}
    try:
        for b in brokers.values():
            b.start()
        for r in range(rounds):
            names = list(brokers)
            for k in names[r % len(names):] + names[:r % len(names)]:
                runs[k].append(run_load(brokers[k], args)["msg_per_s"])
    finally:
        for b in brokers.values():
            b.stop()
            harness.shutil.rmtree(b.dir, ignore_errors=True)
    plain = statistics.median(runs["mosquitto"])
    row = {"scenario": "signing curve", "mosquitto": plain}
    line = f"signing curve, 1 -> 1 QoS 0 ({os.cpu_count()} cores), ratio to mosquitto:"
    for k in list(brokers)[1:]:
        row[k] = statistics.median(runs[k])
        line += f" {k} {row[k] / plain:.2f}"
    print(line, flush=True)
    return row


def guard_latency(rounds):
    """How long from the first anomalous message to its alert, as an
    administrator subscribed to the alerts sees it: a payload far outside
    its flow's usual size (one message), and a flood far above the flow's
    usual rate (from the flood's first message)."""
    quick = {"guard_rate_factor": "5", "guard_rate_min": "10", "guard_rate_warmup_s": "2"}
    size_ms, rate_ms = [], []
    for _ in range(rounds):
        broker = harness.Broker(with_plugin=True, log_types=("error", "warning"),
                                identities=BENCH_IDENTITIES, passwords=PASSWORDS,
                                policies={"bench.json": BENCH_POLICY}, plugin_options=quick)
        try:
            broker.start()
            admin = harness.Client(broker, "bench-admin", username="bench-admin",
                                   password="bench")
            admin.subscribe("$trustflow/alerts/#")
            pub = harness.Client(broker, "bench-pub", username="bench-pub", password="bench")
            for i in range(60):                         # the flow's usual size
                pub.publish("bench/x", json.dumps({"n": i}), qos=1)
            start = time.monotonic()
            pub.publish("bench/x", json.dumps({"n": 0, "pad": "x" * 5000}), qos=0)
            alert = json.loads(admin.receive().payload)
            size_ms.append((time.monotonic() - start) * 1000)
            assert alert["kind"] == "size-anomaly", alert
            # Another flow: one a second, then a flood.
            pub2 = harness.Client(broker, "bench-pub-2", username="bench-pub-2",
                                  password="bench")
            for i in range(3):
                pub2.publish("bench/x", json.dumps({"n": i}), qos=1)
                time.sleep(1)
            start = time.monotonic()
            for i in range(200):
                pub2.mqtt.publish("bench/x", json.dumps({"n": i}), qos=0)
            while json.loads(admin.receive().payload)["kind"] != "rate-anomaly":
                pass
            rate_ms.append((time.monotonic() - start) * 1000)
            admin.close()
            pub.close()
            pub2.close()
        finally:
            broker.stop()
            harness.shutil.rmtree(broker.dir, ignore_errors=True)
    row = {"scenario": "guard latency", "size_alert_ms": statistics.median(size_ms),
           "rate_alert_ms": statistics.median(rate_ms), "rounds": rounds}
    print(f"guard: first anomalous message to its alert, median of {rounds}: size anomaly"
          f" {row['size_alert_ms']:.1f} ms, rate anomaly (from the flood's first message)"
          f" {row['rate_alert_ms']:.1f} ms (target: under 100 ms)", flush=True)
    return row


def trace_store():
    """The trace writer's rate, the store's size, and queries on a store
    of over 10 million events."""
    rows = []
    for messages, recipients in ((1000000, 1), (200000, 50)):
        work = harness.tempfile.mkdtemp(prefix="tf-tracebench-")
        try:
            out = subprocess.run([TRACEBENCH, work, str(messages), str(recipients), "20"],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout)
        finally:
            harness.shutil.rmtree(work, ignore_errors=True)
        print(f"trace: {r['messages']:,} messages x {r['recipients']} recipients ="
              f" {r['events']:,} events: writer {r['events_per_s']:,.0f} events/s"
              f" ({r['record_us']:.2f} us to hand one over on the broker's thread); store"
              f" {r['bytes_per_million_messages'] / 1e9:.2f} GB per million messages;"
              f" message query median {r['message_query_median_us']:.0f} us,"
              f" p99 {r['message_query_p99_us']:.0f} us; recipients of one policy over a day"
              f" ({r['recipients_deliveries']:,} deliveries) {r['recipients_ms']:.0f} ms;"
              f" verify {r['verify_events_per_s']:,.0f} events/s", flush=True)
        rows.append(dict(r, scenario=f"trace {messages} x {recipients}"))
    # Every page the store uses, per message with its first delivery and
    # per further delivery (targets: at most 500 and 40 bytes).
    one = rows[0]["bytes_per_million_messages"] / 1e6
    fifty = rows[1]["bytes_per_million_messages"] / 1e6
    further = (fifty - one) / 49
    print(f"trace: {one:,.0f} bytes per message with its first delivery (target: at most 500),"
          f" {further:,.1f} per further delivery (target: at most 40); 50 recipients:"
          f" {fifty / 1e3:,.2f} GB per million messages (target: at most 2.5)", flush=True)
    rows.append({"scenario": "trace bytes", "per_message": one, "per_further_delivery": further,
                 "per_million_messages_50_recipients": fifty * 1e6})
    return rows


def scale(opts):
    """Loads a large generated policy set and times decisions."""
    work = harness.tempfile.mkdtemp(prefix="tf-scale-")
    try:
        subprocess.run([sys.executable, "-B", os.path.join(HERE, "gen_policies.py"), work,
                        "--policies", str(opts.scale_policies),
                        "--clients", str(opts.scale_clients),
                        "--orgs", str(opts.scale_orgs)], check=True)
        out = subprocess.run([POLICYBENCH, work, str(opts.scale_policies),
                              str(opts.scale_clients), str(opts.scale_orgs), "1000000"],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout)
    finally:
        harness.shutil.rmtree(work, ignore_errors=True)
    print(f"scale: {r['policies']:,} policies, {r['clients']:,} clients: load"
          f" {r['load_s']:.1f} s, {r['rss_mb']:.0f} MB resident after load"
          f" (peak {r['peak_rss_mb']:.0f} MB); delivery decision median"
          f" {r['decision_median_ns'] / 1000:.2f} us, p99 {r['decision_p99_ns'] / 1000:.2f} us"
          f" over {r['samples']:,} samples; a delivery counted for the metrics median"
          f" {r['metrics_median_ns'] / 1000:.2f} us, p99 {r['metrics_p99_ns'] / 1000:.2f} us,"
          f" {r['metrics_mb']:.0f} MB", flush=True)
    return dict(r, scenario="scale")


# -- relaying between brokers -------------------------------------------------

class RelayPair:
    """Brokers A -> B, plain mosquitto or trustflow (kind), bridged as
    RELAY_BRIDGE says. For trustflow, work holds the owner's key and both
    brokers' stamp keys; each lists the other as a peer."""

    def __init__(self, kind, quiet, work):
        self.kind = kind
        plugin = kind == "trustflow"
        if plugin:
            keys = {n: self._key(work, n) for n in ("owner", "broker-a", "broker-b")}
            ids_a = self._identities(keys, "broker-b", "bench-relay", "bridge-broker-b")
            ids_b = self._identities(keys, "broker-a", "bench-owner", RELAY_LINK)
        self.a = harness.Broker(with_plugin=plugin, log_types=quiet, passwords=RELAY_PASSWORDS,
                                **({"identities": ids_a, "plugin_options": {
                                    "broker_id": "broker-a",
                                    "signing_key": keys["broker-a"][0]}} if plugin else {}))
        self.b = harness.Broker(with_plugin=plugin, log_types=quiet, passwords=RELAY_PASSWORDS,
                                **({"identities": ids_b, "plugin_options": {
                                    "broker_id": "broker-b",
                                    "signing_key": keys["broker-b"][0]}} if plugin else {}))
        if plugin:
            for broker in (self.a, self.b):
                broker.write_policy("bench.json", RELAY_POLICY)
                harness.run([harness.TFCTL, "policy", "sign", "--key", keys["owner"][0],
                             os.path.join(broker.policy_dir, "bench.json")])

    @staticmethod
    def _key(work, name):
        """A new Ed25519 key in work: its file, and its public key as an
        identities file lists it (base64 of the SubjectPublicKeyInfo)."""
        path = os.path.join(work, f"{name}.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", path],
                       check=True, capture_output=True)
        os.chmod(path, 0o600)
        der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        return path, base64.b64encode(der).decode()

    @staticmethod
    def _identities(keys, peer, peer_org, peer_link):
        ids = copy.deepcopy(BENCH_IDENTITIES)
        ids["organizations"]["bench-owner"]["policy_keys"] = [keys["owner"][1]]
        ids["organizations"]["bench-relay"] = {}
        ids["brokers"] = {peer: {"org": peer_org, "link": peer_link, "keys": [keys[peer][1]]}}
        return ids

    def start(self):
        # The receiver first, so that the bridge finds it listening.
        self.b.start()
        self.a.extra_conf = RELAY_BRIDGE.format(port=self.b.port, link=RELAY_LINK,
                                                topic=RELAY_TOPIC[self.kind])
        self.a.start()
        # Ready when messages published at A reach B.
        deadline = time.monotonic() + 30
        while run_relay_load(self, ["--qos", "1", "--messages", "200", "--drain-timeout", "1"],
                             check=False)["lost"]:
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.kind}: nothing bridged from A to B; A's log:\n"
                                 + self.a.log() + "\nB's log:\n" + self.b.log())
        return self

    def stop(self):
        for broker in (self.a, self.b):
            broker.stop()

    def remove(self):
        for broker in (self.a, self.b):
            harness.shutil.rmtree(broker.dir, ignore_errors=True)


def run_relay_load(pair, args, check=True):
    """loadgen publishing at pair's A, subscribing at its B."""
    cmd = [LOADGEN, "--port", str(pair.a.port), "--sub-port", str(pair.b.port),
           "--size", str(SIZE)] + USERS + args
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        if not check:
            return {"lost": 1}
        raise SystemExit(f"loadgen failed ({out.returncode}): {out.stderr}\nA's log:\n"
                         + pair.a.log() + "\nB's log:\n" + pair.b.log())
    return json.loads(out.stdout)


def log_findings(pair):
    """The lines of a pair's logs that say something went wrong: refusals,
    drops, alerts, errors and warnings (but mosquitto's warning that it
    runs as root, which says something of the machine only)."""
    found = []
    for side, broker in (("A", pair.a), ("B", pair.b)):
        for line in broker.log().splitlines():
            low = line.lower()
            if "should not be run as root" in low:
                continue
            if any(w in low for w in ("refused", "dropped", "alert", "error", "warning",
                                      "denied")):
                found.append(f"{pair.kind} {side}: {line}")
    return found


def thread_cpu_s(broker):
    """CPU seconds (user and system) of the broker's main thread, the one
    mosquitto runs every plugin callback on, and of the whole process."""
    def cpu(path):
        with open(path, encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    pid = broker.proc.pid
    return cpu(f"/proc/{pid}/task/{pid}/stat"), cpu(f"/proc/{pid}/stat")


def spread(values, fmt="{:,.0f}"):
    return (fmt + "-" + fmt).format(min(values), max(values))


def relay(opts, quiet):
    """Relay throughput and latency of one hop, plain mosquitto against
    trustflow, and what a relayed message costs the broker's thread."""
    def wanted(name):
        return not opts.only or name.startswith(opts.only)

    scenarios = [(n, a) for n, a in RELAY_SCENARIOS if wanted(n)]
    results = []
    if scenarios or wanted("relay latency"):
        work = harness.tempfile.mkdtemp(prefix="tf-relay-")
        pairs = {k: RelayPair(k, quiet, work) for k in ("mosquitto", "trustflow")}
        print("relay: A -> B over an MQTT v5 bridge (opened by A, out only, QoS 1, the link"
              " logging in with a password on loopback TCP); loadgen publishes at A and"
              " subscribes at B", flush=True)
        try:
            for p in pairs.values():
                p.start()
            for name, args in scenarios:
                results.append(relay_throughput(pairs, name, args, opts.rounds))
            if wanted("relay latency"):
                results.append(relay_latency(pairs, opts.rounds))
        finally:
            for p in pairs.values():
                p.stop()
        findings = [f for p in pairs.values() for f in log_findings(p)]
        print(f"relay: the brokers' logs: {len(findings)} lines of refusals, drops, alerts,"
              " errors or warnings" + "".join(f"\n  {f}" for f in findings[:20]), flush=True)
        results.append({"scenario": "relay logs", "findings": findings})
        for p in pairs.values():
            p.remove()
        harness.shutil.rmtree(work, ignore_errors=True)
    if wanted("relay cost"):
        results.append(relay_cost())
    return results


def relay_throughput(pairs, name, args, rounds):
    """msg/s at B, and the CPU time per message of each broker's main
    thread (mosquitto's, which every plugin callback runs on) and of the
    whole process (with the trace writer and the signing workers)."""
    runs = {k: [] for k in pairs}
    for r in range(rounds):
        names = list(pairs)
        for k in names[r % len(names):] + names[:r % len(names)]:
            pair = pairs[k]
            before = thread_cpu_s(pair.a) + thread_cpu_s(pair.b)
            run = run_relay_load(pair, args)
            after = thread_cpu_s(pair.a) + thread_cpu_s(pair.b)
            for i, what in enumerate(("a_thread_us", "a_process_us", "b_thread_us",
                                      "b_process_us")):
                run[what] = (after[i] - before[i]) * 1e6 / max(run["received"], 1)
            runs[k].append(run)
    row = {"scenario": name, "size": SIZE, "rounds": rounds}
    for k, rs in runs.items():
        row[k] = {
            "msg_per_s": statistics.median(x["msg_per_s"] for x in rs),
            "rounds_msg_per_s": [x["msg_per_s"] for x in rs],
            "lost": sum(x["lost"] for x in rs),
            "messages": rs[0]["expected"],
        }
        for what in ("a_thread_us", "a_process_us", "b_thread_us", "b_process_us"):
            row[k][what] = statistics.median(x[what] for x in rs)
    row["ratio"] = row["trustflow"]["msg_per_s"] / row["mosquitto"]["msg_per_s"]
    ratios = [t["msg_per_s"] / m["msg_per_s"] for t, m in zip(runs["trustflow"], runs["mosquitto"])]
    row["rounds_ratio"] = ratios
    print(f"{name:<16}" + "".join(
        f" {k} {row[k]['msg_per_s']:>9,.0f} msg/s at B (lost {row[k]['lost']};"
        f" rounds {spread(row[k]['rounds_msg_per_s'])}) " for k in pairs)
        + f" ratio {row['ratio']:.2f} (rounds {spread(ratios, '{:.2f}')})", flush=True)
    print(f"{'':<16} CPU per message, main thread (whole process):" + ";".join(
        f" {k} A {row[k]['a_thread_us']:.1f} us ({row[k]['a_process_us']:.1f}),"
        f" B {row[k]['b_thread_us']:.1f} us ({row[k]['b_process_us']:.1f})" for k in pairs),
        flush=True)
    return row


def relay_latency(pairs, rounds):
    """Publish at A to delivery at B, RELAY_LATENCY_RATE messages a second
    for RELAY_LATENCY_S seconds per round, timed by loadgen in one process."""
    args = ["--qos", str(RELAY_LATENCY_QOS), "--rate", str(RELAY_LATENCY_RATE),
            "--messages", str(RELAY_LATENCY_RATE * RELAY_LATENCY_S), "--subscribers", "1"]
    runs = {k: [] for k in pairs}
    for r in range(rounds):
        names = list(pairs)
        for k in names[r % len(names):] + names[:r % len(names)]:
            runs[k].append(run_relay_load(pairs[k], args))
    row = {"scenario": "relay latency", "rate": RELAY_LATENCY_RATE,
           "seconds": RELAY_LATENCY_S, "qos": RELAY_LATENCY_QOS, "rounds": rounds}
    line = (f"relay latency, publish at A to delivery at B, {RELAY_LATENCY_RATE} msg/s QoS"
            f" {RELAY_LATENCY_QOS} for {RELAY_LATENCY_S} s, median of {rounds} rounds:")
    for k, rs in runs.items():
        row[k] = {q: statistics.median(x[f"latency_{q}_us"] for x in rs)
                  for q in ("p50", "p99", "p999", "max")}
        row[k]["rounds_p50_us"] = [x["latency_p50_us"] for x in rs]
        row[k]["rounds_p99_us"] = [x["latency_p99_us"] for x in rs]
        row[k]["lost"] = sum(x["lost"] for x in rs)
        line += (f" {k} p50 {row[k]['p50']:.0f} us (rounds {spread(row[k]['rounds_p50_us'])}),"
                 f" p99 {row[k]['p99']:.0f} us (rounds {spread(row[k]['rounds_p99_us'])}),"
                 f" lost {row[k]['lost']};")
    row["added_p50_us"] = row["trustflow"]["p50"] - row["mosquitto"]["p50"]
    row["added_p99_us"] = row["trustflow"]["p99"] - row["mosquitto"]["p99"]
    print(line + f" a trustflow hop adds {row['added_p50_us']:.0f} us at p50,"
          f" {row['added_p99_us']:.0f} us at p99", flush=True)
    return row


def relay_cost():
    """What relaying adds on the broker's thread per message: checking the
    peer's stamp (one Ed25519 verification) and its own stamp (one
    signature, with the pool or without)."""
    sign, verify = ed25519_rates()
    cost = json.loads(subprocess.run([STAMPBENCH, str(RELAY_STAMPBENCH), "relay"],
                                     capture_output=True, text=True, check=True).stdout)
    print(f"relay cost on the broker's thread (stampbench relay, {cost['relayed']:,} messages,"
          " the thread's CPU time):"
          f" checking the peer's stamp {cost['relay_check_us']:.2f} us (tf_stamp_check"
          f" {cost['stamp_check_us']:.2f} us; the bare Ed25519 verification: OpenSSL"
          f" {cost['verify_openssl_us']:.2f} us, libsodium {cost['verify_sodium_us']:.2f} us),"
          f" its own stamp {cost['relay_stamp_pool_us']:.2f} us with the pool"
          f" ({cost['relay_stamp_us']:.2f} us deterministic): {cost['relay_pool_us']:.2f} us a"
          f" relayed message (this alone bounds one thread at {1e6 / cost['relay_pool_us']:,.0f}"
          " msg/s);"
          f" openssl speed: {sign:,.0f} signatures/s, {verify:,.0f} verifications/s",
          flush=True)
    return dict(cost, scenario="relay cost", openssl_sign_per_s=sign,
                openssl_verify_per_s=verify)


if __name__ == "__main__":
    main()
