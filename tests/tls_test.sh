#!/usr/bin/env bash
# TLS and the shared secret, with real processes on loopback: the test makes
# its own certificate authority, a server certificate it signs (for
# localhost and 127.0.0.1) and an unrelated CA with Debian's openssl; then
# a client that trusts the CA and knows the secret offloads; every other
# combination is refused with a one-line error.
# Usage: tls_test.sh path/to/ionn source-dir
set -u
ionn=$1
src=$2
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
# shellcheck source=tests/expect.sh
. "$src/tests/expect.sh"
command -v openssl >/dev/null || { echo "tls: openssl is not installed (scripts/setup.sh installs it)"; exit 1; }
profiles=$src/data/profiles/odroid-xu4_gtx1080ti
# shellcheck source=scripts/port_of.sh
. "$src/scripts/port_of.sh"

# A CA, a server certificate it signs, and a CA that signed nothing here.
cd "$tmp" || exit 1
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 -subj "/CN=ionn test CA" 2>/dev/null
openssl req "${ec[@]}" -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 \
  -extfile san.ext 2>/dev/null
openssl req -x509 "${ec[@]}" -keyout other.key -out other.pem -days 2 -subj "/CN=another CA" 2>/dev/null
[ -s server.pem ] && [ -s other.pem ] || { echo "FAIL: openssl made no certificates"; exit 1; }
openssl pkey -in server.key -aes256 -passout pass:secret-words -out encrypted.key 2>/dev/null
openssl rand -hex 32 >secret
openssl rand -hex 32 >wrong_secret
echo short >short_secret
cd - >/dev/null || exit 1

# Bad server setups: exit 2 before listening.
expect 2 "not a PEM certificate" -- "$ionn" serve --regression "$profiles/server_regression.csv" \
  --tls-cert "$tmp/san.ext" --tls-key "$tmp/server.key" --listen 127.0.0.1:0
expect 2 "does not belong" -- "$ionn" serve --regression "$profiles/server_regression.csv" \
  --tls-cert "$tmp/server.pem" --tls-key "$tmp/other.key" --listen 127.0.0.1:0
expect 2 "not an unencrypted PEM private key" -- "$ionn" serve --regression "$profiles/server_regression.csv" \
  --tls-cert "$tmp/server.pem" --tls-key "$tmp/encrypted.key" --listen 127.0.0.1:0 </dev/null
expect 2 "requires --tls-key|--tls-key" -- "$ionn" serve --tls-cert "$tmp/server.pem"
expect 2 "16 to 1024" -- "$ionn" serve --regression "$profiles/server_regression.csv" \
  --secret-file "$tmp/short_secret" --listen 127.0.0.1:0
expect 2 "cannot open" -- "$ionn" serve --secret-file "$tmp/missing"

"$ionn" serve --listen 127.0.0.1:0 --regression "$profiles/server_regression.csv" --tls-cert "$tmp/server.pem" \
  --tls-key "$tmp/server.key" --secret-file "$tmp/secret" 2>"$tmp/serve.log" &
pids+=($!)
port=$(port_of "$tmp/serve.log") || { echo "FAIL: serve did not start: $(cat "$tmp/serve.log")"; exit 1; }
grep -q "TLS, shared secret required" "$tmp/serve.log" || fail "serve did not say it uses TLS and a secret"
client=("$ionn" client --zoo mobilenet --paper-profiles --queries 3 --deadline-s 5 --reconnects 0 --quiet
  --format json)

# The right CA and secret, by address and by the name the certificate carries.
expect 0 "\"query_count\": 3" -- "${client[@]}" --server "127.0.0.1:$port" --tls-ca "$tmp/ca.pem" --secret-file "$tmp/secret"
# (the certificate's DNS name, without a resolver: a bare root may lack /etc/hosts)
expect 0 '"queries_offloaded": [1-9]' -- "${client[@]}" --server "127.0.0.1:$port" --tls-ca "$tmp/ca.pem" \
  --tls-server-name localhost --secret-file "$tmp/secret"
# A certificate another CA signed, a name it does not carry, no TLS: no
# connection, exit 2 and a message that says which.
expect 2 "Hello to 127.0.0.1:$port: .*not signed by a CA this client trusts; give its CA with --tls-ca" -- \
  "${client[@]}" --server "127.0.0.1:$port" --tls-ca "$tmp/other.pem" --secret-file "$tmp/secret"
expect 2 "Hello to 127.0.0.1:$port: .*does not carry the name asked for" -- "${client[@]}" --server "127.0.0.1:$port" \
  --tls-ca "$tmp/ca.pem" --tls-server-name evil.example --secret-file "$tmp/secret"
expect 2 "Hello to 127.0.0.1:$port: .*it may expect TLS \(--tls or --tls-ca\)" -- "${client[@]}" \
  --server "127.0.0.1:$port" --secret-file "$tmp/secret"
# TLS but no secret, or the wrong one: refused by the server.
expect 2 "this server needs its shared secret" -- "${client[@]}" --server "127.0.0.1:$port" --tls-ca "$tmp/ca.pem"
expect 2 "the shared secret is not this server's" -- "${client[@]}" --server "127.0.0.1:$port" --tls-ca "$tmp/ca.pem" \
  --secret-file "$tmp/wrong_secret"
expect 2 "16 to 1024" -- "${client[@]}" --server "127.0.0.1:$port" --tls-ca "$tmp/ca.pem" \
  --secret-file "$tmp/short_secret"
expect 2 "needs --tls" -- "${client[@]}" --server "127.0.0.1:$port" --tls-server-name localhost
grep -q "session .* opened" "$tmp/serve.log" || fail "no session opened"

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "tls: all checks passed"
