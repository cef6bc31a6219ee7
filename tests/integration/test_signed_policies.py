"""Owner-signed policies (federation-v1, section 2) on a real broker: a
policy of an owner with policy_keys is in force only with its owner's
signature of its very bytes, at start and at every reload; an old version
never comes back, a restart included; each accepted policy is recorded in
the trace and published for its owner's stewards."""

import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from cryptography.hazmat.primitives.serialization import load_pem_public_key

import harness
from harness import MOSQUITTO_SUB, TFCTL, publish_v5, run, wait_for

TOPIC = "city/water/d7/telemetry"
SENTINEL = "city/water/d0/telemetry"
WATER = {
    "trustflow_policy": 1, "id": "water-telemetry", "version": 3, "owner": "city-waterworks",
    "topics": ["city/water/+/telemetry"], "publishers": {"roles": ["sensor"]},
    "consumers": [{"orgs": ["maint-co"]}],
}
CLIENTS = {
    "ww-sensor-01": {"org": "city-waterworks", "roles": ["sensor"]},
    "maint-app": {"org": "maint-co"},
    "lab-analyst": {"org": "research-lab"},
    "ww-steward": {"org": "city-waterworks", "roles": ["data-steward"]},
    "maint-steward": {"org": "maint-co", "roles": ["data-steward"]},
}
# A later version: the lab's access, granted in version 3, is revoked.
WATER_V3_WITH_LAB = dict(WATER, consumers=[{"orgs": ["maint-co"]}, {"orgs": ["research-lab"]}])
WATER_V4 = dict(WATER, version=4)
POLICY_TOPIC = "$trustflow/policies/city-waterworks/water-telemetry"
PASSWORDS = {name: "demo" for name in CLIENTS}


class SignedPolicyTest(harness.BrokerTestCase):
    def setUp(self):
        keys = tempfile.mkdtemp(prefix="tf-owner-")
        self.addCleanup(shutil.rmtree, keys, True)
        self.owner_key = os.path.join(keys, "owner.pem")
        run([TFCTL, "key", "generate", "--out", self.owner_key])
        public = run([TFCTL, "key", "public", self.owner_key]).stdout
        pem = public.splitlines()
        self.owner_public = "\n".join(pem[:3]) + "\n"
        self.owner_kid = pem[3]
        identities = {
            "trustflow_identities": 1,
            "organizations": {"city-waterworks": {"policy_keys": [pem[1]]}, "maint-co": {},
                              "research-lab": {}},
            "clients": CLIENTS,
        }
        self.broker = self.broker_expecting_failure(
            identities=identities, passwords=PASSWORDS, policies={"water.json": WATER})
        self.water = os.path.join(self.broker.policy_dir, "water.json")

    def sign(self):
        run([TFCTL, "policy", "sign", "--key", self.owner_key, self.water])

    def client_of(self, username):
        return self.client(self.broker, f"c-{username}-{time.monotonic_ns()}", username=username,
                           password="demo")

    def maint_receives(self):
        """The topics maint-app receives of a reading and a sentinel."""
        c = self.client_of("maint-app")
        self.assertEqual(c.subscribe("city/water/+/telemetry"), 1)
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", TOPIC, '{"flow": 1}'), 0x80)
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", SENTINEL, '{"flow": 0}'), 0x80)
        got = [m.topic for m in c.receive_until(SENTINEL)]
        c.close()
        return got

    def lab_may_subscribe(self):
        c = self.client_of("lab-analyst")
        code = c.subscribe("city/water/+/telemetry")
        c.close()
        return code < 0x80

    def test_signed_it_is_in_force(self):
        self.sign()
        self.broker.start()
        self.assertEqual(self.maint_receives(), [TOPIC, SENTINEL])
        self.assertFalse(self.lab_may_subscribe())

    def test_unsigned_the_broker_does_not_start(self):
        status = self.broker.start_expecting_failure()
        self.assertNotEqual(status, 0)
        self.assertIn("water.json: not signed: its owner city-waterworks signs its policies",
                      self.broker.log())

    def test_a_widened_file_is_refused_and_the_signed_one_stays(self):
        self.sign()
        self.broker.start()
        # Someone with access to the policy directory lets the lab in.
        self.broker.write_policy("water.json", dict(WATER, consumers=[
            {"orgs": ["maint-co"]}, {"orgs": ["research-lab"]}]))
        self.broker.reload()
        self.assertIn("water.json.sig: its signature was made by none of its owner's "
                      "policy_keys, or over other bytes", self.broker.log())
        self.assertFalse(self.lab_may_subscribe())
        self.assertEqual(self.maint_receives(), [TOPIC, SENTINEL])
        # Nor does a restart: the broker goes on with the signed set it
        # accepted last, kept with its signature in the trace store.
        self.broker.stop()
        self.broker.start()
        self.assertIn("started on the last accepted set", self.broker.log())
        self.assertFalse(self.lab_may_subscribe())
        self.assertEqual(self.maint_receives(), [TOPIC, SENTINEL])

    def test_a_signature_by_another_organizations_key_is_refused(self):
        other = os.path.join(os.path.dirname(self.owner_key), "other.pem")
        run([TFCTL, "key", "generate", "--out", other])
        run([TFCTL, "policy", "sign", "--key", other, self.water])
        self.assertNotEqual(self.broker.start_expecting_failure(), 0)
        self.assertIn("water.json.sig: its signature was made by none of its owner's "
                      "policy_keys", self.broker.log())

    def test_an_owner_without_keys_is_unsigned_unless_every_policy_must_be(self):
        """maint-co lists no policy_keys: its unsigned policy is in force,
        until require_signed_policies asks every owner to sign."""
        self.sign()
        self.broker.write_policy("maint.json", {
            "trustflow_policy": 1, "id": "maint-reports", "version": 1, "owner": "maint-co",
            "topics": ["maint/reports/#"]})
        self.broker.start()
        self.assertLess(publish_v5(self.broker, "maint-app", "maint/reports/1", "{}"), 0x80)
        self.broker.stop()
        self.broker.plugin_options["require_signed_policies"] = "true"
        self.assertNotEqual(self.broker.start_expecting_failure(), 0)
        self.assertIn("maint.json: its owner maint-co has no policy_keys, and every policy "
                      "must be signed (require_signed_policies)", self.broker.log())

    def write_signed(self, policy):
        self.broker.write_policy("water.json", policy)
        self.sign()

    def test_an_older_signed_version_is_refused_across_a_restart(self):
        """Version 3 let the lab in; version 4 revoked it. Version 3 and
        its genuine signature, put back, do not bring the lab back."""
        self.write_signed(WATER_V3_WITH_LAB)
        self.broker.start()
        self.assertTrue(self.lab_may_subscribe())
        self.write_signed(WATER_V4)
        self.broker.reload()
        self.assertFalse(self.lab_may_subscribe())
        # The owner's steward hears of the refusal; another's does not.
        stewards = {}
        for name in ("ww-steward", "maint-steward"):
            stewards[name] = self.client_of(name)
            self.assertLess(stewards[name].subscribe("$trustflow/alerts/#"), 0x80)
        self.write_signed(WATER_V3_WITH_LAB)
        self.broker.reload()
        alert = json.loads(stewards["ww-steward"].receive().payload)
        self.assertEqual((alert["kind"], alert["policy"]), ("reload-failed", "water-telemetry@4"))
        self.assertIn("rolled back", alert["detail"])
        self.assertTrue(stewards["maint-steward"].messages.empty())
        for c in stewards.values():
            c.close()
        self.assertIn("water.json: rolled back: version 3 of water-telemetry is older than "
                      "version 4, which this broker has accepted", self.broker.log())
        self.assertFalse(self.lab_may_subscribe())
        # After a restart: on the last accepted set, version 4, and saying why.
        self.broker.stop()
        self.broker.start()
        log = self.broker.log()
        self.assertIn("rolled back: version 3 of water-telemetry is older than version 4, "
                      "which this broker has accepted); started on the last accepted set", log)
        self.assertFalse(self.lab_may_subscribe())
        self.assertEqual(self.maint_receives(), [TOPIC, SENTINEL])

    def test_check_says_who_signed_and_what_the_broker_would_refuse(self):
        """tfctl policy check, before the operator reloads: which key
        signed, and, against the broker's trace store, a rollback."""
        self.write_signed(WATER_V4)
        self.broker.start()
        self.broker.stop()
        self.write_signed(WATER_V3_WITH_LAB)
        ids = self.broker.identities_path
        out = run([TFCTL, "policy", "check", "--identities", ids, self.water], check=False)
        self.assertEqual((out.returncode, out.stdout), (0, f"{self.water}: signed by "
                         f"{self.owner_kid}, a policy key of city-waterworks\n"))
        out = run([TFCTL, "policy", "check", "--identities", ids, "--trace",
                   self.broker.trace_dir, self.water], check=False)
        self.assertEqual(out.returncode, 1)
        self.assertEqual(out.stdout, f"{self.water}: rolled back: version 3 of water-telemetry "
                         "is older than version 4, which this broker has accepted\n")
        # Unsigned, or changed after signing.
        self.broker.write_policy("water.json", WATER_V4)
        out = run([TFCTL, "policy", "check", "--identities", ids, self.water], check=False)
        self.assertEqual(out.returncode, 1)
        self.assertIn("its signature was made by none of its owner's policy_keys", out.stdout)

    def test_the_same_version_re_signed_with_other_content_is_refused(self):
        self.write_signed(WATER)
        self.broker.start()
        self.write_signed(WATER_V3_WITH_LAB)
        self.broker.reload()
        self.assertIn("water.json: version 3 of water-telemetry has other bytes than the "
                      "version 3 this broker accepted", self.broker.log())
        self.assertFalse(self.lab_may_subscribe())
        self.broker.stop()
        self.broker.start()
        self.assertFalse(self.lab_may_subscribe())

    def retained_policies(self, username):
        """What username receives subscribing to $trustflow/policies/#
        (the SUBACK code and the retained copies), then to the public
        keys, whose retained copy comes after them."""
        c = self.client_of(username)
        code = c.subscribe("$trustflow/policies/#")
        self.assertLess(c.subscribe("$trustflow/keys/#"), 0x80)
        got = []
        while True:
            m = c.receive()
            if m.topic.startswith("$trustflow/keys/"):
                break
            got.append(m)
        c.close()
        return code, got

    def test_the_accepted_policy_is_published_for_its_owners_stewards(self):
        self.sign()
        self.broker.start()
        code, got = self.retained_policies("ww-steward")
        self.assertLess(code, 0x80)
        self.assertEqual([m.topic for m in got], [POLICY_TOPIC])
        self.assertTrue(got[0].retain)
        doc = json.loads(got[0].payload)
        with open(self.water, "rb") as f:
            self.assertEqual(base64.b64decode(doc["file"]), f.read())
        with open(self.water + ".sig") as f:
            self.assertEqual(doc["sig"], f.read().strip())
        # Anyone holding the owner's public key checks it, without trustflow.
        load_pem_public_key(self.owner_public.encode()).verify(
            base64.b64decode(doc["sig"]),
            b"trustflow-policy-1\n" + base64.b64decode(doc["file"]))
        # Another organization's steward may subscribe, and gets none of it;
        # an ordinary client may not subscribe at all.
        code, got = self.retained_policies("maint-steward")
        self.assertLess(code, 0x80)
        self.assertEqual(got, [])
        code, got = self.retained_policies("maint-app")
        self.assertEqual(code, 0x87)
        self.assertEqual(got, [])
        # Nobody publishes there but the broker.
        self.assertEqual(publish_v5(self.broker, "ww-steward", POLICY_TOPIC, "{}"), 0x87)

    def test_the_auditors_proof_in_the_docs_names_the_owners_rules(self):
        """docs/auditors.md's proof, run on an export: the rules the owner
        signed for a message delivered under them; a forged file fails."""
        with open(os.path.join(harness.SRCDIR, "docs", "auditors.md"), encoding="utf-8") as f:
            doc = f.read()
        script = doc.split("## Which rules did the owner authorize", 1)[1]
        script = script.split("```python\n", 1)[1].split("```", 1)[0]
        self.write_signed(WATER_V4)
        self.broker.start()
        c = self.client_of("maint-app")
        self.assertEqual(c.subscribe(TOPIC), 1)
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", TOPIC, '{"flow": 1}'), 0x80)
        msg_id = harness.stamp_verifier().stamp_of(c.receive())["tf-id"]
        c.close()
        work = tempfile.mkdtemp(prefix="tf-audit-")
        self.addCleanup(shutil.rmtree, work, True)
        export, owner = os.path.join(work, "events.jsonl"), os.path.join(work, "owner.pem")
        with open(owner, "w") as f:
            f.write(self.owner_public)

        def exported():
            out = run([TFCTL, "trace", "--db", self.broker.trace_dir, "export"]).stdout
            return out if msg_id in out else None

        with open(export, "w") as f:
            f.write(wait_for("the message in the trace", exported))
        ok = run([sys.executable, "-c", script, export, owner, msg_id])
        self.assertIn("water-telemetry@4 in force since", ok.stdout)
        self.assertIn(f"signed by {self.owner_kid}", ok.stdout)
        self.assertIn('"version": 4', ok.stdout)
        # The operator's own rules in place of the owner's do not pass.
        with open(export) as f:
            events = [json.loads(line) for line in f]
        for e in events:
            if e["kind"] == "policy":
                e["file"] = base64.b64encode(json.dumps(WATER_V3_WITH_LAB).encode()).decode()
                e["sha256"] = hashlib.sha256(base64.b64decode(e["file"])).hexdigest()
        with open(export, "w") as f:
            f.write("".join(json.dumps(e) + "\n" for e in events))
        bad = run([sys.executable, "-c", script, export, owner, msg_id], check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("InvalidSignature", bad.stderr)

    def test_a_will_does_not_replace_the_published_policy(self):
        """The owner's own steward dies with a retained will on its
        policy's topic, forged rules in it: only the broker publishes
        there, so the copy everyone checks stays the signed one."""
        self.sign()
        self.broker.start()
        forged = json.dumps({"file": base64.b64encode(
            json.dumps(WATER_V3_WITH_LAB).encode()).decode(), "sig": ""})
        sub = subprocess.Popen(
            [MOSQUITTO_SUB, "-h", "127.0.0.1", "-p", str(self.broker.port), "-V", "5",
             "-u", "ww-steward", "-P", "demo", "-i", "steward-with-will",
             "-t", "$trustflow/keys/#", "--will-topic", POLICY_TOPIC, "--will-payload", forged,
             "--will-qos", "1", "--will-retain"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        sub.stdout.readline()                 # connected: it received the key
        sub.send_signal(signal.SIGKILL)
        sub.wait()
        wait_for("the broker to see the steward gone",
                 lambda: "steward-with-will closed its connection" in self.broker.log())
        code, got = self.retained_policies("ww-steward")
        self.assertEqual([m.topic for m in got], [POLICY_TOPIC])
        with open(self.water, "rb") as f:
            self.assertEqual(base64.b64decode(json.loads(got[0].payload)["file"]), f.read())

    def test_the_trace_lists_the_policys_history(self):
        self.write_signed(WATER)
        self.broker.start()
        with open(self.water + ".sig") as f:
            v3_sig = f.read().strip()
        self.write_signed(WATER_V4)
        self.broker.reload()

        def history():
            out = run([TFCTL, "trace", "--db", self.broker.trace_dir, "policy", "--policy",
                       "water-telemetry"], check=False)
            lines = [json.loads(line) for line in out.stdout.splitlines()]
            return lines if len(lines) == 2 else None

        v3, v4 = wait_for("the policy's two versions in the trace", history)
        self.assertEqual((v3["policy"], v3["version"], v3["kid"], v3["sig"]),
                         ("water-telemetry@3", 3, self.owner_kid, v3_sig))
        self.assertEqual((v4["version"], v4["org"], v4["file"]), (4, "city-waterworks",
                                                                  "water.json"))
        with open(self.water, "rb") as f:
            self.assertEqual(v4["sha256"], hashlib.sha256(f.read()).hexdigest())
        self.assertLessEqual(v3["ts"], v4["ts"])
        # A policy never accepted has no history.
        out = run([TFCTL, "trace", "--db", self.broker.trace_dir, "policy", "--policy",
                   "no-such-policy"], check=False)
        self.assertEqual(out.returncode, 1)


if __name__ == "__main__":
    harness.main()
