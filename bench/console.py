#!/usr/bin/env python3
"""The operator console in a real browser: Debian's Chromium, headless, driven by Playwright
for Python. Starts threesigma-ingest, -detector and -query on a fresh database, sends a
baseline and a burst, then as an on-call operator: signs in, finds the incident, opens it,
checks the chart is drawn with its band, acknowledges it by keyboard, checks the API says
acknowledged, looks at services and logs, signs out. Also: a viewer sees no buttons and is
refused by the server; an expired session returns to sign-in with a message; a signed-out
cookie no longer works. Fails on any JavaScript error or Content-Security-Policy violation,
and on any serious or critical axe-core finding on any page. Saves screenshots.

Usage: python3 bench/console.py [--shots DIR]
Environment: THREESIGMA_BIN (default target/release) holds the binaries; BENCH_ADMIN_URL
(default postgres://postgres@127.0.0.1:5432/postgres); CONSOLE_VENV (default
target/console-venv). Installs chromium (apt-get) and playwright, axe-playwright-python
(pip) when missing. Bounded: about two minutes once installed; nothing leaves 127.0.0.1
except the package downloads.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

from shippers import debian_install, free_port, psql, stop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.abspath(os.environ.get("THREESIGMA_BIN", os.path.join(ROOT, "target", "release")))
ADMIN = os.environ.get("BENCH_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
VENV = os.path.abspath(os.environ.get("CONSOLE_VENV", os.path.join(ROOT, "target", "console-venv")))
DATABASE = "threesigma_console"
SECRET = "console-" + os.urandom(20).hex()
PACKAGES = ["playwright==1.65.2", "axe-playwright-python==0.1.8"]
CHROMIUM = "/usr/bin/chromium"
OPERATOR = ("oncall@example.com", "Pager-Duty-7f3k-Quokka")
VIEWER = ("viewer@example.com", "Read-Only-9x2m-Wombat")


def database_url():
    parts = urllib.parse.urlsplit(ADMIN)
    return urllib.parse.urlunsplit(parts._replace(path="/" + DATABASE))


def in_venv():
    """Re-runs this script with the venv's Python (with Playwright) unless already there."""
    python = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    missing = subprocess.run([python, "-c", "import playwright, axe_playwright_python"], capture_output=True).returncode
    if missing:
        print("installing", " ".join(PACKAGES))
        subprocess.run([python, "-m", "pip", "install", "-q", *PACKAGES], check=True)
    os.execv(python, [python, *sys.argv])


def http(method, url, token=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def wait_ready(port):
    for _ in range(200):
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).status == 200:
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"the service on port {port} never became ready")


def detector_ran(port):
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("threesigma_detector_last_success_timestamp_seconds"):
            return float(line.split()[-1]) > 0
    return False


def send_traffic(ingest, token):
    """40 minutes of baseline for checkout and search (info traffic with a few errors), then a
    burst of checkout errors in the current minute."""
    rng = random.Random(7)
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    for back in range(40, 0, -1):
        minute = now - timedelta(minutes=back)
        events = []
        for service, errors in (("checkout", rng.choice([1, 2, 2, 3, 3, 4])), ("search", rng.choice([0, 1, 1, 2]))):
            for i in range(30):
                events.append({"service": service, "level": "info", "message": f"GET /api/{service} 200",
                               "timestamp": (minute + timedelta(seconds=i)).isoformat()})
            for i in range(errors):
                events.append({"service": service, "level": "error", "message": f"upstream timeout after 3000 ms (attempt {i + 1})",
                               "timestamp": (minute + timedelta(seconds=30 + i)).isoformat()})
        status, body = http("POST", f"{ingest}/api/v1/logs", token, events)
        assert status == 200, (status, body)
    burst = [{"service": "checkout", "level": "error", "message": "payment gateway refused: card processor unreachable",
              "attributes": {"gateway": "acme-pay", "region": "eu-west-1"}} for _ in range(120)]
    status, body = http("POST", f"{ingest}/api/v1/logs", token, burst)
    assert status == 200, (status, body)


class Console:
    """One browser context (one user's cookies) with the checks every page gets."""

    def __init__(self, browser, base, shots, name):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.base = base
        self.shots = shots
        self.name = name
        self.problems = []
        self.page.on("console", lambda message: message.type == "error" and self.problems.append(f"console error: {message.text}"))
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.add_init_script(
            "document.addEventListener('securitypolicyviolation', e => "
            "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));")

    def go(self, path):
        self.page.goto(self.base + path)
        self.page.wait_for_load_state("networkidle")

    def shot(self, name, full_page=True):
        self.page.screenshot(path=os.path.join(self.shots, f"{name}.png"), full_page=full_page)

    def accessible(self, label):
        from axe_playwright_python.sync_playwright import Axe

        results = Axe().run(self.page)
        bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
        for violation in bad:
            self.problems.append(f"axe {label}: {violation['impact']} {violation['id']}: {violation['help']} "
                                 f"({[node['target'] for node in violation['nodes']][:3]})")
        print(f"  axe {label}: {len(results.response['passes'])} rules passed, {len(results.response['violations'])} failed, {len(bad)} serious or critical")

    def sign_in(self, email, password, path="/incidents"):
        self.go(path)
        assert self.page.url.startswith(self.base + "/sign-in?next="), self.page.url
        self.page.get_by_label("Email").fill(email)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(self.base + path)
        self.page.wait_for_load_state("networkidle")


def check(condition, message, problems):
    print(("ok     " if condition else "FAIL   ") + message)
    if not condition:
        problems.append(message)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shots", default=os.path.join(ROOT, "target", "console-shots"))
    args = parser.parse_args()
    for binary in ("threesigma", "threesigma-ingest", "threesigma-detector", "threesigma-query"):
        if not os.path.exists(os.path.join(BIN, binary)):
            sys.exit(f"{BIN}/{binary} is missing: build it (cargo build --release --bins) or set THREESIGMA_BIN")
    debian_install(["chromium"], lambda: os.path.exists(CHROMIUM))
    if not os.path.exists(CHROMIUM):
        sys.exit("chromium is not installed and cannot be installed here (needs root and apt-get)")
    in_venv()
    from playwright.sync_api import sync_playwright

    os.makedirs(args.shots, exist_ok=True)
    psql(ADMIN, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    psql(ADMIN, f"CREATE DATABASE {DATABASE}")
    env = dict(os.environ, DATABASE_URL=database_url(), JWT_SECRET=SECRET, RUST_LOG="warn")
    cli = os.path.join(BIN, "threesigma")
    subprocess.run([cli, "migrate"], env=env, check=True, capture_output=True)
    for (email, password), role in ((OPERATOR, "operator"), (VIEWER, "viewer")):
        subprocess.run([cli, "user", "add", "--email", email, "--role", role], input=password + "\n",
                       env=env, check=True, capture_output=True, text=True)

    def token(scope):
        return subprocess.run([cli, "token", "issue", "--scope", scope, "--subject", f"console-{scope}", "--ttl", "1h"],
                              env=env, check=True, capture_output=True, text=True).stdout.strip()

    ingest_token, read_token = token("ingest"), token("read")
    ports = {"ingest": free_port(), "detector": free_port(), "query": free_port()}
    servers = [
        subprocess.Popen([os.path.join(BIN, f"threesigma-{name}")], stdout=subprocess.DEVNULL,
                         env=dict(env, THREESIGMA__SERVER__BIND=f"127.0.0.1:{port}", THREESIGMA__DETECTOR__INTERVAL="2s"))
        for name, port in ports.items()
    ]
    ingest = f"http://127.0.0.1:{ports['ingest']}"
    base = f"http://127.0.0.1:{ports['query']}"
    problems = []
    try:
        for port in ports.values():
            wait_ready(port)
        # The detector's first cycle runs on the empty database; backfilling after it keeps it
        # from judging half-sent minutes.
        for _ in range(300):
            if detector_ran(ports["detector"]):
                break
            time.sleep(0.1)
        send_traffic(ingest, ingest_token)
        incident = None
        for _ in range(120):
            status, page = http("GET", f"{base}/api/v1/incidents?status=open&service=checkout", read_token)
            if status == 200 and page["data"]:
                incident = page["data"][0]
                break
            time.sleep(0.5)
        if incident is None:
            sys.exit("no incident opened for the burst within 60 s")
        print(f"incident #{incident['id']} opened: {incident['title']}")

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            operator = Console(browser, base, args.shots, "operator")
            page = operator.page

            # Sign in (a shared link leads through sign-in to what it named).
            operator.go("/incidents")
            check("/sign-in?next=" in page.url, "a page without a session redirects to sign-in", problems)
            operator.accessible("sign-in")
            operator.shot("sign-in", full_page=False)
            page.get_by_label("Email").fill(OPERATOR[0])
            page.get_by_label("Password").fill("wrong password")
            page.get_by_role("button", name="Sign in").click()
            page.get_by_text("Wrong email or password.").wait_for()
            check(True, "a wrong password is answered on the form", problems)
            operator.problems = [p for p in operator.problems if "401" not in p]
            page.get_by_label("Password").fill(OPERATOR[1])
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(base + "/incidents")
            cookies = {c["name"]: c for c in operator.context.cookies()}
            session = cookies.get("threesigma_session", {})
            check(session.get("httpOnly") and session.get("sameSite") == "Strict",
                  "the session cookie is HttpOnly and SameSite=Strict", problems)

            # The incidents list.
            row = page.get_by_role("row").filter(has_text="checkout").first
            row.wait_for()
            check("open" in row.inner_text(), "the incident is listed as open", problems)
            operator.accessible("incidents")
            operator.shot("incidents")
            page.get_by_label("Severity").select_option(incident["severity"])
            page.get_by_role("button", name="Apply").click()
            page.wait_for_url(f"**/incidents?*severity={incident['severity']}*")
            page.get_by_role("row").filter(has_text="checkout").first.wait_for()
            check(f"severity={incident['severity']}" in page.url, "filters live in the URL", problems)

            # The incident page: chart with its band.
            page.get_by_role("link", name="checkout").first.click()
            page.wait_for_url(f"{base}/incidents/{incident['id']}")
            page.locator("figure.chart svg").wait_for()
            band = page.locator("svg polygon.band")
            bars = page.locator("svg rect.bar-errors")
            check(band.count() >= 1 and len(band.first.get_attribute("points").split()) >= 4,
                  f"the chart draws the baseline-to-threshold band ({band.count()} polygon)", problems)
            check(bars.count() >= 20, f"the chart draws per-minute error bars ({bars.count()})", problems)
            check(page.locator("svg line.marker.opened").count() == 1, "the chart marks the opening", problems)
            # What changed: the burst's message, new, and its attribute value.
            explanation = page.locator(".explanation")
            explanation.wait_for()
            text = explanation.inner_text()
            check("payment gateway refused: card processor unreachable" in text and "new" in text,
                  "the incident names the burst's new message template", problems)
            check("gateway=acme-pay" in text, "the incident names the burst's attribute value", problems)
            operator.accessible("incident")
            operator.shot("incident", full_page=False)

            # Acknowledge by keyboard, with a reason.
            reason = page.get_by_label("Reason (optional)")
            reason.focus()
            page.keyboard.type("looking at the payment gateway")
            page.keyboard.press("Tab")
            focused = page.evaluate("document.activeElement.textContent")
            check(focused == "Acknowledge", f"Tab moves from the reason to Acknowledge ({focused!r})", problems)
            page.keyboard.press("Enter")
            page.locator("#action-result").get_by_text(f"Acknowledged by {OPERATOR[0]}").wait_for()
            status, detail = http("GET", f"{base}/api/v1/incidents/{incident['id']}", read_token)
            check(status == 200 and detail["status"] == "acknowledged" and detail["acknowledged_by"] == OPERATOR[0],
                  f"the API says acknowledged by {OPERATOR[0]}", problems)
            check(any(e["kind"] == "acknowledged" and e["reason"] == "looking at the payment gateway" for e in detail["timeline"]),
                  "the reason is in the timeline", problems)
            page.locator("svg line.marker.acknowledged").wait_for(state="attached")
            operator.shot("incident-acknowledged", full_page=False)

            # Services, a service, logs.
            operator.go("/services")
            page.locator("svg.spark").first.wait_for()
            check(page.locator("svg.spark").count() >= 2, "services show sparklines", problems)
            operator.accessible("services")
            operator.shot("services")
            operator.go("/services/checkout")
            page.locator("figure.chart svg").wait_for()
            operator.accessible("service")
            operator.go("/logs?q=gateway&level=error&range=1h")
            page.get_by_role("cell", name="payment gateway refused: card processor unreachable").first.wait_for()
            check(page.get_by_role("button", name="Load more").is_visible(), "log search pages (Load more)", problems)
            more = page.get_by_role("button", name="Load more")
            more.focus()
            page.keyboard.press("Enter")
            page.get_by_text("100 logs shown").wait_for()
            check(page.evaluate("document.activeElement.textContent") == "Load more",
                  "Load more by keyboard keeps focus on the button", problems)
            operator.go("/logs?q=refused%20attr.gateway%3Dacme-pay&range=1h")
            page.get_by_role("cell", name="payment gateway refused: card processor unreachable").first.wait_for()
            operator.go("/logs?q=refused%20attr.gateway%3Dother-pay&range=1h")
            page.get_by_text("No logs.").wait_for()
            operator.go("/logs?q=gateway&range=")
            page.get_by_role("cell", name="payment gateway refused: card processor unreachable").first.wait_for()
            check(page.get_by_label("Time").input_value() == "", "log search over any time stays any time", problems)
            operator.accessible("logs")
            operator.shot("logs", full_page=False)

            # A narrow window stays readable.
            page.set_viewport_size({"width": 390, "height": 844})
            operator.go(f"/incidents/{incident['id']}")
            page.locator("figure.chart svg").wait_for()
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            check(overflow <= 1, f"a 390 px window has no sideways scroll ({overflow} px)", problems)
            operator.accessible("incident, narrow")
            operator.shot("incident-narrow", full_page=False)
            page.set_viewport_size({"width": 1280, "height": 900})

            # Sign out: the cookie is gone and its token revoked.
            old = session.get("value", "")
            operator.go("/incidents")
            page.get_by_role("button", name="Sign out").click()
            page.wait_for_url("**/sign-in?signed_out=1")
            operator.go("/incidents")
            check("/sign-in?next=" in page.url, "after sign-out, pages go to sign-in", problems)
            replay = urllib.request.Request(f"{base}/api/v1/auth/session", headers={"Cookie": f"threesigma_session={old}"})
            try:
                urllib.request.urlopen(replay, timeout=5)
                replayed = 200
            except urllib.error.HTTPError as error:
                replayed = error.code
            check(replayed == 401, f"the signed-out cookie is refused ({replayed})", problems)
            operator.context.close()

            # A viewer: no buttons, and the server refuses the action anyway. First a crafted
            # `next` (a tab the URL parser drops would make it `//evil.example`): signing in
            # stays on the console.
            viewer = Console(browser, base, args.shots, "viewer")
            viewer.go("/sign-in?next=/%09/evil.example/x")
            viewer.page.get_by_label("Email").fill(VIEWER[0])
            viewer.page.get_by_label("Password").fill(VIEWER[1])
            viewer.page.get_by_role("button", name="Sign in").click()
            viewer.page.wait_for_url(base + "/incidents")
            check(viewer.page.url == base + "/incidents", "a crafted next= cannot lead off the console", problems)
            viewer.go(f"/incidents/{incident['id']}")
            viewer.page.locator("figure.chart svg").wait_for()
            check(viewer.page.get_by_role("button", name="Resolve").count() == 0, "a viewer sees no Resolve button", problems)
            refused = viewer.page.evaluate(
                f"fetch('/api/v1/incidents/{incident['id']}/resolve', {{method: 'POST', headers: {{'Content-Type': 'application/json'}}, body: '{{}}'}}).then(r => r.status)")
            check(refused == 403, f"the server refuses a viewer's resolve ({refused})", problems)
            viewer.problems = [p for p in viewer.problems if "403" not in p]
            # An expired session returns to sign-in with a message.
            viewer.context.add_cookies([{"name": "threesigma_session", "value": expired_token(cli, env), "url": base}])
            viewer.go("/incidents")
            viewer.page.get_by_text("Your session has ended").wait_for()
            check("expired=1" in viewer.page.url, "an expired session returns to sign-in with a message", problems)
            viewer.context.close()
            browser.close()
            problems.extend(operator.problems + viewer.problems)
    finally:
        stop(servers, 20)
        psql(ADMIN, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    for problem in problems:
        print("PROBLEM", problem)
    print(f"\nconsole: {'PASS' if not problems else 'FAIL'}; screenshots in {args.shots}")
    sys.exit(1 if problems else 0)


def expired_token(cli, env):
    """A viewer token that expired a minute ago (past the verifier's 30 s leeway)."""
    return subprocess.run(
        [sys.executable, "-c", EXPIRED_TOKEN], env=env, check=True, capture_output=True, text=True).stdout.strip()


# An HS256 token with `exp` in the past, signed with the test's secret (the CLI refuses to
# issue one). Standard library only.
EXPIRED_TOKEN = r"""
import base64, hashlib, hmac, json, os, time, uuid
b64 = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=")
now = int(time.time())
claims = {"sub": "viewer@example.com", "scope": "read", "role": "viewer", "iss": "threesigma", "aud": "threesigma",
          "iat": now - 3600, "nbf": now - 3600, "exp": now - 60, "jti": uuid.uuid4().hex}
head = b64(json.dumps({"typ": "JWT", "alg": "HS256"}).encode()) + b"." + b64(json.dumps(claims).encode())
print((head + b"." + b64(hmac.new(os.environ["JWT_SECRET"].encode(), head, hashlib.sha256).digest())).decode())
"""


if __name__ == "__main__":
    main()
