"""`make bench`: plain mosquitto against mosquitto with trustflow, and
trustflow's policy engine at scale.

Throughput: both brokers run side by side on loopback with the same
settings; the same load (tests/bench/loadgen) runs against each in turn,
alternating, for several rounds, and the median msg/s of each and their
ratio are reported. On the trustflow broker the load is governed: a policy
covers the topic, the publisher and subscribers are identified clients,
and every delivery is decided. Deliveries lost are reported too: a run
that loses messages is not a fast run.

Scale: gen_policies.py writes 100,000 policies and 1,000,000 identities;
policybench loads them and times per-delivery decisions.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402

LOADGEN = os.environ.get("TF_LOADGEN", "loadgen")
POLICYBENCH = os.environ.get("TF_POLICYBENCH", "policybench")
STAMPBENCH = os.environ.get("TF_STAMPBENCH", "stampbench")
HERE = os.path.dirname(os.path.abspath(__file__))

# The trustflow broker governs the benchmark topic: the publisher is a
# sensor of the owner, the subscribers a consumer org's clients.
BENCH_IDENTITIES = {
    "trustflow_identities": 1,
    "organizations": {"bench-owner": {}, "bench-consumer": {}},
    "clients": {
        "bench-pub": {"org": "bench-owner", "roles": ["sensor"]},
        "bench-sub": {"org": "bench-consumer", "purposes": ["monitoring"]},
    },
}
BENCH_POLICY = {
    "trustflow_policy": 1, "id": "bench", "version": 1, "owner": "bench-owner",
    "topics": ["bench/+"],
    "publishers": {"roles": ["sensor"]},
    "consumers": [{"orgs": ["bench-consumer"], "purposes": ["monitoring"],
                   "not_after": "2099-01-01T00:00:00Z"}],
}
USERS = ["--pub-user", "bench-pub", "--sub-user", "bench-sub"]

# name, loadgen arguments
SCENARIOS = [
    ("1 -> 1, QoS 0", ["--qos", "0", "--messages", "200000", "--subscribers", "1"]),
    ("1 -> 1, QoS 1", ["--qos", "1", "--messages", "200000", "--subscribers", "1"]),
    ("1 -> 50, QoS 0", ["--qos", "0", "--messages", "20000", "--subscribers", "50"]),
]
SIZE = 256


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
    out = subprocess.run(["openssl", "speed", "-seconds", "3", "ed25519"], capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        if "Ed25519" in line and "EdDSA" in line:
            return float(line.split()[-2])
    raise SystemExit("openssl speed printed no Ed25519 line:\n" + out)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--scale-policies", type=int, default=100000)
    parser.add_argument("--scale-clients", type=int, default=1000000)
    parser.add_argument("--scale-orgs", type=int, default=100000)
    parser.add_argument("--skip-scale", action="store_true")
    opts = parser.parse_args()

    print(f"machine: {machine()}")
    print(f"load: {SIZE}-byte payloads, median of {opts.rounds} alternating rounds;"
          " 1 -> 50 counts deliveries", flush=True)
    if os.environ.get("TF_ASAN_RUNTIME"):
        print("warning: this build has sanitizers on; its numbers say nothing about speed")
    # Logging stays off the per-message path in both brokers.
    quiet = ("error", "warning", "notice")
    brokers = {
        "mosquitto": harness.Broker(with_plugin=False, log_types=quiet),
        "trustflow": harness.Broker(with_plugin=True, log_types=quiet,
                                    identities=BENCH_IDENTITIES,
                                    policies={"bench.json": BENCH_POLICY}),
    }
    results = []
    try:
        for b in brokers.values():
            b.start()
        for name, args in SCENARIOS:
            runs = {k: [] for k in brokers}
            for r in range(opts.rounds):
                # Alternate which broker goes first, so neither always
                # meets a warmer (or more tired) machine.
                order = list(brokers) if r % 2 == 0 else list(reversed(brokers))
                for k in order:
                    runs[k].append(run_load(brokers[k], args))
            row = {"scenario": name, "size": SIZE, "rounds": opts.rounds}
            for k, rs in runs.items():
                row[k] = {
                    "msg_per_s": statistics.median(x["msg_per_s"] for x in rs),
                    "lost": sum(x["lost"] for x in rs),
                    "deliveries": rs[0]["expected"],
                }
            row["ratio"] = row["trustflow"]["msg_per_s"] / row["mosquitto"]["msg_per_s"]
            results.append(row)
            print(f"{name:<16} mosquitto {row['mosquitto']['msg_per_s']:>9,.0f} msg/s"
                  f" (lost {row['mosquitto']['lost']})   trustflow"
                  f" {row['trustflow']['msg_per_s']:>9,.0f} msg/s"
                  f" (lost {row['trustflow']['lost']})   ratio {row['ratio']:.2f}", flush=True)
    finally:
        for b in brokers.values():
            b.stop()
    for b in brokers.values():
        harness.shutil.rmtree(b.dir, ignore_errors=True)
    # Every stamped message costs one Ed25519 signature on the broker's
    # thread: the raw signing rate bounds a single publisher's rate.
    rate = ed25519_sign_rate()
    tf_qos0 = results[0]["trustflow"]["msg_per_s"]
    print(f"raw Ed25519 signing (openssl speed): {rate:,.0f}/s; trustflow 1 -> 1 QoS 0 reaches"
          f" {tf_qos0 / rate:.0%} of it", flush=True)
    results.append({"scenario": "ed25519", "sign_per_s": rate, "fraction": tf_qos0 / rate})
    cost = json.loads(subprocess.run([STAMPBENCH, "100000"], capture_output=True, text=True,
                                     check=True).stdout)
    print(f"stamp cost: {cost['stamp_us']:.2f} us per message, of which the Ed25519 signature"
          f" {cost['signature_us']:.2f} us and everything else {cost['rest_us']:.2f} us"
          " (target: under 10 us)", flush=True)
    results.append(dict(cost, scenario="stamp cost"))
    if not opts.skip_scale:
        results.append(scale(opts))
    if opts.json:
        with open(opts.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


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
          f" over {r['samples']:,} samples", flush=True)
    return dict(r, scenario="scale")


if __name__ == "__main__":
    main()
