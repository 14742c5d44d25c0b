#!/usr/bin/env python3
"""Detection quality: simulated per-minute counts through `threesigma-detector replay`.

Run with `just bench-detection` (builds the release detector first). No database: every
scenario is a CSV of `minute,service,errors,total` fed to the replay, which runs the same
engine as the live detector. Both decision rules are measured the same way:

  classic            the original rule (z > 3 and count > 5) on zero-filled baselines
  negative_binomial  threesigma's default (tail probability of the count, two-minute
                     window, error_rate signal)

Scenarios, for each error rate lambda in LAMBDAS (errors per minute):
  steady  SERVICES services x DAYS days of stationary Poisson errors (and Poisson
          non-error traffic): every incident is a false one.
  bursty  the same as steady, but over-dispersed like real error traffic (gamma-Poisson,
          variance twice the mean): every incident is a false one (informative, no target).
  bursts  BURST_SERVICES services x 1 day; every 2 hours (after 60 minutes of steady
          traffic) a 3-minute burst at lambda + max(10, 6 sqrt(lambda)) errors/minute:
          a burst counts as caught when an incident opens within 2 minutes of its start.

Randomness is seeded (SEED), so a run is reproducible.
"""

import math
import os
import random
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DETECTOR = os.path.join(ROOT, "target", "release", "threesigma-detector")
LAMBDAS = [0.2, 0.5, 1, 2, 5, 20, 100]
DAYS = int(os.environ.get("DETECTION_DAYS", "7"))
SERVICES = int(os.environ.get("DETECTION_SERVICES", "10"))
BURST_SERVICES = int(os.environ.get("DETECTION_BURST_SERVICES", "20"))
SEED = int(os.environ.get("DETECTION_SEED", "20261125"))
START = 1_795_600_000 // 60 * 60  # a minute boundary in November 2026
ALGORITHMS = ["classic", "negative_binomial"]


def poisson(rng, lam):
    """An exact Poisson draw: Knuth below 10, Hörmann's PTRS above."""
    if lam <= 0:
        return 0
    if lam < 10:
        limit, k, product = math.exp(-lam), 0, rng.random()
        while product > limit:
            k += 1
            product *= rng.random()
        return k
    slam, loglam = math.sqrt(lam), math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2)
    while True:
        u = rng.random() - 0.5
        v = rng.random()
        us = 0.5 - abs(u)
        k = math.floor((2 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return k
        if k < 0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + math.log(invalpha) - math.log(a / (us * us) + b) <= -lam + k * loglam - math.lgamma(k + 1):
            return k


def traffic(lam):
    """Non-error events per minute beside `lam` errors: a service logs far more info than errors."""
    return max(20.0, 20 * lam)


def write_csv(path, rows):
    with open(path, "w") as out:
        out.write("minute,service,errors,total\n")
        for minute, service, errors, total in rows:
            out.write(f"{minute},{service},{errors},{total}\n")


def replay(csv_path, algorithm):
    config = os.path.join(tempfile.gettempdir(), f"threesigma-detection-{algorithm}.toml")
    with open(config, "w") as out:
        out.write(f'[detection]\nalgorithm = "{algorithm}"\n')
        # Extra [detection] settings to try, e.g. DETECTION_SETTINGS='p_open = 1e-5'.
        out.write(os.environ.get("DETECTION_SETTINGS", "").replace(";", "\n") + "\n")
    result = subprocess.run([DETECTOR, "replay", "--input", csv_path, "--config", config],
                            check=True, stdout=subprocess.PIPE, text=True)
    import json
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def epoch(text):
    import datetime
    return int(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


# Over-dispersed error traffic: (name, the per-minute rate draw, the variance of the
# counts). Gamma-Poisson with variance k times the mean: rate ~ Gamma(lam/(k-1), k-1);
# negative binomial with shape 3: rate ~ Gamma(3, lam/3), variance lam + lam^2/3.
KINDS = [
    ("1.5x", lambda rng, lam: rng.gammavariate(lam / 0.5, 0.5), lambda lam: 1.5 * lam),
    ("2x", lambda rng, lam: rng.gammavariate(lam, 1.0), lambda lam: 2 * lam),
    ("4x", lambda rng, lam: rng.gammavariate(lam / 3, 3.0), lambda lam: 4 * lam),
    ("NB3", lambda rng, lam: rng.gammavariate(3, lam / 3), lambda lam: lam + lam * lam / 3),
]


def steady(rng, lam, path, dispersed=False, kind=None):
    """SERVICES x DAYS of stationary errors: Poisson, or over-dispersed (`kind` of KINDS;
    `dispersed` alone is the 2x kind)."""
    if dispersed and kind is None:
        kind = KINDS[1]
    minutes = DAYS * 1440
    rows = []
    for s in range(SERVICES):
        for m in range(minutes):
            rate = kind[1](rng, lam) if kind else lam
            errors = poisson(rng, rate)
            rows.append((START + 60 * m, f"svc{s}", errors, errors + poisson(rng, traffic(lam))))
    write_csv(path, rows)
    return SERVICES * DAYS


def bursts(rng, lam, path, kind=None, learning_days=0):
    """Bursts of lam + max(10, 6 sd) errors a minute for 3 minutes, sd the true standard
    deviation of the traffic (Poisson, or `kind` of KINDS), every 2 hours of one day, after
    `learning_days` of traffic without bursts."""
    extra = max(10.0, 6 * math.sqrt(kind[2](lam) if kind else lam))
    rows, starts = [], []
    offset = learning_days * 1440
    for s in range(BURST_SERVICES):
        service = f"svc{s}"
        burst_minutes = set()
        for start in range(offset + 60 + (s % 7) * 3, offset + 1440 - 10, 120):
            starts.append((service, START + 60 * start))
            burst_minutes.update(range(start, start + 3))
        for m in range(offset + 1440):
            base = kind[1](rng, lam) if kind else lam
            rate = lam + extra if m in burst_minutes else base
            errors = poisson(rng, rate)
            rows.append((START + 60 * m, service, errors, errors + poisson(rng, traffic(lam))))
    write_csv(path, rows)
    return starts


def caught_within(found, starts, seconds):
    opened = {}
    for incident in found:
        opened.setdefault(incident["service"], []).append(epoch(incident["opened_at"]))
    caught, delays = 0, []
    for service, start in starts:
        hits = [t for t in opened.get(service, []) if start <= t <= start + seconds]
        if hits:
            caught += 1
            delays.append(min(hits) - start)
    return caught / len(starts), (sorted(delays)[len(delays) // 2] if delays else None)


def nb_pmf(k, mean, variance):
    """P(X = k) for X negative binomial of this mean and variance (Poisson at variance = mean)."""
    if variance <= mean * (1 + 1e-9):
        return math.exp(k * math.log(mean) - mean - math.lgamma(k + 1))
    r = mean * mean / (variance - mean)
    p = r / (r + mean)
    return math.exp(math.lgamma(k + r) - math.lgamma(r) - math.lgamma(k + 1) + r * math.log(p) + k * math.log(1 - p))


def nb_first_rare(mean, variance, alpha):
    """The smallest count whose upper tail is at most alpha."""
    below, k = 0.0, 0
    while True:
        below += nb_pmf(k, mean, variance)
        if 1 - below <= alpha:
            return k + 1
        k += 1


def burst_bound(lam, variance, alpha=1e-5):
    """The share of bursts (3 minutes of Poisson(lam + max(10, 6 sd))) that a test knowing
    the traffic's true distribution catches within 2 minutes, judging each minute alone and
    each two minutes together at a false-alarm rate of alpha per window (the default
    p_open): the most any detector that judges such windows could do."""
    burst = lam + max(10.0, 6 * math.sqrt(variance))
    single = nb_first_rare(lam, variance, alpha)
    pair = nb_first_rare(2 * lam, 2 * variance, alpha)
    size = int(3 * burst + 60)
    noise = [nb_pmf(k, lam, variance) for k in range(size)]
    hit = [math.exp(k * math.log(burst) - burst - math.lgamma(k + 1)) for k in range(size)]
    missed = 0.0
    for first in range(min(single, size)):
        # The burst's first minute, with the ordinary minute before it, fires nothing...
        before = sum(noise[:max(0, min(size, pair - first))])
        for second in range(min(single, size)):
            # ...nor its second minute, alone or with the first.
            if first + second < pair:
                missed += hit[first] * hit[second] * before
    return 1 - missed


def over_dispersed(rng, tmp):
    """For each lambda and kind of over-dispersed traffic: false incidents per service-day
    (SERVICES x DAYS), and bursts of lambda + max(10, 6 sd) caught within 2 minutes
    (BURST_SERVICES x one day of bursts after a day of learning)."""
    lambdas = [lam for lam in LAMBDAS if lam >= 0.5]
    print()
    print(f"Over-dispersed traffic: false incidents per service-day ({SERVICES} services x {DAYS} days), and "
          f"3-minute bursts of lambda + max(10, 6 sd) caught within 2 minutes ({BURST_SERVICES} services, a burst "
          "every 2 hours of the day after a day without bursts). threesigma / classic (in brackets: what a test "
          "knowing the true distribution could catch, `burst_bound`).")
    print()
    print("| errors/min (λ) | " + " | ".join(f"{name}: false / service-day | {name}: bursts caught" for name, _, _ in KINDS) + " |")
    print("|---|" + "---|---|" * len(KINDS))
    for lam in lambdas:
        cells = []
        for kind in KINDS:
            steady_csv = os.path.join(tmp, f"kind-{kind[0]}-{lam}.csv")
            burst_csv = os.path.join(tmp, f"kind-bursts-{kind[0]}-{lam}.csv")
            service_days = steady(rng, lam, steady_csv, kind=kind)
            starts = bursts(rng, lam, burst_csv, kind=kind, learning_days=1)
            figures = {}
            for algorithm in ALGORITHMS:
                figures[algorithm] = (len(replay(steady_csv, algorithm)) / service_days,
                                      caught_within(replay(burst_csv, algorithm), starts, 120)[0])
            ts, cl = figures["negative_binomial"], figures["classic"]
            cells.append(f"{ts[0]:.3f} / {cl[0]:.2f}")
            cells.append(f"{ts[1]:.1%} / {cl[1]:.1%} ({burst_bound(lam, kind[2](lam)):.0%})")
            print(f"lambda {lam} {kind[0]}: {figures}", file=sys.stderr, flush=True)
        print(f"| {lam} | " + " | ".join(cells) + " |", flush=True)


def poisson_tail(count, mean):
    """P(X >= count) for X ~ Poisson(mean)."""
    if count <= 0:
        return 1.0
    term = math.exp(-mean)
    below = term
    for k in range(1, count):
        term *= mean / k
        below += term
    return max(0.0, 1.0 - below)


def drop_bound(lam):
    """The share of traffic drops any test could catch from the errors of the 5 dropped
    minutes alone, at a false-alarm rate per window of 1e-5 (the default p_open): errors are
    Poisson(5 lam) in the drop, Poisson(5 lam x the old ratio x the dropped traffic) if
    nothing were wrong."""
    total = lam + traffic(lam)
    null = 5 * (lam / total) * (lam + traffic(lam) / 6)
    count = 0
    while poisson_tail(count, null) > 1e-5:
        count += 1
    return poisson_tail(count, 5 * lam)


# A rhythm needs three UTC days with 20 hours of history: the simulated days start at 09:47
# UTC, so the first whole UTC day is the second and a rhythm exists from the fifth on.
OFFICE_LEARNING_DAYS = 4


def office(rng, lam, kind, days, path, with_bursts):
    """Office hours: errors and traffic at 0.3 of the day's level at night, climbing over
    the half hour from 08:00 and falling over the half hour from 20:00 of the simulated day
    (which starts at START, 09:47 UTC), `days` days. With bursts: from day 5 on, every 2
    hours, a 3-minute burst of max(10, 6 sd) on top of the level of the moment. Returns the
    bursts' (service, start)."""
    def level(m):
        of_day = m % 1440
        if of_day < 480 or of_day >= 1230:
            return 0.3
        if of_day < 510:
            return 0.3 + 0.7 * (of_day - 480) / 30
        if of_day < 1200:
            return 1.0
        return 1.0 - 0.7 * (of_day - 1200) / 30
    rows, starts = [], []
    for s_ in range(SERVICES):
        service = f"svc{s_}"
        burst_minutes = set()
        if with_bursts:
            for start in range(OFFICE_LEARNING_DAYS * 1440 + 37 + (s_ % 7) * 11, days * 1440 - 10, 120):
                starts.append((service, START + 60 * start))
                burst_minutes.update(range(start, start + 3))
        for m in range(days * 1440):
            mean = lam * level(m)
            rate = kind[1](rng, mean) if kind else mean
            if m in burst_minutes:
                rate = mean + max(10.0, 6 * math.sqrt(kind[2](mean) if kind else mean))
            errors = poisson(rng, rate)
            rows.append((START + 60 * m, service, errors, errors + poisson(rng, traffic(lam) * level(m))))
    write_csv(path, rows)
    return starts


def replay_with(csv_path, algorithm, settings):
    """`replay` with extra [detection] settings."""
    before = os.environ.get("DETECTION_SETTINGS")
    os.environ["DETECTION_SETTINGS"] = ";".join(filter(None, [before, settings]))
    try:
        return replay(csv_path, algorithm)
    finally:
        if before is None:
            del os.environ["DETECTION_SETTINGS"]
        else:
            os.environ["DETECTION_SETTINGS"] = before


def rhythm(rng, tmp):
    """Daily rhythm and traffic changes (issue 13 parts 2 and 3):
    - diurnal: traffic and errors +-80% over the day (SERVICES x DAYS), Poisson and 2x:
      false incidents per service-day after the first day;
    - office hours: a night at 0.3 of the day, a half-hour climb at 08:00 and fall at 20:00
      (SERVICES x (DAYS + 1)), Poisson and 2x: false incidents per service-day after day 4
      (a rhythm needs three whole UTC days), with and without the learned rhythm; and
      bursts after day 4, caught within 2 minutes;
    - traffic drop: every 2 hours the non-error traffic falls to a sixth for 5 minutes while
      errors carry on (BURST_SERVICES x 1 day): caught when an incident opens within 5
      minutes of the drop; beside it the share any test could catch (`drop_bound`);
    - traffic doubling: every 4 hours errors and traffic double for 2 hours at an unchanged
      ratio (SERVICES x DAYS): false error_rate incidents per service-day."""
    lambdas = [lam for lam in LAMBDAS if lam >= 0.5]
    off = "daily_rhythm = false"
    print()
    print("Rhythm and traffic changes (threesigma / classic; office hours: threesigma / without the rhythm / classic): "
          "diurnal false incidents per service-day after day 1, office hours false incidents per service-day after "
          "day 4 and bursts caught within 2 minutes, traffic drops caught within 5 minutes (and what any test could), "
          "error_rate incidents per service-day on traffic doubling.")
    print()
    print("| errors/min (λ) | diurnal Poisson | diurnal 2x | office Poisson: false | office Poisson: bursts caught "
          "| office 2x: false | office 2x: bursts caught | traffic drop caught (any test could) "
          "| doubling: error_rate / service-day |")
    print("|---|---|---|---|---|---|---|---|---|")
    for lam in lambdas:
        cells = []
        if os.environ.get("DETECTION_RHYTHM_SKIP_DIURNAL") is None:
            for kind in (None, KINDS[1]):
                rows = []
                for s_ in range(SERVICES):
                    for m in range(DAYS * 1440):
                        level = 1 + 0.8 * math.sin(2 * math.pi * m / 1440)
                        mean = lam * level
                        rate = kind[1](rng, mean) if kind else mean
                        errors = poisson(rng, rate)
                        rows.append((START + 60 * m, f"svc{s_}", errors, errors + poisson(rng, traffic(lam) * level)))
                path = os.path.join(tmp, f"diurnal-{lam}-{kind[0] if kind else 'poisson'}.csv")
                write_csv(path, rows)
                figures = []
                for algorithm in ("negative_binomial", "classic"):
                    after = [i for i in replay(path, algorithm) if epoch(i["opened_at"]) >= START + 86400]
                    figures.append(len(after) / (SERVICES * (DAYS - 1)))
                cells.append(f"{figures[0]:.3f} / {figures[1]:.2f}")
        else:
            cells += ["-", "-"]
        for kind in (None, KINDS[1]):
            name = kind[0] if kind else "poisson"
            quiet = os.path.join(tmp, f"office-{lam}-{name}.csv")
            days = DAYS + 1
            office(rng, lam, kind, days, quiet, False)
            noisy = os.path.join(tmp, f"office-bursts-{lam}-{name}.csv")
            starts = office(rng, lam, kind, days, noisy, True)
            false, caught = [], []
            for algorithm, settings in (("negative_binomial", ""), ("negative_binomial", off), ("classic", "")):
                learned = START + OFFICE_LEARNING_DAYS * 86400
                after = [i for i in replay_with(quiet, algorithm, settings) if epoch(i["opened_at"]) >= learned]
                false.append(len(after) / (SERVICES * (days - OFFICE_LEARNING_DAYS)))
                caught.append(caught_within(replay_with(noisy, algorithm, settings), starts, 120)[0])
            cells.append(f"{false[0]:.3f} / {false[1]:.3f} / {false[2]:.2f}")
            cells.append(f"{caught[0]:.1%} / {caught[1]:.1%} / {caught[2]:.1%}")
        rows, starts = [], []
        for s_ in range(BURST_SERVICES):
            drops = set()
            for start in range(60 + (s_ % 7) * 3, 1440 - 10, 120):
                starts.append((f"svc{s_}", START + 60 * start))
                drops.update(range(start, start + 5))
            for m in range(1440):
                errors = poisson(rng, lam)
                other = poisson(rng, traffic(lam) / 6 if m in drops else traffic(lam))
                rows.append((START + 60 * m, f"svc{s_}", errors, errors + other))
        path = os.path.join(tmp, f"drop-{lam}.csv")
        write_csv(path, rows)
        caught = [caught_within(replay(path, algorithm), starts, 300)[0] for algorithm in ("negative_binomial", "classic")]
        cells.append(f"{caught[0]:.1%} / {caught[1]:.1%} ({drop_bound(lam):.0%})")
        rows = []
        for s_ in range(SERVICES):
            for m in range(DAYS * 1440):
                factor = 2 if (m // 120) % 2 == 1 else 1
                errors = poisson(rng, lam * factor)
                rows.append((START + 60 * m, f"svc{s_}", errors, errors + poisson(rng, traffic(lam) * factor)))
        path = os.path.join(tmp, f"doubling-{lam}.csv")
        write_csv(path, rows)
        rate = [sum(1 for i in replay(path, algorithm) if i["signal"] == "error_rate") / (SERVICES * DAYS)
                for algorithm in ("negative_binomial", "classic")]
        cells.append(f"{rate[0]:.3f} / {rate[1]:.2f}")
        print(f"| {lam} | " + " | ".join(cells) + " |", flush=True)


def main():
    if os.environ.get("DETECTION_ONLY") == "rhythm":
        rhythm(random.Random(SEED), tempfile.mkdtemp(prefix="threesigma-detection-"))
        return
    if os.environ.get("DETECTION_ONLY") == "over-dispersed":
        over_dispersed(random.Random(SEED), tempfile.mkdtemp(prefix="threesigma-detection-"))
        return
    rng = random.Random(SEED)
    tmp = tempfile.mkdtemp(prefix="threesigma-detection-")
    table = []
    for lam in LAMBDAS:
        steady_csv = os.path.join(tmp, f"steady-{lam}.csv")
        bursty_csv = os.path.join(tmp, f"bursty-{lam}.csv")
        burst_csv = os.path.join(tmp, f"bursts-{lam}.csv")
        service_days = steady(rng, lam, steady_csv)
        steady(rng, lam, bursty_csv, dispersed=True)
        starts = bursts(rng, lam, burst_csv)
        row = {"lambda": lam, "service_days": service_days, "bursts": len(starts)}
        for algorithm in ALGORITHMS:
            false = replay(steady_csv, algorithm)
            row[f"{algorithm}_fp"] = len(false) / service_days
            row[f"{algorithm}_fp_rate"] = sum(1 for i in false if i["signal"] == "error_rate") / service_days
            row[f"{algorithm}_fp_bursty"] = len(replay(bursty_csv, algorithm)) / service_days
            caught, delay = caught_within(replay(burst_csv, algorithm), starts, 120)
            row[f"{algorithm}_caught"] = caught
            row[f"{algorithm}_delay"] = delay
        table.append(row)
        print(f"lambda {lam}: {row}", file=sys.stderr, flush=True)

    print(f"Seed {SEED}; steady: {SERVICES} services x {DAYS} days per lambda; bursts: {BURST_SERVICES} services x 1 day, "
          "a 3-minute burst every 2 hours.")
    print()
    print("| errors/min (λ) | burst size | false incidents / service-day: classic | threesigma (of which error_rate) "
          "| over-dispersed traffic: classic | threesigma "
          "| bursts caught within 2 min: classic | threesigma | median time to open (threesigma) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in table:
        lam = row["lambda"]
        size = lam + max(10.0, 6 * math.sqrt(lam))
        delay = row["negative_binomial_delay"]
        print(f"| {lam} | {size:.1f}/min | {row['classic_fp']:.2f} | {row['negative_binomial_fp']:.3f} "
              f"({row['negative_binomial_fp_rate']:.3f}) | {row['classic_fp_bursty']:.2f} | {row['negative_binomial_fp_bursty']:.3f} "
              f"| {row['classic_caught']:.1%} | {row['negative_binomial_caught']:.1%} "
              f"| {'-' if delay is None else f'{delay} s'} |")
    over_dispersed(rng, tmp)
    rhythm(rng, tmp)


if __name__ == "__main__":
    main()
