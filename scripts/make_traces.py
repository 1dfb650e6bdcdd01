#!/usr/bin/env python3
"""Writes the synthetic link traces of data/traces/ (deterministic: run it
again and the files are the same). CSV traces are t_ms,mbps (the rate from
t_ms on, the last for ever); mahimahi traces one line per 1500-byte delivery
opportunity, in whole ms, looping. Mbps as ionn counts them: 1 Mbps =
1024*1024/8000 bytes per ms."""
import os
import random
import sys

BYTES_PER_MS_PER_MBPS = 1024 * 1024 / 8000
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "data", "traces")


def write(name, text):
    with open(os.path.join(OUT, name), "w", encoding="ascii") as f:
        f.write(text)


def csv(rows):
    return "t_ms,mbps\n" + "".join(f"{t},{r:g}\n" for t, r in rows)


def mahimahi(rates_per_s):
    """One rate per second (Mbps) as delivery opportunities, spread evenly
    within each second; the period is the trace's length."""
    lines, owed = [], 0.0
    for second, mbps in enumerate(rates_per_s):
        per_ms = mbps * BYTES_PER_MS_PER_MBPS / 1500
        for ms in range(1000):
            owed += per_ms
            while owed >= 1:
                lines.append(second * 1000 + ms + 1)
                owed -= 1
    return "".join(f"{t}\n" for t in lines)


def main():
    os.makedirs(OUT, exist_ok=True)
    # AlexNet's fp32 upload takes 23.3 s at 80 Mbps: the steps come at about mid-upload.
    write("step_80_to_20.csv", csv([(0, 80), (11600, 20)]))
    write("step_20_to_80.csv", csv([(0, 20), (11600, 80)]))
    # At mid-upload for re-planning (DESIGN.md, "Re-planning from the upload"): the step comes when half
    # the model's fp32 weights have crossed at the first rate (AlexNet 93.2 s at 20 Mbps; ResNet-50
    # 9.77 s at 80 Mbps, 39.1 s at 20 Mbps).
    write("step_20_to_80_alexnet_mid.csv", csv([(0, 20), (46600, 80)]))
    write("step_80_to_20_resnet50_mid.csv", csv([(0, 80), (4900, 20)]))
    write("step_20_to_80_resnet50_mid.csv", csv([(0, 20), (19500, 80)]))
    write("steps_80_20_80.csv", csv([(0, 80), (10000, 20), (20000, 80)]))
    write("ramp_10_to_100.csv", csv([(s * 1000, 10 + 1.5 * s) for s in range(61)]))
    rng = random.Random(1)
    walk, rate = [], 50.0
    for _ in range(30):
        rate = min(100.0, max(1.0, rate + rng.uniform(-15, 15)))
        walk.append(round(rate, 1))
    write("random_walk_1_100_seed1.mahimahi", mahimahi(walk))


if __name__ == "__main__":
    main()
