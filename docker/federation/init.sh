#!/bin/sh
# The federation demo's one-shot first step (docker/federation/compose.yaml):
# makes, in /federation, what three organizations' brokers need to be
# bridged (scripts/make-federation.sh) and each broker's configuration:
# the image's own, under the broker's id, with its identities (the demo's
# and its peers), its stamp key, and its listener for peers and bridges.
# The City Waterworks' broker (broker-a) holds the owner's signed policy;
# the other two learn it from their peers. Does nothing when /federation
# is made already.
set -eu

dir=/federation
[ -f "$dir/ca.crt" ] && { echo "trustflow: federation files already in $dir" >&2; exit 0; }

trustflow-make-federation "$dir" \
	--broker broker-a city-waterworks broker-a \
	--broker broker-b maint-co broker-b \
	--broker broker-c research-lab broker-c \
	--bridge broker-a broker-b --bridge broker-b broker-c

for id in broker-a broker-b broker-c; do
	python3 - /etc/trustflow/identities.json "$dir/$id/peers.json" \
		"$dir/$id/identities.json" <<'PY'
import json, sys
ids = json.load(open(sys.argv[1]))
ids.update(json.load(open(sys.argv[2])))
json.dump(ids, open(sys.argv[3], "w"), indent=2)
PY
	mkdir -p "$dir/$id-policies"
	# The broker's own configuration: the image's, but for what is its own.
	sed -e "s|^plugin_opt_broker_id .*|plugin_opt_broker_id $id|" \
	    -e "s|^plugin_opt_identities .*|plugin_opt_identities $dir/$id/identities.json|" \
	    -e "s|^plugin_opt_policy_dir .*|plugin_opt_policy_dir $dir/$id-policies|" \
	    -e "s|^plugin_opt_signing_key .*|plugin_opt_signing_key $dir/$id/signing-key.pem|" \
	    -e "/^plugin_opt_dev_key_autogen /d" \
	    /etc/trustflow/mosquitto.conf > "$dir/$id.conf"
	# Its listener for peers' bridges, and its bridges.
	echo "include_dir $dir/$id" >> "$dir/$id.conf"
done
cp /usr/share/trustflow/federation/policies/* "$dir/broker-a-policies/"
echo "trustflow: federation files made in $dir" >&2
