#!/usr/bin/env bash
# Builds trustflow and starts mosquitto with it in the foreground, on the
# default configuration (broker/conf/mosquitto.conf.in), listening on
# 127.0.0.1:1883 (TF_PORT overrides the port). Ctrl-C stops it.
set -euo pipefail
source "$(dirname "$0")/common.sh"

port=${TF_PORT:-1883}
tf_ensure_packages

# Installing Debian's mosquitto starts its system service on port 1883 where
# systemd runs; when this script installed it, that service is not wanted.
if [[ " $TF_INSTALLED " == *" mosquitto "* ]] && command -v systemctl >/dev/null \
		&& systemctl is-active --quiet mosquitto 2>/dev/null; then
	tf_say "Stopping the mosquitto system service that the package started (systemctl disable --now mosquitto)."
	systemctl disable --now mosquitto >&2
fi

tf_build _build
run="$TF_BUILDDIR/run"
mkdir -p "$run/data"
sed "s|^listener 1883 127.0.0.1\$|listener $port 127.0.0.1|" \
	"$TF_BUILDDIR/broker/conf/mosquitto-dev.conf" > "$run/mosquitto.conf"

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
	tf_say "Port $port on 127.0.0.1 is already in use (another mosquitto?)."
	tf_say "Stop it, or pick another port: TF_PORT=1884 $0"
	exit 1
fi

cat >&2 <<MSG

trustflow: starting mosquitto with the trustflow plugin on 127.0.0.1:$port
  configuration: $run/mosquitto.conf
  data:          $run/data

Try it from another terminal, with the demo identities (password "demo"):
  mosquitto_sub -h 127.0.0.1 -p $port -u maint-app -P demo -t 'city/water/+/telemetry' -v
  mosquitto_pub -h 127.0.0.1 -p $port -u ww-sensor-01 -P demo -t city/water/d7/telemetry -m '{"flow":12.5}'
  mosquitto_sub -h 127.0.0.1 -p $port -u snoop -P demo -t '#' -V 5    # refused: no policy lets it read
README.md walks through the demo.

Stop the broker with Ctrl-C.

MSG
exec "$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c "$run/mosquitto.conf"
