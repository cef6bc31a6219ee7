"""tfctl policy check and explain, as a data owner and an operator use
them on real files."""

import atexit
import base64
import datetime
import hashlib
import json
import os
import re
import shutil
import tempfile
import unittest

import harness
from harness import TFCTL, run

from cryptography.hazmat.primitives.serialization import load_pem_private_key

SRCDIR = os.environ.get("TF_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
DEMO = os.path.join(SRCDIR, "broker", "conf", "demo")
DEMO_IDS = os.path.join(DEMO, "identities.json")
DEMO_POLICIES = os.path.join(DEMO, "policies")
WATER = os.path.join(DEMO_POLICIES, "water-telemetry.json")
TOPIC = "city/water/d7/telemetry"


def unsigned_identities():
    """The demo identities without the owner's policy_keys: for the tests
    of what a policy says, on copies the demo owner did not sign (the
    owners' signatures are tested in test_signed_policies.py)."""
    with open(DEMO_IDS, encoding="utf-8") as f:
        ids = json.load(f)
    for org in ids["organizations"].values():
        org.pop("policy_keys", None)
    work = tempfile.mkdtemp(prefix="tf-ids-")
    atexit.register(shutil.rmtree, work, True)
    path = os.path.join(work, "identities.json")
    harness.write_json(path, ids)
    return path


UNSIGNED_IDS = unsigned_identities()
EXAMPLES = os.path.join(SRCDIR, "policy", "examples")
EXAMPLE_IDS = os.path.join(EXAMPLES, "identities.json")
EXAMPLE_POLICIES = os.path.join(EXAMPLES, "policies")
GUIDE = os.path.join(SRCDIR, "docs", "policy-guide.md")


def load_water():
    with open(WATER, encoding="utf-8") as f:
        return json.load(f)


class PolicyCheckTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tf-check-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, name, content):
        path = os.path.join(self.dir, name)
        harness.write_json(path, content)
        return path

    def check(self, *args):
        return run([TFCTL, "policy", "check"] + list(args), check=False)

    def test_demo_files_pass_and_say_who_signed(self):
        with open(DEMO_IDS, encoding="utf-8") as f:
            key = json.load(f)["organizations"]["city-waterworks"]["policy_keys"][0]
        kid = hashlib.sha256(base64.b64decode(key)[-32:]).hexdigest()[:16]   # the raw key
        signed = f"{WATER}: signed by {kid}, a policy key of city-waterworks\n"
        for args, says in (([DEMO_POLICIES], ""),
                           (["--identities", DEMO_IDS, DEMO_POLICIES], signed),
                           (["--identities", DEMO_IDS, WATER], signed)):
            with self.subTest(args=args):
                out = self.check(*args)
                self.assertEqual((out.returncode, out.stdout, out.stderr), (0, says, ""))

    def test_examples_pass_silently(self):
        examples = os.path.join(SRCDIR, "policy", "examples")
        ids = os.path.join(examples, "identities.json")
        policies = os.path.join(examples, "policies")
        names = sorted(os.listdir(policies))
        self.assertGreater(len(names), 3)
        for target in [policies] + [os.path.join(policies, n) for n in names]:
            with self.subTest(target=target):
                out = self.check("--identities", ids, target)
                self.assertEqual((out.returncode, out.stdout, out.stderr), (0, "", ""))

    def test_each_broken_file_gets_one_line(self):
        bad_time = load_water()
        bad_time["consumers"][0]["not_after"] = "next spring"
        typo = load_water()
        typo["id"] = "water-2"
        typo["topics"] = ["city/water/+/pressure"]
        typo["consumer"] = []
        a = self.write("a.json", bad_time)
        b = self.write("b.json", typo)
        out = self.check("--identities", UNSIGNED_IDS, a, b)
        self.assertEqual(out.returncode, 1)
        self.assertEqual(out.stdout.splitlines(), [
            f"{a}: $.consumers[0].not_after: not an RFC 3339 time or date, such as"
            " 2026-06-30T12:00:00Z or 2026-06-30",
            f"{b}: $.consumer: unknown member",
        ])

    def test_times_owners_write(self):
        """A date alone is taken; a date-time without an offset, or a day
        that does not exist, is refused with the file and the JSON path."""
        good = load_water()
        good["consumers"][0]["not_before"] = "2026-06-01"
        good["consumers"][0]["not_after"] = "2026-06-30"
        out = self.check("--identities", UNSIGNED_IDS, self.write("good.json", good))
        self.assertEqual((out.returncode, out.stdout, out.stderr), (0, "", ""))
        ambiguous = load_water()
        ambiguous["consumers"][0]["not_after"] = "2026-06-30T12:00"
        leap = load_water()
        leap["consumers"][0]["not_before"] = "2026-02-29"
        a = self.write("a.json", ambiguous)
        b = self.write("b.json", leap)
        out = self.check("--identities", UNSIGNED_IDS, a, b)
        self.assertEqual(out.returncode, 1)
        self.assertEqual(out.stdout.splitlines(), [
            f"{a}: $.consumers[0].not_after: not an RFC 3339 time: a date-time without an"
            " offset is ambiguous: end it with Z for UTC or an offset such as +02:00"
            " (2026-06-30T12:00:00Z), or write the date alone (2026-06-30)",
            f"{b}: $.consumers[0].not_before: not an RFC 3339 time: no such date: 2026-02 has"
            " no day 29",
        ])

    def test_overlap_between_owners_names_both_files(self):
        # A policy of other-co inside the waterworks' city/water/+/telemetry.
        capture = {"trustflow_policy": 1, "id": "capture", "version": 1, "owner": "other-co",
                   "topics": [TOPIC]}
        shutil.copy(WATER, os.path.join(self.dir, "water-telemetry.json"))
        path = self.write("capture.json", capture)
        water = os.path.join(self.dir, "water-telemetry.json")
        for args in ([self.dir], ["--identities", UNSIGNED_IDS, self.dir]):
            with self.subTest(args=args):
                out = self.check(*args)
                self.assertEqual(out.returncode, 1)
                self.assertEqual(out.stdout.splitlines(), [
                    # The later file in name order reports the pair.
                    f"{water}: $.topics[0]: topic filter \"city/water/+/telemetry\" of owner"
                    f" city-waterworks overlaps \"{TOPIC}\" of owner other-co in {path}"
                    " (policies of different owners cannot govern the same topics)"])
        # The waterworks may nest its own.
        capture["owner"] = "city-waterworks"
        self.write("capture.json", capture)
        out = self.check("--identities", UNSIGNED_IDS, self.dir)
        self.assertEqual((out.returncode, out.stdout), (0, ""))

    def test_on_anomaly_is_checked_like_on_violation(self):
        good = load_water()
        good["on_anomaly"] = {"action": "reroute", "reroute_to": "suspect/water"}
        self.assertEqual(self.check("--identities", UNSIGNED_IDS,
                                    self.write("good.json", good)).returncode, 0)
        typo = load_water()
        typo["on_anomaly"] = {"action": "alert", "notify": True}
        wild = load_water()
        wild["on_anomaly"] = {"action": "reroute", "reroute_to": "suspect/#"}
        a = self.write("a.json", typo)
        b = self.write("b.json", wild)
        out = self.check("--identities", UNSIGNED_IDS, a, b)
        self.assertEqual(out.returncode, 1)
        self.assertEqual(out.stdout.splitlines(), [
            f"{a}: $.on_anomaly.notify: unknown member",
            f"{b}: $.on_anomaly.reroute_to: not a valid topic: must not contain the wildcards "
            "+ or #",
        ])

    def test_unknown_org_is_an_error_only_with_identities(self):
        policy = load_water()
        policy["consumers"][0]["orgs"] = ["maint-corp"]
        path = self.write("p.json", policy)
        self.assertEqual(self.check(path).returncode, 0)
        out = self.check("--identities", UNSIGNED_IDS, path)
        self.assertEqual(out.returncode, 1)
        self.assertIn(f"{path}: $.consumers[0].orgs[0]: unknown organization \"maint-corp\"",
                      out.stdout)

    def test_names_no_identity_has_are_warnings(self):
        # A misspelt purpose silently shuts a partner out: check says so,
        # in the shape of its errors, but the file is valid.
        policy = load_water()
        policy["publishers"] = {"roles": ["sensr", "sensor"]}
        policy["consumers"][0]["purposes"] = ["reserch", "maintenance", "operator"]
        policy["consumers"].append({"clients": ["maint-ap", "maint-app"],
                                    "roles": ["operator", "research"]})
        # A rule that matches no one as written shuts no one out unawares.
        policy["consumers"].append({"orgs": [], "purposes": ["agreed-purpose"]})
        path = self.write("p.json", policy)
        warnings = [
            f"{path}: $.publishers.roles[0]: warning: unknown role \"sensr\" (no client in "
            "the identities file has it)",
            f"{path}: $.consumers[0].purposes[0]: warning: unknown purpose \"reserch\" (no "
            "client in the identities file declares it)",
            f"{path}: $.consumers[0].purposes[2]: warning: unknown purpose \"operator\" (no "
            "client in the identities file declares it as a purpose, only as a role)",
            f"{path}: $.consumers[2].clients[0]: warning: unknown client \"maint-ap\" (not in "
            "the identities file)",
            f"{path}: $.consumers[2].roles[1]: warning: unknown role \"research\" (no client "
            "in the identities file has it as a role, only as a purpose)",
        ]
        out = self.check("--identities", UNSIGNED_IDS, path)
        self.assertEqual((out.returncode, out.stdout.splitlines(), out.stderr),
                         (0, warnings, ""))
        # Without identities there is nothing to know names by.
        self.assertEqual((self.check(path).returncode, self.check(path).stdout), (0, ""))
        # Beside an error, the exit status is the error's; warnings stay.
        broken = load_water()
        broken["id"] = "other"
        broken["topics"] = ["city/other"]
        broken["retention_seconds"] = 0
        bad = self.write("q.json", broken)
        out = self.check("--identities", UNSIGNED_IDS, self.dir)
        self.assertEqual(out.returncode, 1)
        self.assertEqual(out.stdout.splitlines(), warnings + [
            f"{bad}: $.retention_seconds: must be an integer from 1 to 3153600000"])

    def test_checks_across_files(self):
        self.write("a.json", load_water())
        self.write("b.json", dict(load_water(), id="copy"))
        out = self.check(self.dir)
        self.assertEqual(out.returncode, 1)
        self.assertIn("b.json: $.topics[0]: topic filter \"city/water/+/telemetry\" is also in",
                      out.stdout)
        self.assertIn("a.json", out.stdout)

    def test_every_problem_of_a_file_gets_its_line(self):
        """An owner fixes a file in one go: each member's problem, each
        consumer rule's, in the order of the file."""
        policy = load_water()
        policy["consumer"] = []
        policy["consumers"][0]["not_after"] = "next spring"
        policy["consumers"].append({"orgs": ["maint-corp"]})
        policy["retention_seconds"] = 0
        policy["forwarding"] = "maybe"
        path = self.write("p.json", policy)
        out = self.check("--identities", UNSIGNED_IDS, path)
        self.assertEqual(out.returncode, 1)
        lines = out.stdout.splitlines()
        rule = len(policy["consumers"]) - 1
        self.assertEqual([line.split(": ")[1] for line in lines], [
            "$.consumer", "$.consumers[0].not_after", f"$.consumers[{rule}].orgs[0]",
            "$.retention_seconds", "$.forwarding"])
        self.assertTrue(all(line.startswith(path + ": ") for line in lines))

    def test_every_problem_across_files_gets_its_line(self):
        water = load_water()
        self.write("a.json", water)
        self.write("b.json", dict(water, id="b-copy"))                       # same filter
        self.write("c.json", {"trustflow_policy": 1, "id": "capture", "version": 1,
                              "owner": "other-co", "topics": [TOPIC]})       # inside a's
        self.write("d.json", dict(water, topics=["city/gas/#"]))             # a's id
        out = self.check("--identities", UNSIGNED_IDS, self.dir)
        self.assertEqual(out.returncode, 1)
        lines = out.stdout.splitlines()
        self.assertEqual(len(lines), 3, out.stdout)
        self.assertIn("d.json: $.id: policy id \"water-telemetry\" is already used by", lines[0])
        self.assertIn("b.json: $.topics[0]: topic filter \"city/water/+/telemetry\" is also in",
                      lines[1])
        self.assertIn("overlaps", lines[2])
        self.assertIn("c.json", lines[2])

    def test_broken_identities_are_reported(self):
        ids = self.write("ids.json", '{"trustflow_identities": 2, "organizations": {}, "clients": {}}')
        out = self.check("--identities", ids, WATER)
        self.assertEqual(out.returncode, 1)
        self.assertIn(f"{ids}: $.trustflow_identities: must be an integer from 1 to 1", out.stdout)

    def test_unreadable_input_and_bad_usage_exit_2(self):
        self.assertEqual(self.check(os.path.join(self.dir, "missing.json")).returncode, 2)
        self.assertEqual(self.check().returncode, 2)
        self.assertEqual(run([TFCTL, "policy", "frob"], check=False).returncode, 2)


class PolicyExplainTest(unittest.TestCase):
    def explain(self, client, action, *extra, topic=TOPIC):
        out = run([TFCTL, "policy", "explain", "--identities", UNSIGNED_IDS, "--policies",
                   DEMO_POLICIES, "--client", client, "--topic", topic, f"--{action}"]
                  + list(extra), check=False)
        return out.returncode, json.loads(out.stdout) if out.stdout else None

    def test_allowed_consumer(self):
        rc, d = self.explain("maint-app", "receive", "--at", "2027-01-01T00:00:00Z")
        self.assertEqual(rc, 0)
        self.assertEqual(d, {"decision": "allow", "policy": "water-telemetry@2", "rule": 0,
                             "reason": "matches a consumer rule"})

    def test_expired_consumer(self):
        rc, d = self.explain("maint-app", "receive", "--at", "2027-07-01T00:00:00Z")
        self.assertEqual((rc, d["decision"], d["rule"]), (1, "deny", None))
        # The demo's "not_after": "2027-06-30" covers that whole day.
        self.assertEqual(d["reason"], "consumer rule 0: expired at 2027-07-01T00:00:00Z")

    def test_a_date_alone_holds_through_that_day(self):
        tmp = tempfile.mkdtemp(prefix="tf-explain-")
        self.addCleanup(shutil.rmtree, tmp, True)
        policy = load_water()
        policy["consumers"][0]["not_before"] = "2026-06-01"
        policy["consumers"][0]["not_after"] = "2026-06-30"
        harness.write_json(os.path.join(tmp, "water-telemetry.json"), policy)
        for at, decision in (("2026-05-31T23:59:59.999Z", "deny"),
                             ("2026-06-01T00:00:00Z", "allow"),
                             ("2026-06-30T23:59:59.999Z", "allow"),
                             ("2026-07-01T01:59:59.999+02:00", "allow"),
                             ("2026-07-01T00:00:00Z", "deny")):
            with self.subTest(at=at):
                out = run([TFCTL, "policy", "explain", "--identities", UNSIGNED_IDS, "--policies",
                           tmp, "--client", "maint-app", "--topic", TOPIC, "--receive",
                           "--at", at], check=False)
                self.assertEqual(json.loads(out.stdout)["decision"], decision)

    def test_owner_and_publishers(self):
        rc, d = self.explain("ww-operator", "receive")
        self.assertEqual((rc, d["rule"]), (0, "owner"))
        rc, d = self.explain("ww-sensor-01", "publish")
        self.assertEqual((rc, d["rule"]), (0, "publishers"))
        rc, d = self.explain("ww-operator", "publish")
        self.assertEqual((rc, d["decision"]), (1, "deny"))

    def test_view_and_outsiders(self):
        rc, d = self.explain("lab-analyst", "receive", topic="views/research-lab/" + TOPIC)
        self.assertEqual((rc, d["rule"], d.get("view")), (0, 1, True))
        for who in ("snoop", "nobody-at-all"):
            rc, d = self.explain(who, "receive")
            self.assertEqual((rc, d["decision"]), (1, "deny"))

    def test_ungoverned_topic_follows_default_access(self):
        rc, d = self.explain("snoop", "publish", topic="free/topic")
        self.assertEqual((rc, d["policy"]), (1, None))
        rc, d = self.explain("snoop", "publish", "--default-access", "allow", topic="free/topic")
        self.assertEqual((rc, d["decision"]), (0, "allow"))

    def test_bad_usage(self):
        rc, _ = self.explain("snoop", "receive", "--at", "yesterday")
        self.assertEqual(rc, 2)
        out = run([TFCTL, "policy", "explain", "--client", "x"], check=False)
        self.assertEqual(out.returncode, 2)


class PolicyExplainWhyTest(unittest.TestCase):
    """A refusal names the consumer rule that came closest and what failed
    under it, in the words of the policy and the identities files."""

    IDENTITIES = {
        "trustflow_identities": 1,
        "organizations": {"city-waterworks": {}, "maint-co": {}, "research-lab": {}},
        "clients": {
            "ww-sensor-01": {"org": "city-waterworks", "roles": ["sensor"]},
            "maint-billing": {"org": "maint-co", "roles": ["operator"],
                              "purposes": ["billing"]},
            "maint-app": {"org": "maint-co", "roles": ["operator"],
                          "purposes": ["maintenance"]},
            "maint-research": {"org": "maint-co", "roles": ["operator"],
                               "purposes": ["research"]},
            "maint-bare": {"org": "maint-co"},
            "lab-analyst": {"org": "research-lab", "roles": ["analyst"],
                            "purposes": ["research"]},
        },
    }
    LEAKS = {
        "trustflow_policy": 1, "id": "leaks", "version": 2, "owner": "city-waterworks",
        "topics": ["city/water/+/leak"],
        "consumers": [
            {"orgs": ["research-lab"], "roles": ["analyst"]},
            {"orgs": ["maint-co"], "purposes": ["billing", "maintenance"],
             "not_before": "2026-01-01T00:00:00Z", "not_after": "2026-06-30T23:59:59Z"},
            {"orgs": ["research-lab"], "fields": ["district"], "view": "views/lab",
             "not_after": "2026-06-30T23:59:59Z"},
        ],
    }

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tf-why-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.ids = os.path.join(self.dir, "identities.json")
        harness.write_json(self.ids, self.IDENTITIES)
        os.mkdir(os.path.join(self.dir, "policies"))
        harness.write_json(os.path.join(self.dir, "policies", "leaks.json"), self.LEAKS)

    def why(self, client, at, topic="city/water/d7/leak", action="receive"):
        out = run([TFCTL, "policy", "explain", "--identities", self.ids, "--policies",
                   os.path.join(self.dir, "policies"), "--client", client, "--topic", topic,
                   f"--{action}", "--at", at], check=False)
        d = json.loads(out.stdout)
        self.assertEqual((out.returncode, d["decision"], d["rule"]), (1, "deny", None))
        return d["reason"]

    def test_each_failed_condition_is_named(self):
        june = "2026-06-01T00:00:00Z"
        self.assertEqual(self.why("maint-research", june),
                         "consumer rule 1: purpose research not among the rule's purposes "
                         "(billing, maintenance)")
        self.assertEqual(self.why("maint-bare", june),
                         "consumer rule 1: the client has no purpose; the rule requires one of "
                         "(billing, maintenance)")
        self.assertEqual(self.why("maint-app", "2025-12-31T00:00:00Z"),
                         "consumer rule 1: not in force until 2026-01-01T00:00:00Z")
        self.assertEqual(self.why("maint-app", "2026-07-01T00:00:00Z"),
                         "consumer rule 1: expired at 2026-06-30T23:59:59Z")
        # The view's own consumer, once its rule expired, on the view.
        self.assertEqual(self.why("lab-analyst", "2026-07-01T00:00:00Z",
                                  topic="views/lab/city/water/d7/leak"),
                         "consumer rule 2: expired at 2026-06-30T23:59:59Z")
        self.assertEqual(self.why("maint-app", june, topic="views/lab/city/water/d7/leak"),
                         "consumer rule 2: org maint-co not among the rule's orgs (research-lab)")
        self.assertEqual(self.why("ww-sensor-01", june, action="publish", topic="views/lab/x"),
                         "a view: only the broker publishes here")


class PolicyReceiversTest(unittest.TestCase):
    """tfctl policy receivers: "who may receive my data?", answered from the
    files, for every client of the identities file."""

    def receivers(self, ids, policies, policy, *extra):
        out = run([TFCTL, "policy", "receivers", "--identities", ids, "--policies", policies,
                   "--policy", policy] + list(extra), check=False)
        return out.returncode, [json.loads(line) for line in out.stdout.splitlines()]

    @staticmethod
    def line(client, org, rule, view=None, not_before=None, not_after=None):
        return {"client": client, "org": org, "rule": rule,
                "form": "view" if view else "original", "view": view,
                "not_before": not_before, "not_after": not_after}

    def test_the_demo_policy(self):
        owner = [self.line(c, "city-waterworks", "owner")
                 for c in ("ww-sensor-01", "ww-operator", "ops-admin", "ww-steward")]
        # The demo's "not_after": "2027-06-30" covers that whole day.
        maint = self.line("maint-app", "maint-co", 0, not_after="2027-07-01T00:00:00Z")
        lab = self.line("lab-analyst", "research-lab", 1, view="views/research-lab")
        self.assertEqual(self.receivers(DEMO_IDS, DEMO_POLICIES, "water-telemetry"),
                         (0, owner + [maint, lab]))
        # --at: the rules in force then; the contract has ended by July 2027.
        self.assertEqual(self.receivers(DEMO_IDS, DEMO_POLICIES, "water-telemetry", "--at",
                                        "2027-07-01T00:00:00Z"), (0, owner + [lab]))
        self.assertEqual(self.receivers(DEMO_IDS, DEMO_POLICIES, "water-telemetry", "--at",
                                        "1798675200000"), (0, owner + [maint, lab]))
        # It says what explain says, client by client.
        with open(DEMO_IDS, encoding="utf-8") as f:
            clients = json.load(f)["clients"]
        for client in clients:
            out = run([TFCTL, "policy", "explain", "--identities", DEMO_IDS, "--policies",
                       DEMO_POLICIES, "--client", client, "--topic", TOPIC, "--receive",
                       "--at", "2027-01-01T00:00:00Z"], check=False)
            rule = json.loads(out.stdout)["rule"]
            listed = [r["rule"] for r in owner + [maint] if r["client"] == client]
            self.assertEqual([rule] if rule is not None else [], listed, client)

    def test_owner_receives_false_windows_and_views(self):
        tmp = tempfile.mkdtemp(prefix="tf-receivers-")
        self.addCleanup(shutil.rmtree, tmp, True)
        ids = os.path.join(tmp, "identities.json")
        harness.write_json(ids, PolicyExplainWhyTest.IDENTITIES)
        os.mkdir(os.path.join(tmp, "policies"))
        alarms = {
            "trustflow_policy": 1, "id": "leak-alarms", "version": 1,
            "owner": "city-waterworks", "topics": ["city/water/+/alarm"],
            "owner_receives": False,
            "consumers": [
                {"orgs": ["maint-co"], "purposes": ["maintenance", "billing"],
                 "not_before": "2026-01-01T00:00:00Z", "not_after": "2026-12-31T23:59:59.5Z"},
                {"orgs": ["city-waterworks"], "roles": ["sensor"]},
                {"orgs": ["research-lab", "city-waterworks"], "fields": ["district"],
                 "view": "views/alarms"},
            ],
        }
        harness.write_json(os.path.join(tmp, "policies", "alarms.json"), alarms)
        harness.write_json(os.path.join(tmp, "policies", "leaks.json"),
                           PolicyExplainWhyTest.LEAKS)
        policies = os.path.join(tmp, "policies")
        window = {"not_before": "2026-01-01T00:00:00Z", "not_after": "2026-12-31T23:59:59.500Z"}
        # No "owner" line: the owner's clients receive under rules 1 and 2
        # only. In the identities' order, each rule that gives some.
        sensor = [self.line("ww-sensor-01", "city-waterworks", 1),
                  self.line("ww-sensor-01", "city-waterworks", 2, view="views/alarms")]
        billing = self.line("maint-billing", "maint-co", 0, **window)
        maint = self.line("maint-app", "maint-co", 0, **window)
        lab = self.line("lab-analyst", "research-lab", 2, view="views/alarms")
        self.assertEqual(self.receivers(ids, policies, "leak-alarms"),
                         (0, sensor + [billing, maint, lab]))
        self.assertEqual(self.receivers(ids, policies, "leak-alarms", "--at",
                                        "2027-01-01T00:00:00Z"), (0, sensor + [lab]))
        # The other policy of the set: its owner receives.
        rc, lines = self.receivers(ids, policies, "leaks", "--at", "2026-03-01T00:00:00Z")
        self.assertEqual((rc, [(r["client"], r["rule"]) for r in lines]),
                         (0, [("ww-sensor-01", "owner"), ("maint-billing", 1), ("maint-app", 1),
                              ("lab-analyst", 0), ("lab-analyst", 2)]))

    def test_unknown_policy_and_bad_usage(self):
        out = run([TFCTL, "policy", "receivers", "--identities", DEMO_IDS, "--policies",
                   DEMO_POLICIES, "--policy", "no-such-policy"], check=False)
        self.assertEqual((out.returncode, out.stdout), (1, ""))
        self.assertIn("no policy \"no-such-policy\"", out.stderr)
        for args in (["--identities", DEMO_IDS, "--policy", "water-telemetry"],
                     ["--identities", DEMO_IDS, "--policies", DEMO_POLICIES, "--policy",
                      "water-telemetry", "--at", "soon"],
                     ["--policy"]):
            with self.subTest(args=args):
                out = run([TFCTL, "policy", "receivers"] + args, check=False)
                self.assertEqual(out.returncode, 2)
        self.assertIn("tfctl policy receivers", run([TFCTL, "policy", "--help"]).stdout)
        self.assertIn("tfctl policy receivers", run([TFCTL, "--help"]).stdout)


class PolicySignTest(unittest.TestCase):
    """tfctl policy sign makes the detached signature of federation-v1,
    checked here with Python's cryptography, an implementation of its own."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tf-sign-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.key = os.path.join(self.dir, "owner.pem")
        self.kid = run([TFCTL, "key", "generate", "--out", self.key]).stdout.strip()
        self.policy = os.path.join(self.dir, "water-telemetry.json")
        shutil.copyfile(WATER, self.policy)

    def sign(self, *args):
        return run([TFCTL, "policy", "sign"] + list(args), check=False)

    def test_the_signature_is_the_spec_s_over_the_file_s_bytes(self):
        out = self.sign("--key", self.key, self.policy)
        self.assertEqual((out.returncode, out.stdout, out.stderr), (0, self.kid + "\n", ""))
        with open(self.policy + ".sig", encoding="ascii") as f:
            text = f.read()
        self.assertEqual((len(text), text[-1]), (89, "\n"))
        with open(self.key, "rb") as f:
            owner = load_pem_private_key(f.read(), password=None)
        with open(self.policy, "rb") as f:
            signed = b"trustflow-policy-1\n" + f.read()
        owner.public_key().verify(base64.b64decode(text[:-1], validate=True), signed)
        # Ed25519 is deterministic: the same input gives the same bytes.
        self.assertEqual(base64.b64encode(owner.sign(signed)).decode() + "\n", text)
        # Signing again replaces the file; no temporary file stays.
        self.assertEqual(self.sign("--key", self.key, self.policy).returncode, 0)
        self.assertEqual(sorted(os.listdir(self.dir)),
                         ["owner.pem", "water-telemetry.json", "water-telemetry.json.sig"])

    def test_bad_usage_and_input_write_nothing(self):
        missing = os.path.join(self.dir, "missing.json")
        for args, says in ((["--key", self.key], "sign needs"),
                           ([self.policy], "sign needs"),
                           (["--key", self.key, missing], "missing.json"),
                           (["--key", self.policy, self.policy], "")):
            with self.subTest(args=args):
                out = self.sign(*args)
                self.assertEqual(out.returncode, 2)
                self.assertIn(says, out.stderr)
        self.assertEqual(sorted(os.listdir(self.dir)), ["owner.pem", "water-telemetry.json"])


def utc_days():
    """Today's date in UTC, and yesterday's (for a test that runs across
    midnight), as tfctl writes them."""
    today = datetime.datetime.now(datetime.timezone.utc).date()
    return {str(today), str(today - datetime.timedelta(days=1))}


class PolicyNewTest(unittest.TestCase):
    """tfctl policy new: a starting policy that passes check and shares
    nothing until its owner names someone."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tf-new-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def new(self, *args):
        return run([TFCTL, "policy", "new"] + list(args), check=False)

    def check(self, *args):
        return run([TFCTL, "policy", "check"] + list(args), check=False)

    def test_the_template_passes_check_with_the_owner_and_topics_given(self):
        days = utc_days()
        out = self.new("--owner", "city-waterworks", "--id", "water-pressure",
                       "--topic", "city/water/+/pressure", "--topic", "city/water/+/level")
        self.assertEqual((out.returncode, out.stderr), (0, ""))
        path = os.path.join(self.dir, "water-pressure.json")
        with open(path, "w", encoding="utf-8") as f:
            f.write(out.stdout)
        for args in ([path], ["--identities", UNSIGNED_IDS, path],
                     ["--identities", UNSIGNED_IDS, DEMO_POLICIES, path]):
            with self.subTest(args=args):
                checked = self.check(*args)
                self.assertEqual((checked.returncode, checked.stdout, checked.stderr), (0, "", ""))
        policy = json.loads(out.stdout)
        self.assertEqual((policy["trustflow_policy"], policy["id"], policy["version"],
                          policy["owner"]), (1, "water-pressure", 1, "city-waterworks"))
        self.assertEqual(policy["topics"], ["city/water/+/pressure", "city/water/+/level"])
        self.assertEqual(policy["publishers"], {"roles": ["sensor"]})
        self.assertEqual(policy["retention_seconds"], 86400)
        self.assertIn("replace this description", policy["description"])
        [rule] = policy["consumers"]
        self.assertEqual(rule["orgs"], [])
        self.assertTrue(rule["purposes"])
        # A window of dates alone: today through the day before next year's.
        self.assertIn(rule["not_before"], days)
        start = datetime.date.fromisoformat(rule["not_before"])
        until = datetime.date.fromisoformat(rule["not_after"])
        try:
            next_year = start.replace(year=start.year + 1)
        except ValueError:  # from 29 February, a year later is 1 March
            next_year = datetime.date(start.year + 1, 3, 1)
        self.assertEqual(until + datetime.timedelta(days=1), next_year)

    def test_without_topic_the_owner_and_id_make_one(self):
        out = self.new("--owner", "city-waterworks", "--id", "water-pressure")
        self.assertEqual(out.returncode, 0)
        self.assertEqual(json.loads(out.stdout)["topics"], ["city-waterworks/water-pressure/#"])

    def test_the_template_shares_nothing_until_its_owner_names_a_partner(self):
        policies = os.path.join(self.dir, "policies")
        os.mkdir(policies)
        path = os.path.join(policies, "p.json")
        out = self.new("--owner", "city-waterworks", "--id", "water-pressure",
                       "--topic", "city/water/+/pressure", "--out", path)
        self.assertEqual((out.returncode, out.stdout, out.stderr), (0, "", ""))

        def explain(client):
            out = run([TFCTL, "policy", "explain", "--identities", UNSIGNED_IDS, "--policies",
                       policies, "--client", client, "--topic", "city/water/d7/pressure",
                       "--receive"], check=False)
            return json.loads(out.stdout)["decision"]

        for client, decision in (("ww-operator", "allow"), ("maint-app", "deny"),
                                 ("lab-analyst", "deny"), ("snoop", "deny")):
            with self.subTest(client=client):
                self.assertEqual(explain(client), decision)
        with open(path, encoding="utf-8") as f:
            policy = json.load(f)
        policy["consumers"][0]["orgs"] = ["maint-co"]
        policy["consumers"][0]["purposes"] = ["maintenance"]
        harness.write_json(path, policy)
        self.assertEqual(explain("maint-app"), "allow")

    def test_out_refuses_to_overwrite(self):
        path = os.path.join(self.dir, "p.json")
        with open(path, "w", encoding="utf-8") as f:
            f.write("an owner's edits\n")
        out = self.new("--owner", "city-waterworks", "--id", "p", "--out", path)
        self.assertEqual((out.returncode, out.stdout), (2, ""))
        self.assertIn(f"{path} exists; not overwriting it", out.stderr)
        with open(path, encoding="utf-8") as f:
            self.assertEqual(f.read(), "an owner's edits\n")
        # Nor through a link to another file.
        link = os.path.join(self.dir, "link.json")
        os.symlink(path, link)
        self.assertEqual(self.new("--owner", "o", "--id", "p", "--out", link).returncode, 2)
        with open(path, encoding="utf-8") as f:
            self.assertEqual(f.read(), "an owner's edits\n")

    def test_bad_usage_prints_no_policy(self):
        missing = os.path.join(self.dir, "none", "p.json")
        for args, says in ((["--id", "p"], "needs --owner ORG and --id ID"),
                           (["--owner", "o"], "needs --owner ORG and --id ID"),
                           (["--owner", "o x", "--id", "p"], "ORG and ID are"),
                           (["--owner", "o", "--id", "p", "--topic", "a/#/b"],
                            '--topic "a/#/b": not a valid topic filter: # must be the last level'),
                           (["--owner", "o", "--id", "p", "--topic", "$SYS/x"],
                            "not a valid topic filter"),
                           (["--owner", "o", "--id", "p", "--topic", "a", "--topic", "a"],
                            '--topic "a" is given twice'),
                           (["--owner", "o", "--id", "p", "--id", "q"], "repeated option"),
                           (["--owner", "o", "--id", "p", "--topic"], "missing its value"),
                           (["--owner", "o", "--id", "p", "--frob", "x"], "unknown"),
                           (["--owner", "o", "--id", "p", "--out", missing], "cannot write")):
            with self.subTest(args=args):
                out = self.new(*args)
                self.assertEqual((out.returncode, out.stdout), (2, ""))
                self.assertIn(says, out.stderr)
        self.assertEqual(os.listdir(self.dir), [])


class GuideExamplesTest(unittest.TestCase):
    """The guide's examples for common situations are the files of
    policy/examples, whole, and do what the guide says."""

    def guide_examples(self):
        with open(GUIDE, encoding="utf-8") as f:
            text = f.read()
        return re.findall(r"^`(policy/examples/policies/[^`]+\.json)`:\n\n```json\n(.*?)```",
                          text, re.S | re.M)

    def test_each_example_is_a_file_that_passes_check(self):
        examples = self.guide_examples()
        self.assertEqual(len(examples), 4)
        for name, block in examples:
            with self.subTest(example=name):
                path = os.path.join(SRCDIR, name)
                with open(path, encoding="utf-8") as f:
                    self.assertEqual(f.read(), block, "the guide shows another text")
                out = run([TFCTL, "policy", "check", "--identities", EXAMPLE_IDS, path],
                          check=False)
                self.assertEqual((out.returncode, out.stdout, out.stderr), (0, "", ""))

    def explain(self, client, topic, action, *at):
        out = run([TFCTL, "policy", "explain", "--identities", EXAMPLE_IDS, "--policies",
                   EXAMPLE_POLICIES, "--client", client, "--topic", topic, "--" + action]
                  + (["--at", at[0]] if at else []), check=False)
        return json.loads(out.stdout)

    def test_the_examples_do_what_the_guide_says(self):
        cases = (
            # A partner, for one purpose, through 30 June 2027.
            ("maint-app", "city/water/d1/pressure", "receive", "2026-06-30T23:59:59.999Z",
             "deny"),
            ("maint-app", "city/water/d1/pressure", "receive", "2026-07-01T00:00:00Z", "allow"),
            ("maint-app", "city/water/d1/pressure", "receive", "2027-06-30T23:59:59.999Z",
             "allow"),
            ("maint-app", "city/water/d1/pressure", "receive", "2027-07-01T00:00:00Z", "deny"),
            ("dispatch", "city/water/d1/pressure", "receive", "2026-12-01T00:00:00Z", "deny"),
            # A contractor: the view only.
            ("survey-app", "city/water/d1/meter", "receive", None, "deny"),
            ("survey-app", "views/survey-co/city/water/d1/meter", "receive", None, "allow"),
            ("maint-app", "views/survey-co/city/water/d1/meter", "receive", None, "deny"),
            # The owner only.
            ("dispatch", "logistics/fleet/van-7/position", "receive", None, "allow"),
            ("open-data-portal", "logistics/fleet/van-7/position", "receive", None, "deny"),
            # Limits and quarantine: the counters publish, the lab receives.
            ("tram-counter-03", "city/transport/tram/4/passengers", "publish", None, "allow"),
            ("bus-tracker-12", "city/transport/tram/4/passengers", "publish", None, "deny"),
            ("lab-analyst", "city/transport/tram/4/passengers", "receive", None, "allow"),
        )
        for client, topic, action, at, decision in cases:
            with self.subTest(client=client, topic=topic, at=at):
                d = self.explain(client, topic, action, *([at] if at else []))
                self.assertEqual(d["decision"], decision, d)


if __name__ == "__main__":
    harness.main()
