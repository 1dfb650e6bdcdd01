"""Compare the example planners with the built-in ones, as a Markdown table.

For each zoo model and uplink rate (the paper's profiles), simulates
recursive-efficiency, original (IONN) and the two planners of planners.py,
and prints, per planner, the queries finished within the fp32 all-at-once
upload time (`queries_in_window`, the fairer measure; with the plan's own
upload's count, `queries_during_upload`, in brackets where it differs),
then how often each planner beats recursive-efficiency. `--markdown
EXPERIMENTS.md` puts the table in that file's section for it (replaced on
each run; `ionn experiment --markdown` keeps the section).

Run from the repository root after building:

    PYTHONPATH=build/python /usr/bin/python3 examples/python/compare_planners.py
    PYTHONPATH=build/python /usr/bin/python3 examples/python/compare_planners.py \\
        --models alexnet mobilenet --rates 10 80 --output planners.md
    PYTHONPATH=build/python /usr/bin/python3 examples/python/compare_planners.py --markdown EXPERIMENTS.md

All five models at five rates take about 20 s on a 2-core machine.
"""
import argparse
import sys
import time

import ionn

from planners import largest_efficiency_by_bytes, local_search

MODELS = ["alexnet", "googlenet", "resnet50", "inception_bn", "mobilenet"]
RATES_MBPS = [10, 20, 40, 80, 160]
BASELINE = "recursive-efficiency"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=MODELS, metavar="MODEL",
                        help="zoo models (default: all of %s)" % ", ".join(MODELS))
    parser.add_argument("--rates", nargs="+", type=float, default=RATES_MBPS, metavar="MBPS",
                        help="uplink rates in Mbps (default: %s)" % " ".join(map(str, RATES_MBPS)))
    parser.add_argument("--seed", type=int, default=0, help="local search's seed (default: 0)")
    parser.add_argument("--output", metavar="FILE.md", help="also write the table and summary to this file")
    parser.add_argument("--markdown", metavar="FILE.md",
                        help="replace this file's section for this script (or add it at the end) with the table")
    args = parser.parse_args()
    if any(rate <= 0 for rate in args.rates):
        parser.error("--rates: every rate must be positive")
    return args


def compare(models, rates, planners):
    """Rows of (model, rate, {planner: simulation}) and the seconds each planner took."""
    rows = []
    seconds = {name: 0.0 for name in planners}
    for model_name in models:
        model = ionn.load_model(model_name, weights=False)
        for rate in rates:
            costs = ionn.costs(model, paper_profiles=True, uplink_mbps=rate)
            results = {}
            for name, plan in planners.items():
                start = time.perf_counter()
                results[name] = ionn.simulate(costs, plan)
                seconds[name] += time.perf_counter() - start
            rows.append((model_name, rate, results))
        print("done: %s" % model_name, file=sys.stderr)
    return rows, seconds


def markdown_table(rows, planner_names):
    header = ["model", "Mbps"] + planner_names
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for model_name, rate, results in rows:
        cells = [model_name, "%g" % rate]
        for name in planner_names:
            window, upload = results[name]["queries_in_window"], results[name]["queries_during_upload"]
            cells.append(str(window) if window == upload else "%d (%d)" % (window, upload))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def summary(rows, seconds, planner_names):
    """Per planner other than the baseline: wins, ties and losses on queries_in_window."""
    lines = []
    for name in planner_names:
        if name == BASELINE:
            continue
        diffs = [results[name]["queries_in_window"] - results[BASELINE]["queries_in_window"]
                 for _, _, results in rows]
        lines.append("- %s vs %s on queries in window: better in %d, equal in %d, worse in %d of %d "
                     "(largest difference %+d); planning and simulation took %.2f s in all."
                     % (name, BASELINE, sum(d > 0 for d in diffs), sum(d == 0 for d in diffs),
                        sum(d < 0 for d in diffs), len(diffs), max(diffs), seconds[name]))
    return lines


def main():
    args = parse_args()
    planners = {
        BASELINE: BASELINE,
        "original": "original",
        "largest-efficiency-by-bytes": largest_efficiency_by_bytes,
        "local-search": lambda costs: local_search(costs, seed=args.seed),
    }
    rows, seconds = compare(args.models, args.rates, planners)
    names = list(planners)
    text = "\n".join(
        markdown_table(rows, names)
        + ["", "Queries finished within the fp32 all-at-once upload time (queries_in_window); in brackets, "
               "where it differs, those finished during the plan's own upload (queries_during_upload).", ""]
        + summary(rows, seconds, names)) + "\n"
    sys.stdout.write(text)
    if args.output:
        with open(args.output, "w") as output:
            output.write(text)
    if args.markdown:
        command = "PYTHONPATH=build/python /usr/bin/python3 examples/python/compare_planners.py " + " ".join(
            sys.argv[1:])
        write_section(args.markdown, "\n".join([
            "## Planners written in Python", "",
            "Generated by `%s` (paper profiles, link sharing none, the simulator), with the planners of "
            "`examples/python/planners.py` (see examples/python/README.md) beside two of ionn's." % command, "",
            text.rstrip("\n")]))


def write_section(path, body, marker="examples/python/compare_planners.py"):
    """Replaces the text between the markers "<!-- begin: MARKER -->" and "<!-- end: MARKER -->" in
    `path` (or appends it with them); `ionn experiment --markdown` keeps such sections."""
    begin, end = "<!-- begin: %s -->" % marker, "<!-- end: %s -->" % marker
    try:
        with open(path) as f:
            old = f.read()
    except FileNotFoundError:
        old = ""
    section = "%s\n%s\n%s\n" % (begin, body, end)
    if begin in old and end in old:
        new = old[:old.index(begin)] + section + old[old.index(end) + len(end):].lstrip("\n")
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + section
    with open(path, "w") as f:
        f.write(new)


if __name__ == "__main__":
    main()
