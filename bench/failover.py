#!/usr/bin/env python3
"""PostgreSQL failover with a real HA manager: pg_auto_failover (Debian's
postgresql-15-auto-failover and pg-auto-failover-cli) forms a monitor and two nodes on free
ports under a temporary directory, as the postgres user. threesigma-ingest, -detector and
-query run against the nodes through one multi-host URL
(postgres://h1,h2/db?target_session_attrs=read-write) while 8 clients load ingest. The
manager then performs a planned failover, and then the new primary is killed (kill -9 of
its keeper and its postgres). Checks: every acknowledged event stored, none stored twice,
every service healthy afterwards, an incident opened from a burst sent after the crash and
announced once by webhook (two detector replicas), reads answered 200 or 503 with
Retry-After throughout, `threesigma migrate` refused on the standby. Measures the longest time without a 200 for
each failover.

Clients do what a shipper does: a request that is not answered 200 is sent again, the same
events, until it is (no Idempotency-Key: the server alone must not store them twice).

Usage: python3 bench/failover.py [--defaults] [--json FILE]
  --defaults  keep the monitor's default health-check settings (crash failover ~30 s);
              without it the settings in TUNED bound it (docs/RELIABILITY.md).
Environment: THREESIGMA_BIN (default target/release). Needs root (to install the packages
and run the cluster as the postgres user). Bounded: about two minutes; nothing leaves
127.0.0.1 except the package downloads.
"""

import argparse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

from console import detector_ran, http, send_traffic, wait_ready
from shippers import debian_install, free_port, stop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.abspath(os.environ.get("THREESIGMA_BIN", os.path.join(ROOT, "target", "release")))
PACKAGES = ["postgresql-15-auto-failover", "pg-auto-failover-cli"]
PG_BIN = "/usr/lib/postgresql/15/bin"
SECRET = "failover-" + os.urandom(20).hex()
CLIENTS = 8
EVENTS_PER_REQUEST = 50
# Settings that bound how long writes stop after a crash of the primary (defaults in
# brackets). On the monitor (reloadable): check every node each second [5 s], give up on a
# check after 1 s [5 s] and one retry 0.5 s later [2 retries, 2 s apart], consider a node
# that failed its checks unhealthy after 3 s [20 s], and promote the standby 8 s after
# asking an unreachable primary to demote itself [30 s]. On each node: a primary that
# reaches neither the monitor nor its standby demotes itself after 5 s [20 s], so it has
# stopped before the monitor's 8 s run out (with synchronous replication it could not
# acknowledge a commit alone anyway). Planned failovers do not depend on them.
TUNED = {
    "pgautofailover.health_check_period": "1000",
    "pgautofailover.health_check_timeout": "1000",
    "pgautofailover.health_check_max_retries": "1",
    "pgautofailover.health_check_retry_delay": "500",
    "pgautofailover.node_considered_unhealthy_timeout": "3000",
    "pgautofailover.primary_demote_timeout": "8000",
}
NODE_TUNED = {"timeout.network_partition_timeout": "5"}


def log(message):
    print(f"[{datetime.now(timezone.utc).strftime('%H:%M:%S')}] {message}", flush=True)


class Cluster:
    """A pg_auto_failover monitor and two Postgres nodes, run as the postgres user."""

    def __init__(self, root, tuned):
        self.root = root
        self.ports = {"monitor": free_port(), "node1": free_port(), "node2": free_port()}
        self.processes = {}
        self.env = dict(os.environ, PATH=f"{PG_BIN}:{os.environ['PATH']}",
                        XDG_CONFIG_HOME=os.path.join(root, "config"), XDG_DATA_HOME=os.path.join(root, "share"),
                        XDG_RUNTIME_DIR=os.path.join(root, "run"), HOME=root)
        self.monitor_url = f"postgres://autoctl_node@127.0.0.1:{self.ports['monitor']}/pg_auto_failover"
        self.tuned = tuned

    def autoctl(self, *args, check=True):
        return subprocess.run(["pg_autoctl", *args], env=self.env, user="postgres", group="postgres",
                              capture_output=True, text=True, check=check, timeout=120)

    def run(self, name):
        out = open(os.path.join(self.root, f"{name}.log"), "a")
        self.processes[name] = subprocess.Popen(
            ["pg_autoctl", "run", "--pgdata", self.pgdata(name)], env=self.env, user="postgres", group="postgres",
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def pgdata(self, name):
        return os.path.join(self.root, name)

    def form(self):
        common = ["--auth", "trust", "--no-ssl", "--hostname", "127.0.0.1"]
        self.autoctl("create", "monitor", "--pgdata", self.pgdata("monitor"), "--pgport", str(self.ports["monitor"]),
                     *common)
        self.run("monitor")
        wait_for(lambda: self.query_monitor("SELECT 1") == "1", 30, "the monitor to start")
        if self.tuned:
            for name, value in TUNED.items():
                if self.query_monitor(f"ALTER SYSTEM SET {name} = '{value}'") is None:
                    sys.exit(f"could not set {name} on the monitor")
            self.query_monitor("SELECT pg_reload_conf()")
            for name, value in TUNED.items():
                wait_for(lambda: self.query_monitor(f"SELECT setting FROM pg_settings WHERE name = '{name}'") == value,
                         10, f"{name} = {value} on the monitor")
        for name in ("node1", "node2"):
            self.autoctl("create", "postgres", "--pgdata", self.pgdata(name), "--pgport", str(self.ports[name]),
                         "--monitor", self.monitor_url, "--name", name, *common)
            if self.tuned:
                for setting, value in NODE_TUNED.items():
                    self.autoctl("config", "set", "--pgdata", self.pgdata(name), setting, value)
            self.run(name)
            wait_for(lambda: self.states().get(name) in ("single", "primary", "secondary"), 90, f"{name} to join")
        wait_for(lambda: sorted(self.states().values()) == ["primary", "secondary"], 90, "primary and secondary")

    def query_monitor(self, statement):
        url = f"postgres://postgres@127.0.0.1:{self.ports['monitor']}/pg_auto_failover"
        result = subprocess.run(["psql", url, "-Atc", statement], capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else None

    def states(self):
        rows = self.query_monitor("SELECT nodename, reportedstate || '/' || goalstate FROM pgautofailover.node") or ""
        states = {}
        for row in rows.splitlines():
            name, state = row.split("|")
            reported, goal = state.split("/")
            states[name] = reported if reported == goal else f"{reported}->{goal}"
        return states

    def primary(self):
        return next((name for name, state in self.states().items() if state in ("primary", "wait_primary", "single")),
                    None)

    def url(self, database, nodes=("node1", "node2")):
        hosts = ",".join(f"127.0.0.1:{self.ports[name]}" for name in nodes)
        return f"postgres://postgres@{hosts}/{database}?target_session_attrs=read-write"

    def standby_url(self, database):
        standby = next(name for name in ("node1", "node2") if name != self.primary())
        return f"postgres://postgres@127.0.0.1:{self.ports[standby]}/{database}"

    def perform_failover(self):
        self.autoctl("perform", "failover", "--pgdata", self.pgdata("monitor"))

    def crash(self, name):
        """kill -9 of the node's keeper (its whole process group) and of its postgres."""
        pid_file = os.path.join(self.pgdata(name), "postmaster.pid")
        postmaster = int(open(pid_file).readline()) if os.path.exists(pid_file) else None
        os.killpg(self.processes[name].pid, signal.SIGKILL)
        if postmaster:
            try:
                os.kill(postmaster, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self):
        for process in self.processes.values():
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for name, process in self.processes.items():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        for name in ("node1", "node2", "monitor"):
            pid_file = os.path.join(self.pgdata(name), "postmaster.pid")
            if os.path.exists(pid_file):
                try:
                    os.kill(int(open(pid_file).readline()), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass


def wait_for(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:  # noqa: BLE001 - the cluster is forming; keep asking
            pass
        time.sleep(0.2)
    sys.exit(f"timed out after {seconds} s waiting for {what}")


class Load:
    """CLIENTS shippers sending EVENTS_PER_REQUEST events per request, each with a unique uid,
    re-sending a request until it is answered 200."""

    def __init__(self, ingest, token):
        self.ingest, self.token = ingest, token
        self.acked = set()
        self.answers = []  # (monotonic time, status)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(n,), daemon=True) for n in range(CLIENTS)]

    def start(self):
        for thread in self.threads:
            thread.start()

    def client(self, n):
        sequence = 0
        while not self.stopping.is_set():
            uids = [f"{n}-{sequence}-{i}" for i in range(EVENTS_PER_REQUEST)]
            body = "".join(json.dumps({"service": f"ha-load-{n}", "level": "info", "message": "load",
                                       "attributes": {"uid": uid}}) + "\n" for uid in uids).encode()
            while True:
                status = self.post(body)
                with self.lock:
                    self.answers.append((time.monotonic(), status))
                if status == 200:
                    with self.lock:
                        self.acked.update(uids)
                    break
                if self.stopping.is_set():
                    return
                time.sleep(0.2)
            sequence += 1

    def post(self, body):
        request = urllib.request.Request(f"{self.ingest}/api/v1/logs", data=body, method="POST")
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Content-Type", "application/x-ndjson")
        try:
            with urllib.request.urlopen(request, timeout=90) as response:
                response.read()
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return 0

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=120)

    def oks(self):
        with self.lock:
            return [at for at, status in self.answers if status == 200]

    def statuses(self, since, until):
        counts = {}
        with self.lock:
            for at, status in self.answers:
                if since <= at <= until:
                    counts[str(status)] = counts.get(str(status), 0) + 1
        return counts

    def longest_gap(self, since, until):
        """Longest time without a 200 in [since, until]."""
        oks = [since] + [at for at in self.oks() if since < at < until] + [until]
        return max(b - a for a, b in zip(oks, oks[1:]))


class Webhooks:
    """A webhook receiver on 127.0.0.1: what the detectors announced."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                received.append((body["event"], body["incident"]["id"], body["incident"]["service"]))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Reader(threading.Thread):
    """An operator's reads during the failovers: the incidents list every 100 ms. Only 200,
    or 503 with Retry-After, is acceptable."""

    def __init__(self, query, token):
        super().__init__(daemon=True)
        self.query, self.token = query, token
        self.answers = {}
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            request = urllib.request.Request(f"{self.query}/api/v1/incidents?limit=5")
            request.add_header("Authorization", f"Bearer {self.token}")
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
                    answer = str(response.status)
            except urllib.error.HTTPError as error:
                answer = str(error.code) + ("" if error.code != 503 or error.headers.get("Retry-After")
                                            else " without Retry-After")
            except OSError as error:
                answer = f"no answer ({type(error).__name__})"
            self.answers[answer] = self.answers.get(answer, 0) + 1
            time.sleep(0.1)

    def stop(self):
        self.stopping.set()
        self.join(timeout=60)


def wait_for_oks(load, since, seconds=120):
    """Waits until 200s have flowed for 2 s after `since`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        oks = [at for at in load.oks() if at > since]
        if oks and oks[-1] - oks[0] >= 2:
            return
        time.sleep(0.2)
    sys.exit(f"no 200 for {seconds} s after a failover")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--defaults", action="store_true", help="keep the monitor's default health checks")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    for binary in ("threesigma", "threesigma-ingest", "threesigma-detector", "threesigma-query"):
        if not os.path.exists(os.path.join(BIN, binary)):
            sys.exit(f"{BIN}/{binary} is missing: build it (cargo build --release --bins) or set THREESIGMA_BIN")
    if os.geteuid() != 0:
        print("SKIPPED: run as root (the packages are installed with apt-get and the cluster runs as the "
              "postgres user)")
        return
    debian_install(PACKAGES, lambda: shutil.which("pg_autoctl") and os.path.exists(f"{PG_BIN}/postgres"))
    if not shutil.which("pg_autoctl"):
        sys.exit("pg_autoctl is not installed and could not be installed (apt-get install "
                 + " ".join(PACKAGES) + ")")

    root = tempfile.mkdtemp(prefix="threesigma-failover-")
    shutil.chown(root, "postgres", "postgres")
    cluster = Cluster(root, tuned=not args.defaults)
    services = []
    results = {"tuned": not args.defaults}
    try:
        log("forming the cluster: a monitor and two nodes")
        cluster.form()
        log(f"formed: {cluster.states()}")
        subprocess.run(["psql", cluster.url("postgres"), "-Atc", "CREATE DATABASE threesigma"], check=True,
                       capture_output=True)
        env = dict(os.environ, DATABASE_URL=cluster.url("threesigma"), JWT_SECRET=SECRET, RUST_LOG="warn")
        cli = os.path.join(BIN, "threesigma")
        # The standby replays the CREATE DATABASE a moment later.
        wait_for(lambda: subprocess.run(["psql", cluster.standby_url("threesigma"), "-Atc", "SELECT 1"],
                                        capture_output=True).returncode == 0, 30, "the database on the standby")
        refused = subprocess.run([cli, "migrate"], env=dict(env, DATABASE_URL=cluster.standby_url("threesigma")),
                                 capture_output=True, text=True)
        results["migrate_on_standby"] = {"exit": refused.returncode, "says": refused.stderr.strip()[-200:]}
        subprocess.run([cli, "migrate"], env=env, check=True, capture_output=True)

        def token(scope):
            return subprocess.run([cli, "token", "issue", "--scope", scope, "--subject", f"failover-{scope}",
                                   "--ttl", "1h"], env=env, check=True, capture_output=True, text=True).stdout.strip()

        ingest_token, read_token = token("ingest"), token("read")
        webhooks = Webhooks()
        # Two detector replicas share the services through bucket locks, which die with the
        # primary's sessions.
        ports = {"ingest": free_port(), "detector": free_port(), "detector-2": free_port(), "query": free_port()}
        for name, port in ports.items():
            out = open(os.path.join(root, f"threesigma-{name}.log"), "w")
            services.append(subprocess.Popen(
                [os.path.join(BIN, f"threesigma-{name.split('-')[0]}")], stdout=out, stderr=subprocess.STDOUT,
                env=dict(env, THREESIGMA__SERVER__BIND=f"127.0.0.1:{port}", THREESIGMA__DETECTOR__INTERVAL="2s",
                         # Query reads from any node that answers (standby or primary).
                         DATABASE_READ_URL=cluster.url("threesigma").split("?")[0],
                         THREESIGMA__RATE_LIMIT__PER_SECOND="0", THREESIGMA__WEBHOOK__URL=webhooks.url,
                         THREESIGMA__WEBHOOK__RETRY_MIN="200ms")))
        for port in ports.values():
            wait_ready(port)
        for name in ("detector", "detector-2"):
            wait_for(lambda: detector_ran(ports[name]), 60, f"{name}'s first cycle")
        ingest = f"http://127.0.0.1:{ports['ingest']}"
        query = f"http://127.0.0.1:{ports['query']}"

        load = Load(ingest, ingest_token)
        reader = Reader(query, read_token)
        started = time.monotonic()
        load.start()
        reader.start()
        time.sleep(5)

        first = cluster.primary()
        log(f"planned failover away from {first}")
        planned_at = time.monotonic()
        cluster.perform_failover()
        wait_for(lambda: cluster.primary() not in (None, first), 60, "the new primary")
        wait_for_oks(load, time.monotonic())
        time.sleep(3)
        planned_end = time.monotonic()
        results["planned"] = {"from": first, "to": cluster.primary(),
                              "longest_without_200_s": round(load.longest_gap(planned_at - 1, planned_end), 2),
                              "answers": load.statuses(planned_at, planned_end)}
        log(f"planned: {results['planned']}")
        wait_for(lambda: sorted(cluster.states().values()) == ["primary", "secondary"], 90,
                 "the old primary to follow as secondary")

        victim = cluster.primary()
        log(f"crash: kill -9 of {victim}'s keeper and postgres")
        crashed_at = time.monotonic()
        cluster.crash(victim)
        wait_for(lambda: cluster.primary() not in (None, victim), 120, "the standby's promotion")
        promoted_at = time.monotonic()
        wait_for_oks(load, promoted_at)
        time.sleep(3)
        crash_end = time.monotonic()
        results["crash"] = {"killed": victim, "promoted": cluster.primary(),
                            "promoted_after_s": round(promoted_at - crashed_at, 2),
                            "longest_without_200_s": round(load.longest_gap(crashed_at - 1, crash_end), 2),
                            "answers": load.statuses(crashed_at, crash_end)}
        log(f"crash: {results['crash']}")

        log("a burst after the crash")
        send_traffic(ingest, ingest_token)
        incident = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and incident is None:
            status, page = http("GET", f"{query}/api/v1/incidents?status=open&service=checkout", read_token)
            if status == 200 and page["data"]:
                incident = page["data"][0]
            time.sleep(0.5)
        results["incident"] = incident and {"id": incident["id"], "title": incident["title"]}
        time.sleep(6)  # room for a second announcement, were there one
        results["webhooks"] = [list(hook) for hook in webhooks.received]
        opened_once = incident is not None and [
            hook for hook in webhooks.received if hook[0] == "opened" and hook[1] == incident["id"]] == [
            ("opened", incident["id"], "checkout")]

        load.stop()
        reader.stop()
        results["reads_during_failovers"] = reader.answers
        results["load_seconds"] = round(time.monotonic() - started, 1)
        health = {}
        for name, port in ports.items():
            for path in ("/healthz", "/readyz"):
                try:
                    health[f"{name}{path}"] = urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).status
                except urllib.error.HTTPError as error:
                    health[f"{name}{path}"] = error.code
                except OSError:
                    health[f"{name}{path}"] = None
        results["health_after"] = health
        status, _ = http("GET", f"{query}/api/v1/logs?service=ha-load-0&limit=5", read_token)
        results["query_logs_after"] = status

        rows = subprocess.run(["psql", cluster.url("threesigma"), "-Atc",
                               "SELECT attributes->>'uid', count(*) FROM logs WHERE service LIKE 'ha-load-%' GROUP BY 1"],
                              check=True, capture_output=True, text=True).stdout.split()
        stored = dict(row.split("|") for row in rows)
        results["acknowledged"] = len(load.acked)
        results["stored"] = len(stored)
        results["lost"] = len([uid for uid in load.acked if uid not in stored])
        results["duplicated"] = len([uid for uid, count in stored.items() if int(count) > 1])
        reads_ok = all(answer in ("200", "503") for answer in reader.answers)
        ok = (results["lost"] == 0 and results["duplicated"] == 0 and incident is not None and opened_once
              and reads_ok
              and all(status == 200 for status in health.values()) and results["query_logs_after"] == 200
              and refused.returncode != 0 and "standby" in refused.stderr)
        results["ok"] = ok
    finally:
        stop(services, 15)
        cluster.stop()
        if os.environ.get("FAILOVER_KEEP"):
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    if not results.get("ok"):
        sys.exit("failover check failed")


if __name__ == "__main__":
    main()
