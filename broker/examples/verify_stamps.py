#!/usr/bin/env python3
"""Check trustflow provenance stamps in Python (paho-mqtt and cryptography).

    python3 verify_stamps.py --host 127.0.0.1 --port 1883 --topic 'city/#' \
        [--username U --password P]

Subscribes with MQTT v5, reads the broker's public keys from
$trustflow/keys/#, and prints for every message `ok <tf-id> <topic>` or
`FAIL <tf-id|-> <topic> <reason>`, as `tfctl verify` does. The functions
`stamp_fields`, `signing_input` and `check` can be used on their own in any
subscriber: they follow provenance-v1 ("Compact form", "Checking a stamp")
and nothing else. A stamp comes in one of two forms, as the broker's option
stamp_form says: eleven tf-* user properties, or one `tf` property (the
compact form, without the payload hash: the hash of the payload received
stands in for it).

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
                                                          load_pem_public_key)

# Signing order of provenance-v1; "topic" is the message's own topic.
FIELDS = ["v", "id", "broker", "kid", "ts", "org", "client", "policy", "topic", "sha256", "seq"]
# The fields of the compact form's value, in its order.
COMPACT_FIELDS = ["v", "id", "broker", "kid", "ts", "org", "client", "policy", "seq", "sig"]
FULL_NAMES = ["tf-" + f for f in FIELDS if f != "topic"] + ["tf-sig"]
# The longest compact value: the most an MQTT string holds.
COMPACT_MAX = 65535


class StampError(ValueError):
    """A message whose stamp cannot be read; str() is the reason."""


def decode_compact(value):
    """The fields of a compact value (the `tf` property) as a dict of
    tf-* names, without tf-sha256. Raises StampError."""
    if len(value.encode("utf-8")) > COMPACT_MAX:
        raise StampError("compact stamp or hop record too long")
    parts = value.split("|")
    if len(parts) != len(COMPACT_FIELDS):
        raise StampError("wrong number of fields in a compact stamp or hop record")
    if not all(re.fullmatch(r"(?:[^%]|%25|%7C)*", p) for p in parts):
        raise StampError("bad escape in a compact stamp or hop record")
    # One pass, so that %257C reads back as %7C.
    return {"tf-" + f: re.sub(r"%25|%7C", lambda m: "%" if m.group() == "%25" else "|", p)
            for f, p in zip(COMPACT_FIELDS, parts)}


def stamp_fields(pairs, payload):
    """The stamp of a message as a dict of tf-* names, from its user
    properties (a list of (name, value)) in either form: the tf-*
    properties (the first of each name counts), or the compact `tf`, to
    which tf-sha256 is added as the SHA-256 of the payload received.
    Neither form: {} (check() says "missing stamp"). Raises StampError for
    a message with both forms, `tf` twice, or a malformed compact value."""
    full, compact = {}, [v for n, v in pairs if n == "tf"]
    for name, value in pairs:
        if name in FULL_NAMES:
            full.setdefault(name, value)
    if full and compact:
        raise StampError("stamp in both forms")
    if len(compact) > 1:
        raise StampError("malformed stamp")
    if not compact:
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
    name -> value) and the topic the message arrived on."""
    out = b"trustflow-stamp-1\n"
    for field in FIELDS:
        value = (topic if field == "topic" else props["tf-" + field]).encode("utf-8")
        out += field.encode() + b":" + str(len(value)).encode() + b":" + value + b"\n"
    return out


def check(props, topic, payload, keys):
    """'ok', or why the stamp does not hold: 'missing stamp', 'unknown key',
    'payload hash mismatch', 'bad signature'. keys maps kid -> key."""
    if any(name not in props for name in FULL_NAMES):
        return "missing stamp"
    key = keys.get(props["tf-kid"])
    if key is None:
        return "unknown key"
    if hashlib.sha256(payload).hexdigest() != props["tf-sha256"]:
        return "payload hash mismatch"
    try:
        key.verify(base64.b64decode(props["tf-sig"], validate=True), signing_input(props, topic))
    except (InvalidSignature, ValueError):
        return "bad signature"
    return "ok"


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
    ap.add_argument("--count", type=int, default=0, help="stop after N messages")
    args = ap.parse_args()

    keys, seen, failed = {}, [0], [False]
    client = mqtt.Client(protocol=mqtt.MQTTv5)
    if args.username:
        client.username_pw_set(args.username, args.password)

    def on_connect(c, _userdata, _flags, _rc, _props=None):
        c.subscribe("$trustflow/keys/#")
        c.subscribe(args.topic)

    def on_message(c, _userdata, msg):
        if msg.topic.startswith("$trustflow/keys/"):
            kid, key = load_key(msg.payload)
            keys[kid] = key
            return
        try:
            props = stamp_of(msg)
            verdict = check(props, msg.topic, msg.payload, keys)
        except StampError as e:
            props, verdict = {}, str(e)
        if verdict == "ok":
            print(f"ok {props['tf-id']} {msg.topic}", flush=True)
        else:
            failed[0] = True
            print(f"FAIL {props.get('tf-id', '-')} {msg.topic} {verdict}", flush=True)
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
