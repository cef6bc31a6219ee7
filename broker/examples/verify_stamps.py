#!/usr/bin/env python3
"""Check trustflow provenance stamps in Python (paho-mqtt and cryptography).

    python3 verify_stamps.py --host 127.0.0.1 --port 1883 --topic 'city/#' \
        [--username U --password P] [--key-of BROKER PEM]... [--key PEM]... [--count N]

Subscribes with MQTT v5, reads the broker's public keys from
$trustflow/keys/# (or, with --key-of or --key, takes only the keys in the
PEM files given: pinned keys, such as those of every broker a relayed
message comes through), and prints for every message `ok <tf-id> <topic>`
or `FAIL <tf-id|-> <topic> <reason>`, as `tfctl verify` does.
`--key-of BROKER PEM` trusts a key for the stamps of broker id BROKER
only (`key of another broker` otherwise); `--key PEM`, like the keys read
from $trustflow/keys/#, for any broker: a stamp under it may name whatever
broker its signer wrote. Check a chain with --key-of for every broker on
its path. The functions
`stamp_fields`, `signing_input` and `check` can be used on their own in any
subscriber: they follow provenance-v1 ("Compact form", "Checking a stamp")
and nothing else. A stamp comes in one of two forms, as the broker's option
stamp_form says: eleven tf-* user properties, or one `tf` property (the
compact form, without the payload hash: the hash of the payload received
stands in for it).

A message relayed from broker to broker (federation-v1, sections 4 and 5)
carries a chain of stamps: `read_chain` reads it, `check_chain` checks it
whole and `path_of` says where it went. Its line is then
`ok <tf-id> <topic> path: <org>/<client> -> <broker> -> ... -> <broker>`
(the origin's organization, `-` if none, and client, then every broker from
the origin's to the last), or the FAIL line followed by
` at stamp <n> (<broker>)`, 1 being the origin's.

On Debian: apt-get install python3-paho-mqtt python3-cryptography
"""

import argparse
import base64
import hashlib
import re
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (Encoding, PublicFormat,
                                                          load_pem_private_key,
                                                          load_pem_public_key)

# Signing order of provenance-v1; "topic" is the message's own topic.
FIELDS = ["v", "id", "broker", "kid", "ts", "org", "client", "policy", "topic", "sha256", "seq"]
# The fields of the compact form's value, in its order.
COMPACT_FIELDS = ["v", "id", "broker", "kid", "ts", "org", "client", "policy", "seq", "sig"]
FULL_NAMES = ["tf-" + f for f in FIELDS if f != "topic"] + ["tf-sig"]
# The longest compact value: the most an MQTT string holds.
COMPACT_MAX = 65535

# Format 2 (federation-v1): a relaying broker's stamp signs its prev too,
# and carries the topic it signed (tf-topic in full form).
FULL_NAMES_V2 = FULL_NAMES + ["tf-topic", "tf-prev"]
# A hop record (a `tf-hop` property), and a format-2 compact value.
RECORD_FIELDS = ["v", "id", "broker", "kid", "ts", "org", "client", "policy", "topic", "seq",
                 "prev", "sig"]
HOP_NAME = "tf-hop"
# The most stamps a chain may have, the newest included.
CHAIN_MAX = 8


def relayed(props):
    """Whether a stamp (a dict of tf-* names) is a relaying broker's,
    format 2, as the C reader tells: it has a tf-prev, or a tf-v other than
    1."""
    return "tf-prev" in props or props.get("tf-v", "1") != "1"


class StampError(ValueError):
    """A message whose stamp cannot be read; str() is the reason."""


def _split(value, counts):
    """The fields of a value joined by `|`, unescaped; raises StampError
    unless their number is in counts."""
    if len(value.encode("utf-8")) > COMPACT_MAX:
        raise StampError("compact stamp or hop record too long")
    parts = value.split("|")
    if len(parts) not in counts:
        raise StampError("wrong number of fields in a compact stamp or hop record")
    if not all(re.fullmatch(r"(?:[^%]|%25|%7C)*", p) for p in parts):
        raise StampError("bad escape in a compact stamp or hop record")
    # One pass, so that %257C reads back as %7C.
    return [re.sub(r"%25|%7C", lambda m: "%" if m.group() == "%25" else "|", p) for p in parts]


def decode_record(value):
    """The fields of a hop record (a `tf-hop` value) as a dict of tf-*
    names, without tf-sha256; tf-topic is the topic it signed, and a
    format-1 record has no tf-prev. Raises StampError."""
    props = {"tf-" + f: p for f, p in zip(RECORD_FIELDS, _split(value, [len(RECORD_FIELDS)]))}
    if props["tf-prev"] == "":
        del props["tf-prev"]
    return props


def decode_compact(value):
    """The fields of a compact value (the `tf` property) as a dict of
    tf-* names, without tf-sha256. Raises StampError. A relaying broker's
    (format 2) is a hop record, with the topic it signed: twelve fields are
    format 2's, and need a prev."""
    if len(value.split("|")) == len(RECORD_FIELDS):
        props = decode_record(value)
        if "tf-prev" not in props:
            raise StampError("wrong number of fields in a compact stamp or hop record")
        return props
    return dict(zip(("tf-" + f for f in COMPACT_FIELDS), _split(value, [len(COMPACT_FIELDS)])))


def stamp_fields(pairs, payload):
    """The stamp of a message as a dict of tf-* names, from its user
    properties (a list of (name, value)) in either form: the tf-*
    properties (the first of each name counts), or the compact `tf`, to
    which tf-sha256 is added as the SHA-256 of the payload received.
    Neither form: {} (check() says "missing stamp"). In the full form a
    format-1 stamp signed the topic the message arrived on (a tf-topic
    beside it does not count), and a format-2 one names its own: without
    tf-topic, its tf-topic is None ("missing stamp"). Raises StampError for
    a message with both forms, `tf` twice, or a malformed compact value."""
    full, compact = {}, [v for n, v in pairs if n == "tf"]
    for name, value in pairs:
        if name in FULL_NAMES_V2:
            full.setdefault(name, value)
    if full and compact:
        raise StampError("stamp in both forms")
    if len(compact) > 1:
        raise StampError("malformed stamp")
    if not compact:
        if not relayed(full):
            full.pop("tf-topic", None)
        elif "tf-topic" not in full:
            full["tf-topic"] = None
        return full
    props = decode_compact(compact[0])
    props["tf-sha256"] = hashlib.sha256(payload).hexdigest()
    return props


def kid_of(public_key):
    """The key id: the first 16 hex digits of SHA-256 over the raw key."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_key(pem):
    """(kid, key) from a SubjectPublicKeyInfo PEM (str or bytes)."""
    key = load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 key")
    return kid_of(key), key


def signing_input(props, topic):
    """The bytes the broker signed, from the tf-* properties (a dict of
    name -> value) and the topic the message arrived on. A stamp that
    names its topic (tf-topic: a relaying broker's, or a hop record) signed
    that one; a format-2 stamp (with tf-prev) signs its prev too, under a
    header of its own."""
    relayed = "tf-prev" in props
    out = b"trustflow-stamp-2\n" if relayed else b"trustflow-stamp-1\n"
    for field in FIELDS + (["prev"] if relayed else []):
        value = props.get("tf-topic", topic) if field == "topic" else props["tf-" + field]
        value = value.encode("utf-8")
        out += field.encode() + b":" + str(len(value)).encode() + b":" + value + b"\n"
    return out


def missing(props, names):
    """Whether a stamp lacks one of names, or the tf-topic a format-2 stamp
    must have."""
    return any(name not in props for name in names) or props.get("tf-topic", "") is None


def check(props, topic, payload, keys, bound=None):
    """'ok', or why the stamp does not hold: 'missing stamp', 'unknown key',
    'key of another broker', 'payload hash mismatch', 'bad signature'.
    keys maps kid -> key; bound maps the kid of a key trusted for one broker
    only to that broker's id (a key not in it is trusted for any broker)."""
    if missing(props, FULL_NAMES):
        return "missing stamp"
    key = keys.get(props["tf-kid"])
    if key is None:
        return "unknown key"
    if (bound or {}).get(props["tf-kid"], props["tf-broker"]) != props["tf-broker"]:
        return "key of another broker"
    if hashlib.sha256(payload).hexdigest() != props["tf-sha256"]:
        return "payload hash mismatch"
    try:
        key.verify(base64.b64decode(props["tf-sig"], validate=True), signing_input(props, topic))
    except (InvalidSignature, ValueError):
        return "bad signature"
    return "ok"


def link_of(record):
    """The prev that the stamp after a hop record must carry: standard
    base64 of the first 16 bytes of SHA-256 over the record as carried."""
    return base64.b64encode(hashlib.sha256(record.encode("utf-8")).digest()[:16]).decode()


def read_chain(pairs, payload):
    """The stamps of a message, oldest first, and the links to its hop
    records: ([origin's, ..., newest], [link of each tf-hop]). A message
    published on the broker it came from has one stamp and no links. Each
    stamp is a dict of tf-* names (a hop record's tf-sha256 is the
    payload's). Raises StampError when the chain cannot be read."""
    hops = [v for n, v in pairs if n == HOP_NAME]
    if len(hops) > CHAIN_MAX - 1:
        raise StampError("chain too long")
    newest = stamp_fields(pairs, payload)
    if not newest:
        raise StampError("missing stamp")
    sha256 = hashlib.sha256(payload).hexdigest()
    stamps = []
    for record in hops:
        stamps.append(dict(decode_record(record), **{"tf-sha256": sha256}))
    return stamps + [newest], [link_of(record) for record in hops]


def check_links(stamps, links, topic):
    """How the stamps hang together, without their signatures: ('ok', 0)
    or (reason, index of the stamp at fault). The origin's alone is format
    1, every later one format 2 linked by its prev to the record before;
    all name one message id and one policy; no broker stamps twice; the
    newest was made for topic, the one the message arrived on."""
    origin = stamps[0]
    for i, st in enumerate(stamps):
        if missing(st, ("tf-v", "tf-id", "tf-broker", "tf-policy")):
            return "missing stamp", i
        if (st["tf-v"], "tf-prev" in st) != (("1", False) if i == 0 else ("2", True)):
            return "malformed stamp", i
        if i > 0 and st["tf-prev"] != links[i - 1]:
            return "broken chain", i
        if (st["tf-id"], st["tf-policy"]) != (origin["tf-id"], origin["tf-policy"]):
            return "broken chain", i
        if any(st["tf-broker"] == before["tf-broker"] for before in stamps[:i]):
            return "a broker twice in the chain", i
    if stamps[-1].get("tf-topic", topic) != topic:
        return "stamped for another topic", len(stamps) - 1
    return "ok", 0


def check_chain(stamps, links, topic, payload, keys, bound=None):
    """What a receiver checks (federation-v1, section 5): the links, then
    each stamp, newest first, with check() (keys and bound as there: each
    stamp must verify with its broker's key, which only bound can tell).
    ('ok', 0) or the first failure and the index of its stamp."""
    verdict, at = check_links(stamps, links, topic)
    for i in reversed(range(len(stamps)) if verdict == "ok" else []):
        verdict = check(stamps[i], topic, payload, keys, bound)
        if verdict != "ok":
            return verdict, i
    return verdict, at


def path_of(stamps):
    """Where a message that checked out went: the origin's organization
    (`-` if none) and client, then each broker, oldest first."""
    origin = stamps[0]
    return " -> ".join([(origin["tf-org"] or "-") + "/" + origin["tf-client"]]
                       + [st["tf-broker"] for st in stamps])


def verdict_line(pairs, topic, payload, keys, bound=None):
    """The line tfctl verify prints for a message."""
    try:
        stamps, links = read_chain(pairs, payload)
        verdict, at = check_chain(stamps, links, topic, payload, keys, bound)
    except StampError as e:
        stamps, verdict, at = [], str(e), 0
    msg_id = stamps[-1].get("tf-id", "-") if stamps else "-"
    if verdict == "ok":
        return f"ok {msg_id} {topic}" + (f" path: {path_of(stamps)}" if len(stamps) > 1 else "")
    line = f"FAIL {msg_id} {topic} {verdict}"
    if len(stamps) > 1:
        line += f" at stamp {at + 1} ({stamps[at].get('tf-broker', '-')})"
    return line


def load_key_file(path):
    """(kid, key) from a PEM file: a public key, or a private key's public
    half."""
    with open(path, "rb") as f:
        pem = f.read()
    try:
        return load_key(pem)
    except ValueError:
        return load_key(load_pem_private_key(pem, None).public_key().public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))


def stamp_of(message):
    """The stamp of a paho-mqtt message, in either form, as a dict of
    tf-* names (stamp_fields). Raises StampError."""
    pairs = getattr(message.properties, "UserProperty", None) or []
    return stamp_fields(pairs, message.payload)


def main():
    import paho.mqtt.client as mqtt

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--topic", default="#")
    ap.add_argument("--username")
    ap.add_argument("--password")
    ap.add_argument("--key-of", action="append", default=[], nargs=2, metavar=("BROKER", "PEM"),
                    help="a PEM file of a key to trust for the stamps of broker BROKER only, "
                    "instead of the broker's published keys")
    ap.add_argument("--key", action="append", default=[],
                    help="a PEM file of a key to trust for any broker, instead of the broker's "
                    "published keys")
    ap.add_argument("--count", type=int, default=0, help="stop after N messages")
    args = ap.parse_args()

    keys, bound, seen, failed = dict(load_key_file(path) for path in args.key), {}, [0], [False]
    for broker, path in args.key_of:
        kid, keys[kid] = load_key_file(path)
        if bound.setdefault(kid, broker) != broker:
            ap.error(f"{path}: key {kid} is bound to broker {bound[kid]} already")
    pinned = args.key or args.key_of
    client = mqtt.Client(protocol=mqtt.MQTTv5)
    if args.username:
        client.username_pw_set(args.username, args.password)

    def on_connect(c, _userdata, _flags, _rc, _props=None):
        if not pinned:
            c.subscribe("$trustflow/keys/#")
        c.subscribe(args.topic)

    def on_message(c, _userdata, msg):
        if msg.topic.startswith("$trustflow/keys/"):
            kid, key = load_key(msg.payload)
            keys[kid] = key
            return
        pairs = getattr(msg.properties, "UserProperty", None) or []
        line = verdict_line(pairs, msg.topic, msg.payload, keys, bound)
        failed[0] = failed[0] or not line.startswith("ok ")
        print(line, flush=True)
        seen[0] += 1
        if args.count and seen[0] >= args.count:
            c.disconnect()

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(args.host, args.port)
    client.loop_forever()
    return 1 if failed[0] else 0


if __name__ == "__main__":
    sys.exit(main())
