"""The paper's figures from simulator or client results, with matplotlib.

`ionn experiment` draws the same figures with gnuplot from CSVs it writes
(docs/experiments/plots.gp); those are the canonical figures of
EXPERIMENTS.md. This module draws them in a notebook from the results
themselves (ionn.simulate, ionn.Client.run, or their JSON loaded from
`ionn simulate/client --format json`), reading the same fields the CSVs are
made from: one source of the data, two renderers.

Each function takes `results`, a mapping label -> result (or a list of
results, labelled by their "algorithm"), draws on `ax` (a new figure when
None) and returns the Axes:

    fig3_improvement  latency improvement while uploading (paper Fig. 3)
    fig5_partitions   partitions uploaded in each half of the upload (Fig. 5)
    fig6_largest_partition  the largest partition's share of the weights (Fig. 6)
    fig7_query_latency      query latency over time (Fig. 7)

`figures(results, folder)` writes all four as PNG files.
"""
import os
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np


def _labelled(results, *fields):
    """[(label, result)] from a mapping label -> result, one result, or a
    list of results (labelled by algorithm); each must have `fields`."""
    if isinstance(results, Mapping) and "format" in results and "algorithm" in results:  # one result
        labelled = [(results["algorithm"], results)]
    elif isinstance(results, Mapping):
        labelled = list(results.items())
    elif isinstance(results, (list, tuple)):
        labelled = [(r.get("algorithm", f"result {k}") if isinstance(r, Mapping) else f"result {k}", r)
                    for k, r in enumerate(results)]
    else:
        raise ValueError("results: a mapping label -> result, one result, or a list of results, not "
                         f"{type(results).__name__}")
    if not labelled:
        raise ValueError("results: nothing to draw")
    for label, r in labelled:
        missing = [f for f in fields if not isinstance(r, Mapping) or f not in r]
        if missing:
            raise ValueError(f"results['{label}']: no {', '.join(missing)}; give a simulation (ionn.simulate) or "
                             "a client run (ionn.Client.run), or their JSON")
    return labelled


# Curves that coincide stay visible: each its own dash and width (as plots.gp).
_STYLES = [dict(lw=2.5), dict(lw=2, ls="--"), dict(lw=2, ls=":"), dict(lw=2, ls="-."), dict(lw=1.5)]


def _axes(ax, title, xlabel, ylabel):
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5.2))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.4)
    return ax


def improvement_curve(result):
    """(time_ms, improvement_ms) of the latency improvement over running
    locally as partitions arrive: a step at each partition's arrival, held
    to 15% past the upload's end (as the gnuplot figure's CSV is)."""
    t, gain = [0.0], [0.0]
    local = result["latency_local_ms"]
    for p in result["partitions"]:
        if p.get("uploaded_at_ms") is None:  # a client's upload that did not get this far
            break
        t += [p["uploaded_at_ms"]] * 2
        gain += [gain[-1], local - p["latency_ms"]]
    t.append(max(result["upload_ms"], t[-1]) * 1.15)
    gain.append(gain[-1])
    return np.array(t), np.array(gain)


def fig3_improvement(results, ax=None, title="latency improvement while uploading"):
    ax = _axes(ax, title, "time since the upload started (s)", "latency improvement (ms)")
    for k, (label, r) in enumerate(_labelled(results, "latency_local_ms", "partitions", "upload_ms")):
        t, gain = improvement_curve(r)
        ax.plot(t / 1000, gain, label=label, **_STYLES[k % len(_STYLES)])
    ax.legend(loc="lower right")
    return ax


def fig7_query_latency(results, ax=None, title="query latency over time"):
    ax = _axes(ax, title, "query end (s)", "query latency (ms)")
    for k, (label, r) in enumerate(_labelled(results, "queries")):
        q = r["queries"]
        end = np.asarray(q["end_ms"]) if not isinstance(q, list) else np.array([x["end_ms"] for x in q])
        latency = np.asarray(q["latency_ms"]) if not isinstance(q, list) else np.array([x["latency_ms"] for x in q])
        ax.step(end / 1000, latency, where="pre", label=label, **_STYLES[k % len(_STYLES)])
    ax.set_yscale("log")
    ax.legend(loc="upper right")
    return ax


def fig5_partitions(results, ax=None, title="partitions uploaded in the first and second half of the upload"):
    ax = _axes(ax, title, "", "partitions")
    labelled = _labelled(results, "partitions_first_half", "partitions_second_half")
    x = np.arange(len(labelled))
    first = [r["partitions_first_half"] for _, r in labelled]
    second = [r["partitions_second_half"] for _, r in labelled]
    ax.bar(x, first, 0.7, label="first half")
    ax.bar(x, second, 0.7, bottom=first, label="second half")
    ax.set_xticks(x, [label for label, _ in labelled], rotation=-45, ha="left")
    ax.legend(loc="upper left")
    return ax


def fig6_largest_partition(results, ax=None, title="largest partition, share of the model"):
    ax = _axes(ax, title, "", "share of all weights")
    labelled = _labelled(results, "largest_partition_share")
    x = np.arange(len(labelled))
    ax.bar(x, [r["largest_partition_share"] for _, r in labelled], 0.7)
    ax.set_xticks(x, [label for label, _ in labelled], rotation=-45, ha="left")
    ax.set_ylim(0, 1.05)
    return ax


def figures(results, folder, prefix=""):
    """Writes fig3, fig5, fig6 and fig7 as PNG files into `folder`; returns their paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name, draw in [("fig3_improvement", fig3_improvement), ("fig5_partitions", fig5_partitions),
                       ("fig6_largest_partition", fig6_largest_partition), ("fig7_query_latency", fig7_query_latency)]:
        ax = draw(results)
        path = os.path.join(folder, f"{prefix}{name}.png")
        ax.figure.tight_layout()
        ax.figure.savefig(path, dpi=100)
        plt.close(ax.figure)
        paths.append(path)
    return paths
