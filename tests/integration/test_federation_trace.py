"""The joined trace (federation-v1, section 6) on three real brokers
A -> B -> C bridged over mutual TLS (test_federation.Federation): a message
published at A reaches recipients at A, B and C; each broker's trace is
exported with its checkpoints (`tfctl trace export --checkpoints`) and
`tfctl trace join` names every recipient on every broker, in path order,
each broker's part checked against that broker's own signed checkpoints.

Then as an attacker: an operator who edits its own export (drops a
delivery, changes a recipient, with or without recomputing the hashes)
fails its part; an export whose checkpoints are signed by another broker's
key, or keys bound to the wrong brokers, do not pass; an operator who
rewrites its trace and signs it anew with its own key is caught by a
checkpoint kept from $trustflow/checkpoints."""
import base64
import hashlib
import json
import os
import shutil
import tempfile

from cryptography.hazmat.primitives import serialization

import harness
from harness import TFCTL, run, wait_for
from test_federation import BROKERS, LINK_OF, ORG_OF, Federation, kid_of, verify_chain

# Who subscribes where: (broker, username, client id). The policy
# (test_federation.METERS) names utility and contractor as consumers.
SUBSCRIBERS = (("broker-a", "utility-app", "utility-at-a"),
               ("broker-b", "utility-app", "utility-at-b"),
               ("broker-c", "contractor-app", "contractor-at-c"),
               ("broker-c", "contractor-app", "contractor-2-at-c"))

# The fields of each kind of event, in hashing order (docs/auditors.md).
FIELDS = {
    "message": ["id", "topic", "org", "client", "policy", "sha256", "size", "status",
                "reason", "stamp_seq", "kid", "sig", "of", "peer", "hops"],
    "delivery": ["id", "policy", "client", "org", "outcome", "reason", "client_id"],
    "release": ["id", "flow", "by", "reason"], "discard": ["id", "flow", "by", "reason"],
    "alert": ["alert", "alert_kind", "policy", "org", "client", "detail", "action"],
    "policy-set": ["result", "policies", "files"],
    "policy": ["policy", "org", "topic", "name", "sha256", "kid", "sig", "file"],
}


def encoded(name, value):
    value = str(value).encode()
    return name.encode() + b":" + str(len(value)).encode() + b":" + value + b"\n"


def event_bytes(e):
    return b"trustflow-event-1\n" + encoded("kind", e["kind"]) + encoded("seq", e["seq"]) \
        + encoded("ts", e["ts"]) + b"".join(encoded(n, e[n]) for n in FIELDS[e["kind"]]
                                            if n in e)


def parse(text):
    """An export's lines: (events, checkpoints)."""
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    return ([e for e in lines if "checkpoint" not in e],
            [e["checkpoint"] for e in lines if "checkpoint" in e])


def rehashed(events):
    """The events numbered from the first's seq on, each chain hash
    recomputed: what an operator who edits its export can always do."""
    prev = bytes.fromhex(events[0]["prev"])
    first = events[0]["seq"]
    out = []
    for i, e in enumerate(events):
        e = dict(e, seq=first + i)
        e.pop("prev", None)
        if i == 0:
            e["prev"] = prev.hex()
        prev = hashlib.sha256(prev + event_bytes(e)).digest()
        e["hash"] = prev.hex()
        out.append(e)
    return out


def signed_checkpoint(key, broker, seq, hash_hex, ts):
    """A checkpoint signed with key (operations-v1)."""
    cp = {"broker": broker, "kid": kid_of(key), "seq": seq, "hash": hash_hex, "ts": ts}
    data = b"trustflow-checkpoint-1\n" + b"".join(
        encoded(n, cp[n]) for n in ("broker", "kid", "seq", "hash", "ts"))
    cp["sig"] = base64.b64encode(key.sign(data)).decode()
    return cp


def dump(events, checkpoints):
    return "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events) + "".join(
        json.dumps({"checkpoint": cp}, separators=(",", ":")) + "\n" for cp in checkpoints)


class JoinedTraceTest(Federation):
    """A -> B -> C, a message from A, recipients on all three."""

    def setUp(self):
        super().setUp()
        self.work = tempfile.mkdtemp(prefix="tf-join-")
        self.addCleanup(shutil.rmtree, self.work, True)
        self.pem = {}
        for b, key in self.keys.items():
            self.pem[b] = self.path(f"{b}.pem", key.public_key().public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo).decode())

    def path(self, name, text):
        path = os.path.join(self.work, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def export(self, b):
        return run([TFCTL, "trace", "--db", self.brokers[b].trace_dir, "export",
                    "--checkpoints"]).stdout

    def join(self, msg_id, exports, keys=None, extra=()):
        """tfctl trace join over exports (broker -> text, in the order
        given); keys: broker -> PEM path bound to it (default: each
        broker's own). Returns (exit status, answer or None)."""
        cmd = [TFCTL, "trace", "join"]
        for b, pem in (keys or self.pem).items():
            cmd += ["--key-of", b, pem]
        cmd += list(extra) + [msg_id]
        cmd += [self.path(f"{b}.jsonl", text) for b, text in exports.items()]
        out = run(cmd, check=False)
        answer = json.loads(out.stdout) if out.stdout.strip() else None
        return out.returncode, answer

    def send_and_wait(self):
        """Publishes at A, with the subscribers of SUBSCRIBERS; waits until
        each broker's trace holds its part of the message and a checkpoint
        covers it. Returns the message id, the message C's subscriber got
        and each broker's export."""
        clients = {}
        for b, user, cid in SUBSCRIBERS:
            clients[cid] = self.client(self.brokers[b], cid, username=user, password="demo")
            self.assertEqual(clients[cid].subscribe("city/meters/#"), 1)
        at_a = self.client(self.brokers["broker-a"], "meter-1", username="meter-1",
                           password="demo")
        at_a.publish("city/meters/m1", b'{"kwh": 7.5}')
        got = clients["contractor-at-c"].receive()
        msg_id = verify_chain(got, self.public_keys())[0]["id"]
        for cid in ("utility-at-a", "utility-at-b", "contractor-2-at-c"):
            self.assertEqual(clients[cid].receive().payload, b'{"kwh": 7.5}')
        # Each broker's part, in its trace and covered by a checkpoint: the
        # broker signs one at least every 10 s while events arrive.
        expected = {"broker-a": {"utility-at-a", "bridge-broker-b"},
                    "broker-b": {"utility-at-b", "bridge-broker-c"},
                    "broker-c": {"contractor-at-c", "contractor-2-at-c"}}
        exports = {}
        for b in BROKERS:
            def covered(b=b):
                text = self.export(b)
                events, checkpoints = parse(text)
                mine = [e for e in events if e.get("id") == msg_id]
                sessions = {e["client_id"] for e in mine if e["kind"] == "delivery"}
                if sessions != expected[b] or not checkpoints:
                    return None
                last = max(e["seq"] for e in mine)
                return text if max(cp["seq"] for cp in checkpoints) >= last else None
            exports[b] = wait_for(f"{b}'s part and a checkpoint over it", covered, timeout=40)
        return msg_id, got, exports

    def part(self, answer, broker):
        parts = [p for p in answer["brokers"] if p["broker"] == broker]
        self.assertEqual(len(parts), 1, answer)
        return parts[0]

    def test_join_names_every_recipient_on_every_broker_and_catches_edited_exports(self):
        msg_id, got, exports = self.send_and_wait()
        # Given in any order; the answer is in path order.
        status, answer = self.join(msg_id, {b: exports[b] for b in
                                            ("broker-c", "broker-a", "broker-b")})
        self.assertEqual(status, 0, answer)
        self.assertTrue(answer["ok"])
        self.assertEqual(answer["id"], msg_id)
        self.assertEqual(answer["path"], list(BROKERS))
        self.assertEqual(answer["gaps"], [])
        for p in answer["brokers"]:
            self.assertTrue(p["ok"], p)
            self.assertNotIn("reason", p)
            self.assertGreaterEqual(p["checkpoint"]["seq"],
                                    max(r["seq"] for r in p["recipients"] + p["forwards"]))

        def recipients(broker):
            return sorted((r["client"], r["org"], r["outcome"], r["client_id"])
                          for r in self.part(answer, broker)["recipients"])

        def forwards(broker):
            return [(f["broker"], f["org"], f["link"])
                    for f in self.part(answer, broker)["forwards"]]

        self.assertEqual(recipients("broker-a"),
                         [("utility-app", "utility", "delivered", "utility-at-a")])
        self.assertEqual(recipients("broker-b"),
                         [("utility-app", "utility", "delivered", "utility-at-b")])
        self.assertEqual(recipients("broker-c"),
                         [("contractor-app", "contractor", "delivered", "contractor-2-at-c"),
                          ("contractor-app", "contractor", "delivered", "contractor-at-c")])
        self.assertEqual(forwards("broker-a"), [("broker-b", ORG_OF["broker-b"],
                                                 LINK_OF["broker-b"])])
        self.assertEqual(forwards("broker-b"), [("broker-c", ORG_OF["broker-c"],
                                                 LINK_OF["broker-c"])])
        self.assertEqual(forwards("broker-c"), [])
        # Each message event: the origin's names the publisher; the relays'
        # the peer it came from and the earlier stamps, those C's
        # subscriber got.
        a, b, c = (self.part(answer, x)["message"] for x in BROKERS)
        self.assertEqual((a["status"], a["org"], a["client"]), ("delivered", "city", "meter-1"))
        self.assertNotIn("peer", a)
        self.assertEqual((b["peer"], len(b["hops"])), ("broker-a", 1))
        self.assertEqual(c["peer"], "broker-b")
        self.assertEqual(c["hops"], [v for k, v in got.properties.UserProperty if k == "tf-hop"])

        # A delivery removed from B's export.
        events, checkpoints = parse(exports["broker-b"])
        delivery = next(e for e in events if e.get("id") == msg_id
                        and e.get("client") == "utility-app")
        dropped = [e for e in events if e is not delivery]
        status, answer = self.join(msg_id, {x: exports[x] if x != "broker-b"
                                            else dump(dropped, checkpoints) for x in BROKERS})
        self.assertEqual(status, 1)
        self.assertFalse(answer["ok"])
        self.assertFalse(self.part(answer, "broker-b")["ok"])
        # (Missing in the middle, or at the end before B's checkpoint.)
        seq = delivery["seq"]
        self.assertRegex(self.part(answer, "broker-b")["reason"],
                         rf"^(event {seq} is missing|it ends at event {seq - 1}, but its "
                         rf"checkpoint at seq \d+ covers more: events are missing at its end)$")
        self.assertTrue(self.part(answer, "broker-a")["ok"])
        self.assertTrue(self.part(answer, "broker-c")["ok"])
        # ... and with every later event renumbered and rehashed.
        status, answer = self.join(msg_id, {x: exports[x] if x != "broker-b"
                                            else dump(rehashed(dropped), checkpoints)
                                            for x in BROKERS})
        self.assertEqual(status, 1)
        self.assertFalse(self.part(answer, "broker-b")["ok"])
        self.assertIn("checkpoint at seq", self.part(answer, "broker-b")["reason"])
        self.assertNotIn(("utility-app", "utility", "delivered", "utility-at-b"),
                         recipients("broker-b"))

        # A recipient changed in C's export, hashes recomputed or not.
        events, checkpoints = parse(exports["broker-c"])
        changed = [dict(e, client_id="someone-else") if e.get("client_id") == "contractor-at-c"
                   else e for e in events]
        for edited, why in ((changed, "chain hash mismatch"),
                            (rehashed(changed), "is not the one its checkpoint at seq")):
            status, answer = self.join(msg_id, {x: exports[x] if x != "broker-c"
                                                else dump(edited, checkpoints) for x in BROKERS})
            self.assertEqual(status, 1)
            self.assertFalse(self.part(answer, "broker-c")["ok"])
            self.assertIn(why, self.part(answer, "broker-c")["reason"])
            self.assertTrue(self.part(answer, "broker-b")["ok"])

    def test_keys_bound_to_other_brokers_do_not_pass(self):
        msg_id, _got, exports = self.send_and_wait()
        # B's and C's keys swapped.
        status, answer = self.join(msg_id, exports, keys={
            "broker-a": self.pem["broker-a"], "broker-b": self.pem["broker-c"],
            "broker-c": self.pem["broker-b"]})
        self.assertEqual(status, 1)
        self.assertTrue(self.part(answer, "broker-a")["ok"])
        for b in ("broker-b", "broker-c"):
            self.assertFalse(self.part(answer, b)["ok"])
            self.assertIn(f"which is not bound to {b}", self.part(answer, b)["reason"])
        # B's export with its checkpoints signed by A's key: still B's,
        # whose key is not A's.
        events, checkpoints = parse(exports["broker-b"])
        by_a = [signed_checkpoint(self.keys["broker-a"], "broker-b", cp["seq"], cp["hash"],
                                  cp["ts"]) for cp in checkpoints]
        status, answer = self.join(msg_id, dict(exports, **{"broker-b": dump(events, by_a)}))
        self.assertEqual(status, 1)
        self.assertEqual(self.part(answer, "broker-b")["reason"],
                         f"its checkpoint at seq {checkpoints[0]['seq']} is signed with key "
                         f"{kid_of(self.keys['broker-a'])}, which is not bound to broker-b")
        # One key bound to two brokers is refused outright.
        status, answer = self.join(msg_id, exports, keys=dict(
            self.pem, **{"broker-c": self.pem["broker-a"]}))
        self.assertEqual((status, answer), (2, None))

    def test_a_trace_rewritten_and_signed_anew_is_caught_by_a_kept_checkpoint(self):
        msg_id, _got, _ = self.send_and_wait()
        b_export = self.export("broker-b")
        events, checkpoints = parse(b_export)
        delivery = next(e for e in events if e.get("id") == msg_id
                        and e.get("client") == "utility-app")
        # An auditor keeps what B publishes on $trustflow/checkpoints (every
        # client may read it), here until one covers B's delivery.
        watcher = self.client(self.brokers["broker-b"], "auditor", username="utility-app",
                              password="demo")
        watcher.subscribe("$trustflow/checkpoints")

        def kept_one():
            cp = json.loads(watcher.receive(timeout=30).payload)
            return cp if cp["seq"] >= delivery["seq"] else None
        kept = wait_for("a published checkpoint over B's delivery", kept_one, timeout=40)
        kept_file = self.path("kept.log", f"2025-11-26T12:00:05+0000 {json.dumps(kept)}\n")
        exports = {b: self.export(b) for b in BROKERS}
        status, answer = self.join(msg_id, exports, extra=["--checkpoints", kept_file])
        self.assertEqual(status, 0, answer)
        covered = self.part(answer, "broker-b")["checkpoint"]
        self.assertLessEqual(covered["seq"], kept["seq"])

        # B's operator drops the delivery, rehashes, and signs a checkpoint
        # over the new chain with B's own key.
        events, _ = parse(exports["broker-b"])
        forged = rehashed([e for e in events if e.get("client_id") != "utility-at-b"])
        resigned = [signed_checkpoint(self.keys["broker-b"], "broker-b", forged[-1]["seq"],
                                      forged[-1]["hash"], kept["ts"] + 1)]
        exports["broker-b"] = dump(forged, resigned)
        status, answer = self.join(msg_id, exports)
        self.assertEqual(status, 0, answer)   # the key holder can sign anything...
        status, answer = self.join(msg_id, exports, extra=["--checkpoints", kept_file])
        self.assertEqual(status, 1)          # ...but not what it published then
        self.assertIn(f"the checkpoint you kept at seq {kept['seq']}",
                      self.part(answer, "broker-b")["reason"])

    def test_usage_and_a_message_no_export_holds(self):
        path = self.path("empty.jsonl", "")
        status, answer = self.join("0123456789abcdef0123456789abcdef",
                                   {"broker-a": self.export("broker-a")})
        self.assertEqual(status, 1)
        self.assertEqual((answer["ok"], answer["brokers"], answer["path"]), (False, [], []))
        self.assertEqual(answer["reason"], "no export holds an event of the message")
        for bad in (["trace", "join", "not-an-id", path],
                    ["trace", "join", "0123456789abcdef0123456789abcdef"],
                    ["trace", "join", "0123456789abcdef0123456789abcdef",
                     os.path.join(self.work, "absent.jsonl")],
                    ["trace", "join", "--key-of", "broker-a", path,
                     "0123456789abcdef0123456789abcdef", path],
                    ["trace", "join", "--checkpoints", path, "--frobnicate", "x",
                     "0123456789abcdef0123456789abcdef", path]):
            with self.subTest(bad):
                out = run([TFCTL] + bad, check=False)
                self.assertEqual(out.returncode, 2, out.stdout)
                self.assertEqual(out.stdout, "")
                self.assertIn("tfctl trace join:", out.stderr)


if __name__ == "__main__":
    harness.main()
