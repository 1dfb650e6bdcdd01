#!/usr/bin/env python3
"""Re-planning from the upload, live against the simulator: AlexNet through
`ionn link` following a link trace, the real client (emulating the paper's
ODROID client, this machine's measured times as the server's) with
re-planning off and passive, and `ionn simulate` on the same trace, the same
profiles and fair link sharing (what two TCP flows do), its trace shifted
to the client's upload start (`ionn link` logs the traces' time 0 and the
client reports its upload's start, both in Unix ms).

Run after the build, on a quiet machine (EXPERIMENTS.md's section
"Re-planning, live" is this output):

    /usr/bin/python3 scripts/experiment_replan_live.py --markdown EXPERIMENTS.md
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PAPER = os.path.join(ROOT, "data", "profiles", "odroid-xu4_gtx1080ti")
# (label, uplink trace or None for a constant rate, the rate planned for, Mbps)
CASES = [("step 20 -> 80 Mbps at 11.6 s", "step_20_to_80.csv", 20),
         ("step 80 -> 20 Mbps at 11.6 s", "step_80_to_20.csv", 80),
         ("constant 80 Mbps", None, 80)]
MODES = ["off", "passive"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, what):
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"{what} exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not listen on port {port}")


def shifted_csv(trace_path, offset_ms, out_path):
    """The CSV trace as seen from `offset_ms` on (its time 0 there)."""
    rows = []
    with open(trace_path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or line.startswith("t_ms"):
                continue
            t, r = line.split(",")
            rows.append((float(t), float(r)))
    at = [r for t, r in rows if t <= offset_ms][-1]
    out = [(0, at)] + [(t - offset_ms, r) for t, r in rows if t > offset_ms]
    with open(out_path, "w") as f:
        f.write("t_ms,mbps\n" + "".join(f"{t:.3f},{r:g}\n" for t, r in out))


def run_case(ionn, tmp, server_port, server_csv, trace, mbps, mode):
    link_port = free_port()
    link_cmd = [ionn, "link", "--listen", f"127.0.0.1:{link_port}", "--connect", f"127.0.0.1:{server_port}",
                "--downlink-mbps", "80"]
    link_cmd += ["--uplink-trace", os.path.join(ROOT, "data", "traces", trace)] if trace else ["--uplink-mbps", str(mbps)]
    log_path = os.path.join(tmp, "link.log")
    with open(log_path, "w") as log:
        link = subprocess.Popen(link_cmd, stderr=log, stdout=subprocess.DEVNULL)
    try:
        wait_for_port(link_port, link, "ionn link")
        report = os.path.join(tmp, f"client_{mode}.json")
        subprocess.run([ionn, "client", "--zoo", "alexnet", "--server", f"127.0.0.1:{link_port}",
                        "--emulate-profile", os.path.join(PAPER, "alexnet.csv"), "--server-profile", server_csv,
                        "--uplink-mbps", str(mbps), "--downlink-mbps", "80", "--ignore-held", "--quiet",
                        "--replan", mode, "--format", "json", "-o", report], check=True, stderr=subprocess.DEVNULL)
    finally:
        link.terminate()
        link.wait()
    with open(report) as f:
        live = json.load(f)
    sim_cmd = [ionn, "simulate", "--zoo", "alexnet", "--client-profile", os.path.join(PAPER, "alexnet.csv"),
               "--server-profile", server_csv, "--uplink-mbps", str(mbps), "--downlink-mbps", "80",
               "--link-sharing", "fair", "--replan", mode, "--window-ms", str(live["window_ms"]), "--format", "json"]
    offset = None
    if trace:
        with open(log_path) as f:
            zero = float(re.search(r"the traces' time 0 at unix ms (\d+)", f.read()).group(1))
        offset = live["upload_started_unix_ms"] - zero
        shifted = os.path.join(tmp, "shifted.csv")
        shifted_csv(os.path.join(ROOT, "data", "traces", trace), offset, shifted)
        sim_cmd += ["--uplink-trace", shifted]
    sim = json.loads(subprocess.run(sim_cmd, check=True, capture_output=True, text=True).stdout)
    return live, sim, offset


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ionn", default=os.path.join(ROOT, "build", "bin", "ionn"))
    parser.add_argument("--markdown", metavar="FILE.md",
                        help="replace this file's section for this script (or add it at the end)")
    args = parser.parse_args()
    lines = ["| link | re-planning | upload s live | sim | queries during upload live | sim | live / sim | "
             "re-plans live | sim | re-plan time (ms, live, max) |", "|---|---|---|---|---|---|---|---|---|---|"]
    ratios = {}
    with tempfile.TemporaryDirectory() as tmp:
        server_csv = os.path.join(tmp, "server.csv")
        subprocess.run([args.ionn, "profile", "--zoo", "alexnet", "--column", "server", "-o", server_csv], check=True,
                       stderr=subprocess.DEVNULL)
        port = free_port()
        server = subprocess.Popen([args.ionn, "serve", "--listen", f"127.0.0.1:{port}"], stderr=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, text=True)
        try:
            wait_for_port(port, server, "ionn serve")
            for label, trace, mbps in CASES:
                for mode in MODES:
                    live, sim, offset = run_case(args.ionn, tmp, port, server_csv, trace, mbps, mode)
                    ratios[label, mode] = live["queries_during_upload"]
                    plan_ms = max((r["plan_ms"] for r in live["replans"]), default=0)
                    lines.append(f"| {label} | {mode} | {live['upload_ms'] / 1000:.1f} | {sim['upload_ms'] / 1000:.1f} | "
                                 f"{live['queries_during_upload']} | {sim['queries_during_upload']} | "
                                 f"{live['queries_during_upload'] / max(sim['queries_during_upload'], 1):.2f} | "
                                 f"{len(live['replans'])} | {len(sim['replans'])} | {plan_ms:.2f} |")
                    print(lines[-1], f"(client started {offset:.0f} ms into the trace)" if offset else "", flush=True)
        finally:
            server.terminate()
            server.wait()
    gains = [f"{label}: {ratios[label, 'passive'] / ratios[label, 'off']:.2f}x" for label, _, _ in CASES]
    table = "\n".join(lines)
    print(table)
    print("passive / off, live:", ", ".join(gains))
    if args.markdown:
        sys.path.insert(0, os.path.join(ROOT, "examples", "python"))
        sys.path.insert(0, os.path.join(ROOT, "build", "python"))
        from compare_planners import write_section
        write_section(args.markdown, "\n".join([
            "## Re-planning, live", "",
            "Generated by `/usr/bin/python3 scripts/experiment_replan_live.py --markdown EXPERIMENTS.md`: AlexNet, "
            "the real client emulating the paper's ODROID client (`--emulate-profile`), this machine's measured "
            "layer times as the server's (`--server-profile`), through `ionn link` following the trace on the "
            "uplink (80 Mbps down), recursive-efficiency planned for the trace's first rate; beside each run "
            "`ionn simulate` on the same trace shifted to the client's upload start, the same profiles, link "
            "sharing fair. Queries back to back; *re-plan time*: the longest re-plan's wall-clock time in the "
            "client (planner and query schedules), which the client's JSON reports for each.", "", table, "",
            "Queries during upload, re-planning passive over off, live: " + ", ".join(gains) + "."]),
            marker="scripts/experiment_replan_live.py")


if __name__ == "__main__":
    main()
