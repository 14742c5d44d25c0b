#!/usr/bin/env python3
"""Weekends with their own rhythm, through `threesigma-detector replay`.

5 services x 21 days from a Monday (UTC): weekdays at 0.3 of the day's level at night,
climbing over the half hour from 08:00 to 1.0 and falling from 20:00; weekends at 0.3,
climbing from 10:00 to 0.6 until 20:00. Poisson errors at lambda x the level, other events
20x (at least 20). False incidents per service-day from the second week on (the first
weekend is what the weekend shape is learned from), on weekend days and on weekdays, with
the learned rhythm and with `daily_rhythm = false`. Seeded; needs the release
`threesigma-detector` (`cargo build --release --bin threesigma-detector`).

Usage: python3 bench/weekend.py
"""

import os
import random
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import detection as d  # noqa: E402

MONDAY = 1_795_996_800  # 2026-11-30 00:00 UTC
SERVICES, DAYS = 5, 21


def level(minute, weekend):
    of_day = minute % 1440
    if weekend:
        if of_day < 600 or of_day >= 1200:
            return 0.3
        return 0.3 + 0.3 * min(1.0, (of_day - 600) / 30)
    if of_day < 480 or of_day >= 1230:
        return 0.3
    if of_day < 510:
        return 0.3 + 0.7 * (of_day - 480) / 30
    if of_day < 1200:
        return 1.0
    return 1.0 - 0.7 * (of_day - 1200) / 30


def main():
    rng = random.Random(7)
    tmp = tempfile.mkdtemp(prefix="threesigma-weekend-")
    print("| errors/min (λ) | rhythm | false / weekend service-day | false / weekday service-day |")
    print("|---|---|---|---|")
    for lam in (20, 100):
        rows = []
        for service in range(SERVICES):
            for minute in range(DAYS * 1440):
                weekend = (minute // 1440) % 7 in (5, 6)
                errors = d.poisson(rng, lam * level(minute, weekend))
                other = d.poisson(rng, d.traffic(lam) * level(minute, weekend))
                rows.append((MONDAY + 60 * minute, f"svc{service}", errors, errors + other))
        path = os.path.join(tmp, f"weekend-{lam}.csv")
        d.write_csv(path, rows)
        for name, settings in (("learned", ""), ("off", "daily_rhythm = false")):
            found = d.replay_with(path, "negative_binomial", settings)
            days = [(d.epoch(i["opened_at"]) - MONDAY) // 86400 for i in found]
            later = [day for day in days if day >= 7]
            weekend = sum(1 for day in later if day % 7 in (5, 6))
            print(f"| {lam} | {name} | {weekend / (SERVICES * 4):.3f} "
                  f"| {(len(later) - weekend) / (SERVICES * 10):.3f} |", flush=True)


if __name__ == "__main__":
    main()
