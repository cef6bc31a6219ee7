"""Chains of stamps (federation-v1, section 4) made by the tests, as the
brokers on a message's path would make them, and the cases the chain
verifiers are run on.

The relaying broker is not built yet, so each stamp is signed here with
cryptography's Ed25519 keys (written as PEM files for the verifiers) from
the specification's text alone, apart from the project's C code and from
broker/examples/verify_stamps.py. The messages go through a plain
mosquitto, which passes user properties unchanged, to the verifiers that
subscribe to it.
"""

import base64
import hashlib
import os
import re
import subprocess

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import harness

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

ORIGIN_TOPIC = "city/water/d7/telemetry"
PAYLOAD = b'{"flow": 12.5, "pressure": 3.1}'
POLICY = "water-telemetry@3"
# Where the cases arrive: one topic each, under this prefix.
PREFIX = "partners/city-water/"
DOC = os.path.join(harness.SRCDIR, "docs", "provenance.md")
SECTION = "## Relayed messages: checking a chain"
SIGNED = ["v", "id", "broker", "kid", "ts", "org", "client", "policy", "topic", "sha256", "seq"]
RECORD = ["v", "id", "broker", "kid", "ts", "org", "client", "policy", "topic", "seq", "prev",
          "sig"]
FULL = ["v", "id", "broker", "kid", "ts", "org", "client", "policy", "sha256", "seq", "sig",
        "topic", "prev"]
# A relay's stamp names the peer it came from: its organization and the
# username of its bridge (federation-v1, section 4).
ORGS = {"broker-a": "city-waterworks", "broker-b": "grid-op", "broker-c": "research-lab"}
# The brokers whose keys the verifiers are given, in the order of their Keys.
BROKERS = ["broker-a", "broker-b", "broker-c"]


class Key:
    """An Ed25519 key of one broker; its public half as a PEM file in
    directory."""

    def __init__(self, directory, name):
        self.private = Ed25519PrivateKey.generate()
        public = self.private.public_key()
        self.kid = hashlib.sha256(public.public_bytes(Encoding.Raw, PublicFormat.Raw)) \
            .hexdigest()[:16]
        self.pem = public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
        self.path = os.path.join(directory, name + ".pem")
        with open(self.path, "w", encoding="ascii") as f:
            f.write(self.pem)


def escape(value):
    return value.replace("%", "%25").replace("|", "%7C")


def record_of(stamp):
    """The hop record of a stamp (a dict of field names): twelve fields,
    prev empty for a format-1 stamp."""
    return "|".join(escape(stamp.get(f, "")) for f in RECORD)


def link_of(record):
    return base64.b64encode(hashlib.sha256(record.encode("utf-8")).digest()[:16]).decode()


class Chain:
    """A message's stamps, oldest first, as the brokers signed them."""

    def __init__(self, msg_id):
        self.id = msg_id
        self.stamps = []

    def add(self, key, broker, topic, prev="link", changes=None):
        """Broker signs the next stamp with key for topic. prev "link" links
        it to the last stamp's record (None: a format-1 stamp, as the
        origin's); changes (a dict) replace fields before it is signed."""
        i = len(self.stamps)
        if prev == "link":
            prev = link_of(record_of(self.stamps[-1]))
        stamp = {
            "v": "1" if prev is None else "2", "id": self.id, "broker": broker,
            "kid": key.kid, "ts": str(1764158400000 + i), "policy": POLICY, "topic": topic,
            "org": "city-waterworks" if i == 0 else ORGS.get(self.stamps[-1]["broker"], "peer"),
            "client": "ww-sensor-01" if i == 0 else "bridge-" + self.stamps[-1]["broker"],
            "sha256": hashlib.sha256(PAYLOAD).hexdigest(), "seq": str(42 + i),
        }
        stamp.update(changes or {})
        if prev is not None:
            stamp["prev"] = prev
        data = ("trustflow-stamp-2\n" if prev is not None else "trustflow-stamp-1\n").encode()
        for field in SIGNED + (["prev"] if prev is not None else []):
            value = stamp[field].encode("utf-8")
            data += b"%s:%d:%s\n" % (field.encode(), len(value), value)
        stamp["sig"] = base64.b64encode(key.private.sign(data)).decode()
        self.stamps.append(stamp)
        return self

    def properties(self, form):
        """The user properties of the message the last broker delivers:
        tf-hop records, oldest first, then the newest stamp in form ("full"
        or "compact")."""
        pairs = [("tf-hop", record_of(st)) for st in self.stamps[:-1]]
        newest = self.stamps[-1]
        if form == "compact" and "prev" in newest:
            return pairs + [("tf", record_of(newest))]
        if form == "compact":
            fields = ["v", "id", "broker", "kid", "ts", "org", "client", "policy", "seq", "sig"]
            return pairs + [("tf", "|".join(escape(newest[f]) for f in fields))]
        names = FULL if "prev" in newest else FULL[:11]
        return pairs + [("tf-" + name, newest[name]) for name in names]


PATH = "city-waterworks/ww-sensor-01 -> broker-a -> broker-b -> broker-c"


class Case:
    """A message to publish on topic with user properties pairs, and what
    a verifier must say of it, given each broker's key bound to its broker
    (tfctl verify --key-of): verdict "ok" and, for a chain, its path; or
    the reason, and for a chain the stamp at fault (at, counting from 1,
    the origin's) and its broker. unbound: the Case it is with the same
    keys trusted for any broker (--key), when that differs."""

    def __init__(self, topic, chain, pairs, verdict, path=None, at=None, broker=None,
                 unbound=None):
        self.topic, self.id, self.pairs = topic, chain.id, pairs
        self.verdict, self.path, self.at, self.broker = verdict, path, at, broker
        self.unbound = unbound

    def line(self, bound=True):
        """The line tfctl verify prints (docs/provenance.md), with the keys
        bound to their brokers or not."""
        if not bound and self.unbound is not None:
            return self.unbound.line()
        if self.verdict == "ok":
            return f"ok {self.id} {self.topic}" + (f" path: {self.path}" if self.path else "")
        if self.at is None:
            return f"FAIL - {self.topic} {self.verdict}"
        return f"FAIL {self.id} {self.topic} {self.verdict} at stamp {self.at} ({self.broker})"


def msg_id(name):
    """A message id (32 hex digits) of its own for each case."""
    return "019ac008e600" + hashlib.sha256(name.encode()).hexdigest()[:20]


def cases(keys, stranger):
    """The cases, one topic each under PREFIX. keys: broker-a's,
    broker-b's and broker-c's Keys; stranger: a key no verifier is given."""
    a, b, c = keys

    def start(name):
        return PREFIX + name, Chain(msg_id(name)).add(a, "broker-a", ORIGIN_TOPIC, prev=None)

    def three(name, c_changes=None):
        topic, chain = start(name)
        return topic, chain.add(b, "broker-b", topic).add(c, "broker-c", topic,
                                                         changes=c_changes)

    out = []
    for form in ("full", "compact"):
        # Relayed A -> B -> C, the origin's stamp for the topic it was
        # published on.
        topic, chain = three("valid-" + form)
        out.append(Case(topic, chain, chain.properties(form), "ok", path=PATH))
    # Published on the broker it arrives from: one stamp, as ever.
    topic = PREFIX + "single"
    chain = Chain(msg_id("single")).add(a, "broker-a", topic, prev=None)
    out.append(Case(topic, chain, chain.properties("compact"), "ok"))
    # By a publisher of no organization, whose name has a bar and a
    # percent sign: escaped in its record, shown as it is.
    topic = PREFIX + "unidentified"
    chain = Chain(msg_id("unidentified")).add(
        a, "broker-a", ORIGIN_TOPIC, prev=None, changes={"org": "", "client": "meter|%7C"})
    chain.add(b, "broker-b", topic).add(c, "broker-c", topic)
    out.append(Case(topic, chain, chain.properties("compact"), "ok",
                    path="-/meter|%7C -> broker-a -> broker-b -> broker-c"))

    # A hop record changed on the way: the stamp after it no longer links.
    topic, chain = three("tampered")
    pairs = chain.properties("full")
    pairs[0] = ("tf-hop", pairs[0][1].replace("|city-waterworks|", "|maint-co|"))
    out.append(Case(topic, chain, pairs, "broken chain", at=2, broker="broker-b"))
    # C rewrites B's record and links its own stamp to the rewritten one.
    topic, chain = start("rewritten")
    chain.add(b, "broker-b", topic)
    chain.stamps[1]["org"] = "maint-co"
    chain.add(c, "broker-c", topic)
    out.append(Case(topic, chain, chain.properties("compact"), "bad signature", at=2,
                    broker="broker-b"))
    # C links to A's record, past B's.
    topic, chain = start("prev")
    chain.add(b, "broker-b", topic)
    chain.add(c, "broker-c", topic, prev=link_of(record_of(chain.stamps[0])))
    out.append(Case(topic, chain, chain.properties("full"), "broken chain", at=3,
                    broker="broker-c"))
    # Back to where it started.
    topic, chain = start("loop")
    chain.add(b, "broker-b", topic).add(a, "broker-a", topic)
    out.append(Case(topic, chain, chain.properties("compact"), "a broker twice in the chain",
                    at=3, broker="broker-a"))
    # A made up the path: all three stamps under its key, naming B and C.
    # Checked with keys trusted for any broker, it holds.
    topic, chain = start("one-key")
    chain.add(a, "broker-b", topic).add(a, "broker-c", topic)
    out.append(Case(topic, chain, chain.properties("full"), "key of another broker", at=3,
                    broker="broker-c",
                    unbound=Case(topic, chain, [], "ok", path=PATH)))
    # B's stamp alone under A's key.
    topic, chain = start("borrowed-key")
    chain.add(a, "broker-b", topic).add(c, "broker-c", topic)
    out.append(Case(topic, chain, chain.properties("compact"), "key of another broker", at=2,
                    broker="broker-b",
                    unbound=Case(topic, chain, [], "ok", path=PATH)))
    # C's stamp under a key the verifiers do not hold.
    topic, chain = start("unknown")
    chain.add(b, "broker-b", topic).add(stranger, "broker-c", topic)
    out.append(Case(topic, chain, chain.properties("full"), "unknown key", at=3,
                    broker="broker-c"))
    # C stamped it for another topic than it arrives on.
    topic, chain = three("topic", {"topic": PREFIX + "elsewhere"})
    out.append(Case(topic, chain, chain.properties("compact"), "stamped for another topic",
                    at=3, broker="broker-c"))
    # C's stamp in full form without its tf-topic: a field missing, though
    # the message arrives on the topic C signed.
    topic, chain = three("no-topic")
    pairs = [p for p in chain.properties("full") if p[0] != "tf-topic"]
    out.append(Case(topic, chain, pairs, "missing stamp", at=3, broker="broker-c"))
    # A format-1 stamp sent as its hop record (twelve fields, prev empty):
    # no compact stamp, though every field of it checks out.
    topic = PREFIX + "twelve"
    chain = Chain(msg_id("twelve")).add(a, "broker-a", topic, prev=None)
    out.append(Case(topic, chain, [("tf", record_of(chain.stamps[0]))],
                    "wrong number of fields in a compact stamp or hop record"))
    # A hop record that is no record: the chain cannot be read.
    topic, chain = three("escape")
    pairs = chain.properties("full")
    pairs[1] = ("tf-hop", pairs[1][1].replace("|bridge-broker-a|", "|bridge%broker-a|"))
    out.append(Case(topic, chain, pairs, "bad escape in a compact stamp or hop record"))
    # Eight tf-hop records: nine stamps, one more than a chain may have.
    topic, chain = start("long")
    for i in range(1, 9):
        chain.add(b, f"broker-{i}", topic)
    out.append(Case(topic, chain, chain.properties("full"), "chain too long"))
    return out


def publish(publisher, all_cases):
    """Publishes every case through the broker, in order."""
    for case in all_cases:
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = case.pairs
        publisher.publish(case.topic, PAYLOAD, properties=props)


def wait_subscribed(broker, before, count, what):
    """Waits until the broker's log shows count more SUBACKs than before."""
    harness.wait_for(what + " to subscribe",
                     lambda: broker.log().count("Sending SUBACK") >= before + count)


def doc_snippet(language):
    """The one code block in language of the doc's section on chains."""
    with open(DOC, encoding="utf-8") as f:
        section = f.read().split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```" + language + r"\n(.*?)^```$", section, re.S | re.M)
    assert len(blocks) == 1, f"one {language} block expected in {SECTION!r}"
    return blocks[0]


def snippet_result(case):
    """What the doc's snippets return for a case: the path when it holds
    (a message with one stamp has one too), else the reason and the stamp
    at fault."""
    if case.verdict == "ok":
        return ["ok", case.path or "city-waterworks/ww-sensor-01 -> broker-a"]
    return [case.verdict, case.at]


class ChainTestCase(harness.BrokerTestCase):
    """A plain mosquitto, the keys of broker-a, broker-b and broker-c (and
    a stranger's), and the cases signed with them."""

    def setUp(self):
        self.broker = self.start_broker(with_plugin=False)
        self.keys = [Key(self.broker.dir, name) for name in BROKERS]
        self.stranger = Key(self.broker.dir, "stranger")
        self.cases = cases(self.keys, self.stranger)
        self.publisher = self.client(self.broker, "publisher")

    def subscriber(self, cmd, subscriptions, what):
        """Starts a verifier and waits until it has subscribed."""
        before = self.broker.log().count("Sending SUBACK")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(proc.kill)
        wait_subscribed(self.broker, before, subscriptions, what)
        return proc

    def run_verifier(self, cmd, subscriptions, what, some_cases):
        """Publishes some_cases to a verifier subscribed with cmd; its exit
        status and lines."""
        proc = self.subscriber(cmd, subscriptions, what)
        publish(self.publisher, some_cases)
        out, err = proc.communicate(timeout=30)
        return proc.returncode, out.splitlines(), err

    def received(self):
        """The cases as a subscriber receives them through the broker, with
        the brokers' public keys: the input of the doc's snippets (JSON),
        the properties checked to have come through unchanged."""
        receiver = self.client(self.broker, "receiver")
        receiver.subscribe(PREFIX + "#")
        publish(self.publisher, self.cases)
        out = []
        for case in self.cases:
            msg = receiver.receive()
            self.assertEqual(msg.topic, case.topic)
            pairs = [list(p) for p in msg.properties.UserProperty]
            self.assertEqual(pairs, [list(p) for p in case.pairs])
            out.append({"topic": msg.topic, "pairs": pairs,
                        "payload": base64.b64encode(msg.payload).decode(),
                        "keys": {name: [k.pem] for name, k in zip(BROKERS, self.keys)}})
        return out

    def key_options(self, bound):
        """The keys for tfctl verify and verify_stamps.py: --key-of BROKER
        PEM for each broker, or (bound False) each with --key, trusted for
        any broker."""
        out = []
        for name, key in zip(BROKERS, self.keys):
            out += ["--key-of", name, key.path] if bound else ["--key", key.path]
        return out
