#!/usr/bin/env python3
"""Ingest benchmark: one run, every figure side by side, reported as ratios.

Run with `just bench-ingest` (or `bash bench/ingest.sh`), which installs oha and builds the
release binaries first. Everything targets 127.0.0.1 only. Each scenario gets a fresh,
migrated database on the PostgreSQL server of BENCH_ADMIN_URL (default: the local server).

Scenarios:
  healthz      GET /healthz, 100 connections: the HTTP ceiling of this machine
  durable      single-event POSTs, 100 connections, default settings (group commit)
  naive        the same with --max-batch-events 1 (a transaction per request)
  bulk-unnest  1,000-event NDJSON POSTs, default settings (--bulk-method unnest)
  bulk-copy    the same with --bulk-method copy (binary COPY)
  psql-copy    psql \\copy of the same rows into the same table and indexes
  overload     1,000-event POSTs offered at 10x the bulk capacity; peak RSS of ingest
  kill9        --ack buffered --max-batch-events 100 --linger 5s (the original design's
               settings) and the default, each killed with -9 under load: acknowledged
               events that are not in the database

`bench/ingest.sh copy-vs-unnest` compares the two bulk methods; `bench/ingest.sh search`
compares ingest with the log search structures and without them; `bench/ingest.sh before-after
DIR` compares DIR/threesigma-ingest (a release build of an earlier commit) with this
checkout's, in alternating runs.
"""

import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DURATION = os.environ.get("BENCH_DURATION", "30s")
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "100"))
BULK_CONNECTIONS = int(os.environ.get("BENCH_BULK_CONNECTIONS", "16"))
OHA = os.environ.get("OHA", "oha")
# Ingest requires a token with the `ingest` scope: the benchmark mints one with the CLI, as a
# shipper's operator would, and sends it on every request, so the figures include JWT
# verification. Rate limiting is switched off (one subject would otherwise be capped at the
# default 5,000 req/s): the benchmark measures the pipeline, not the limiter.
JWT_SECRET = os.environ.get("JWT_SECRET") or os.urandom(32).hex()
EVENT = json.dumps({"service": "bench", "level": "info", "message": "GET /api/cart 200 12ms",
                    "attributes": {"host": "web-1", "region": "eu"}})


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def psql(url, sql):
    subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], check=True,
                   stdout=subprocess.PIPE)


def psql_value(url, sql):
    out = subprocess.run(["psql", url, "-qAtc", sql], check=True, stdout=subprocess.PIPE, text=True)
    return out.stdout.strip()


def database_url(name):
    base = ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


def ingest_token():
    out = subprocess.run([os.path.join(BIN, "threesigma"), "token", "issue", "--scope", "ingest",
                          "--subject", "bench", "--ttl", "1d"],
                         env=dict(os.environ, JWT_SECRET=JWT_SECRET), check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return out.stdout.strip()


TOKEN = None


def auth_header():
    global TOKEN
    if TOKEN is None:
        TOKEN = ingest_token()
    return ["-H", f"Authorization: Bearer {TOKEN}"]


def fresh_database(name):
    psql(ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    psql(ADMIN_URL, f'CREATE DATABASE "{name}"')
    url = database_url(name)
    subprocess.run([os.path.join(BIN, "threesigma"), "migrate", "--database-url", url], check=True,
                   stdout=subprocess.DEVNULL)
    return url


def drop_database(name):
    psql(ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Ingest:
    def __init__(self, url, *args, bin_dir=BIN, env=None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, DATABASE_URL=url, RUST_LOG="warn", JWT_SECRET=JWT_SECRET,
                   THREESIGMA__RATE_LIMIT__PER_SECOND="0", **(env or {}))
        self.process = subprocess.Popen(
            [os.path.join(bin_dir, "threesigma-ingest"), "--bind", f"127.0.0.1:{self.port}", *args],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("ingest did not start")

    def peak_rss_mib(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)

    def kill9(self):
        self.process.kill()
        self.process.wait()


def oha(url, *args, duration=DURATION, connections=CONNECTIONS):
    command = [OHA, "--no-tui", "--output-format", "json", "-z", duration, "-c", str(connections),
               "-t", "30s", *args, url]
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    result = json.loads(out.stdout)
    statuses = result.get("statusCodeDistribution", {})
    seconds = result["summary"]["total"]
    return {
        "rps": sum(statuses.values()) / seconds if seconds else 0.0,
        "ok_rps": (statuses.get("200", 0) + statuses.get("202", 0)) / seconds if seconds else 0.0,
        "p50_ms": (result["latencyPercentiles"]["p50"] or 0) * 1000,
        "p99_ms": (result["latencyPercentiles"]["p99"] or 0) * 1000,
        "statuses": statuses,
        "errors": result.get("errorDistribution", {}),
        "seconds": seconds,
    }


def post_single(ingest, **kwargs):
    return oha(ingest.base + "/api/v1/logs", "-m", "POST", "-T", "application/json", "-d", EVENT, *auth_header(),
               **kwargs)


def bulk_body(events=1000):
    path = os.path.join(tempfile.gettempdir(), f"threesigma-bench-{events}.ndjson")
    with open(path, "w") as body:
        for i in range(events):
            body.write(json.dumps({"service": f"bench-{i % 10}", "level": "error" if i % 50 == 0 else "info",
                                   "message": f"request {i} served in {i % 97} ms",
                                   "attributes": {"host": f"web-{i % 7}", "path": "/api/cart"}}) + "\n")
    return path


def post_bulk(ingest, body, *args, **kwargs):
    return oha(ingest.base + "/api/v1/logs", "-m", "POST", "-T", "application/x-ndjson", "-D", body, *auth_header(),
               *args, **kwargs)


def stored(url):
    return int(psql_value(url, "SELECT count(*) FROM logs"))


def scenario(name, args, run, bin_dir=BIN, env=None, ddl=None):
    db = f"threesigma_bench_{name.replace('-', '_')}"
    url = fresh_database(db)
    if ddl:
        psql(url, ddl)
    ingest = Ingest(url, *args, bin_dir=bin_dir, env=env)
    try:
        result = run(ingest, url)
    finally:
        if ingest.process.poll() is None:
            ingest.stop()
        drop_database(db)
    log(f"{name}: {json.dumps({k: v for k, v in result.items() if k != 'statuses'}, default=str)}")
    return result


def psql_copy(rows):
    """\\copy of `rows` rows shaped like the bulk body into a fresh migrated database."""
    db = "threesigma_bench_psql_copy"
    url = fresh_database(db)
    path = os.path.join(tempfile.gettempdir(), "threesigma-bench-copy.tsv")
    now = datetime.datetime.now(datetime.timezone.utc)
    with open(path, "w") as data:
        for i in range(rows):
            ts = (now - datetime.timedelta(microseconds=(rows - i) * 10)).isoformat()
            attributes = json.dumps({"host": f"web-{i % 7}", "path": "/api/cart"})
            level = 17 if i % 50 == 0 else 9
            data.write(f"{ts}\tbench-{i % 10}\t{level}\trequest {i % 1000} served in {i % 97} ms\t{attributes}\n")
    started = time.monotonic()
    subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qc",
                    f"\\copy logs (ts, service, level, message, attributes) FROM '{path}'"], check=True)
    seconds = time.monotonic() - started
    count = stored(url)
    drop_database(db)
    os.remove(path)
    result = {"rows": count, "seconds": seconds, "events_per_s": count / seconds}
    log(f"psql-copy: {result}")
    return result


def kill9_loss(args):
    """Single-event load for 10 s, kill -9 at 8 s; acknowledged minus stored."""
    def run(ingest, url):
        load = subprocess.Popen(
            [OHA, "--no-tui", "--output-format", "json", "-z", "10s", "-c", str(CONNECTIONS), "-t", "5s",
             "-m", "POST", "-T", "application/json", "-d", EVENT, *auth_header(), ingest.base + "/api/v1/logs"],
            stdout=subprocess.PIPE, text=True)
        time.sleep(8)
        ingest.kill9()
        out, _ = load.communicate()
        statuses = json.loads(out).get("statusCodeDistribution", {})
        acknowledged = statuses.get("200", 0) + statuses.get("202", 0)
        in_db = stored(url)
        return {"acknowledged": acknowledged, "stored": in_db, "lost": max(0, acknowledged - in_db),
                "statuses": statuses}
    return run


def main():
    results = {}
    body = bulk_body()
    results["healthz"] = scenario("healthz", [], lambda i, u: oha(i.base + "/healthz"))
    results["durable"] = scenario("durable", [], lambda i, u: post_single(i))
    results["naive"] = scenario("naive", ["--max-batch-events", "1"], lambda i, u: post_single(i))

    def bulk(ingest, url):
        result = post_bulk(ingest, body, connections=BULK_CONNECTIONS)
        result["events_per_s"] = result["statuses"].get("200", 0) * 1000 / result["seconds"]
        result["stored"] = stored(url)
        return result

    results["bulk-unnest"] = scenario("bulk-unnest", [], bulk)
    results["bulk-copy"] = scenario("bulk-copy", ["--bulk-method", "copy"], bulk)
    results["psql-copy"] = psql_copy(1_000_000)

    capacity_rps = results["bulk-unnest"]["ok_rps"]
    offered = max(1, int(capacity_rps * 10))

    def overload(ingest, url):
        result = post_bulk(ingest, body, "-q", str(offered), connections=2000, duration="20s")
        result["peak_rss_mib"] = ingest.peak_rss_mib()
        result["offered_rps"] = offered
        try:
            result["healthy_after"] = urllib.request.urlopen(ingest.base + "/healthz", timeout=5).status
        except OSError:
            result["healthy_after"] = None
        return result

    results["overload"] = scenario("overload", [], overload)
    results["kill9-original"] = scenario(
        "kill9-original", ["--ack", "buffered", "--max-batch-events", "100", "--linger", "5s"], kill9_loss([]))
    results["kill9-default"] = scenario("kill9-default", [], kill9_loss([]))
    out_dir = os.path.join(ROOT, "bench", "results")
    os.makedirs(out_dir, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%MZ")
    with open(os.path.join(out_dir, f"ingest-{stamp}.json"), "w") as raw:
        json.dump(results, raw, indent=2, default=str)
    print(render(results, stamp))


def render(r, stamp):
    """The markdown table of docs/BENCHMARKS.md, ratios against baselines of the same run."""
    d, n, h = r["durable"], r["naive"], r["healthz"]
    bc, bu, pc = r["bulk-copy"], r["bulk-unnest"], r["psql-copy"]
    o, ko, kd = r["overload"], r["kill9-original"], r["kill9-default"]
    verdict = lambda ok: "met" if ok else "missed"
    lines = [
        f"Run {stamp}, {DURATION} per scenario, {CONNECTIONS} connections (bulk: {BULK_CONNECTIONS}).",
        "",
        "| measurement | result | baseline (same run) | ratio | target |",
        "|---|---|---|---|---|",
        f"| durable single-event req/s vs naive (`--max-batch-events 1`) | {d['ok_rps']:,.0f} | {n['ok_rps']:,.0f} | "
        f"{d['ok_rps'] / n['ok_rps']:.1f}x | >= 5x: {verdict(d['ok_rps'] >= 5 * n['ok_rps'])} |",
        f"| durable single-event req/s vs GET /healthz ceiling | {d['ok_rps']:,.0f} | {h['ok_rps']:,.0f} | "
        f"{d['ok_rps'] / h['ok_rps']:.0%} | >= 50%: {verdict(d['ok_rps'] >= 0.5 * h['ok_rps'])} |",
        f"| durable single-event latency p50 / p99 | {d['p50_ms']:.1f} / {d['p99_ms']:.1f} ms | naive {n['p50_ms']:.1f} / "
        f"{n['p99_ms']:.1f} ms | | p99 <= 50 ms: {verdict(d['p99_ms'] <= 50)} |",
        f"| bulk (1,000-event NDJSON) events/s, default (UNNEST) vs psql \\copy | {bu['events_per_s']:,.0f} | {pc['events_per_s']:,.0f} | "
        f"{bu['events_per_s'] / pc['events_per_s']:.0%} | >= 60%: {verdict(bu['events_per_s'] >= 0.6 * pc['events_per_s'])} |",
        f"| bulk events/s, UNNEST vs COPY (`--bulk-method copy`) | {bu['events_per_s']:,.0f} | {bc['events_per_s']:,.0f} | "
        f"{bu['events_per_s'] / bc['events_per_s']:.0%} | keep the faster |",
        f"| peak ingest RSS, 1,000-event POSTs offered at {o['offered_rps']:,} req/s (10x capacity) | "
        f"{o['peak_rss_mib']:.0f} MiB | | | <= 200 MiB: {verdict(o['peak_rss_mib'] <= 200)} |",
        f"| overload answers | {o['statuses']} | | | excess 503, p99 {o['p99_ms']:.0f} ms; healthz after: {o['healthy_after']} |",
        f"| kill -9 under load, original settings (`--ack buffered --max-batch-events 100 --linger 5s`) | "
        f"{ko['lost']:,} acknowledged events lost | {ko['acknowledged']:,} acknowledged | | |",
        f"| kill -9 under load, default (durable) | {kd['lost']:,} acknowledged events lost | {kd['acknowledged']:,} acknowledged | | 0 |",
    ]
    return "\n".join(lines)


def copy_vs_unnest(rounds=3, duration="15s"):
    """Alternating runs of both bulk methods, bulk and single-event, medians compared."""
    import statistics
    body = bulk_body()
    runs = {"copy": {"bulk": [], "single": []}, "unnest": {"bulk": [], "single": []}}
    for _ in range(rounds):
        for method in runs:
            r = scenario(f"ab-{method}", ["--bulk-method", method],
                         lambda i, u: post_bulk(i, body, connections=BULK_CONNECTIONS, duration=duration))
            runs[method]["bulk"].append(r["ok_rps"] * 1000)
            r = scenario(f"ab-{method}", ["--bulk-method", method], lambda i, u: post_single(i, duration=duration))
            runs[method]["single"].append(r["ok_rps"])
    lines = ["| method | bulk events/s (runs) | median | single-event req/s (runs) | median |", "|---|---|---|---|---|"]
    for method, r in runs.items():
        lines.append(f"| {method} | {', '.join(f'{x:,.0f}' for x in r['bulk'])} | {statistics.median(r['bulk']):,.0f} | "
                     f"{', '.join(f'{x:,.0f}' for x in r['single'])} | {statistics.median(r['single']):,.0f} |")
    print("\n".join(lines))


def before_after(old_bin, rounds=3, duration="15s"):
    """A change against the build before it: alternating runs of the same scenarios (durable
    single-event and 1,000-event bulk) with `old_bin`'s threesigma-ingest and this
    checkout's, medians compared as ratios."""
    import statistics
    body = bulk_body()
    dirs = {"before": old_bin, "after": BIN}
    runs = {label: {"bulk": [], "single": []} for label in dirs}
    for _ in range(rounds):
        for label, bin_dir in dirs.items():
            r = scenario(f"ba-{label}", [], lambda i, u: post_single(i, duration=duration), bin_dir=bin_dir)
            runs[label]["single"].append(r["ok_rps"])
            r = scenario(f"ba-{label}", [],
                         lambda i, u: post_bulk(i, body, connections=BULK_CONNECTIONS, duration=duration),
                         bin_dir=bin_dir)
            runs[label]["bulk"].append(r["ok_rps"] * 1000)
    lines = ["| build | single-event req/s (runs) | median | bulk events/s (runs) | median |",
             "|---|---|---|---|---|"]
    for label, r in runs.items():
        lines.append(f"| {label} | {', '.join(f'{x:,.0f}' for x in r['single'])} | {statistics.median(r['single']):,.0f} | "
                     f"{', '.join(f'{x:,.0f}' for x in r['bulk'])} | {statistics.median(r['bulk']):,.0f} |")
    ratio = lambda kind: statistics.median(runs["after"][kind]) / statistics.median(runs["before"][kind])
    lines.append(f"| after / before | | {ratio('single'):.2f}x | | {ratio('bulk'):.2f}x |")
    print("\n".join(lines))


def search_body(events=1000):
    """1,000 events shaped like a service's logs (ids, numbers, addresses, attributes), so
    their search terms cost what real ones do."""
    import random
    rng = random.Random(3)
    hexs = lambda k: "".join(rng.choice("0123456789abcdef") for _ in range(k))
    templates = [
        lambda: f"GET /api/v1/orders/{rng.randrange(10**6)} 200 {rng.randrange(300)}ms user={hexs(8)}",
        lambda: f"payment {hexs(12)} declined for card ending {rng.randrange(9999):04}: insufficient funds",
        lambda: f"upstream timeout after {rng.randrange(5000)} ms calling inventory-{rng.randrange(9)} (attempt {rng.randrange(5)})",
        lambda: f"User {hexs(10)} logged in from {rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
        lambda: f"cache miss for key session:{hexs(32)}, fetching from origin in {rng.randrange(90)} ms",
        lambda: f"worker {rng.randrange(32)} finished job {hexs(8)}-{hexs(4)}: processed {rng.randrange(1000)} items",
    ]
    path = os.path.join(tempfile.gettempdir(), f"threesigma-bench-search-{events}.ndjson")
    with open(path, "w") as body:
        for i in range(events):
            body.write(json.dumps({"service": f"svc-{rng.randrange(100)}", "level": "error" if i % 40 == 0 else "info",
                                   "message": rng.choice(templates)(),
                                   "attributes": {"host": f"web-{rng.randrange(40)}", "request_id": hexs(16)}}) + "\n")
    return path


def caught_up(url, timeout=120):
    """Seconds until the indexer has built every block closed by the end of the load (None if
    it has not within `timeout`), and how many blocks it built."""
    started = time.time()
    while time.time() - started < timeout:
        left = int(psql_value(url, "SELECT count(*) FROM log_search_pending WHERE block < now() - interval '20 seconds'"))
        if left == 0:
            blocks = int(psql_value(url, "SELECT count(DISTINCT block) FROM log_search_blocks"))
            return time.time() - started, blocks
        time.sleep(0.5)
    return None, None


def search_cost(rounds=3, duration="20s", bulk_connections=8):
    """Ingest with the search structures (terms stored, blocks marked and indexed by the
    indexer in the same process) against the same ingest without them
    (`ingest.search_terms = false`): alternating runs, durable single-event and 1,000-event
    bulk, medians compared. After each run with search, how long the indexer took to catch up."""
    import statistics
    body = search_body()
    variants = {"without": ({"THREESIGMA__INGEST__SEARCH_TERMS": "false"}, None), "with": ({}, None)}
    gin = os.environ.get("BENCH_SEARCH_GIN")
    if gin:
        # A design not chosen, for comparison: a GIN index on every row, on the terms
        # (BENCH_SEARCH_GIN=terms) or on any expression (BENCH_SEARCH_GIN="(to_tsvector('simple', message))").
        variants[f"with + per-row GIN on {gin}"] = ({}, f"CREATE INDEX logs_bench_gin ON logs USING gin ({gin})")
    runs = {label: {"bulk": [], "single": [], "single_p99": [], "catch_up": []} for label in variants}

    def bulk(ingest, url):
        r = post_bulk(ingest, body, connections=bulk_connections, duration=duration)
        r["catch_up"] = caught_up(url)
        return r

    def single(ingest, url):
        r = post_single(ingest, duration=duration)
        r["catch_up"] = caught_up(url)
        return r

    for _ in range(rounds):
        for label, (env, ddl) in variants.items():
            name = "search-" + label.split()[0] + ("-gin" if ddl else "")
            r = scenario(name, [], bulk, env=env, ddl=ddl)
            runs[label]["bulk"].append(r["statuses"].get("200", 0) * 1000 / r["seconds"])
            if label == "with":
                runs[label]["catch_up"].append(r["catch_up"])
            r = scenario(name, [], single, env=env, ddl=ddl)
            runs[label]["single"].append(r["ok_rps"])
            runs[label]["single_p99"].append(r["p99_ms"])
    lines = [f"{rounds} alternating rounds of {duration}; bulk: {bulk_connections} clients posting 1,000-event NDJSON; "
             f"single: {CONNECTIONS} connections.", "",
             "| ingest | bulk events/s (runs) | median | single-event req/s (runs) | median | single p99 (median) |",
             "|---|---|---|---|---|---|"]
    for label, r in runs.items():
        lines.append(f"| {label} search | {', '.join(f'{x:,.0f}' for x in r['bulk'])} | {statistics.median(r['bulk']):,.0f} | "
                     f"{', '.join(f'{x:,.0f}' for x in r['single'])} | {statistics.median(r['single']):,.0f} | "
                     f"{statistics.median(r['single_p99']):.1f} ms |")
    ratio = lambda label, kind: statistics.median(runs[label][kind]) / statistics.median(runs["without"][kind])
    for label in variants:
        if label != "without":
            target = " (target >= 75%)" if label == "with" else ""
            lines.append(f"| {label} / without | | {ratio(label, 'bulk'):.0%}{target} | | "
                         f"{ratio(label, 'single'):.0%}{' (target >= 85%)' if target else ''} | |")
    lines.append("")
    lines.append("Indexer after each bulk run with search (seconds to build every closed block, blocks): "
                 + ", ".join(f"{s:.1f} s / {b}" if s is not None else "not caught up" for s, b in runs["with"]["catch_up"]))
    print("\n".join(lines))


if __name__ == "__main__":
    if sys.argv[1:] == ["copy-vs-unnest"]:
        copy_vs_unnest()
    elif sys.argv[1:] == ["search"]:
        search_cost()
    elif len(sys.argv) == 3 and sys.argv[1] == "before-after":
        before_after(sys.argv[2])
    else:
        main()
