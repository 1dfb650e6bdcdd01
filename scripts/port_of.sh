# Sourced by the test and bench scripts that start `ionn serve` or
# `ionn link` on port 0: port_of LOG prints the port the process logged
# ("listening on ... (port N)"), waiting up to 10 s; returns 1 if none.
port_of() {
  local p
  for _ in $(seq 200); do
    p=$(sed -n 's/.*listening on .*(port \([0-9]*\)).*/\1/p' "$1" | head -1)
    [ -n "$p" ] && { echo "$p"; return 0; }
    sleep 0.05
  done
  return 1
}
