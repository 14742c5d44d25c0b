#!/usr/bin/env python3
"""Sends logs through real shipper clients to a threesigma ingest on 127.0.0.1 and checks
that they land with the right service, level and message. Prints PASS/FAIL per client and
exits non-zero if any failed.

Clients (installed here when missing; nothing leaves 127.0.0.1 except the package
downloads):
  otel-python   OpenTelemetry Python SDK, OTLPLogExporter over HTTP: protobuf, gzip,
                bearer token, to the OTLP port (ingest.otlp_bind, exporters' default path)
  loki-python   python-logging-loki's LokiHandler: Loki JSON push with basic auth
  syslog-ng     syslog-ng's elasticsearch-http() destination: Elasticsearch bulk with
                basic auth, fed syslog lines over UDP
  rsyslog       rsyslog's omelasticsearch (bulk mode, basic auth), fed over UDP

Usage: python3 bench/shippers.py [client ...]
Environment: THREESIGMA_BIN (default target/release) holds threesigma and
threesigma-ingest; BENCH_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres);
SHIPPERS_VENV (default target/shippers-venv).
Bounded: each client has 60 s to deliver; the whole run takes under two minutes once the
clients are installed.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.abspath(os.environ.get("THREESIGMA_BIN", os.path.join(ROOT, "target", "release")))
ADMIN = os.environ.get("BENCH_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
VENV = os.path.abspath(os.environ.get("SHIPPERS_VENV", os.path.join(ROOT, "target", "shippers-venv")))
DATABASE = "threesigma_shippers"
SECRET = "shippers-" + os.urandom(20).hex()
PYTHON_PACKAGES = [
    "opentelemetry-sdk==1.45.2",
    "opentelemetry-exporter-otlp-proto-http==1.45.2",
    "python-logging-loki==0.3.1",
]


def psql(url, statement):
    return subprocess.run(["psql", url, "-Atc", statement], check=True, capture_output=True, text=True).stdout


def database_url():
    parts = urllib.parse.urlsplit(ADMIN)
    return urllib.parse.urlunsplit(parts._replace(path="/" + DATABASE))


def stop(processes, timeout):
    """SIGTERM to every process, then up to `timeout` seconds each to exit before SIGKILL."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def venv_python():
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    missing = subprocess.run(
        [python, "-c", "import opentelemetry.exporter.otlp.proto.http, logging_loki"],
        capture_output=True,
    ).returncode
    if missing:
        print("installing the Python clients:", " ".join(PYTHON_PACKAGES))
        subprocess.run([python, "-m", "pip", "install", "-q", *PYTHON_PACKAGES], check=True)
    return python


def debian_install(packages, ready):
    """Installs Debian `packages` when `ready()` is false and we are root with apt-get."""
    if ready() or os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    print("installing", ", ".join(packages), "(Debian)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(["apt-get", "install", "-y", "-q", *packages], env=env, capture_output=True).returncode:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", *packages], env=env, capture_output=True)


def syslog_ng():
    """The syslog-ng binary with its http module and SCL, installed on Debian when we can.

    Debian's syslog-ng-core and rsyslog conflict (each is the system's log daemon), so
    installing one removes the other: every run installs both again, one after the other."""
    def ready():
        return shutil.which("syslog-ng") and os.path.isdir("/usr/share/syslog-ng/include/scl/elasticsearch")

    debian_install(["syslog-ng-core", "syslog-ng-mod-http", "syslog-ng-scl"], ready)
    return shutil.which("syslog-ng") if ready() else None


def rsyslog():
    """rsyslogd with omelasticsearch, installed on Debian when we can."""
    module = "/usr/lib/x86_64-linux-gnu/rsyslog/omelasticsearch.so"

    def ready():
        return shutil.which("rsyslogd") and os.path.exists(module)

    debian_install(["rsyslog", "rsyslog-elasticsearch"], ready)
    return shutil.which("rsyslogd") if ready() else None


def stored(service):
    rows = psql(
        database_url(),
        "SELECT level, message FROM logs WHERE service = '%s' ORDER BY message" % service,
    )
    names = {"1": "trace", "5": "debug", "9": "info", "13": "warn", "17": "error", "21": "fatal"}
    return [(names.get(line.split("|", 1)[0], line.split("|", 1)[0]), line.split("|", 1)[1])
            for line in rows.splitlines() if "|" in line]


def wait_for(service, count, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rows = stored(service)
        if len(rows) >= count:
            return rows
        time.sleep(0.5)
    return stored(service)


def check(name, service, expected):
    rows = wait_for(service, len(expected))
    ok = sorted(rows) == sorted(expected)
    print(f"{'PASS' if ok else 'FAIL'}   {name}: service {service!r} stored {rows}" + ("" if ok else f", expected {expected}"))
    return ok


OTEL_SCRIPT = r"""
import logging, sys
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http import Compression

endpoint, token = sys.argv[1], sys.argv[2]
provider = LoggerProvider(resource=Resource.create({"service.name": "otel-py"}))
exporter = OTLPLogExporter(endpoint=endpoint, headers={"Authorization": "Bearer " + token},
                           compression=Compression.Gzip)
provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
logger = logging.getLogger("shop")
logger.addHandler(LoggingHandler(logger_provider=provider))
logger.setLevel(logging.INFO)
logger.error("payment failed: card declined", extra={"order_id": 42})
logger.info("order 42 created")
provider.force_flush()
provider.shutdown()
"""

LOKI_SCRIPT = r"""
import logging, sys
import logging_loki

url, token = sys.argv[1], sys.argv[2]
handler = logging_loki.LokiHandler(url=url, tags={"service": "loki-py"}, auth=("shipper", token), version="1")
logger = logging.getLogger("loki")
logger.addHandler(handler)
logger.setLevel(logging.INFO)
logger.error("disk quota exceeded")
logger.warning("slow request: 2.5 s")
"""


def run_python(python, script, *args):
    result = subprocess.run([python, "-c", script, *args], capture_output=True, text=True, timeout=60)
    if result.returncode:
        print(result.stderr[-2000:])
    return result.returncode == 0


def otel_python(python, ingest, token):
    if not run_python(python, OTEL_SCRIPT, f"http://127.0.0.1:{ingest['otlp']}/v1/logs", token):
        return False
    return check("otel-python (OTLP/HTTP protobuf, gzip, bearer, port 4318's path)", "otel-py",
                 [("error", "payment failed: card declined"), ("info", "order 42 created")])


def loki_python(python, ingest, token):
    if not run_python(python, LOKI_SCRIPT, f"http://127.0.0.1:{ingest['port']}/loki/api/v1/push", token):
        return False
    return check("loki-python (Loki JSON push, basic auth)", "loki-py",
                 [("error", "disk quota exceeded"), ("warn", "slow request: 2.5 s")])


def through_syslog_daemon(command, work, udp, app, facility, lines, logs):
    """Runs a syslog daemon (`command`, its files in `work`), sends it `lines`
    [(severity, text)] as RFC 5424 over UDP from `app`, and returns what check() says of
    the rows stored for `app`; prints the daemon's `logs` (files in `work`) if it failed."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                               stderr=open(os.path.join(work, "stderr"), "w"))
    try:
        time.sleep(2)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for severity, text in lines:
                s.sendto(f"<{facility * 8 + severity}>1 {now} host1 {app} 4242 - - {text}".encode(),
                         ("127.0.0.1", udp))
        # Leave the daemon running until it has delivered (or 30 s): stopped at once, rsyslog
        # was seen to drop a line still in its action queue (CI run of 261c15d).
        wait_for(app, len(lines), 30)
        names = {3: "error", 4: "warn", 6: "info"}
        return [(names[severity], text) for severity, text in lines]
    finally:
        stop([process], 10)
        for name in logs:
            path = os.path.join(work, name)
            if process.returncode not in (0, -15, None) or name != "stderr":
                if os.path.exists(path) and os.path.getsize(path):
                    print(open(path).read()[-2000:])


def syslog_ng_es(binary, ingest, token):
    work = tempfile.mkdtemp(prefix="threesigma-syslog-ng-")
    udp = free_port()
    config = f"""@version: 3.38
@include "scl.conf"
source s_udp {{ network(transport("udp") ip("127.0.0.1") port({udp}) flags(syslog-protocol)); }};
destination d_es {{
  elasticsearch-http(url("http://127.0.0.1:{ingest['port']}/_bulk") index("syslog-idx") type("")
    user("syslog-ng") password("{token}") batch_lines(10) timeout(10)
    template("$(format-json @timestamp=${{ISODATE}} level=${{LEVEL}} service=${{PROGRAM}} message=${{MSG}})"));
}};
log {{ source(s_udp); destination(d_es); flags(flow-control); }};
"""
    with open(os.path.join(work, "syslog-ng.conf"), "w") as f:
        f.write(config)
    command = [binary, "-F", "-f", os.path.join(work, "syslog-ng.conf"),
               "-R", os.path.join(work, "persist"), "-p", os.path.join(work, "pid"),
               "-c", os.path.join(work, "ctl")]
    try:
        expected = through_syslog_daemon(command, work, udp, "billing", 1,
                                         [(3, "database connection refused"), (6, "health check ok")],
                                         ["stderr"])
        return check("syslog-ng (elasticsearch-http(): Elasticsearch bulk, basic auth)", "billing", expected)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def rsyslog_es(binary, ingest, token):
    work = tempfile.mkdtemp(prefix="threesigma-rsyslog-")
    udp = free_port()
    config = f"""global(workDirectory="{work}")
module(load="imudp")
module(load="omelasticsearch")
input(type="imudp" address="127.0.0.1" port="{udp}")
template(name="threesigma" type="list" option.jsonf="on") {{
  property(outname="@timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="service" name="programname" format="jsonf")
  property(outname="level" name="syslogseverity-text" format="jsonf")
  property(outname="message" name="msg" format="jsonf")
}}
action(type="omelasticsearch" server="127.0.0.1" serverport="{ingest['port']}"
       template="threesigma" searchIndex="syslog" bulkmode="on" esVersion.major="8"
       uid="rsyslog" pwd="{token}" errorfile="{work}/errors.json")
"""
    with open(os.path.join(work, "rsyslog.conf"), "w") as f:
        f.write(config)
    command = [binary, "-n", "-f", os.path.join(work, "rsyslog.conf"), "-i", os.path.join(work, "pid")]
    try:
        expected = through_syslog_daemon(command, work, udp, "payments", 2,
                                         [(3, "card processor unreachable"), (4, "retrying in 5 s")],
                                         ["stderr", "errors.json"])
        return check("rsyslog (omelasticsearch: Elasticsearch bulk, basic auth)", "payments", expected)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    only = set(sys.argv[1:])
    for binary in ("threesigma", "threesigma-ingest"):
        if not os.path.exists(os.path.join(BIN, binary)):
            sys.exit(f"{BIN}/{binary} is missing: build it (cargo build --release --bins) or set THREESIGMA_BIN")
    python = venv_python()
    psql(ADMIN, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    psql(ADMIN, f"CREATE DATABASE {DATABASE}")
    env = dict(os.environ, DATABASE_URL=database_url(), JWT_SECRET=SECRET, RUST_LOG="warn")
    subprocess.run([os.path.join(BIN, "threesigma"), "migrate"], env=env, check=True, capture_output=True)
    token = subprocess.run(
        [os.path.join(BIN, "threesigma"), "token", "issue", "--scope", "ingest", "--subject", "shippers", "--ttl", "1h"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()
    ingest = {"port": free_port(), "otlp": free_port()}
    server = subprocess.Popen(
        [os.path.join(BIN, "threesigma-ingest")],
        env=dict(env, THREESIGMA__SERVER__BIND=f"127.0.0.1:{ingest['port']}",
                 THREESIGMA__INGEST__OTLP_BIND=f"127.0.0.1:{ingest['otlp']}"),
        stdout=subprocess.DEVNULL,
    )
    results = []
    try:
        for _ in range(100):
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{ingest['port']}/readyz", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        if not only or "otel-python" in only:
            results.append(otel_python(python, ingest, token))
        if not only or "loki-python" in only:
            results.append(loki_python(python, ingest, token))
        if not only or "syslog-ng" in only:
            binary = syslog_ng()
            if binary:
                results.append(syslog_ng_es(binary, ingest, token))
            else:
                print("SKIP   syslog-ng: not installed and cannot be installed here (needs root and apt-get)")
        if not only or "rsyslog" in only:
            binary = rsyslog()
            if binary:
                results.append(rsyslog_es(binary, ingest, token))
            else:
                print("SKIP   rsyslog: not installed and cannot be installed here (needs root and apt-get)")
    finally:
        stop([server], 20)
        psql(ADMIN, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    passed = sum(results)
    print(f"\n{passed} of {len(results)} clients delivered")
    sys.exit(0 if passed == len(results) else 1)


if __name__ == "__main__":
    main()
