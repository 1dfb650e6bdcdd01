"""Upload encodings (issue "sooner", DESIGN.md "Beyond the paper"), simulated
on the paper's profiles: for each zoo model and uplink rate, recursive-
efficiency's queries in the window (the fp32 all-at-once upload time),
near_optimal_ms and exact_from_ms with the weights sent exact (the paper),
lossless, progressive, fp16 and int8, each beside its accuracy:

- a small CNN trained here with PyTorch (Debian's python3-torch) on
  scikit-learn's digits (python3-sklearn), exported to ONNX and run by
  ionn's engine with the weights each encoding leaves the server:
  accuracy on the held-out digits, and top-1 agreement with fp32;
- the zoo models with their seeded weights (bench/encoding_accuracy, 1,000
  seeded inputs: docs/experiments/encoding_accuracy_zoo.json), whose
  outputs hardly vary (their top-1 agreement says little: the table shows
  how many classes fp32 gave).

    PYTHONPATH=build/python /usr/bin/python3 scripts/experiment_encodings.py --markdown EXPERIMENTS.md
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np

import ionn

MODELS = ["alexnet", "googlenet", "resnet50", "inception_bn", "mobilenet"]
RATES = [10, 20, 40, 80, 160]
ENCODINGS = ["exact", "lossless", "progressive", "fp16", "int8"]
LOSSY = {"progressive": "high", "fp16": "whole", "int8": "whole"}  # what approximate queries compute with
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def trained_digits_accuracy(seed=0):
    """{encoding: (accuracy, agreement with fp32)} of a CNN trained on digits."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    torch.manual_seed(seed)
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    x_train, x_test, y_train, y_test = train_test_split(x, digits.target, test_size=0.3, random_state=seed,
                                                        stratify=digits.target)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64 * 2 * 2, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train).long()
    for _ in range(40):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
    net.eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "digits.onnx")
        torch.onnx.export(net, torch.zeros(1, 1, 8, 8), path, input_names=["x"], output_names=["logits"],
                          opset_version=13)
        model = ionn.load_model(path)
    with torch.no_grad():
        torch_pred = net(torch.from_numpy(x_test)).argmax(1).numpy()

    def predict(m):
        return np.array([int(np.argmax(ionn.run(m, x_test[i:i + 1]))) for i in range(len(x_test))])

    fp32 = predict(model)
    assert (fp32 == torch_pred).mean() > 0.99, "ionn's fp32 run disagrees with PyTorch"
    out = {"fp32": ((fp32 == y_test).mean(), 1.0, len(y_test))}
    for encoding, phase in LOSSY.items():
        pred = predict(ionn.as_uploaded(model, encoding, phase))
        out[encoding] = ((pred == y_test).mean(), (pred == fp32).mean(), len(y_test))
    return out


def simulated(uplink_mbps):
    rows = {}
    for name in MODELS:
        model = ionn.load_model(name)  # lossless sizes the compressed bytes of the (seeded) weights
        for encoding in ENCODINGS:
            costs = ionn.costs(model, paper_profiles=True, uplink_mbps=uplink_mbps, upload_encoding=encoding)
            sim = ionn.simulate(costs, "recursive-efficiency")
            rows[name, encoding] = sim
    return rows


# Everything together (the combinations): each row the best of 1, 2,
# 4 and 8 slices by the simulator's count (`--slices auto` picks among the
# same counts by the planner's own estimate of it, PlanBestSlices, and may
# pick another).
COMBINED = [("recursive-efficiency", "exact", False), ("window-search", "exact", True),
            ("window-search", "lossless", True), ("window-search", "progressive", True),
            ("window-search", "int8", True)]


def best_over_slices(model, planner, encoding, sliced, uplink_mbps):
    """(simulation, slices): the most queries in the window of 1, 2, 4 and
    8 slices (only 1 when not `sliced`)."""
    best = None
    for n in ([1, 2, 4, 8] if sliced else [1]):
        costs = ionn.costs(model, paper_profiles=True, uplink_mbps=uplink_mbps, upload_encoding=encoding, slices=n)
        sim = ionn.simulate(costs, planner)
        if best is None or sim["queries_in_window"] > best[0]["queries_in_window"]:
            best = (sim, n)
    return best


def combined(uplink_mbps):
    rows = {}
    for name in MODELS:
        model = ionn.load_model(name)
        for planner, encoding, sliced in COMBINED:
            rows[name, planner, encoding] = best_over_slices(model, planner, encoding, sliced, uplink_mbps)
    return rows


def figures(folder, uplink_mbps=80):
    """Query latency over time (the paper's Fig. 7) with the options
    overlaid, for AlexNet and ResNet-50: fig7_encodings_<model>.png."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import ionn.plot
    written = []
    for name in ["alexnet", "resnet50"]:
        model = ionn.load_model(name)
        results = {}
        for planner, encoding, sliced in COMBINED:
            best = best_over_slices(model, planner, encoding, sliced, uplink_mbps)
            label = f"{planner}, {encoding}" + (f", {best[1]} slices" if best[1] > 1 else "")
            results[label] = best[0]
        fig, ax = plt.subplots(figsize=(9, 5))
        window = results[next(iter(results))]["window_ms"] / 1000
        ionn.plot.fig7_query_latency(results, ax=ax, title=f"{name}, {uplink_mbps:g} Mbps: query latency over time")
        ax.axvline(window, color="gray", linestyle=":", linewidth=1)
        ax.set_xlim(0, window * 1.05)
        path = os.path.join(folder, f"fig7_encodings_{name}.png")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written


def ms(v):
    return "never" if v is None else f"{v / 1000:.1f} s"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", metavar="FILE.md",
                        help="replace this file's section for this script (or add it at the end)")
    parser.add_argument("--figures", metavar="DIR", help="also draw the Fig. 7 overlays into DIR")
    parser.add_argument("--zoo-accuracy", default=os.path.join(ROOT, "docs", "experiments",
                                                               "encoding_accuracy_zoo.json"))
    args = parser.parse_args()

    digits = trained_digits_accuracy()
    zoo = {}
    if os.path.exists(args.zoo_accuracy):
        with open(args.zoo_accuracy) as f:
            for r in json.load(f)["rows"]:
                key = {"progressive high half (bf16)": "progressive"}.get(r["weights"], r["weights"])
                zoo[r["model"], key] = r

    acc = ["| weights | digits CNN accuracy | agreement with fp32 | zoo: largest logit error (seeded, 1,000 inputs) |",
           "|---|---|---|---|"]
    acc.append(f"| fp32 (exact, lossless; progressive once exact) | {100 * digits['fp32'][0]:.2f}% | 100% | 0 |")
    for encoding in LOSSY:
        a, agree, n = digits[encoding]
        errs = ", ".join(f"{m} {zoo[m, encoding]['largest_relative_logit_error']:.1e}"
                         for m in MODELS if (m, encoding) in zoo)
        label = "progressive, high halves only (bfloat16, truncated)" if encoding == "progressive" else encoding
        acc.append(f"| {label} | {100 * a:.2f}% ({100 * (a - digits['fp32'][0]):+.2f} points) | "
                   f"{100 * agree:.2f}% | {errs or 'not measured'} |")

    lines = []
    for rate in RATES:
        rows = simulated(rate)
        lines += [f"**{rate} Mbps**", "",
                  "| model | encoding | queries in window | x exact | near-optimal from | x exact | exact from | "
                  "approximate queries |",
                  "|---|---|---|---|---|---|---|---|"]
        for name in MODELS:
            base = rows[name, "exact"]
            for encoding in ENCODINGS:
                s = rows[name, encoding]
                near = s["near_optimal_ms"]
                ratio_q = s["queries_in_window"] / max(base["queries_in_window"], 1)
                ratio_n = "" if near is None or base["near_optimal_ms"] is None else \
                    f"{near / base['near_optimal_ms']:.2f}"
                lines.append(f"| {name} | {encoding} | {s['queries_in_window']} | {ratio_q:.2f} | {ms(near)} | "
                             f"{ratio_n} | {ms(s['exact_from_ms'])} | {s['queries_approximate']} |")
        lines.append("")
    lines += ["### Everything together", "",
              "| Mbps | model | planner | encoding | slices | queries in window | x paper | near-optimal from | "
              "x paper | exact from |", "|---|---|---|---|---|---|---|---|---|---|"]
    for rate in RATES:
        rows = combined(rate)
        for name in MODELS:
            base = rows[name, "recursive-efficiency", "exact"][0]
            for planner, encoding, _ in COMBINED:
                s, n = rows[name, planner, encoding]
                near = s["near_optimal_ms"]
                ratio_n = "" if near is None or base["near_optimal_ms"] is None else \
                    f"{near / base['near_optimal_ms']:.2f}"
                lines.append(f"| {rate} | {name} | {planner} | {encoding} | {n} | {s['queries_in_window']} | "
                             f"{s['queries_in_window'] / max(base['queries_in_window'], 1):.2f} | {ms(near)} | "
                             f"{ratio_n} | {ms(s['exact_from_ms'])} |")
    lines.append("")
    if args.figures:
        drawn = figures(args.figures)
        lines += ["Query latency over time at 80 Mbps with the options overlaid (the dotted line: the window): "
                  + ", ".join(f"[{os.path.basename(p)}](docs/experiments/{os.path.basename(p)})" for p in drawn), ""]
    table = "\n".join(lines)
    print("\n".join(acc))
    print(table)
    if args.markdown:
        sys.path.insert(0, os.path.join(ROOT, "examples", "python"))
        from compare_planners import write_section  # one way to keep a section of a generated file
        write_section(args.markdown, "\n".join([
            "## Upload encodings: the same plans, fewer or earlier bytes (simulated)", "",
            "Generated by `PYTHONPATH=build/python /usr/bin/python3 scripts/experiment_encodings.py "
            "--markdown EXPERIMENTS.md` (paper profiles, recursive-efficiency, link sharing none; the zoo "
            "accuracy column from `build/bin/encoding_accuracy --inputs 1000 --json "
            "docs/experiments/encoding_accuracy_zoo.json alexnet googlenet resnet50 inception_bn mobilenet`). "
            "*queries in window*: finished within the fp32 all-at-once upload time (the queries go on past a "
            "shorter upload to the window's end); *near-optimal from*: the end of the first query at most 1.1x "
            "the optimal latency; *exact from*: when the server holds every layer's exact weights (never for "
            "fp16 and int8); *approximate queries*: ran a layer without its exact weights. `lossless` sizes "
            "are the zstd byte planes of the zoo's seeded weights, compressed per 256 KiB chunk only where "
            "that pays at the rate (encoding estimated at 150 MB/s). `progressive` uploads every high half "
            "(recursive-efficiency's order, on half the upload times) before every low half. *Everything "
            "together* adds `window-search` and sub-layer slices (`--slices`: the layers holding at least 10% "
            "of the weights cut by output channels or neurons; each row the best of 1, 2, 4 and 8 slices), "
            "against the paper's recursive-efficiency with exact uploads (*x paper*).", "",
            "Accuracy of what approximate queries compute. The digits CNN (2 convolutions, 2 fully "
            "connected layers) is trained here with PyTorch on 70% of scikit-learn's 1,797 digits and tested "
            f"on the other {digits['fp32'][2]}; the seeded zoo models' outputs barely move with their "
            "weights (ResNet-50's not at all), so their errors bound little and their top-1 agreement "
            "(in docs/experiments/encoding_accuracy_zoo.json) says nothing.", "",
            "\n".join(acc), "", table]),
            marker="scripts/experiment_encodings.py")


if __name__ == "__main__":
    main()
