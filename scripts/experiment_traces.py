"""Links whose rate changes (DESIGN.md, "A link whose rate changes"),
simulated on the paper's profiles: for each of data/traces/ and each zoo
model and planner, the queries finished in the window (the fp32 all-at-once
upload's time on the trace), the upload's end and the queries during it.
The planner assumes a looping trace's mean rate or a CSV trace's first rate
(it does not know the trace); the simulator replays the trace for the upload
and every query tensor.

Run after the build (EXPERIMENTS.md's section "Link traces" is this output):

    PYTHONPATH=build/python /usr/bin/python3 scripts/experiment_traces.py --markdown EXPERIMENTS.md
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODELS = ["alexnet", "googlenet", "resnet50", "inception_bn", "mobilenet"]
TRACES = ["step_80_to_20.csv", "step_20_to_80.csv", "steps_80_20_80.csv", "ramp_10_to_100.csv",
          "random_walk_1_100_seed1.mahimahi"]
PLANNERS = ["original", "recursive-efficiency", "window-search"]


def simulate(ionn, model, trace, planner, sharing):
    out = subprocess.run([ionn, "simulate", "--zoo", model, "--paper-profiles", "-a", planner, "--uplink-trace",
                          os.path.join("data", "traces", trace), "--link-sharing", sharing, "--replan", "off",
                          "--format", "json"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


# Re-planning (DESIGN.md, "Re-planning from the upload"): per model, the
# step traces at its mid-upload, and a constant link as a trace.
REPLAN_CASES = [("alexnet", "step_80_to_20.csv", 11600), ("alexnet", "step_20_to_80_alexnet_mid.csv", 46600),
                ("resnet50", "step_80_to_20_resnet50_mid.csv", 4900),
                ("resnet50", "step_20_to_80_resnet50_mid.csv", 19500)]
REPLAN_PLANNERS = ["recursive-efficiency", "window-search"]


def simulate_replan(ionn, model, trace_path, planner, sharing, replan):
    out = subprocess.run([ionn, "simulate", "--zoo", model, "--paper-profiles", "-a", planner, "--uplink-trace",
                          trace_path, "--link-sharing", sharing, "--replan", replan, "--format", "json"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def settle_s(samples, step_ms):
    """Seconds from the step until the estimate is within 10% of the true
    rate at every acknowledgement from then to the upload's end; None when
    it never is."""
    after = [s for s in samples if s["at_ms"] >= step_ms]
    for i, s in enumerate(after):
        if all(e["estimated_mbps"] is not None and abs(e["estimated_mbps"] - e["true_mbps"]) <= 0.1 * e["true_mbps"]
               for e in after[i:]):
            return (s["at_ms"] - step_ms) / 1000
    return None


def replan_table(ionn, sharing, constant_trace):
    lines = ["| model | trace | planner | off | passive | oracle | passive / off | passive / oracle | re-plans | "
             "estimate within 10% after the step |", "|---|---|---|---|---|---|---|---|---|---|"]
    cases = REPLAN_CASES + [(m, "random_walk_1_100_seed1.mahimahi", None) for m in ["alexnet", "resnet50"]] + \
        [(m, constant_trace, None) for m in ["alexnet", "resnet50"]]
    for model, trace, step_ms in cases:
        path = trace if os.path.isabs(trace) else os.path.join("data", "traces", trace)
        name = "constant 80 Mbps (as a trace)" if trace == constant_trace else trace
        for planner in REPLAN_PLANNERS:
            d = {r: simulate_replan(ionn, model, path, planner, sharing, r) for r in ["off", "passive", "oracle"]}
            q = {r: d[r]["queries_in_window"] for r in d}
            settle = "-" if step_ms is None else settle_s(d["passive"]["rate_estimates"], step_ms)
            settle = settle if isinstance(settle, str) else ("never" if settle is None else f"{settle:.2f} s")
            lines.append(f"| {model} | {name} | {planner} | {q['off']} | {q['passive']} | {q['oracle']} | "
                         f"{q['passive'] / q['off']:.3f} | {q['passive'] / q['oracle']:.3f} | "
                         f"{len(d['passive']['replans'])} | {settle} |")
    return "\n".join(lines)


def estimate_figure(ionn, folder):
    """The passive estimate against the true rate over an upload."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cases = [("alexnet", "step_20_to_80_alexnet_mid.csv"), ("alexnet", "random_walk_1_100_seed1.mahimahi")]
    fig, axes = plt.subplots(len(cases), 1, figsize=(9, 6), sharex=False)
    for ax, (model, trace) in zip(axes, cases):
        d = simulate_replan(ionn, model, os.path.join("data", "traces", trace), "recursive-efficiency", "none",
                            "passive")
        s = d["rate_estimates"]
        ax.plot([e["at_ms"] / 1000 for e in s], [e["true_mbps"] for e in s], color="gray", label="true (mean over 100 ms)")
        est = [e for e in s if e["estimated_mbps"] is not None]
        ax.plot([e["at_ms"] / 1000 for e in est], [e["estimated_mbps"] for e in est], color="tab:blue",
                label="estimated from acknowledged bytes (1 s window)")
        for r in d["replans"]:
            ax.axvline(r["at_ms"] / 1000, color="tab:red", linestyle=":", linewidth=1)
        ax.set_title(f"{model}, {trace}: uplink rate during the upload (dotted: re-plans)")
        ax.set_ylabel("Mbps")
        ax.legend(loc="best", fontsize=8)
    axes[-1].set_xlabel("time since the upload started (s)")
    path = os.path.join(folder, "replan_estimate_alexnet.png")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ionn", default=os.path.join(ROOT, "build", "bin", "ionn"))
    parser.add_argument("--link-sharing", default="none", choices=["none", "fair", "priority"])
    parser.add_argument("--markdown", metavar="FILE.md",
                        help="replace this file's sections for this script (or add them at the end)")
    parser.add_argument("--figures", metavar="DIR", default=os.path.join(ROOT, "docs", "experiments"),
                        help="where the estimate's figure goes (default: docs/experiments)")
    args = parser.parse_args()
    lines = ["| trace | model | planner | planned Mbps | window s | queries in window | upload s | "
             "queries during upload |", "|---|---|---|---|---|---|---|---|"]
    for trace in TRACES:
        for model in MODELS:
            for planner in PLANNERS:
                d = simulate(args.ionn, model, trace, planner, args.link_sharing)
                lines.append(f"| {trace} | {model} | {planner} | {d['uplink_mbps']:.1f} | {d['window_ms'] / 1000:.1f} | "
                             f"{d['queries_in_window']} | {d['upload_ms'] / 1000:.1f} | {d['queries_during_upload']} |")
    table = "\n".join(lines)
    print(table)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        constant = os.path.join(tmp, "constant_80.csv")
        with open(constant, "w") as f:
            f.write("t_ms,mbps\n0,80\n")
        replan = {sharing: replan_table(args.ionn, sharing, constant) for sharing in ["none", "fair"]}
    for sharing, t in replan.items():
        print(f"\nre-planning, link sharing {sharing}\n{t}")
    figure = estimate_figure(args.ionn, args.figures)
    if args.markdown:
        sys.path.insert(0, os.path.join(ROOT, "examples", "python"))
        from compare_planners import write_section  # one way to keep a section of a generated file
        write_section(args.markdown, "\n".join([
            "## Link traces: a rate that changes (simulated)", "",
            "Generated by `PYTHONPATH=build/python /usr/bin/python3 scripts/experiment_traces.py --markdown EXPERIMENTS.md` "
            "(paper "
            f"profiles, link sharing {args.link_sharing}, the traces of `data/traces/`, whose README says how each "
            "was made; downlink constant at the planned rate). The planner does not know the trace: it assumes "
            "*planned Mbps*, a looping (mahimahi) trace's mean or a CSV trace's first rate; the simulator replays "
            "the trace for the upload and every query tensor. *window*: the fp32 all-at-once upload's time on "
            "the trace. Re-planning off: every planner here plans once, for a constant link (the next section "
            "re-plans).", "", table]),
            marker="scripts/experiment_traces.py")
        write_section(args.markdown, "\n".join([
            "## Re-planning from the upload (simulated)", "",
            "Generated by the same command (`scripts/experiment_traces.py`): paper profiles, the planner assumes "
            "the trace's first rate, queries back to back, the window as above. *off*: the plan made at the "
            "start; *passive*: the client estimates the uplink's rate from the acknowledged upload bytes (every "
            "1 MiB, over the last second; no probe bytes) and, when the estimate leaves +/-25% of the rate its "
            "plan assumed, plans the layers not sent yet again on top of those sent and places the next queries "
            "for that rate (DESIGN.md, \"Re-planning from the upload\"); *oracle*: the same, with the true mean "
            "rate of the next 100 ms read from the trace instead of the estimate. The step traces step when half "
            "the model's fp32 weights have crossed at the first rate (AlexNet's 80 -> 20 at 11.6 s). "
            "*estimate within 10%*: from the step until the estimate stays within 10% of the true rate (its mean "
            "over the last 100 ms) at every acknowledgement to the upload's end (- without a step). The random "
            "walk's planner assumes its mean, 39.1 Mbps.", "",
            "Link sharing none (the paper's idealisation):", "", replan["none"], "",
            "Link sharing fair (the upload and the query tensors share the uplink, as two TCP flows do; the "
            "estimate counts both):", "", replan["fair"], "",
            f"![estimate](docs/experiments/{os.path.basename(figure)})"]),
            marker="scripts/experiment_traces.py replan")


if __name__ == "__main__":
    main()
