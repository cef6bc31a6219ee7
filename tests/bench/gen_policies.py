"""Writes a large, realistic policy set for the scale benchmark.

Layout (tests/bench/policybench.c relies on it):
  identities.json  organizations o0..o{orgs-1}; clients c0..c{clients-1},
                   client ci in org o(i % orgs), with role "sensor" for
                   every 10th client and purpose "maintenance" for every
                   3rd one;
  policies/p<i>.json  policy p<i> owned by o(i % orgs), governing
                   "p<i>/+/data" and "p<i>/+/status/#", consumed by two
                   other orgs (one of them only for maintenance), with a
                   not_after, a field view for a third org, and a schema.
"""

import argparse
import json
import os


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dir")
    ap.add_argument("--policies", type=int, default=100000)
    ap.add_argument("--clients", type=int, default=1000000)
    ap.add_argument("--orgs", type=int, default=100000)
    a = ap.parse_args()

    os.makedirs(os.path.join(a.dir, "policies"), exist_ok=True)
    clients = {}
    for i in range(a.clients):
        c = {"org": f"o{i % a.orgs}"}
        if i % 10 == 0:
            c["roles"] = ["sensor"]
        if i % 3 == 0:
            c["purposes"] = ["maintenance"]
        clients[f"c{i}"] = c
    identities = {
        "trustflow_identities": 1,
        "organizations": {f"o{i}": {"name": f"Organization {i}"} for i in range(a.orgs)},
        "clients": clients,
    }
    with open(os.path.join(a.dir, "identities.json"), "w", encoding="utf-8") as f:
        json.dump(identities, f, separators=(",", ":"))

    for i in range(a.policies):
        owner = i % a.orgs
        policy = {
            "trustflow_policy": 1, "id": f"p{i}", "version": 1, "owner": f"o{owner}",
            "topics": [f"p{i}/+/data", f"p{i}/+/status/#"],
            "publishers": {"roles": ["sensor"]},
            "consumers": [
                {"orgs": [f"o{(owner + 1) % a.orgs}"], "not_after": "2099-01-01T00:00:00Z"},
                {"orgs": [f"o{(owner + 2) % a.orgs}"], "purposes": ["maintenance"]},
                {"orgs": [f"o{(owner + 3) % a.orgs}"], "fields": ["flow"], "view": f"views/p{i}"},
            ],
            "schema": {"type": "object", "required": ["flow"],
                       "properties": {"flow": {"type": "number", "minimum": 0}}},
        }
        with open(os.path.join(a.dir, "policies", f"p{i}.json"), "w", encoding="utf-8") as f:
            json.dump(policy, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
