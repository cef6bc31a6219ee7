# Shared by make-demo-certs.sh and make-federation.sh (sourced, not run):
# P-256 keys, a certificate authority, and certificates it signs, valid
# for 825 days.

# tf_tls_key FILE: a new P-256 private key.
tf_tls_key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }

# tf_ca DIR SUBJECT: DIR/ca.key and DIR/ca.crt, unless DIR has them.
tf_ca() {
	[ -f "$1/ca.key" ] && return 0
	tf_tls_key "$1/ca.key"
	openssl req -x509 -new -key "$1/ca.key" -sha256 -days 825 -subj "$2" -out "$1/ca.crt"
	chmod 644 "$1/ca.crt"
}

# tf_issue CA_DIR NAME SUBJECT EXTENSIONS: NAME.key and NAME.crt, signed by
# the CA of CA_DIR.
tf_issue() {
	local ca=$1 name=$2 subject=$3 ext=$4
	tf_tls_key "$name.key"
	openssl req -new -key "$name.key" -subj "$subject" -out "$name.csr"
	openssl x509 -req -in "$name.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" \
		-CAcreateserial -days 825 -sha256 -extfile <(printf '%s\n' "$ext") \
		-out "$name.crt" 2>/dev/null
	rm -f "$name.csr"
	chmod 644 "$name.crt"
}
