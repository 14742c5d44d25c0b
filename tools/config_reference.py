#!/usr/bin/env python3
"""Prints the configuration reference table of docs/OPERATIONS.md.

Settings, defaults and environment variables come from each binary's --help (the same
code that loads them); descriptions from the doc comments of the settings structs.
Usage: cargo build --bins && python3 tools/config_reference.py
"""
import glob
import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVICES = ["ingest", "query", "detector"]
# Where a doc comment is shared by several fields, or says too little on its own.
OVERRIDES = {
    "ingest.max_batch_events": "A batch closes at this many events, or at `max_batch_bytes`, or `linger` after its first event, whichever comes first; 1 reproduces the naive INSERT-per-request design.",
    "ingest.max_batch_bytes": "A batch closes at this many bytes of events (see `max_batch_events`).",
    "ingest.linger": "A batch closes this long after its first event arrived (see `max_batch_events`).",
    "ingest.retry_max": "Longest pause between write retries.",
    "webhook.retry_max": "Longest pause between delivery attempts.",
    "rate_limit.login_burst": "Login attempts at once (query only: ingest has no login).",
    "rate_limit.login_per_minute": "Login attempts per minute per client address (query only).",
    "auth.secret": "HS256 secret, at least 32 bytes. Set it with `JWT_SECRET` or `JWT_SECRET_FILE` rather than in a file.",
}


def struct_docs():
    """{struct name: {field: doc}} from every settings-bearing source file."""
    docs = {}
    for path in glob.glob(os.path.join(ROOT, "crates/*/src/**/*.rs"), recursive=True):
        text = open(path).read()
        for match in re.finditer(r"pub struct (\w+) \{(.*?)\n\}", text, re.S):
            fields, doc = {}, []
            for line in match.group(2).splitlines():
                line = line.strip()
                if line.startswith("///"):
                    doc.append(line[3:].strip())
                elif m := re.match(r"pub (\w+):", line):
                    fields[m.group(1)] = " ".join(doc)
                    doc = []
                elif not line.startswith("#["):
                    doc = []
            docs.setdefault(match.group(1), {}).update(fields)
    return docs


def sections(service):
    """{section: struct name} from the service's top-level Settings."""
    path = os.path.join(ROOT, f"crates/{service}/src/settings.rs")
    text = open(path).read()
    body = re.search(r"pub struct Settings \{(.*?)\n\}", text, re.S).group(1)
    return {m.group(1): m.group(2).split("::")[-1] for m in re.finditer(r"pub (\w+): ([\w:]+),", body)}


def main():
    docs = struct_docs()
    rows = {}
    for service in SERVICES:
        binary = os.path.join(ROOT, "target", "debug", f"threesigma-{service}")
        help_text = subprocess.run([binary, "--help"], check=True, capture_output=True, text=True).stdout
        settings = help_text.split("Settings (defaults shown)", 1)[1].splitlines()[1:]
        owners = sections(service)
        for line in settings:
            m = re.match(r"\s+(\S+) = (.*?)\s+(THREESIGMA__\S+)$", line)
            if not m:
                continue
            key, default, env = m.groups()
            section, field = key.split(".", 1)
            doc = OVERRIDES.get(key) or docs.get(owners.get(section, ""), {}).get(field, "")
            row = rows.setdefault(key, {"default": default, "env": env, "doc": doc, "services": []})
            row["services"].append(service)
            if row["default"] != default:
                row["default"] += f" ({service}: {default})"
    print("| setting | environment variable | default | used by | meaning |")
    print("|---|---|---|---|---|")
    for key in sorted(rows):
        r = rows[key]
        default = r["default"].replace("|", "\\|")
        print(f"| `{key}` | `{r['env']}` | `{default}` | {', '.join(r['services'])} | {r['doc']} |")


if __name__ == "__main__":
    main()
