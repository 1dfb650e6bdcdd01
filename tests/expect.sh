# Sourced by the shell tests that check exit codes and messages (cli_test,
# tls_test). Needs a `fail` function that counts a failure.
# expect CODE PATTERN -- command...: the exit code, and PATTERN (extended
# regex) in stdout+stderr; with VERBOSE set, the last lines of the output.
expect() {
  local code=$1 pattern=$2
  shift 3
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  [ -n "${VERBOSE:-}" ] && echo "$out" | tail -3
  [ "$rc" -eq "$code" ] || fail "exit $rc (want $code): $*"$'\n'"$out"
  grep -qE -- "$pattern" <<<"$out" || fail "no /$pattern/ in output of: $*"$'\n'"$out"
}
