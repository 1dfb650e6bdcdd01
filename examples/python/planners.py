"""Two example upload planners written against the `ionn` Python module.

A planner is any function `costs -> list of partitions`: each partition is a
list of layer names, every layer of the model is in exactly one partition,
and partitions upload in list order. Any such list is a valid plan: a layer
that is not uploaded yet simply runs on the client, so no upload order can
leave a query unable to execute. `ionn.simulate` and `ionn.plan` raise
ValueError only for a layer listed twice or in no partition, a name the
model lacks, or an empty partition.

Both planners here measure plans with the module itself:

- `ionn.plan(costs, partitions)["partitions"][k]["latency_ms"]` is the best
  query latency once partitions 0..k are on the server, so one call prices a
  whole chain of nested uploaded sets;
- `ionn.simulate(costs, partitions)` replays the paper's protocol and counts
  the queries served while the model uploads.

Use them as `ionn.simulate(costs, largest_efficiency_by_bytes)` or
`ionn.simulate(costs, lambda c: local_search(c, seed=1))`.
"""
import math
import random

import ionn


def _units(layers):
    """Groups layer indices (model order) into upload units.

    A layer joins the unit before it when it is a light follower of the
    layer just before it: that layer is its only input, its output has the
    same size (the same `up_ms`), and its weights take at most 1/16 of the
    unit's upload time (ReLU, Dropout, LRN, BatchNorm, Scale). Uploading such
    a layer apart from its producer saves almost no upload time, and a cut
    between them crosses the link with a tensor of the same size; grouping
    them keeps the greedy's candidates near the number of convolutions
    rather than of all layers.
    """
    units = []
    unit_upload_ms = 0.0
    for index, layer in enumerate(layers):
        previous = layers[index - 1] if index > 0 else None
        light_follower = (previous is not None and layer["inputs"] == [previous["name"]]
                          and layer["up_ms"] == previous["up_ms"]
                          and layer["upload_ms"] * 16 <= unit_upload_ms)
        if light_follower:
            units[-1].append(index)
            unit_upload_ms += layer["upload_ms"]
        else:
            units.append([index])
            unit_upload_ms = layer["upload_ms"]
    return units


def _names(layers, indices):
    return [layers[i]["name"] for i in sorted(indices)]


def largest_efficiency_by_bytes(costs):
    """Greedy: upload next the run of units that buys the most latency per byte.

    Exactly what it does:
    1. Groups the layers into units (`_units`: a layer with the light,
       same-size layers that directly follow it, such as BatchNorm and ReLU).
    2. With S the layers uploaded so far, considers every run of units that
       are adjacent in model order and none uploaded yet (an uploaded unit
       ends a run). A run's gain is L(S) - L(S + run), L the best query
       latency for an uploaded set; its efficiency is the gain per
       millisecond of its weights on the uplink (its layers' `upload_ms`,
       i.e. its weight bytes over the uplink rate, without the per-partition
       overhead). A run of weight-free layers with a gain comes first.
    3. Uploads the most efficient run (ties: the larger gain, then the
       earlier run) as the next partition and repeats from 2. The first
       partition is the exception: queries start only once it has arrived,
       and the first query runs with it alone, so among the runs with a
       gain it takes the one that ends that query earliest (smallest
       upload_ms + L(run)); per-byte efficiency alone picks a tiny first
       partition whose query then outlasts a fast upload.
    4. When no run lowers the latency any more, uploads every layer left as
       one last partition, so the whole model ends on the server.

    Unlike the built-in efficiency planners it picks its first partition by
    the first query's end rather than by IONN's penalty search, does not
    restrict candidates to the optimal set, and never splits a chosen run
    into sub-runs.
    """
    layers = costs.to_dict()["layers"]
    units = _units(layers)
    unit_upload_ms = [sum(layers[i]["upload_ms"] for i in unit) for unit in units]
    uploaded = [False] * len(units)
    partitions = []

    def latencies_after(run_start, run_end):
        """L(S + units[run_start:run_start+1]), ..., L(S + units[run_start:run_end]), and L(S)."""
        # Nested prefixes in one ionn.plan call: S, then one unit at a time,
        # then everything else (a plan must list every layer).
        uploaded_layers = [i for u, unit in enumerate(units) if uploaded[u] for i in unit]
        in_run = set(range(run_start, run_end))
        rest = [i for u, unit in enumerate(units)
                if not uploaded[u] and u not in in_run for i in unit]
        plan = [_names(layers, uploaded_layers)] if uploaded_layers else []
        plan += [_names(layers, units[u]) for u in range(run_start, run_end)]
        if rest:
            plan.append(_names(layers, rest))
        result = ionn.plan(costs, plan)
        latency = [p["latency_ms"] for p in result["partitions"]]
        if uploaded_layers:
            return latency[1:1 + len(in_run)], latency[0]
        return latency[:len(in_run)], result["latency_local_ms"]

    while not all(uploaded):
        first_partition = not any(uploaded)
        best = None  # (key, start, end)
        for start in range(len(units)):
            if uploaded[start]:
                continue
            end = start
            while end < len(units) and not uploaded[end]:
                end += 1
            run_latency, current_ms = latencies_after(start, end)
            upload_ms = 0.0
            for length, latency_ms in enumerate(run_latency, start=1):
                upload_ms += unit_upload_ms[start + length - 1]
                gain = current_ms - latency_ms
                if gain <= 1e-9:
                    continue
                if first_partition:
                    key = (-(upload_ms + latency_ms), -start)
                else:
                    efficiency = gain / upload_ms if upload_ms > 0 else math.inf
                    key = (efficiency, gain, -start)
                if best is None or key > best[0]:
                    best = (key, start, start + length)
        if best is None:
            break
        _, start, end = best
        partitions.append(_names(layers, [i for u in range(start, end) for i in units[u]]))
        for u in range(start, end):
            uploaded[u] = True

    rest = [i for u, unit in enumerate(units) if not uploaded[u] for i in unit]
    if rest:
        partitions.append(_names(layers, rest))
    return partitions


def _score(costs, plan):
    """What local_search maximises, in priority order.

    queries_in_window first, then queries_during_upload; both are integers,
    so many moves tie on them, and the fractional count (which adds the done
    share of the query in flight when the upload ends) breaks those ties so
    that the search can still tell a slightly better plan from a worse one.
    """
    result = ionn.simulate(costs, plan)
    return (result["queries_in_window"], result["queries_during_upload"],
            result["queries_during_upload_fractional"])


def _random_plan(layer_count, rng):
    """Model order cut into 1..8 contiguous chunks, uploaded in a random order."""
    chunk_count = rng.randint(1, min(8, layer_count))
    cuts = sorted(rng.sample(range(1, layer_count), chunk_count - 1))
    bounds = [0] + cuts + [layer_count]
    plan = [list(range(a, b)) for a, b in zip(bounds, bounds[1:])]
    rng.shuffle(plan)
    return plan


def _neighbour(plan, rng):
    """A copy of `plan` (lists of layer indices) changed by one random move.

    Moves: merge two partitions that upload one after the other, split one
    in two at a random point of its model order, move one layer to the
    partition uploaded just before or after, or swap two neighbours. Every
    move keeps each layer in exactly one non-empty partition.
    """
    plan = [list(part) for part in plan]
    k = rng.randrange(len(plan))
    moves = ["split"] if len(plan[k]) > 1 else []
    if len(plan) > 1:
        moves += ["merge", "shift", "swap"]
    if not moves:
        return plan  # a one-layer model has only one plan
    move = rng.choice(moves)
    other = k + 1 if k + 1 < len(plan) else k - 1
    if move == "merge":
        first, second = sorted((k, other))
        plan[first] = sorted(plan[first] + plan.pop(second))
    elif move == "split":
        cut = rng.randrange(1, len(plan[k]))
        plan[k:k + 1] = [plan[k][:cut], plan[k][cut:]]
    elif move == "shift":
        layer = plan[k].pop(rng.randrange(len(plan[k])))
        plan[other] = sorted(plan[other] + [layer])
        if not plan[k]:
            plan.pop(k)
    else:
        plan[k], plan[other] = plan[other], plan[k]
    return plan


def local_search(costs, seed=0, restarts=3, steps=90):
    """Random-restart hill climbing on the simulator's queries_in_window.

    Starts once from recursive-efficiency's plan (its weight-free partitions
    folded into the partition before) and `restarts` times from random plans
    (`_random_plan`). From each start it tries `steps` random
    moves (`_neighbour`) and keeps a move whenever the score (`_score`) does
    not drop, so it can walk along plateaus. Returns the best plan seen; as
    the first start is recursive-efficiency's, it never scores below it.
    Deterministic for a given seed; it costs about (restarts + 1) * steps
    simulations (1 to 2 s for the zoo models on a small machine).
    """
    rng = random.Random(seed)
    names = costs.layer_names
    position = {name: index for index, name in enumerate(names)}
    # recursive-efficiency uploads each weight-free layer as a partition of
    # its own. Such a partition arrives together with the one before it, so
    # folding it into that one leaves every query the same while making each
    # simulation (and every move) cheaper.
    built_in = []
    for partition in ionn.plan(costs, "recursive-efficiency")["partitions"]:
        layers = [position[name] for name in partition["layers"]]
        if built_in and partition["upload_ms"] == 0:
            built_in[-1] = sorted(built_in[-1] + layers)
        else:
            built_in.append(sorted(layers))
    starts = [built_in]
    starts += [_random_plan(len(names), rng) for _ in range(restarts)]

    def as_names(plan):
        return [[names[i] for i in part] for part in plan]

    best_plan, best_score = None, None
    for plan in starts:
        score = _score(costs, as_names(plan))
        for _ in range(steps):
            candidate = _neighbour(plan, rng)
            candidate_score = _score(costs, as_names(candidate))
            if candidate_score >= score:
                plan, score = candidate, candidate_score
        if best_score is None or score > best_score:
            best_plan, best_score = plan, score
    return as_names(best_plan)
