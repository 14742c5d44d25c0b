#!/usr/bin/env python3
"""Why a minute did or did not fire, as a picture: one simulated service through
`threesigma-detector replay --minutes`, plotted minute by minute (errors, the errors the
test expected, and the threshold: the smallest count that would have opened an incident in
that minute alone).

The service: a day and 3 hours of over-dispersed errors (gamma-Poisson, mean 5 a minute,
variance twice the mean: real error traffic is clumpier than Poisson), then a 3-minute
burst of mean + max(10, 6 sd) a minute, then an hour more; the plot shows the last 4 hours
(the day before is what the service's profile is learned from). Seeded, so every run draws
the same.

Usage: python3 bench/replay_plot.py [OUT.png]   (default docs/detection/replay-minutes.png)
Environment: THREESIGMA_BIN (default target/release) holds threesigma-detector;
PLOT_VENV (default target/plot-venv) gets matplotlib when it is missing.
"""

import json
import math
import os
import random
import subprocess
import sys
import tempfile

from detection import START, poisson, write_csv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.abspath(os.environ.get("THREESIGMA_BIN", os.path.join(ROOT, "target", "release")))
VENV = os.path.abspath(os.environ.get("PLOT_VENV", os.path.join(ROOT, "target", "plot-venv")))
OUT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "docs", "detection", "replay-minutes.png"))
SEED = 20261201
MEAN = 5.0
HISTORY = 1440
BURST_AT = HISTORY + 180


def in_venv():
    """Re-runs this script with the venv's Python (with matplotlib) unless already there."""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    if subprocess.run([python, "-c", "import matplotlib"], capture_output=True).returncode:
        subprocess.run([python, "-m", "pip", "install", "-q", "matplotlib==3.10.7"], check=True)
    os.execv(python, [python, *sys.argv])


def scenario(path):
    rng = random.Random(SEED)
    sd = math.sqrt(2 * MEAN)
    burst = MEAN + max(10.0, 6 * sd)
    rows = []
    for m in range(BURST_AT + 60):
        rate = burst if BURST_AT <= m < BURST_AT + 3 else rng.gammavariate(MEAN, 1.0)
        errors = poisson(rng, rate)
        rows.append((START + 60 * m, "checkout", errors, errors + poisson(rng, 200)))
    write_csv(path, rows)


def main():
    detector = os.path.join(BIN, "threesigma-detector")
    if not os.path.exists(detector):
        sys.exit(f"{detector} is missing: build it (cargo build --release --bin threesigma-detector) or set THREESIGMA_BIN")
    in_venv()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    csv = os.path.join(tempfile.mkdtemp(prefix="threesigma-plot-"), "minutes.csv")
    scenario(csv)
    lines = subprocess.run([detector, "replay", "--minutes", "--input", csv], check=True,
                           capture_output=True, text=True).stdout.splitlines()
    verdicts = [json.loads(line) for line in lines][HISTORY:]
    judged = [v for v in verdicts if v["threshold"] is not None]
    x = [(v["minute"]) for v in verdicts]
    index = {v["minute"]: i for i, v in enumerate(verdicts)}
    fig, ax = plt.subplots(figsize=(11, 4.2), dpi=110)
    ax.bar(range(len(x)), [v["errors"] for v in verdicts], width=0.8,
           color=["#7d0a0a" if v["fires"] else ("#c0392b" if v["anomalous"] else "#e6a19a") for v in verdicts],
           label="errors per minute (dark: fired)")
    jx = [index[v["minute"]] for v in judged]
    ax.step(jx, [v["expected"] for v in judged], where="mid", color="#1b1f24", linestyle="--", linewidth=1.2,
            label="expected (baseline)")
    ax.step(jx, [v["threshold"] for v in judged], where="mid", color="#9a7b00", linewidth=1.2,
            label="threshold: smallest count that opens")
    ax.fill_between(jx, [v["expected"] for v in judged], [v["threshold"] for v in judged], step="mid",
                    color="#f7d774", alpha=0.5)
    fired = sum(1 for v in verdicts if v["fires"])
    ax.set_title(f"threesigma-detector replay --minutes: over-dispersed errors (mean {MEAN:g}/min, variance 2x) after a day "
                 f"of them, a 3-minute burst at minute {BURST_AT - HISTORY}; {fired} minutes fired alone", fontsize=10)
    ax.set_xlabel("minute (after a day of history)")
    ax.set_ylabel("errors")
    ax.set_xlim(-1, len(x))
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    fig.savefig(OUT)
    false = [i for i, v in enumerate(verdicts) if v["fires"] and not BURST_AT - HISTORY <= i < BURST_AT - HISTORY + 3]
    print(f"{len(verdicts)} minutes, {len(judged)} judged, {fired} fired "
          f"(outside the burst: {false}); wrote {OUT}")


if __name__ == "__main__":
    main()
