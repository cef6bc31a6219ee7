#!/usr/bin/env bash
# Makes what a federation of brokers needs (docs/federation.md): a
# certificate authority, and for each broker its server certificate, the
# certificate its bridges log in with at its peers (CN = its link, O = its
# organization), its stamp-signing key, and the configuration pieces that
# name them: the listener for its peers' bridges, one bridge per peer it
# sends to, and the `brokers` entries of its identities file.
#
#   scripts/make-federation.sh OUT_DIR [--conf-dir DIR]
#       --broker ID ORG HOST[:PORT] ... --bridge FROM TO ...
#
# --broker: a broker's id, its organization, and the host (and port,
#   default 8884) its peers' bridges reach it at; the host goes into its
#   server certificate. --bridge: FROM opens a bridge to TO and hands it
#   messages. --conf-dir: where each broker's files will be, as its
#   configuration names them (default: OUT_DIR/<broker id>; a container
#   mounts OUT_DIR/<broker id> there).
#
# Writes OUT_DIR/ca.crt and ca.key and, for each broker, OUT_DIR/<id>/:
# ca.crt, server.crt/.key, link.crt/.key, signing-key.pem (mode 0600),
# listener.conf, bridges.conf, peers.json ({"brokers": {...}}: merge it
# into the broker's identities file). Keys are P-256 (TLS) and Ed25519
# (stamps); certificates are valid for 825 days. A CA of your own issues
# the same kinds of certificates.
set -euo pipefail

usage() {
	sed -n '9,17p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

out=${1:-}
[ -n "$out" ] && [ "${out#-}" = "$out" ] || usage
shift
conf_dir=""
declare -a ids=() orgs=() hosts=() ports=() from=() to=()
while [ $# -gt 0 ]; do
	case $1 in
	--conf-dir) [ $# -ge 2 ] || usage; conf_dir=$2; shift 2 ;;
	--broker)
		[ $# -ge 4 ] || usage
		ids+=("$2"); orgs+=("$3")
		hosts+=("${4%%:*}")
		if [[ $4 == *:* ]]; then ports+=("${4##*:}"); else ports+=(8884); fi
		shift 4 ;;
	--bridge) [ $# -ge 3 ] || usage; from+=("$2"); to+=("$3"); shift 3 ;;
	*) usage ;;
	esac
done
[ ${#ids[@]} -gt 0 ] || usage

index_of() {
	local i
	for i in "${!ids[@]}"; do
		[ "${ids[$i]}" = "$1" ] && { echo "$i"; return 0; }
	done
	echo "make-federation.sh: --bridge names $1, which no --broker gives" >&2
	exit 2
}
for i in "${!from[@]}"; do index_of "${from[$i]}" >/dev/null; index_of "${to[$i]}" >/dev/null; done

# The shared TLS helpers: beside this script, or where the image keeps them.
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=scripts/tls-ca.sh
source "$here/tls-ca.sh" 2>/dev/null || source /usr/share/trustflow/tls-ca.sh

mkdir -p "$out"
umask 077
tf_ca "$out" "/O=trustflow federation/CN=trustflow federation CA"

link_of() { echo "bridge-$1"; }
dir_of() { if [ -n "$conf_dir" ]; then echo "$conf_dir"; else (cd "$out/$1" && pwd); fi; }

for i in "${!ids[@]}"; do
	id=${ids[$i]} d=$out/${ids[$i]}
	mkdir -p "$d"
	cp "$out/ca.crt" "$d/ca.crt"
	chmod 644 "$d/ca.crt"
	if [[ ${hosts[$i]} =~ ^[0-9.]+$ ]]; then san="IP:${hosts[$i]}"; else san="DNS:${hosts[$i]}"; fi
	tf_issue "$out" "$d/server" "/O=${orgs[$i]}/CN=${hosts[$i]}" \
		"subjectAltName=$san,DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
	tf_issue "$out" "$d/link" "/O=${orgs[$i]}/CN=$(link_of "$id")" "extendedKeyUsage=clientAuth"
	[ -f "$d/signing-key.pem" ] || openssl genpkey -algorithm ed25519 -out "$d/signing-key.pem"
	chmod 600 "$d/signing-key.pem"
	chmod 755 "$d"
done

# The public stamp key of broker i, as an identities file lists it: the
# base64 of its SubjectPublicKeyInfo DER (a PEM body on one line).
public_key() {
	openssl pkey -in "$out/${ids[$1]}/signing-key.pem" -pubout -outform DER | base64 -w0
}

for i in "${!ids[@]}"; do
	id=${ids[$i]} d=$out/${ids[$i]} conf=$(dir_of "$id")
	cat > "$d/listener.conf" <<-EOF
	# Peers' bridges: each logs in with its link certificate (CN = its link).
	listener ${ports[$i]}
	cafile $conf/ca.crt
	certfile $conf/server.crt
	keyfile $conf/server.key
	require_certificate true
	use_identity_as_username true
	EOF
	: > "$d/bridges.conf"
	peers=()
	for j in "${!from[@]}"; do
		[ "${to[$j]}" = "$id" ] && peers+=("$(index_of "${from[$j]}")")
		[ "${from[$j]}" = "$id" ] || continue
		k=$(index_of "${to[$j]}")
		peers+=("$k")
		cat >> "$d/bridges.conf" <<-EOF
		# To ${ids[$k]} (${orgs[$k]}): only the copies made for it, prefix mapped away.
		connection $id-to-${ids[$k]}
		address ${hosts[$k]}:${ports[$k]}
		bridge_protocol_version mqttv50
		remote_clientid $id
		cleansession false
		notifications false
		bridge_attempt_unsubscribe false
		topic # out 1 \$trustflow/egress/${ids[$k]}/ ""
		bridge_cafile $conf/ca.crt
		bridge_certfile $conf/link.crt
		bridge_keyfile $conf/link.key

		EOF
	done
	{
		printf '{\n  "brokers": {'
		sep=""
		for k in $(printf '%s\n' "${peers[@]+"${peers[@]}"}" | sort -un); do
			printf '%s\n    "%s": { "org": "%s", "link": "%s", "keys": ["%s"] }' "$sep" \
				"${ids[$k]}" "${orgs[$k]}" "$(link_of "${ids[$k]}")" "$(public_key "$k")"
			sep=","
		done
		printf '\n  }\n}\n'
	} > "$d/peers.json"
	chmod 644 "$d"/*.conf "$d/peers.json"
done
echo "federation files in $out: ca.crt, and per broker <id>/" >&2
