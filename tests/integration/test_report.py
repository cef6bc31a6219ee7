"""The impact report of an alert, from a real broker's trace: which
recipients received data of the flow before the alert, as JSON, and as a
page that headless Chromium renders with the flow's diagram."""

import json
import os
import subprocess
import sys
import time

import harness
from harness import TFCTL, publish_v5, run

CHROMIUM = os.environ.get("TF_CHROMIUM", "")
TOPIC = "city/water/d7/telemetry"
IDENTITIES = {
    "trustflow_identities": 1,
    "organizations": {"city-waterworks": {}, "maint-co": {}, "city-it": {}},
    "clients": {
        "ww-sensor-01": {"org": "city-waterworks", "roles": ["sensor"]},
        "ww-operator": {"org": "city-waterworks"},
        "maint-app": {"org": "maint-co"},
        "tf-admin": {"org": "city-it", "roles": ["trustflow-admin"]},
    },
}
WATER = {
    "trustflow_policy": 1, "id": "water-telemetry", "version": 3, "owner": "city-waterworks",
    "topics": ["city/water/+/telemetry"], "publishers": {"roles": ["sensor"]},
    "consumers": [{"orgs": ["maint-co"]}],
    "schema": {"type": "object", "properties": {"flow": {"type": "number"}},
               "required": ["flow"]},
    "on_violation": {"action": "quarantine"},
}
PASSWORDS = {name: "demo" for name in IDENTITIES["clients"]}


class ImpactReportTest(harness.BrokerTestCase):
    def test_the_impact_of_an_alert_names_the_recipients_and_renders(self):
        broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                   policies={"water.json": WATER})
        admin = self.client(broker, "c-admin", username="tf-admin", password="demo")
        admin.subscribe("$trustflow/alerts/#")
        subscribers = [self.client(broker, f"c-{u}", username=u, password="demo")
                       for u in ("maint-app", "ww-operator")]
        for s in subscribers:
            self.assertEqual(s.subscribe(TOPIC), 1)
        for i in range(3):
            self.assertLess(publish_v5(broker, "ww-sensor-01", TOPIC, json.dumps({"flow": i})),
                            0x80)
        for s in subscribers:
            for _ in range(3):
                s.receive()
        self.assertEqual(publish_v5(broker, "ww-sensor-01", TOPIC, '{"flow": "x"}'), 16)
        alert = json.loads(admin.receive().payload)
        self.assertEqual(alert["kind"], "schema-violation")

        page = os.path.join(broker.dir, "impact.html")
        cmd = [TFCTL, "report", "impact", alert["id"], "--db", broker.trace_dir, "--html", page]
        deadline = time.monotonic() + 10
        while True:      # the trace writer commits within moments
            report = json.loads(run(cmd).stdout)
            if len(report["recipients"]) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(report["alert"]["id"], alert["id"])
        self.assertEqual((report["flow"], report["messages"], report["held"], report["topics"]),
                         ("water-telemetry/ww-sensor-01", 4, 1, [TOPIC]))
        self.assertEqual([(r["client"], r["org"], r["messages"]) for r in report["recipients"]],
                         [("maint-app", "maint-co", 3), ("ww-operator", "city-waterworks", 3)])
        self.assertLessEqual(report["until"] - report["from"], 3600 * 1000)

        # Chromium runs the page's script, which draws the diagram.
        dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                              "--dump-dom", "file://" + page],
                             capture_output=True, text=True, timeout=60).stdout
        self.assertIn('id="flow-diagram"', dom)
        self.assertIn('data-publisher="ww-sensor-01"', dom)
        self.assertIn('data-recipient="maint-app"', dom)
        self.assertIn('data-recipient="ww-operator"', dom)
        self.assertIn('data-held="held"', dom)

        missing = run([TFCTL, "report", "impact", "0" * 32, "--db", broker.trace_dir],
                      check=False)
        self.assertEqual(missing.returncode, 1)

    def test_held_counts_the_whole_quarantine_and_deliveries_stop_at_the_alert(self):
        broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                   policies={"water.json": WATER})
        admin = self.client(broker, "c-admin", username="tf-admin", password="demo")
        admin.subscribe("$trustflow/alerts/#")
        maint = self.client(broker, "c-maint-app", username="maint-app", password="demo")
        self.assertEqual(maint.subscribe(TOPIC), 1)
        for i in range(3):
            self.assertLess(publish_v5(broker, "ww-sensor-01", TOPIC, json.dumps({"flow": i})),
                            0x80)
            maint.receive()
        # The violation raises the alert and holds the rest of the flow:
        # it and 14 more messages, 15 held.
        self.assertEqual(publish_v5(broker, "ww-sensor-01", TOPIC, '{"flow": "x"}'), 16)
        alert = json.loads(admin.receive().payload)
        for i in range(14):
            self.assertLess(publish_v5(broker, "ww-sensor-01", TOPIC, json.dumps({"flow": i})),
                            0x80)
        # Released after the alert: 15 deliveries outside its window, one
        # of them of a message inside it.
        conn = ["--port", str(broker.port), "--username", "tf-admin", "--password", "demo"]
        released = run([TFCTL, "quarantine", "release", "water-telemetry/ww-sensor-01",
                        "--override"] + conn)
        self.assertEqual(json.loads(released.stdout)["released"], 15)
        for _ in range(15):
            maint.receive()
        trace = [TFCTL, "trace", "--db", broker.trace_dir]
        deadline = time.monotonic() + 10
        while True:      # the trace writer commits within moments
            found = [json.loads(line) for line in
                     run(trace + ["find", "--topic", TOPIC]).stdout.splitlines()]
            violation = len(found) == 18 and json.loads(
                run(trace + ["message", found[3]["id"]]).stdout)
            if violation and violation["deliveries"] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertTrue(violation, "the 18 messages in the trace")
        self.assertEqual(violation["deliveries"][0]["client"], "maint-app")

        report = json.loads(run([TFCTL, "report", "impact", alert["id"], "--db",
                                 broker.trace_dir]).stdout)
        self.assertEqual((report["messages"], report["held"]), (4, 15))
        self.assertEqual([(r["client"], r["messages"]) for r in report["recipients"]],
                         [("maint-app", 3)])
        self.assertLessEqual(report["recipients"][0]["last_ts"], report["until"])


if __name__ == "__main__":
    if not CHROMIUM:
        print("SKIP: the report's page needs a browser to render it: apt-get install chromium, "
              "then configure again")
        sys.exit(77)
    harness.main()
