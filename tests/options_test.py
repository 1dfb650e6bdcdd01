#!/usr/bin/python3
"""The shared option groups, as a user sees them in every command's --help:
an option that several commands take has one heading, one type and default
and one help line everywhere (src/cli/options.h), the renamed flags still
work with a deprecation line, and a command-line error starts with
"ionn: error:" and exits 2.

Usage: options_test.py path/to/ionn source-dir
"""
import os
import re
import subprocess
import sys
import tempfile

ionn, src = sys.argv[1], sys.argv[2]
failures = []

COMMANDS = ["demo", "zoo", "costs", "plan", "simulate", "predict", "run", "profile", "calibrate", "experiment",
            "serve", "client", "link"]
# Each shared option and the heading it stands under.
SHARED = {
    "--model": "Model", "--zoo": "Model", "--input-shape": "Model",
    "--input": "Input", "--image": "Input", "--seed": "Input",
    "--client-profile": "Profiles", "--server-profile": "Profiles", "--regression": "Profiles",
    "--paper-profiles": "Profiles", "--client-slowdown": "Profiles",
    "--uplink-mbps": "Link", "--downlink-mbps": "Link", "--rtt-ms": "Link",
    "--algorithm": "Plan", "--granularity": "Plan", "--penalties": "Plan",
    "--threads": "Engine", "--backend": "Engine",
    "--output": "Output", "--format": "Output",
}
# Where a shared name is meant otherwise, and says so in its help line.
OWN_MEANING = {("experiment", "--output"), ("zoo", "--output"), ("costs", "--granularity")}


def run(args, env=None):
    p = subprocess.run([ionn] + args, capture_output=True, text=True, timeout=600, env=env)
    return p.returncode, p.stdout, p.stderr


def options_of(command):
    """{long name: (heading, signature, help)} from `ionn COMMAND --help`."""
    code, out, err = run([command, "--help"])
    if code != 0:
        failures.append(f"{command} --help exited {code}: {err}")
        return {}
    found, heading, current = {}, None, None
    for line in out.splitlines():
        if re.match(r"^[A-Z][^:]*:$", line):
            heading, current = line[:-1], None
        elif re.match(r"^  -", line):
            sig = re.sub(r" Excludes: .*| Needs: .*", "", line.strip()).replace(" REQUIRED", "")
            names = re.findall(r"--[a-z0-9-]+", sig.split(" ")[0])
            current = names[0] if names else None
            # The help text may follow on the same line, after two spaces.
            parts = re.split(r"\s{2,}", sig, maxsplit=1)
            if current:
                found[current] = [heading, parts[0], parts[1] if len(parts) > 1 else ""]
        elif current and line.startswith(" " * 10) and line.strip():
            found[current][2] += (" " if found[current][2] else "") + line.strip()
    return found


seen = {}
for command in COMMANDS:
    for name, (heading, sig, text) in options_of(command).items():
        if name not in SHARED or (command, name) in OWN_MEANING:
            continue
        if heading != SHARED[name]:
            failures.append(f"{command} {name}: under '{heading}', not '{SHARED[name]}'")
        if name == "--format":  # the choices are the command's; the wording is not
            if not text.startswith("The report's format: "):
                failures.append(f"{command} --format: help '{text}'")
            continue
        seen.setdefault(name, []).append((command, sig, text))
for name, uses in seen.items():
    first = uses[0]
    for use in uses[1:]:
        if use[1:] != first[1:]:
            failures.append(f"{name}: '{first[0]}' says {first[1:]!r}, '{use[0]}' says {use[1:]!r}")
for name, commands in [("--client-slowdown", 3), ("--threads", 5), ("--backend", 6), ("--uplink-mbps", 5), ("--zoo", 7), ("--output", 8)]:
    if len(seen.get(name, [])) < commands:
        failures.append(f"{name}: shared by {len(seen.get(name, []))} commands, expected at least {commands}")

# Renamed flags: the old name works, with one line that names the new one.
profiles = os.path.join(src, "data/profiles/odroid-xu4_gtx1080ti")
regression = os.path.join(profiles, "server_regression.csv")
for old, new, args in [
        ("--server-regression", "--regression",
         ["plan", "--zoo", "mobilenet", "--client-profile", os.path.join(profiles, "mobilenet.csv"),
          "--server-regression", regression, "--format", "json"]),
        ("--paper-profile", "--paper-profiles", ["plan", "--zoo", "alexnet", "--paper-profiles", "--format", "json"]),
        ("--sweep-mbps", "--rates", ["experiment", "--sweep-mbps", "10", "--help"]),
        ("--out", "--output", ["experiment", "--out", "x", "--help"])]:
    code, out, err = run(args)
    if code != 0 or (old != "--paper-profile" and f"{old} is now {new}" not in err):
        failures.append(f"{old}: exit {code}, stderr {err!r}")
code, _, err = run(["client", "--zoo", "alexnet", "--paper-profile", "--server", "127.0.0.1:1", "--reconnects", "0",
                    "--deadline-s", "1", "--quiet"])
if "--paper-profile is now --paper-profiles" not in err or code != 2:
    failures.append(f"client --paper-profile: exit {code}, {err!r}")
with tempfile.TemporaryDirectory() as tmp:
    old_npy = os.path.join(tmp, "y.npy")
    code, out, err = run(["run", "--zoo", "mobilenet", "--repeats", "1", "--output", old_npy])
    if code != 0 or "--output is now --output-tensor" not in err or not open(old_npy, "rb").read(6) == b"\x93NUMPY":
        failures.append(f"run --output y.npy: exit {code}, {err!r}")
    report = os.path.join(tmp, "report.json")
    code, out, err = run(["run", "--zoo", "mobilenet", "--repeats", "1", "-o", report, "--format", "json"])
    if code != 0 or out or '"format": "ionn-run/1"' not in open(report).read():
        failures.append(f"run -o report.json: exit {code}, stdout {out!r}")
    # A command that fails leaves no report behind.
    code, _, _ = run(["plan", "--zoo", "nosuchmodel", "--paper-profiles", "-o", os.path.join(tmp, "plan.txt")])
    if code != 2 or os.listdir(tmp) != [] and "plan.txt" in os.listdir(tmp):
        failures.append(f"a failed plan left its report: exit {code}, {os.listdir(tmp)}")
    if any(".ionn-" in f for f in os.listdir(tmp)):
        failures.append(f"a temporary report file was left: {os.listdir(tmp)}")

# Command-line errors: "ionn: error:", the command's help named, exit 2.
for args, want in [(["plan", "--bogus"], "ionn: error: The following argument was not expected: --bogus"),
                   (["client", "--uplink-mbps", "nan"], "ionn: error: --uplink-mbps: must be a rate in Mbps"),
                   (["link", "--rtt-ms", "-1"], "ionn: error: --rtt-ms: must be a time in ms")]:
    code, _, err = run(args)
    if code != 2 or not err.startswith(want) or f"ionn {args[0]} --help" not in err:
        failures.append(f"{' '.join(args)}: exit {code}, {err!r}")

for f in failures:
    print("FAIL:", f)
if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("options: all checks passed")
