"""The JSON Schemas that editors use to check policy and identities files
(policy/policy.schema.json, policy/identities.schema.json) agree with the
project's real files, with the spec's examples, and with the broker's own
rules (policy/*.c): good files pass, broken ones fail at the right place.

Needs Debian's python3-jsonschema; run with /usr/bin/python3 -B.
"""

import copy
import datetime
import itertools
import json
import os
import re
import sys
import unittest

try:
    import jsonschema
except ImportError:  # pragma: no cover - a missing dependency is a failure
    sys.stderr.write("test_policy_schemas: no jsonschema module: run it with Debian's "
                     "/usr/bin/python3 and apt-get install python3-jsonschema\n")
    sys.exit(1)

SRCDIR = os.environ.get("TF_SRCDIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

POLICY_SCHEMA = os.path.join(SRCDIR, "policy", "policy.schema.json")
IDENTITIES_SCHEMA = os.path.join(SRCDIR, "policy", "identities.schema.json")
DEMO_IDENTITIES = os.path.join(SRCDIR, "broker", "conf", "demo", "identities.json")
DEMO_POLICY = os.path.join(SRCDIR, "broker", "conf", "demo", "policies", "water-telemetry.json")
EXAMPLE_POLICIES = os.path.join(SRCDIR, "policy", "examples", "policies")
UNIT_DATA = os.path.join(SRCDIR, "tests", "unit", "data")
# The contract lives beside the project, not in it; checked when present.
SPEC = os.environ.get("TF_POLICY_SPEC") or os.path.join(
    SRCDIR, "..", "shared", "spec", "policy-v1.md")

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
ID_REGEX = "^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"  # policy-v1.md

# The examples of policy-v1.md, copied literally.
SPEC_POLICY = json.loads("""
{
  "trustflow_policy": 1,
  "id": "water-telemetry",
  "version": 3,
  "owner": "city-waterworks",
  "description": "Flow and pressure telemetry from district meters",
  "topics": ["city/water/+/telemetry"],
  "publishers": { "roles": ["sensor"] },
  "consumers": [
    { "orgs": ["maint-co"], "purposes": ["maintenance"],
      "not_after": "2027-03-31T00:00:00Z" },
    { "orgs": ["research-lab"], "fields": ["flow"],
      "view": "views/research-lab" }
  ],
  "retention_seconds": 86400,
  "forwarding": "deny",
  "limits": { "max_messages_per_second": 50, "max_payload_bytes": 4096 },
  "schema": {
    "type": "object",
    "required": ["flow"],
    "properties": {
      "flow":     { "type": "number", "minimum": 0, "maximum": 1000 },
      "pressure": { "type": "number" }
    }
  },
  "on_violation": { "action": "quarantine" }
}
""")

SPEC_IDENTITIES = json.loads("""
{
  "trustflow_identities": 1,
  "organizations": {
    "city-waterworks": { "name": "City Waterworks Bureau" },
    "maint-co":        { "name": "Maintenance Co." }
  },
  "clients": {
    "ww-sensor-01": { "org": "city-waterworks", "roles": ["sensor"] },
    "maint-app":    { "org": "maint-co", "roles": ["operator"], "purposes": ["maintenance"] },
    "ops-admin":    { "org": "city-waterworks", "roles": ["trustflow-admin"] }
  }
}
""")

MINIMAL_POLICY = {"trustflow_policy": 1, "id": "p", "version": 1, "owner": "city-waterworks",
                  "topics": ["a/b"]}


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# ---- The broker's rules, ported from policy/id.c and policy/topic.c ----

def c_id_valid(s):
    """tf_id_is_valid()."""
    ok = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return (0 < len(s) <= 128 and s[0] in ok
            and all(ch in ok or ch in "._:@-" for ch in s[1:]))


def c_topic_valid(t, wildcards):
    """tf_topic_filter_valid() (wildcards) and tf_topic_name_valid()."""
    if not t or len(t.encode("utf-8")) > 1024 or t[0] == "$":
        return False
    levels = t.split("/")
    if len(levels) > 64:
        return False
    for i, level in enumerate(levels):
        if "+" in level or "#" in level:
            if not wildcards or len(level) != 1:
                return False
            if level == "#" and i != len(levels) - 1:
                return False
    return wildcards or not t.endswith("/")


_RFC3339 = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
                      r"(?:\.[0-9]+)?(?:[Zz]|[+-]([0-9]{2}):([0-9]{2}))")


def rfc3339_valid(instance):
    """tf_rfc3339_parse(), as the date-time format check. Debian 12's
    jsonschema has none (it needs rfc3339-validator, which Debian does not
    package), and where there is one it may differ from the broker on
    details such as leap seconds; the broker is the reference."""
    if not isinstance(instance, str):
        return True
    m = _RFC3339.fullmatch(instance)
    if m is None:
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if m.group(7) is not None and (int(m.group(7)) > 23 or int(m.group(8)) > 59):
        return False
    try:
        datetime.datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError:
        return False
    return second <= 60


_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


def date_valid(instance):
    """A date alone, as tf_rfc3339_parse_day_or_time() takes it: RFC 3339's
    full-date, a day that exists. (Python's own date.fromisoformat takes
    more forms than RFC 3339, such as 20270331.)"""
    if not isinstance(instance, str):
        return True
    m = _DATE.fullmatch(instance)
    if m is None:
        return False
    try:
        datetime.date(*(int(g) for g in m.groups()))
    except ValueError:
        return False
    return True


def format_checker():
    checker = jsonschema.FormatChecker()
    checker.checks("date-time")(rfc3339_valid)
    checker.checks("date")(date_valid)
    return checker


class Either:
    """Paths any one of which an error may be reported at: jsonschema
    versions differ on where a member refused by a false schema is."""

    def __init__(self, *paths):
        self.paths = paths


def all_errors(errors):
    """Every error, with those nested in anyOf/allOf/$ref contexts."""
    for e in errors:
        yield e
        yield from all_errors(e.context)


class SchemaCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.policy_schema = load(POLICY_SCHEMA)
        cls.identities_schema = load(IDENTITIES_SCHEMA)
        cls.policy = jsonschema.Draft202012Validator(cls.policy_schema,
                                                     format_checker=format_checker())
        cls.identities = jsonschema.Draft202012Validator(cls.identities_schema,
                                                         format_checker=format_checker())

    def assertValid(self, validator, doc):
        problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
        self.assertEqual(problems, [], "a good document fails the schema")

    def assertInvalidAt(self, validator, doc, path):
        """doc fails, and one of the reasons is about the member at path
        (or at one of the paths of an Either)."""
        errors = list(validator.iter_errors(doc))
        self.assertNotEqual(errors, [], "a broken document passes the schema")
        where = [list(e.absolute_path) for e in all_errors(errors)]
        wanted = path.paths if isinstance(path, Either) else [path]
        self.assertTrue(any(list(p) in where for p in wanted),
                        f"the schema fails it, but not at {wanted}: "
                        + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors))

    def subschema_validator(self, schema, name):
        """A validator for one of schema's $defs."""
        return jsonschema.Draft202012Validator(
            {"$defs": schema["$defs"], "$ref": "#/$defs/" + name},
            format_checker=format_checker())


class SchemaFilesTest(SchemaCase):
    def test_schemas_are_valid_draft_2020_12_schemas(self):
        for schema in (self.policy_schema, self.identities_schema):
            with self.subTest(schema=schema["$id"]):
                self.assertEqual(schema["$schema"], DRAFT_2020_12)
                self.assertTrue(schema["$id"].startswith("https://"))
                self.assertTrue(schema["title"])
                jsonschema.Draft202012Validator.check_schema(schema)

    def test_every_reference_resolves(self):
        for schema in (self.policy_schema, self.identities_schema):
            refs = []

            def walk(node):
                if isinstance(node, dict):
                    if isinstance(node.get("$ref"), str):
                        refs.append(node["$ref"])
                    for v in node.values():
                        walk(v)
                elif isinstance(node, list):
                    for v in node:
                        walk(v)
            walk(schema)
            self.assertNotEqual(refs, [])
            for ref in refs:
                with self.subTest(ref=ref):
                    self.assertTrue(ref.startswith("#/"), "refers outside the file")
                    node = schema
                    for part in ref[2:].split("/"):
                        self.assertIn(part, node)
                        node = node[part]
                    self.assertIsInstance(node, (dict, bool))

    def test_every_property_has_a_description(self):
        """Editors show these to the data owner while typing. Checked on
        every schema that defines an object (has "type": "object"); the
        overlays that only add a rule (if/else, the nesting limit) are
        described where the members are defined."""
        for schema, at_least in ((self.policy_schema, 30), (self.identities_schema, 7)):
            described = []

            def walk(node, path):
                if not isinstance(node, dict):
                    return
                if node.get("type") == "object":
                    for name, sub in node.get("properties", {}).items():
                        target = sub
                        if isinstance(sub, dict) and "description" not in sub and "$ref" in sub:
                            target = schema
                            for part in sub["$ref"][2:].split("/"):
                                target = target[part]
                        with self.subTest(member=path + [name]):
                            self.assertIsInstance(target, dict)
                            self.assertTrue(target.get("description"), "no description")
                        described.append(name)
                for key, sub in node.items():
                    walk(sub, path + [key])
            self.assertTrue(schema.get("description"))
            walk(schema, [])
            self.assertGreaterEqual(len(described), at_least)

    def test_patterns_compile(self):
        patterns = []

        def walk(node):
            if isinstance(node, dict):
                if isinstance(node.get("pattern"), str):
                    patterns.append(node["pattern"])
                for v in node.values():
                    walk(v)
        walk(self.policy_schema)
        walk(self.identities_schema)
        self.assertGreaterEqual(len(patterns), 5)
        for p in patterns:
            re.compile(p)


class GoodFilesTest(SchemaCase):
    def test_demo_identities(self):
        self.assertValid(self.identities, load(DEMO_IDENTITIES))

    def test_demo_policy(self):
        self.assertValid(self.policy, load(DEMO_POLICY))

    def test_example_policies(self):
        names = sorted(os.listdir(EXAMPLE_POLICIES))
        self.assertGreater(len(names), 0, f"no examples in {EXAMPLE_POLICIES}")
        for name in names:
            with self.subTest(example=name):
                self.assertValid(self.policy, load(os.path.join(EXAMPLE_POLICIES, name)))

    def test_spec_examples(self):
        self.assertValid(self.policy, SPEC_POLICY)
        self.assertValid(self.identities, SPEC_IDENTITIES)

    def test_unit_test_fixtures(self):
        names = {"identities.json": self.identities, "identities-research.json": self.identities,
                 "water-telemetry.json": self.policy}
        found = 0
        for name, validator in names.items():
            path = os.path.join(UNIT_DATA, name)
            if os.path.exists(path):
                found += 1
                with self.subTest(file=name):
                    self.assertValid(validator, load(path))
        self.assertGreater(found, 0, f"no fixtures in {UNIT_DATA}")

    @unittest.skipUnless(os.path.exists(SPEC), "policy-v1.md is not beside the project")
    def test_spec_file_examples_still_match(self):
        with open(SPEC, encoding="utf-8") as f:
            blocks = re.findall(r"```json\n(.*?)```", f.read(), re.S)
        docs = [json.loads(b) for b in blocks]
        policies = [d for d in docs if "trustflow_policy" in d]
        identities = [d for d in docs if "trustflow_identities" in d]
        self.assertEqual(len(policies), 1)
        self.assertEqual(len(identities), 1)
        self.assertEqual(policies[0], SPEC_POLICY, "the spec's example changed: update the copy")
        self.assertEqual(identities[0], SPEC_IDENTITIES)

    def test_only_the_required_members(self):
        self.assertValid(self.policy, MINIMAL_POLICY)
        self.assertValid(self.identities,
                         {"trustflow_identities": 1, "organizations": {}, "clients": {}})

    def test_every_member_at_once(self):
        doc = copy.deepcopy(SPEC_POLICY)
        doc["consumers"].append({"orgs": [], "clients": ["lab-bot"], "roles": ["analyst"],
                                 "purposes": ["research"],
                                 "not_before": "2026-01-01T00:00:00.5+02:00",
                                 "not_after": "2016-12-31T23:59:60z"})
        doc["consumers"].append({})
        doc["publishers"] = {}
        doc["owner_receives"] = False
        doc["on_violation"] = {"action": "reroute", "reroute_to": "quarantine/water",
                               "disconnect": True}
        doc["on_anomaly"] = {"action": "quarantine", "disconnect": False}
        doc["schema"]["properties"]["tags"] = {
            "type": ["array", "null"],
            "items": {"type": "string", "enum": ["a", "b"], "minLength": 1, "maxLength": 8}}
        doc["schema"]["additionalProperties"] = False
        doc["topics"] = ["#", "+", "+/+/#", "a//b", "/a", "a/", "city/water"]
        doc["id"] = "a" * 128
        doc["version"] = 2147483647
        doc["retention_seconds"] = 3153600000
        doc["limits"] = {"max_messages_per_second": 1000000, "max_payload_bytes": 268435455}
        self.assertValid(self.policy, doc)

    def test_schema_nested_16_levels(self):
        """The broker accepts 16 levels of payload schema, through properties
        and items alike."""
        for via in ("properties", "items", "mixed"):
            with self.subTest(via=via):
                doc = copy.deepcopy(MINIMAL_POLICY)
                doc["schema"] = nested_schema(16, via)
                self.assertValid(self.policy, doc)

    def test_identities_with_every_member(self):
        doc = {"trustflow_identities": 1,
               "organizations": {"o": {}, "o2": {"name": "n" * 256}},
               "clients": {"c@o.example": {"org": "o", "roles": [], "purposes": ["p:1"]},
                           "c": {"org": "o2", "roles": ["r%d" % i for i in range(64)]}}}
        self.assertValid(self.identities, doc)


def nested_schema(levels, via):
    """A payload schema `levels` deep."""
    node = {"type": "number"}
    for i in range(levels - 1):
        if via == "items" or (via == "mixed" and i % 2):
            node = {"type": "array", "items": node}
        else:
            node = {"type": "object", "properties": {"x": node}}
    return node


def with_(doc, path, value):
    """A copy of doc with the member at path set to value (DELETE: removed)."""
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


DELETE = object()


class BadPoliciesTest(SchemaCase):
    # name, (path to change, new value), path the schema must complain about
    CASES = [
        ("unknown member at the top", (["topic"], "a/b"), []),
        ("$schema member at the top", (["$schema"], "x"), []),
        ("unknown member in consumers[0]", (["consumers", 0, "not after"], "x"),
         ["consumers", 0]),
        ("unknown member in publishers", (["publishers", "role"], ["sensor"]), ["publishers"]),
        ("unknown member in limits", (["limits", "max_bytes"], 1), ["limits"]),
        ("unknown member in on_violation", (["on_violation", "alert"], True), ["on_violation"]),
        ("trustflow_policy 2", (["trustflow_policy"], 2), ["trustflow_policy"]),
        ("trustflow_policy missing", (["trustflow_policy"], DELETE), []),
        ("id with a space", (["id"], "water telemetry"), ["id"]),
        ("id starting with -", (["id"], "-water"), ["id"]),
        ("id with /", (["id"], "w/t"), ["id"]),
        ("id empty", (["id"], ""), ["id"]),
        ("id of 129 characters", (["id"], "a" * 129), ["id"]),
        ("id a number", (["id"], 42), ["id"]),
        ("owner with a space", (["owner"], "city waterworks"), ["owner"]),
        ("owner missing", (["owner"], DELETE), []),
        ("version 0", (["version"], 0), ["version"]),
        ("version 1.5", (["version"], 1.5), ["version"]),
        ("version as text", (["version"], "3"), ["version"]),
        ("version 2147483648", (["version"], 2147483648), ["version"]),
        ("description too long", (["description"], "d" * 4097), ["description"]),
        ("topics empty", (["topics"], []), ["topics"]),
        ("topics missing", (["topics"], DELETE), []),
        ("topics not a list", (["topics"], "a/b"), ["topics"]),
        ("topic listed twice", (["topics"], ["a/b", "a/b"]), ["topics"]),
        ("$SYS/# topic", (["topics"], ["a/b", "$SYS/#"]), ["topics", 1]),
        ("$share topic", (["topics"], ["$share/g/a"]), ["topics", 0]),
        ("# not last: a/#/b", (["topics"], ["a/#/b"]), ["topics", 0]),
        ("+ not alone: a+/b", (["topics"], ["a+/b"]), ["topics", 0]),
        ("# not alone: a/b#", (["topics"], ["a/b#"]), ["topics", 0]),
        ("empty topic", (["topics"], [""]), ["topics", 0]),
        ("65 levels", (["topics"], ["a/" * 64 + "a"]), ["topics", 0]),
        ("too many topics", (["topics"], ["t/%d" % i for i in range(257)]), ["topics"]),
        ("publishers not an object", (["publishers"], ["sensor"]), ["publishers"]),
        ("role not an id", (["publishers", "roles"], ["sen sor"]), ["publishers", "roles", 0]),
        ("role a number", (["publishers", "roles"], [1]), ["publishers", "roles", 0]),
        ("org not an id", (["consumers", 0, "orgs"], ["maint co"]),
         ["consumers", 0, "orgs", 0]),
        ("consumers not a list", (["consumers"], {"orgs": ["maint-co"]}), ["consumers"]),
        ("fields without view", (["consumers", 1, "view"], DELETE), ["consumers", 1]),
        ("view without fields", (["consumers", 1, "fields"], DELETE), ["consumers", 1]),
        ("fields empty", (["consumers", 1, "fields"], []), ["consumers", 1, "fields"]),
        ("field empty", (["consumers", 1, "fields"], ["flow", ""]),
         ["consumers", 1, "fields", 1]),
        ("field listed twice", (["consumers", 1, "fields"], ["flow", "flow"]),
         ["consumers", 1, "fields"]),
        ("view with +", (["consumers", 1, "view"], "views/+"), ["consumers", 1, "view"]),
        ("view with #", (["consumers", 1, "view"], "views/#"), ["consumers", 1, "view"]),
        ("view ending with /", (["consumers", 1, "view"], "views/"), ["consumers", 1, "view"]),
        ("view starting with $", (["consumers", 1, "view"], "$views"),
         ["consumers", 1, "view"]),
        ("not_after tomorrow", (["consumers", 0, "not_after"], "tomorrow"),
         ["consumers", 0, "not_after"]),
        ("not_after February 30", (["consumers", 0, "not_after"], "2027-02-30T00:00:00Z"),
         ["consumers", 0, "not_after"]),
        ("not_after a date that does not exist", (["consumers", 0, "not_after"], "2027-02-30"),
         ["consumers", 0, "not_after"]),
        ("not_after a date with a zone", (["consumers", 0, "not_after"], "2027-03-31Z"),
         ["consumers", 0, "not_after"]),
        ("not_after without seconds or zone", (["consumers", 0, "not_after"], "2027-03-31T12:00"),
         ["consumers", 0, "not_after"]),
        ("not_after with a space", (["consumers", 0, "not_after"], "2027-03-31 00:00:00"),
         ["consumers", 0, "not_after"]),
        ("not_after without a zone", (["consumers", 0, "not_after"], "2027-03-31T00:00:00"),
         ["consumers", 0, "not_after"]),
        ("not_after a number", (["consumers", 0, "not_after"], 1806451200),
         ["consumers", 0, "not_after"]),
        ("not_before soon", (["consumers", 0, "not_before"], "soon"),
         ["consumers", 0, "not_before"]),
        ("retention 0", (["retention_seconds"], 0), ["retention_seconds"]),
        ("retention over 100 years", (["retention_seconds"], 3153600001),
         ["retention_seconds"]),
        ("owner_receives as text", (["owner_receives"], "no"), ["owner_receives"]),
        ("owner_receives 0", (["owner_receives"], 0), ["owner_receives"]),
        ("forwarding maybe", (["forwarding"], "maybe"), ["forwarding"]),
        ("forwarding true", (["forwarding"], True), ["forwarding"]),
        ("rate 0", (["limits", "max_messages_per_second"], 0),
         ["limits", "max_messages_per_second"]),
        ("rate over a million", (["limits", "max_messages_per_second"], 1000001),
         ["limits", "max_messages_per_second"]),
        ("payload over MQTT's largest", (["limits", "max_payload_bytes"], 268435456),
         ["limits", "max_payload_bytes"]),
        ("action missing", (["on_violation"], {"disconnect": True}), ["on_violation"]),
        ("action explode", (["on_violation", "action"], "explode"),
         ["on_violation", "action"]),
        ("reroute without reroute_to", (["on_violation"], {"action": "reroute"}),
         ["on_violation"]),
        ("reroute_to with drop", (["on_violation"], {"action": "drop", "reroute_to": "q/w"}),
         Either(["on_violation", "reroute_to"], ["on_violation"])),
        ("reroute_to with a wildcard",
         (["on_violation"], {"action": "reroute", "reroute_to": "quarantine/+"}),
         ["on_violation", "reroute_to"]),
        ("disconnect as text", (["on_violation", "disconnect"], "yes"),
         ["on_violation", "disconnect"]),
        ("unknown member in on_anomaly", (["on_anomaly"], {"action": "alert", "notify": 1}),
         ["on_anomaly"]),
        ("on_anomaly action missing", (["on_anomaly"], {"disconnect": True}), ["on_anomaly"]),
        ("on_anomaly action ignore", (["on_anomaly"], {"action": "ignore"}),
         ["on_anomaly", "action"]),
        ("on_anomaly reroute without reroute_to", (["on_anomaly"], {"action": "reroute"}),
         ["on_anomaly"]),
        ("on_anomaly reroute_to with a wildcard",
         (["on_anomaly"], {"action": "reroute", "reroute_to": "suspect/#"}),
         ["on_anomaly", "reroute_to"]),
        ("on_anomaly as text", (["on_anomaly"], "alert"), ["on_anomaly"]),
        ("schema keyword format", (["schema", "format"], "date-time"), ["schema"]),
        ("nested schema keyword multipleOf", (["schema", "properties", "flow", "multipleOf"], 2),
         ["schema", "properties", "flow"]),
        ("additionalProperties as an object", (["schema", "additionalProperties"], {}),
         ["schema", "additionalProperties"]),
        ("items as a list", (["schema", "items"], [{"type": "number"}]), ["schema", "items"]),
        ("unknown type float", (["schema", "properties", "flow", "type"], "float"),
         ["schema", "properties", "flow", "type"]),
        ("type listed twice", (["schema", "type"], ["object", "object"]), ["schema", "type"]),
        ("empty type list", (["schema", "type"], []), ["schema", "type"]),
        ("required listed twice", (["schema", "required"], ["flow", "flow"]),
         ["schema", "required"]),
        ("enum empty", (["schema", "enum"], []), ["schema", "enum"]),
        ("minimum as text", (["schema", "properties", "flow", "minimum"], "0"),
         ["schema", "properties", "flow", "minimum"]),
        ("minLength negative", (["schema", "minLength"], -1), ["schema", "minLength"]),
        ("schema not an object", (["schema"], []), ["schema"]),
        ("schema true", (["schema", "properties", "pressure"], True),
         ["schema", "properties", "pressure"]),
    ]

    def test_broken_variants_fail(self):
        for name, (path, value), where in self.CASES:
            with self.subTest(name):
                self.assertInvalidAt(self.policy, with_(SPEC_POLICY, path, value), where)

    def test_the_demo_policy_breaks_the_same_way(self):
        demo = load(DEMO_POLICY)
        for name, (path, value), where in self.CASES:
            with self.subTest(name):
                self.assertInvalidAt(self.policy, with_(demo, path, value), where)

    def test_schema_nested_17_levels(self):
        for via in ("properties", "items", "mixed"):
            with self.subTest(via=via):
                doc = with_(MINIMAL_POLICY, ["schema"], nested_schema(17, via))
                self.assertFalse(self.policy.is_valid(doc))


class BadIdentitiesTest(SchemaCase):
    CASES = [
        ("unknown member at the top", (["users"], {}), []),
        ("trustflow_identities 2", (["trustflow_identities"], 2), ["trustflow_identities"]),
        ("organizations missing", (["organizations"], DELETE), []),
        ("clients missing", (["clients"], DELETE), []),
        ("organizations a list", (["organizations"], ["maint-co"]), ["organizations"]),
        ("org id with a space", (["organizations", "maint co"], {}), ["organizations"]),
        ("unknown member in an org", (["organizations", "maint-co", "title"], "x"),
         ["organizations", "maint-co"]),
        ("org name too long", (["organizations", "maint-co", "name"], "n" * 257),
         ["organizations", "maint-co", "name"]),
        ("org name a number", (["organizations", "maint-co", "name"], 1),
         ["organizations", "maint-co", "name"]),
        ("username with a space", (["clients", "maint app"], {"org": "maint-co"}),
         ["clients"]),
        ("username starting with .", (["clients", ".app"], {"org": "maint-co"}), ["clients"]),
        ("client missing org", (["clients", "maint-app", "org"], DELETE),
         ["clients", "maint-app"]),
        ("client org not an id", (["clients", "maint-app", "org"], "maint co"),
         ["clients", "maint-app", "org"]),
        ("unknown member in a client", (["clients", "maint-app", "role"], ["x"]),
         ["clients", "maint-app"]),
        ("role with a space", (["clients", "maint-app", "roles"], ["field operator"]),
         ["clients", "maint-app", "roles", 0]),
        ("purpose not an id", (["clients", "maint-app", "purposes"], [""]),
         ["clients", "maint-app", "purposes", 0]),
        ("role listed twice", (["clients", "maint-app", "roles"], ["a", "a"]),
         ["clients", "maint-app", "roles"]),
        ("65 roles", (["clients", "maint-app", "roles"], ["r%d" % i for i in range(65)]),
         ["clients", "maint-app", "roles"]),
        ("roles not a list", (["clients", "maint-app", "roles"], "operator"),
         ["clients", "maint-app", "roles"]),
    ]

    def test_broken_variants_fail(self):
        for source in (SPEC_IDENTITIES, load(DEMO_IDENTITIES)):
            for name, (path, value), where in self.CASES:
                with self.subTest(name):
                    self.assertInvalidAt(self.identities, with_(source, path, value), where)


class RulesAgreeWithTheBrokerTest(SchemaCase):
    """The patterns against ports of the C checks, on every string over an
    alphabet that exercises them."""

    def test_topic_filters_and_names(self):
        filters = self.subschema_validator(self.policy_schema, "topicFilter")
        names = self.subschema_validator(self.policy_schema, "topicName")
        checked = 0
        for n in range(0, 6):
            for chars in itertools.product("a/+#$", repeat=n):
                t = "".join(chars)
                with self.subTest(topic=t):
                    self.assertEqual(filters.is_valid(t), c_topic_valid(t, True), "filter")
                    self.assertEqual(names.is_valid(t), c_topic_valid(t, False), "name")
                checked += 1
        self.assertGreater(checked, 3000)
        for t, levels in (("a/" * 63 + "a", 64), ("a/" * 64 + "a", 65), ("/" * 63, 64),
                          ("+/" * 63 + "#", 64), ("é" * 512, 1), ("é" * 1025, 1)):
            with self.subTest(levels=levels, length=len(t)):
                self.assertEqual(filters.is_valid(t), len(t) <= 1024 and levels <= 64)

    def test_ids(self):
        # The spec's regex, verbatim. (JSON Schema patterns are ECMA-262,
        # where $ is the very end; Python's re also lets $ match before a
        # final newline, so "a\n" is left out of the samples below.)
        for schema in (self.policy_schema, self.identities_schema):
            for name in ("orgId", "username", "label"):
                self.assertEqual(schema["$defs"][name]["pattern"], ID_REGEX)
        ids = self.subschema_validator(self.policy_schema, "policyId")
        samples = ["a", "A9", "9", "a.b_c:d@e-f", "a" * 128, "a" * 129, "", "-a", ".a", "_a",
                   "a b", "a/b", "a\u00e9", "\u00e9", "a+", "a#", "a$", "\na", "a\tb", "a\nb"]
        for s in samples:
            with self.subTest(id=s):
                self.assertEqual(ids.is_valid(s), c_id_valid(s))
        labels = self.subschema_validator(self.identities_schema, "label")
        for s in samples:
            with self.subTest(label=s):
                self.assertEqual(labels.is_valid(s), c_id_valid(s))

    def test_times(self):
        times = self.subschema_validator(self.policy_schema, "time")
        good = ["2027-03-31T00:00:00Z", "2027-03-31t00:00:00z", "2027-03-31T00:00:00.123Z",
                "2027-03-31T00:00:00+02:00", "2027-03-31T00:00:00-23:59",
                "2016-12-31T23:59:60Z", "2024-02-29T12:00:00Z",
                "2027-03-31", "2024-02-29", "2000-02-29"]
        bad = ["tomorrow", "", "2027-02-30T00:00:00Z", "2023-02-29T00:00:00Z",
               "2027-02-30", "2023-02-29", "2100-02-29", "2027-13-01", "2027-03-31Z",
               "20270331", "2027-3-31", "2027-03-31T12:00",
               "2027-03-31 00:00:00", "2027-03-31T00:00:00",
               "2027-03-31T24:00:00Z", "2027-13-01T00:00:00Z", "2027-03-31T00:00:00.Z",
               "2027-03-31T00:00:00+24:00", "2027-03-31T00:00Z", "27-03-31T00:00:00Z"]
        for s in good:
            with self.subTest(time=s):
                self.assertTrue(times.is_valid(s))
        for s in bad:
            with self.subTest(time=s):
                self.assertFalse(times.is_valid(s))

    def test_the_format_checker_checks_dates(self):
        """February 30 fits the patterns; only the date-time and date format
        checks catch it, so this proves the checkers are in use."""
        checker = format_checker()
        self.assertIn("date-time", checker.checkers)
        self.assertIn("date", checker.checkers)
        self.assertFalse(checker.conforms("2027-02-30T00:00:00Z", "date-time"))
        self.assertTrue(checker.conforms("2027-02-28T00:00:00Z", "date-time"))
        self.assertFalse(checker.conforms("2027-02-30", "date"))
        self.assertTrue(checker.conforms("2027-02-28", "date"))
        forms = {f["format"]: f["pattern"] for f in self.policy_schema["$defs"]["time"]["anyOf"]}
        self.assertEqual(sorted(forms), ["date", "date-time"])
        self.assertIsNotNone(re.search(forms["date-time"], "2027-02-30T00:00:00Z"))
        self.assertIsNotNone(re.search(forms["date"], "2027-02-30"))


if __name__ == "__main__":
    unittest.main()
