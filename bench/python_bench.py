"""What `import ionn` costs over C++: planning and simulating from Python.

1. ionn.plan + ionn.simulate on AlexNet (paper profiles, 80 Mbps), per
   algorithm: the median of single calls from Python, beside the median of
   MakePlan + Simulate timed in C++ inside the same module
   (ionn._ionn.native_plan_simulate_us), alternated in rounds so both see the
   same machine; the ratio is what the binding adds.
2. A sweep of 1000 points (5 zoo models x 4 algorithms x 50 rates,
   5-250 Mbps) from Python: costs at each rate, then plan + simulate, reading
   queries_in_window; wall time, median of --repeats, on one thread and on
   a pool of --threads (ionn.plan and ionn.simulate let go of the
   interpreter while they compute), beside the same sweep's planning and
   simulating timed in C++.

Run after the build: PYTHONPATH=build/python /usr/bin/python3 bench/python_bench.py
"""
import argparse
from concurrent.futures import ThreadPoolExecutor
import statistics
import time

import ionn

ZOO = ["alexnet", "googlenet", "resnet50", "inception_bn", "mobilenet"]
ALGORITHMS = ["original", "efficiency", "recursive-efficiency", "all-at-once"]


def median_call_us(call, calls):
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def binding_overhead(calls, rounds):
    costs = ionn.costs(ionn.load_model("alexnet", weights=False), paper_profiles=True, uplink_mbps=80)
    print(f"AlexNet, paper profiles, 80 Mbps: plan + simulate, median of {calls} calls x {rounds} rounds")
    print(f"{'algorithm':<22} {'Python us':>10} {'C++ us':>8} {'ratio':>6}")
    for algorithm in ALGORITHMS:
        python, native = [], []
        for _ in range(rounds):
            python.append(median_call_us(lambda: ionn.simulate(costs, ionn.plan(costs, algorithm)), calls))
            native.append(ionn._ionn.native_plan_simulate_us(costs, algorithm, calls))
        p, n = statistics.median(python), statistics.median(native)
        print(f"{algorithm:<22} {p:10.1f} {n:8.1f} {p / n:6.2f}")


def sweep(repeats, threads):
    models = {name: ionn.load_model(name, weights=False) for name in ZOO}
    rates = [5 * (k + 1) for k in range(50)]

    def one_rate(model, rate):
        costs = ionn.costs(model, paper_profiles=True, uplink_mbps=rate)
        return [ionn.simulate(costs, ionn.plan(costs, a))["queries_in_window"] for a in ALGORITHMS]

    jobs = [(model, rate) for model in models.values() for rate in rates]
    native_ms = sum(ionn._ionn.native_plan_simulate_us(ionn.costs(model, paper_profiles=True, uplink_mbps=rate), a, 1)
                    for model, rate in jobs for a in ALGORITHMS) / 1000
    print(f"sweep: {len(jobs) * len(ALGORITHMS)} points (5 models x 4 algorithms x 50 rates); "
          f"their planning and simulating in C++, one thread: {native_ms / 1000:.2f} s")
    for pool in sorted({1, threads}):
        walls = []
        for _ in range(repeats):
            t = time.perf_counter()
            if pool == 1:
                counts = [one_rate(*job) for job in jobs]
            else:
                with ThreadPoolExecutor(pool) as executor:
                    counts = list(executor.map(lambda job: one_rate(*job), jobs))
            walls.append(time.perf_counter() - t)
            assert sum(len(c) for c in counts) == len(jobs) * len(ALGORITHMS)
        print(f"  from Python, {pool} thread(s): median {statistics.median(walls):.2f} s "
              f"(min {min(walls):.2f}, max {max(walls):.2f}) over {repeats} repeats")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=400, help="calls per round and side")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per algorithm")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the 1000-point sweep")
    parser.add_argument("--threads", type=int, default=2, help="threads of the sweep's second run")
    args = parser.parse_args()
    binding_overhead(args.calls, args.rounds)
    sweep(args.repeats, args.threads)


if __name__ == "__main__":
    main()
