#!/bin/bash
# Explanation cost with large attributes: 2,000 baseline + 2,000 burst lines of ~60 KB
# attributes (1,000 keys + 200 nested objects, 43 kB stored), against the same lines with
# small ones: `threesigma-detector once` opens the incident and explains it; its time and
# peak memory are printed. Needs the release binaries (`cargo build --release --bins`) and
# PostgreSQL on 127.0.0.1:5432 (scratch databases threesigma_evil_*, dropped after).
set -e
BIN=${THREESIGMA_BIN:-target/release}
for kind in small large; do
  DB=threesigma_evil_$kind
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
  URL=postgres://postgres@127.0.0.1:5432/$DB
  $BIN/threesigma migrate --database-url $URL >/dev/null
  if [ $kind = large ]; then
    ATTR="(SELECT jsonb_object_agg('k' || g || '_' || i, md5(g::text || i::text)) FROM generate_series(1, 1000) g) || jsonb_build_object('host', 'h' || (i % 3), 'nested', (SELECT jsonb_object_agg('n' || g, jsonb_build_object('deep', jsonb_build_object('deeper', md5(g::text)))) FROM generate_series(1, 200) g))"
  else
    ATTR="jsonb_build_object('host', 'h' || (i % 3), 'env', 'prod')"
  fi
  psql -q -h 127.0.0.1 -U postgres -d $DB <<SQL
INSERT INTO logs (ts, service, level, message, attributes)
SELECT date_trunc('minute', now()) - make_interval(mins => 1 + i % 40) + make_interval(secs => i % 60),
       'evil', 17, 'error in tok' || (i % 7) || ' step ' || md5(i::text), $ATTR
FROM generate_series(1, 2000) i;
INSERT INTO logs (ts, service, level, message, attributes)
SELECT date_trunc('minute', now()) + make_interval(secs => (i % 30)::double precision / 10),
       'evil', 17, 'disk full on volume ' || md5(i::text), $ATTR
FROM generate_series(1, 2000) i;
INSERT INTO log_counts (service, minute, level, shard, n)
SELECT service, date_trunc('minute', ts), level, 0, count(*) FROM logs GROUP BY 1, 2, 3;
SQL
  psql -q -h 127.0.0.1 -U postgres -d $DB -c "SELECT pg_size_pretty(avg(pg_column_size(attributes))::bigint) AS avg_attributes_stored, avg(length(attributes::text))::int AS avg_attributes_text FROM logs"
  /usr/bin/time -f "$kind: %e s, max RSS %M KB" env DATABASE_URL=$URL RUST_LOG=warn $BIN/threesigma-detector once > /tmp/threesigma_evil_$kind.json 2>/tmp/threesigma_evil_$kind.err || true
  tail -1 /tmp/threesigma_evil_$kind.err
  psql -h 127.0.0.1 -U postgres -d $DB -At -c "SELECT body->'window', body->'baseline', jsonb_array_length(body->'attributes'), body->'patterns'->0->>'template' FROM incident_explanations"
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
done
