"""`make bench`: plain mosquitto against mosquitto with trustflow.

Both brokers run side by side on loopback with the same settings; the same
load (tests/bench/loadgen) runs against each in turn, alternating, for
several rounds, and the median msg/s of each and their ratio are reported.
Deliveries lost are reported too: a run that loses messages is not a fast
run.
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

# name, loadgen arguments
SCENARIOS = [
    ("1 -> 1, QoS 0", ["--qos", "0", "--messages", "200000", "--subscribers", "1"]),
    ("1 -> 1, QoS 1", ["--qos", "1", "--messages", "200000", "--subscribers", "1"]),
    ("1 -> 50, QoS 0", ["--qos", "0", "--messages", "20000", "--subscribers", "50"]),
]
SIZE = 256


def run_load(broker, args):
    cmd = [LOADGEN, "--port", str(broker.port), "--size", str(SIZE)] + args
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


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="also write the results to this file")
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
        "trustflow": harness.Broker(with_plugin=True, log_types=quiet),
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
    if opts.json:
        with open(opts.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    for b in brokers.values():
        harness.shutil.rmtree(b.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
