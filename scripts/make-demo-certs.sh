#!/usr/bin/env bash
# Makes a demo certificate authority and certificates for mutual TLS:
# one for the broker (localhost, or the names given) and one per client of
# an identities file, whose subject CN is the client's username and O its
# organization id (what plugin_opt_require_cert_org_match checks).
#
#   scripts/make-demo-certs.sh OUT_DIR [IDENTITIES_JSON] [BROKER_NAME...]
#
# Writes OUT_DIR/ca.crt and ca.key, OUT_DIR/broker.crt and broker.key, and
# OUT_DIR/clients/<username>.crt and .key. Keys are P-256, certificates
# valid for 825 days. For demos and tests: an operator with a CA of its own
# issues the same kinds of certificates from it (see docs/tls.md).
set -euo pipefail

out=${1:?usage: make-demo-certs.sh OUT_DIR [IDENTITIES_JSON] [BROKER_NAME...]}
identities=${2:-$(cd "$(dirname "$0")/.." && pwd)/broker/conf/demo/identities.json}
shift $(( $# >= 2 ? 2 : 1 ))
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(localhost)

# The shared TLS helpers: beside this script, or where the image keeps them.
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=scripts/tls-ca.sh
source "$here/tls-ca.sh" 2>/dev/null || source /usr/share/trustflow/tls-ca.sh

mkdir -p "$out/clients"
umask 077

tf_ca "$out" "/O=trustflow demo/CN=trustflow demo CA"

san=""
for n in "${names[@]}"; do
	if [[ $n =~ ^[0-9.]+$ ]]; then san+="IP:$n,"; else san+="DNS:$n,"; fi
done
tf_issue "$out" "$out/broker" "/O=trustflow/CN=${names[0]}" \
	"subjectAltName=${san%,}
extendedKeyUsage=serverAuth"

# username<TAB>org for every client of the identities file.
python3 - "$identities" <<'PY' | while IFS=$'\t' read -r user org; do
import json, sys
for user, client in json.load(open(sys.argv[1]))["clients"].items():
    print(f"{user}\t{client['org']}")
PY
	tf_issue "$out" "$out/clients/$user" "/O=$org/CN=$user" "extendedKeyUsage=clientAuth"
done
echo "certificates in $out: ca.crt, broker.crt/.key, clients/<username>.crt/.key" >&2
