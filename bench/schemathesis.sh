#!/usr/bin/env bash
# Property-based API testing of the query API with schemathesis (PyPI), against its own
# OpenAPI document, on 127.0.0.1 only, bounded by --max-examples. Exits non-zero when
# schemathesis finds a failure. `just schemathesis` runs it; docs/SECURITY.md has a run.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v schemathesis >/dev/null || python3 -m pip install -q 'schemathesis>=4,<5'
cargo build --release --bin threesigma --bin threesigma-query

ADMIN_URL=${BENCH_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DATABASE=threesigma_schemathesis
DATABASE_URL="${ADMIN_URL%/*}/$DATABASE"
MAX_EXAMPLES=${MAX_EXAMPLES:-100}
PORT=${PORT:-18781}
export DATABASE_URL
export JWT_SECRET
JWT_SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '/+=' | head -c 40)

psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)" -c "CREATE DATABASE $DATABASE"
./target/release/threesigma migrate >/dev/null
# Something to read: incidents (open and resolved) with timelines, and logs.
psql "$DATABASE_URL" -q <<'SQL'
INSERT INTO incidents (service, signal, status, severity, title, opened_at, last_evaluated_at, first_minute,
    last_fired_minute, current_z, peak_z, current_count, peak_count, baseline_mean, baseline_stddev,
    baseline_minutes, algorithm, z_threshold, min_count, resolved_at)
SELECT 'svc-' || i, 'error_count', CASE WHEN i % 3 = 0 THEN 'open' ELSE 'resolved' END, 'warning', 'errors up',
       now() - make_interval(mins => i), now(), now(), now(), 4, 5, 20, 25, 2, 1, 30, 'negative_binomial', 3, 5,
       CASE WHEN i % 3 = 0 THEN NULL ELSE now() END
FROM generate_series(1, 30) i;
INSERT INTO incident_events (incident_id, kind, actor) SELECT id, 'opened', 'detector' FROM incidents;
INSERT INTO logs (ts, service, level, message) SELECT now() - make_interval(secs => i), 'svc-' || (i % 30), 17, 'm' || i
FROM generate_series(1, 500) i;
SQL
printf 'correct horse battery staple\n' | ./target/release/threesigma user add --email admin@example.com --role admin >/dev/null
TOKEN=$(./target/release/threesigma token issue --scope admin --subject schemathesis --ttl 1h 2>/dev/null)

THREESIGMA__RATE_LIMIT__PER_SECOND=0 THREESIGMA__RATE_LIMIT__LOGIN_PER_MINUTE=1000000 \
THREESIGMA__RATE_LIMIT__LOGIN_BURST=1000000 RUST_LOG=warn \
  ./target/release/threesigma-query --bind "127.0.0.1:$PORT" &
QUERY=$!
trap 'kill $QUERY 2>/dev/null; psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)" 2>/dev/null' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

schemathesis --config-file bench/schemathesis.toml run "http://127.0.0.1:$PORT/api/v1/openapi.json" \
  --header "Authorization: Bearer $TOKEN" \
  --checks all \
  --max-examples "$MAX_EXAMPLES" \
  --request-timeout 10 \
  --workers 2 \
  --seed 20261125 \
  "$@"
