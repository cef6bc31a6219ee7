"""Federation (federation-v1) on real brokers and real bridges: three
organizations' brokers A -> B -> C, each bridge an MQTT v5 bridge opened
by the sending side with mutual TLS (certificates made by
scripts/make-demo-certs.sh, the certificate's CN the peer's link).

A consumer at C whom the owner's policy names gets data published at A
with a chain of stamps that verifies here with Python's own Ed25519 (not
the project's code path); a client at C the policy does not name gets
nothing; data under `forwarding: deny` never leaves A. A peer's bridge
that hands over a forged or altered stamp, a broken chain, a stamp under
an unknown key, another peer's stamps, a loop or a policy version the
receiver does not hold is refused (PUBACK 0x87), alerted and recorded."""
import base64
import hashlib
import json
import os
import re
import subprocess
import tempfile
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import harness

SRCDIR = os.environ.get("TF_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))

BROKERS = ("broker-a", "broker-b", "broker-c")
ORG_OF = {"broker-a": "city", "broker-b": "utility", "broker-c": "contractor"}
# The link a broker's bridge logs in with at its peers: its certificate's
# CN, as make-federation.sh names it.
LINK_OF = {b: f"bridge-{b}" for b in BROKERS}

CLIENTS = {
    "meter-1": {"org": "city"},
    "utility-app": {"org": "utility"},
    "contractor-app": {"org": "contractor"},
    "stranger-app": {"org": "stranger"},
    "ops-b": {"org": "utility", "roles": ["trustflow-admin"]},
}

METERS = {
    "trustflow_policy": 1, "id": "meter-data", "version": 1, "owner": "city",
    "topics": ["city/meters/#"],
    "consumers": [{"orgs": ["utility", "contractor"]}],
}
PRIVATE = {
    "trustflow_policy": 1, "id": "city-private", "version": 1, "owner": "city",
    "topics": ["city/private/#"], "forwarding": "deny",
    "consumers": [{"orgs": ["utility", "contractor"]}],
}


def spki_b64(key):
    return base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()


def identities(owner_key):
    """A broker's identities file, but for its peers (make-federation.sh's
    peers.json is merged in); the city signs its policies with owner_key."""
    orgs = {org: {"name": org.title()} for org in ("city", "utility", "contractor", "stranger")}
    orgs["city"]["policy_keys"] = [spki_b64(owner_key)]
    return {"trustflow_identities": 1, "organizations": orgs, "clients": CLIENTS}


# -- an independent check of a chain (federation-v1, section 5) -------------

def unescape(value):
    return value.replace("%7C", "|").replace("%25", "%")


RECORD = ("v", "id", "broker", "kid", "ts", "org", "client", "policy", "topic", "seq",
          "prev", "sig")
SIGNED = ("v", "id", "broker", "kid", "ts", "org", "client", "policy", "topic", "sha256",
          "seq")


def parse_record(value):
    parts = value.split("|")
    assert len(parts) == len(RECORD), value
    return dict(zip(RECORD, (unescape(p) for p in parts)))


def signing_input(stamp):
    names = SIGNED + (("prev",) if stamp["v"] == "2" else ())
    out = f"trustflow-stamp-{stamp['v']}\n".encode()
    for name in names:
        value = stamp[name].encode()
        out += name.encode() + b":" + str(len(value)).encode() + b":" + value + b"\n"
    return out


def escape(value):
    return value.replace("%", "%25").replace("|", "%7C")


def record(stamp):
    return "|".join(escape(stamp.get(f) or "") for f in RECORD)


def kid_of(key):
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signed(key, **fields):
    """A stamp of the given fields, signed with key (format 2 when it has a
    prev)."""
    stamp = dict(fields, v="2" if "prev" in fields else "1", kid=kid_of(key))
    stamp["sig"] = base64.b64encode(key.sign(signing_input(stamp))).decode()
    return stamp


def link(record_value):
    return base64.b64encode(hashlib.sha256(record_value.encode()).digest()[:16]).decode()


def verify_chain(msg, public_keys):
    """The stamps of a received message, oldest first, after checking every
    link and signature; AssertionError when any fails. public_keys: broker
    id -> Ed25519 public key."""
    props = getattr(msg.properties, "UserProperty", [])
    hops = [v for k, v in props if k == "tf-hop"]
    compact = [v for k, v in props if k == "tf"]
    assert len(compact) == 1, props
    newest = parse_record(compact[0])
    assert newest["topic"] == msg.topic
    sha = hashlib.sha256(msg.payload).hexdigest()
    stamps = [parse_record(h) for h in hops] + [newest]
    for i, stamp in enumerate(stamps):
        stamp["sha256"] = sha
        if i == 0:
            assert stamp["v"] == "1" and stamp["prev"] == "", stamp
        else:
            assert stamp["v"] == "2" and stamp["prev"] == link(hops[i - 1]), stamp
        assert stamp["id"] == stamps[0]["id"] and stamp["policy"] == stamps[0]["policy"]
        public_keys[stamp["broker"]].verify(base64.b64decode(stamp["sig"]),
                                            signing_input(stamp))
    assert len({s["broker"] for s in stamps}) == len(stamps)
    return stamps


class Federation(harness.BrokerTestCase):
    """Three brokers; BRIDGES: who opens a bridge to whom (and so hands it
    messages); OPTIONS: plugin options of a broker; METERS: the owner's
    policy of the meters' data."""
    BRIDGES = {"broker-a": "broker-b", "broker-b": "broker-c"}
    OPTIONS = {}
    METERS = METERS

    def setUp(self):
        # The federation's files as an operator makes them.
        self.certs = tempfile.mkdtemp(prefix="tf-fed-")
        self.addCleanup(harness.shutil.rmtree, self.certs, True)
        self.tls_ports = {b: harness.free_port() for b in BROKERS}
        cmd = ["bash", os.path.join(SRCDIR, "scripts", "make-federation.sh"), self.certs]
        for b in BROKERS:
            cmd += ["--broker", b, ORG_OF[b], f"127.0.0.1:{self.tls_ports[b]}"]
        for f, t in self.BRIDGES.items():
            cmd += ["--bridge", f, t]
        subprocess.run(cmd, check=True, capture_output=True)
        self.keys = {}
        for b in BROKERS:
            with open(self.file_of(b, "signing-key.pem"), "rb") as f:
                self.keys[b] = serialization.load_pem_private_key(f.read(), None)
        self.owner_key = Ed25519PrivateKey.generate()
        self.owner_pem = os.path.join(self.certs, "city-policy-key.pem")
        write_private_key(self.owner_pem, self.owner_key)
        bridge_to = self.BRIDGES
        self.brokers = {}
        for b in BROKERS:
            ids = identities(self.owner_key)
            with open(self.file_of(b, "peers.json"), encoding="utf-8") as f:
                ids.update(json.load(f))
            with open(self.file_of(b, "listener.conf"), encoding="utf-8") as f:
                conf = f.read()
            with open(self.file_of(b, "bridges.conf"), encoding="utf-8") as f:
                # Back soon after a peer's restart.
                conf += re.sub(r"^(connection .*)$", r"\1\nrestart_timeout 1", f.read(),
                               flags=re.M)
            self.brokers[b] = self.unstarted_broker(
                identities=ids, plugin_options=dict(
                    {"broker_id": b, "signing_key": self.file_of(b, "signing-key.pem")},
                    **self.OPTIONS.get(b, {})),
                passwords={u: "demo" for u in CLIENTS}, extra_conf=conf)
        # The owner's policies are files at A only: B and C learn them from
        # their peers.
        a = self.brokers["broker-a"]
        for name, policy in (("meters.json", self.METERS), ("private.json", PRIVATE)):
            self.put_policy(a, name, policy)
        # Receivers first, so that each bridge finds its peer listening.
        for b in reversed(BROKERS):
            self.brokers[b].start()
        for b in bridge_to:
            harness.wait_for(f"{b}'s bridge", lambda b=b: "Connecting bridge"
                             in self.brokers[b].log() and f"{LINK_OF[b]}" in
                             self.brokers[bridge_to[b]].log())
        for b in BROKERS:
            self.wait_for_policy(b, "meter-data@1")

    def put_policy(self, broker, name, policy):
        """Writes a policy file into broker's policy_dir, signed by the city."""
        broker.write_policy(name, policy)
        harness.run([harness.TFCTL, "policy", "sign", "--key", self.owner_pem,
                     os.path.join(broker.policy_dir, name)])

    def policy_versions(self, b):
        out = harness.run([harness.TFCTL, "trace", "--db", self.brokers[b].trace_dir, "policy",
                           "--policy", "meter-data"], check=False).stdout
        return [json.loads(line)["policy"] for line in out.splitlines() if line.strip()]

    def wait_for_policy(self, b, label):
        """Waits until broker b holds (has recorded) the policy version label."""
        harness.wait_for(f"{b} to hold {label}", lambda: label in self.policy_versions(b))

    def file_of(self, b, name):
        """A file make-federation.sh made for broker b."""
        return os.path.join(self.certs, b, name)

    def public_keys(self):
        return {b: k.public_key() for b, k in self.keys.items()}


class FederationTest(Federation):
    """A -> B -> C."""

    def test_a_consumer_at_c_gets_data_from_a_with_a_chain_that_verifies(self):
        at_c = self.client(self.brokers["broker-c"], "contractor-app",
                           username="contractor-app",
                           password="demo")
        stranger = self.client(self.brokers["broker-c"], "stranger-app",
                               username="stranger-app",
                           password="demo")
        self.assertEqual(at_c.subscribe("city/meters/#"), 1)
        stranger.subscribe("city/meters/#")
        at_a = self.client(self.brokers["broker-a"], "meter-1", username="meter-1",
                           password="demo")
        at_a.publish("city/meters/m1", b'{"kwh": 12.5}')

        msg = at_c.receive()
        self.assertEqual((msg.topic, msg.payload), ("city/meters/m1", b'{"kwh": 12.5}'))
        stamps = verify_chain(msg, self.public_keys())
        self.assertEqual([s["broker"] for s in stamps], list(BROKERS))
        origin = stamps[0]
        self.assertEqual((origin["org"], origin["client"], origin["policy"]),
                         ("city", "meter-1", "meter-data@1"))
        # Each relaying broker names the peer that handed it the message.
        self.assertEqual([(s["org"], s["client"]) for s in stamps[1:]],
                         [("city", LINK_OF["broker-a"]), ("utility", LINK_OF["broker-b"])])
        # Whom the policy does not name gets nothing at C.
        at_a.publish("city/meters/end", b"{}")
        self.assertEqual(at_c.receive().topic, "city/meters/end")
        with self.assertRaises(AssertionError):
            stranger.receive(timeout=1)

    def test_data_under_forwarding_deny_never_leaves_its_broker(self):
        at_b = self.client(self.brokers["broker-b"], "utility-app", username="utility-app",
                           password="demo")
        at_b.subscribe("city/#")
        local = self.client(self.brokers["broker-a"], "utility-app", username="utility-app",
                           password="demo")
        local.subscribe("city/#")
        at_a = self.client(self.brokers["broker-a"], "meter-1", username="meter-1",
                           password="demo")
        at_a.publish("city/private/p1", b"secret")
        at_a.publish("city/meters/after", b"{}")
        # At A, its consumers get it; at B only what may leave comes.
        self.assertEqual([m.topic for m in local.receive_until("city/meters/after")],
                         ["city/private/p1", "city/meters/after"])
        self.assertEqual([m.topic for m in at_b.receive_until("city/meters/after")],
                         ["city/meters/after"])

    # -- a peer's bridge that does not play by the rules -------------------

    def origin_stamp(self, topic, payload, broker="broker-a", key=None,
                     policy="meter-data@1", msg_id=None):
        return signed(key or self.keys[broker], id=msg_id or os.urandom(16).hex(),
                      broker=broker, ts=str(int(time.time() * 1000)), org="city",
                      client="meter-1", policy=policy, topic=topic,
                      sha256=hashlib.sha256(payload).hexdigest(), seq="1")

    def hand_over(self, peer, topic, payload, hops, newest):
        """Publishes at B as peer's bridge (with its link certificate), with
        hops and newest (compact) as the stamps; returns the PUBACK reason
        code."""
        cert = self.file_of(peer, "link")
        cmd = [harness.MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(self.tls_ports["broker-b"]),
               "-V", "mqttv5", "-d", "-q", "1", "-t", topic, "-m", payload.decode(),
               "--cafile", os.path.join(self.certs, "ca.crt"), "--cert", cert + ".crt",
               "--key", cert + ".key", "-i", f"rogue-{os.urandom(3).hex()}"]
        for hop in hops:
            cmd += ["-D", "publish", "user-property", "tf-hop", record(hop)]
        value = record(newest) if newest["v"] == "2" else "|".join(
            escape(newest[f]) for f in RECORD if f not in ("topic", "prev"))
        cmd += ["-D", "publish", "user-property", "tf", value]
        out = harness.run(cmd, check=False)
        for line in out.stdout.splitlines():
            if "received PUBACK" in line:
                return int(line.rsplit("RC:", 1)[1].rstrip(")"))
        raise AssertionError(f"no PUBACK:\n{out.stdout}{out.stderr}")

    def test_a_peers_forged_or_broken_chains_are_refused_alerted_and_recorded(self):
        b = self.brokers["broker-b"]
        ops = self.client(b, "ops-b", username="ops-b", password="demo")
        self.assertEqual(ops.subscribe("$trustflow/alerts/#"), 1)
        at_b = self.client(b, "utility-app", username="utility-app", password="demo")
        at_b.subscribe("city/#")
        topic, payload = "city/meters/m9", b'{"kwh": 1}'
        a_link = LINK_OF["broker-a"]
        stranger_key = Ed25519PrivateKey.generate()

        # What the rules let through comes through: the refusals below are
        # the abuse's.
        good = self.origin_stamp(topic, payload)
        self.assertIn(self.hand_over("broker-a", topic, payload, [], good), (0, 16))
        self.assertEqual(at_b.receive().payload, payload)

        def relayed_by_a(origin, prev=None):
            return signed(self.keys["broker-a"], id=origin["id"], broker="broker-a",
                          ts=origin["ts"], org="city", client="meter-1",
                          policy=origin["policy"], topic=topic, sha256=origin["sha256"],
                          seq="2", prev=prev or link(record(origin)))

        c_origin = self.origin_stamp(topic, payload, broker="broker-c")
        forged = dict(self.origin_stamp(topic, payload), client="someone-else")
        cases = {
            "forged": ([], forged),
            "altered payload": ([], self.origin_stamp(topic, b'{"kwh": 999}')),
            "unknown key": ([], self.origin_stamp(topic, payload, key=stranger_key)),
            "broken chain": ([c_origin], relayed_by_a(c_origin, prev="A" * 22 + "==")),
            "loop": ([self.origin_stamp(topic, payload, broker="broker-b",
                                        key=self.keys["broker-b"])],
                     None),
            "policy not held": ([], self.origin_stamp(topic, payload,
                                                      policy="meter-data@2")),
        }
        loop_origin = cases["loop"][0][0]
        cases["loop"] = ([loop_origin], relayed_by_a(loop_origin))
        for name, (hops, newest) in cases.items():
            with self.subTest(name):
                self.assertEqual(self.hand_over("broker-a", topic, payload, hops, newest), 135)
        # A peer passing for another: C's link with A's stamps.
        with self.subTest("another peer's id"):
            self.assertEqual(self.hand_over("broker-c", topic, payload, [],
                                            self.origin_stamp(topic, payload)), 135)
        with self.subTest("not governed here by its policy"):
            self.assertEqual(self.hand_over("broker-a", "elsewhere/x", payload, [],
                                            self.origin_stamp("elsewhere/x", payload)), 135)
        with self.subTest("no room for B's stamp"):
            chain = [self.origin_stamp(topic, payload, broker="x0", key=stranger_key)]
            for i in range(1, 7):
                chain.append(signed(stranger_key, id=chain[0]["id"], broker=f"x{i}",
                                    ts=chain[0]["ts"], org="far", client="bridge",
                                    policy=chain[0]["policy"], topic=topic,
                                    sha256=chain[0]["sha256"], seq="1",
                                    prev=link(record(chain[-1]))))
            self.assertEqual(self.hand_over("broker-a", topic, payload, chain,
                                            relayed_by_a(chain[0], link(record(chain[-1])))),
                             135)

        # The first refusal is alerted at once (those right after it from the
        # same peer fold into it: docs/guard.md).
        while True:
            alert = json.loads(ops.receive().payload)
            if alert["kind"] == "relay-refused":
                break
        self.assertIn("newest stamp's signature does not hold", alert["detail"])
        self.assertEqual((alert["org"], alert["client"]), ("city", a_link))
        # Nothing refused reached B's subscriber.
        at_b_end = self.origin_stamp("city/meters/end", b"{}")
        self.assertIn(self.hand_over("broker-a", "city/meters/end", b"{}", [], at_b_end), (0, 16))
        self.assertEqual([m.topic for m in at_b.receive_until("city/meters/end")],
                         ["city/meters/end"])
        # Each refusal is in B's trace, with its reason.
        def refusals():
            out = harness.run([harness.TFCTL, "trace", "--db", b.trace_dir, "find",
                               "--topic", topic]).stdout
            found = [json.loads(line) for line in out.splitlines() if line.strip()]
            found = [m for m in found if m.get("status") == "refused"]
            return found if len(found) == len(cases) + 2 else None
        refused = harness.wait_for("the refusals in B's trace", refusals)
        reasons = {m["reason"] for m in refused}
        # Each names the peer it came from and the stamps it came with.
        self.assertEqual({m["peer"] for m in refused}, {"broker-a", "broker-c"})
        broken = [m for m in refused if m["reason"] == "its chain is broken"][0]
        self.assertEqual(len(broken["hops"]), 2)
        self.assertEqual(broken["hops"][0], record(c_origin))
        # (The compact form carries no payload hash: an altered payload
        # fails the signature.)
        self.assertEqual(reasons, {
            "its newest stamp's signature does not hold",
            "its newest stamp is under a key the peer does not have", "its chain is broken",
            "this broker's stamp is already in its chain",
            "its policy is held here only at a lower version",
            "its newest stamp is not the linked peer's",
            "its chain has no room for this broker's stamp"})
        # The one on another topic is in the trace too.
        out = harness.run([harness.TFCTL, "trace", "--db", b.trace_dir, "find", "--topic",
                           "elsewhere/x"]).stdout
        self.assertEqual([json.loads(line)["reason"] for line in out.splitlines()],
                         ["its topic is not governed here by its policy"])

    def test_a_peer_restarted_while_qos1_messages_are_published_loses_none(self):
        at_c = self.client(self.brokers["broker-c"], "contractor-app",
                           username="contractor-app", password="demo")
        at_c.subscribe("city/meters/#")
        at_a = self.client(self.brokers["broker-a"], "meter-1", username="meter-1",
                           password="demo")
        b = self.brokers["broker-b"]
        b.stop()
        sent = [f"city/meters/outage-{i}" for i in range(20)]
        for topic in sent:
            at_a.publish(topic, b'{"kwh": 2}', qos=1)
        b.start()
        got = [m for m in at_c.receive_until(sent[-1], timeout=30)]
        self.assertEqual([m.topic for m in got], sent)
        for m in got:
            self.assertEqual([s["broker"] for s in verify_chain(m, self.public_keys())],
                             list(BROKERS))

    def test_the_owners_new_version_travels_and_governs_every_broker(self):
        at_c = self.client(self.brokers["broker-c"], "contractor-app",
                           username="contractor-app", password="demo")
        at_c.subscribe("city/meters/#")
        a = self.brokers["broker-a"]
        self.put_policy(a, "meters.json", dict(METERS, version=2))
        a.reload()
        for b in BROKERS:
            self.wait_for_policy(b, "meter-data@2")
        at_a = self.client(a, "meter-1", username="meter-1", password="demo")
        at_a.publish("city/meters/v2", b'{"kwh": 4}')
        stamps = verify_chain(at_c.receive(), self.public_keys())
        self.assertEqual({s["policy"] for s in stamps}, {"meter-data@2"})

    def test_a_local_file_cannot_take_a_foreign_owners_policy_id(self):
        c = self.brokers["broker-c"]
        c.write_policy("mine.json", dict(METERS, owner="contractor", version=9,
                                         topics=["contractor/meters/#"]))
        c.reload()
        self.assertIn("mine.json: $.id: policy id \"meter-data\" is city's, whose signed "
                      "policy a peer broker handed over", c.log())
        self.assertEqual(self.policy_versions("broker-c"), ["meter-data@1"])

    def test_a_peers_policy_refused_here_is_removed_and_blocks_nothing(self):
        # C's operator gives the contractor a policy over all of city/: the
        # owner's meter-data, which C holds from B, overlaps it.
        c = self.brokers["broker-c"]
        c.write_policy("mine.json", {"trustflow_policy": 1, "id": "contractor-city",
                                     "version": 1, "owner": "contractor", "topics": ["city/#"],
                                     "consumers": [{"orgs": ["contractor"]}]})
        c.reload()
        harness.wait_for("the peer's policy removed", lambda: "policy meter-data, handed over "
                         "by a peer, is refused here" in c.log())
        self.assertFalse(os.path.exists(os.path.join(c.trace_dir, "peer-policies",
                                                     "meter-data.json")))
        # The load goes on without it, and so does a restart.
        harness.wait_for("the local policy in force", lambda: "contractor-city" in harness.run(
            [harness.TFCTL, "trace", "--db", c.trace_dir, "policy", "--policy",
             "contractor-city"], check=False).stdout)
        c.stop()
        c.start()
        self.assertNotIn("policy reload rejected", c.log().split("mosquitto version")[-1])

    def test_a_policy_not_signed_by_its_owner_is_refused_from_a_peer(self):
        b = self.brokers["broker-b"]
        ops = self.client(b, "ops-b", username="ops-b", password="demo")
        ops.subscribe("$trustflow/alerts/#")
        widened = json.dumps(dict(METERS, version=5, consumers=[{"orgs": ["stranger"]}]))
        forged_sig = base64.b64encode(self.keys["broker-a"].sign(
            b"trustflow-policy-1\n" + widened.encode())).decode()
        payload = json.dumps({"file": base64.b64encode(widened.encode()).decode(),
                              "sig": forged_sig})
        cert = self.file_of("broker-a", "link")
        out = harness.run([harness.MOSQUITTO_PUB, "-h", "127.0.0.1", "-p",
                           str(self.tls_ports["broker-b"]), "-V", "mqttv5", "-d", "-q", "1",
                           "-t", "$trustflow/policies/city/meter-data", "-m", payload,
                           "--cafile", os.path.join(self.certs, "ca.crt"),
                           "--cert", cert + ".crt", "--key", cert + ".key",
                           "-i", "rogue-policy"])
        self.assertIn("RC:135", out.stdout)
        while True:
            alert = json.loads(ops.receive().payload)
            if alert["kind"] == "peer-policy-refused":
                break
        self.assertIn("its file is refused here", alert["detail"])
        self.assertEqual(self.policy_versions("broker-b"), ["meter-data@1"])

    def test_a_peers_will_is_not_delivered(self):
        at_b = self.client(self.brokers["broker-b"], "utility-app", username="utility-app",
                           password="demo")
        at_b.subscribe("city/meters/#")
        cert = self.file_of("broker-a", "link")
        # Connected (publishing lines from stdin: none come) until killed.
        will = subprocess.Popen([
            harness.MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(self.tls_ports["broker-b"]),
            "-V", "5", "-i", "rogue-will", "-t", "nothing/here", "-l",
            "--cafile", os.path.join(self.certs, "ca.crt"), "--cert", cert + ".crt",
            "--key", cert + ".key", "--will-topic", "city/meters/will",
            "--will-payload", '{"kwh": 666}', "--will-qos", "1"], stdin=subprocess.PIPE)
        harness.wait_for("the peer's connection", lambda: "rogue-will" in
                         self.brokers["broker-b"].log())
        will.kill()     # gone without a goodbye: mosquitto sends its will
        will.wait()
        will.stdin.close()
        harness.wait_for("the will refused", lambda: "hands over relayed messages only" in
                         harness.run([harness.TFCTL, "trace", "--db",
                                      self.brokers["broker-b"].trace_dir, "find", "--topic",
                                      "city/meters/will"]).stdout)
        at_a = self.client(self.brokers["broker-a"], "meter-1", username="meter-1",
                           password="demo")
        at_a.publish("city/meters/end", b"{}")
        self.assertEqual([m.topic for m in at_b.receive_until("city/meters/end")],
                         ["city/meters/end"])

    def test_no_client_takes_a_bridges_client_id(self):
        # A's bridge to B is local.broker-b at A and broker-a at B: a
        # client taking either would take its session, and what it queues.
        for b, client_id in (("broker-a", "local.broker-b"), ("broker-b", "broker-a"),
                             ("broker-b", LINK_OF["broker-a"])):
            with self.subTest(client_id):
                with self.assertRaisesRegex(AssertionError, "connection refused"):
                    harness.Client(self.brokers[b], client_id, username="utility-app",
                                   password="demo")
        # The bridges carry on.
        at_c = self.client(self.brokers["broker-c"], "contractor-app",
                           username="contractor-app", password="demo")
        at_c.subscribe("city/meters/#")
        at_a = self.client(self.brokers["broker-a"], "meter-1", username="meter-1",
                           password="demo")
        at_a.publish("city/meters/after", b"{}")
        self.assertEqual(at_c.receive().topic, "city/meters/after")

    def test_copies_for_peers_are_for_the_bridges_alone(self):
        a = self.brokers["broker-a"]
        nosy = self.client(a, "utility-app", username="utility-app", password="demo")
        self.assertEqual(nosy.subscribe(harness_egress("broker-b") + "#"), 135)
        self.assertEqual(nosy.subscribe("$trustflow/egress/#"), 135)


class QuarantineAtARelayTest(Federation):
    """B holds a flow a peer relays (its replay detector, on at B alone,
    finds a payload repeated; the owner's policy quarantines anomalies);
    released, the held messages keep their chains and go on to C."""
    OPTIONS = {"broker-b": {"guard_replay_window_s": "60"}}
    METERS = dict(METERS, on_anomaly={"action": "quarantine"})

    def test_held_relayed_messages_are_released_with_their_chains_and_go_on(self):
        b = self.brokers["broker-b"]
        at_b = self.client(b, "utility-app", username="utility-app", password="demo")
        at_c = self.client(self.brokers["broker-c"], "contractor-app",
                           username="contractor-app", password="demo")
        for sub in (at_b, at_c):
            sub.subscribe("city/meters/#")
        at_a = self.client(self.brokers["broker-a"], "meter-1", username="meter-1",
                           password="demo")
        for payload in (b'{"kwh": 5}', b'{"kwh": 5}', b'{"kwh": 6}'):
            at_a.publish("city/meters/m5", payload)
        # The first passes; the repeat is held, and the rest of its flow.
        self.assertEqual(at_b.receive().payload, b'{"kwh": 5}')
        self.assertEqual(at_c.receive().payload, b'{"kwh": 5}')
        flow = "meter-data/" + LINK_OF["broker-a"]
        listed = harness.wait_for("the held flow", lambda: [
            json.loads(line) for line in harness.run(
                [harness.TFCTL, "quarantine", "list", "--username", "ops-b", "--password",
                 "demo", "--port", str(b.port)]).stdout.splitlines()
            if json.loads(line)["held"] == 2])
        self.assertEqual(listed[0]["flow"], flow)
        out = harness.run([harness.TFCTL, "quarantine", "release", flow, "--username", "ops-b",
                           "--password", "demo", "--port", str(b.port)])
        self.assertEqual(json.loads(out.stdout)["released"], 2)
        for sub, path in ((at_b, ["broker-a", "broker-b"]), (at_c, list(BROKERS))):
            got = [sub.receive(), sub.receive()]
            self.assertEqual([m.payload for m in got], [b'{"kwh": 5}', b'{"kwh": 6}'])
            for m in got:
                stamps = verify_chain(m, self.public_keys())
                self.assertEqual([s["broker"] for s in stamps], path)
                self.assertEqual(stamps[0]["client"], "meter-1")


class PullBridgeTest(harness.BrokerTestCase):
    """A bridge opened here that brings messages in (`in`) carries nothing:
    on the side that opened it the remote is authenticated by nothing."""

    def test_messages_pulled_over_a_bridge_opened_here_are_refused(self):
        remote = self.start_broker(with_plugin=False)
        here = self.start_broker(
            identities={"trustflow_identities": 1, "organizations": {"city": {}},
                        "clients": {"meter-1": {"org": "city"}}},
            policies={"open.json": {"trustflow_policy": 1, "id": "open", "version": 1,
                                    "owner": "city", "topics": ["pull/#"],
                                    "publishers": {}, "consumers": [{"orgs": ["city"]}]}},
            passwords={"meter-1": "demo"},
            extra_conf=(f"connection pull\naddress 127.0.0.1:{remote.port}\n"
                        "bridge_protocol_version mqttv50\nnotifications false\n"
                        "topic pull/# in 1\n"))
        harness.wait_for("the bridge", lambda: "Received CONNACK on connection" in here.log())
        sub = self.client(here, "meter-1", username="meter-1", password="demo")
        self.assertEqual(sub.subscribe("pull/#"), 1)
        harness.run([harness.MOSQUITTO_PUB, "-p", str(remote.port), "-t", "pull/x", "-m", "{}",
                     "-q", "1"])
        harness.wait_for("the refusal", lambda: "came in over a bridge opened here"
                         in here.log())
        with self.assertRaises(AssertionError):
            sub.receive(timeout=1)


class RingTest(Federation):
    """A -> B -> C -> A: a ring of bridges carries a message once around at
    most."""
    BRIDGES = {"broker-a": "broker-b", "broker-b": "broker-c", "broker-c": "broker-a"}

    def test_a_message_goes_once_around_a_ring_and_stops(self):
        subscribers = {}
        for b, user in {"broker-a": "meter-1", "broker-b": "utility-app",
                        "broker-c": "contractor-app"}.items():
            subscribers[b] = self.client(self.brokers[b], f"{user}-sub", username=user,
                                         password="demo")
            subscribers[b].subscribe("city/meters/#")
        at_a = self.client(self.brokers["broker-a"], "meter-1", username="meter-1",
                           password="demo")
        at_a.publish("city/meters/round", b'{"kwh": 3}')
        at_a.publish("city/meters/end", b"{}")
        for b, sub in subscribers.items():
            with self.subTest(b):
                self.assertEqual([m.topic for m in sub.receive_until("city/meters/end")],
                                 ["city/meters/round", "city/meters/end"])
        # C did not hand it back to A (it would have come before the end):
        # A's trace holds the one message its client published.
        def found():
            return harness.run([harness.TFCTL, "trace", "--db",
                                self.brokers["broker-a"].trace_dir, "find", "--topic",
                                "city/meters/round"]).stdout.splitlines()
        self.assertEqual(len(harness.wait_for("A's record", found)), 1)


def write_private_key(path, key):
    with open(path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(path, 0o600)


def harness_egress(peer):
    """The local prefix of the bridge to peer (TF_EGRESS_PREFIX)."""
    return f"$trustflow/egress/{peer}/"


if __name__ == "__main__":
    harness.main()
