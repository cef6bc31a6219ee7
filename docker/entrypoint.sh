#!/bin/sh
# The container's first process: on the first run, makes what the demo
# configuration needs and an operator did not mount (TLS certificates for
# the demo identities; the development signing key is made by the plugin
# itself), then becomes mosquitto.
set -eu

conf=${TRUSTFLOW_CONF:-/etc/trustflow/mosquitto.conf}
data=/var/lib/trustflow
tls=$data/tls

if [ ! -f "$tls/ca.crt" ] && grep -q "^cafile $tls/" "$conf"; then
	echo "trustflow: first run: making demo TLS certificates in $tls" >&2
	trustflow-make-demo-certs "$tls" /etc/trustflow/identities.json localhost 127.0.0.1 \
		"$(hostname)"
fi
exec mosquitto -c "$conf" "$@"
