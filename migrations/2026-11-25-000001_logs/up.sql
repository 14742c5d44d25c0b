-- Logs, partitioned by day on event time, and the per-minute rollups the detector reads.

CREATE SEQUENCE logs_id_seq AS bigint CACHE 1000;

-- Logs are append-only: never UPDATEd, never DELETEd row by row. Retention drops whole
-- daily partitions. Incidents point at logs by (service, time window), never by id.
CREATE TABLE logs (
    ts          timestamptz NOT NULL,
    id          bigint      NOT NULL DEFAULT nextval('logs_id_seq'),
    received_at timestamptz NOT NULL DEFAULT now(),
    service     text        NOT NULL,
    level       smallint    NOT NULL,
    message     text        NOT NULL,
    attributes  jsonb       NOT NULL DEFAULT '{}',
    trace_id    text,
    span_id     text,
    PRIMARY KEY (ts, id)
) PARTITION BY RANGE (ts);

ALTER SEQUENCE logs_id_seq OWNED BY logs.id;

COMMENT ON COLUMN logs.level IS
    'Severity as the first OpenTelemetry SeverityNumber of its range: 1 trace, 5 debug, 9 info, 13 warn, 17 error, 21 fatal.';

-- (ts, id) is the primary key and serves time-range reads and keyset pages;
-- (service, ts, id) serves every per-service read.
CREATE INDEX logs_service_ts_id ON logs (service, ts, id);

-- Rows outside every daily partition (very old or far-future events) land here instead of
-- failing the whole batch; creating the partition for their day later moves them out.
CREATE TABLE logs_default PARTITION OF logs DEFAULT;

-- Creates the daily partitions for first_day .. first_day + days - 1 (UTC days) that do not
-- exist yet, moving any rows of those days out of the default partition. Returns how many
-- partitions it created. Safe to call concurrently: an advisory lock serialises callers.
CREATE FUNCTION threesigma_ensure_log_partitions(first_day date, days integer)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    day_start timestamptz;
    day_end   timestamptz;
    part_name text;
    created   integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('threesigma_log_partitions'));
    FOR i IN 0 .. days - 1 LOOP
        day_start := ((first_day + i)::timestamp AT TIME ZONE 'UTC');
        day_end   := ((first_day + i + 1)::timestamp AT TIME ZONE 'UTC');
        part_name := format('logs_p%s', to_char(first_day + i, 'YYYYMMDD'));
        CONTINUE WHEN to_regclass(part_name) IS NOT NULL;
        IF EXISTS (SELECT 1 FROM logs_default WHERE ts >= day_start AND ts < day_end) THEN
            EXECUTE format('CREATE TABLE %I (LIKE logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part_name);
            EXECUTE format(
                'WITH moved AS (DELETE FROM logs_default WHERE ts >= %L AND ts < %L RETURNING *) '
                'INSERT INTO %I SELECT * FROM moved', day_start, day_end, part_name);
            EXECUTE format('ALTER TABLE logs ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                part_name, day_start, day_end);
        ELSE
            EXECUTE format('CREATE TABLE %I PARTITION OF logs FOR VALUES FROM (%L) TO (%L)',
                part_name, day_start, day_end);
        END IF;
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;

-- Drops the daily partitions whose whole day is before cutoff_day. Returns their names.
CREATE FUNCTION threesigma_drop_log_partitions(cutoff_day date)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    part record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('threesigma_log_partitions'));
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'logs'::regclass
          AND c.relname ~ '^logs_p[0-9]{8}$'
          AND to_date(substring(c.relname FROM 7), 'YYYYMMDD') < cutoff_day
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        RETURN NEXT part.relname;
    END LOOP;
END
$$;

SELECT threesigma_ensure_log_partitions(((now() AT TIME ZONE 'UTC')::date - 8), 12);

-- One row per (service, minute, level, shard), upserted by the ingest writer in the same
-- transaction as the log rows. The detector reads only this table.
CREATE TABLE log_counts (
    service text        NOT NULL,
    minute  timestamptz NOT NULL,
    level   smallint    NOT NULL,
    shard   smallint    NOT NULL DEFAULT 0,
    n       integer     NOT NULL,
    PRIMARY KEY (service, minute, level, shard)
);

COMMENT ON COLUMN log_counts.shard IS
    'The ingest writer that upserted the row. Concurrent writers never contend for the same hot row; readers sum over shards.';

CREATE INDEX log_counts_minute ON log_counts (minute);

-- The bucket (0 .. buckets-1) a service belongs to when detector replicas share the work;
-- computed in the database so every replica agrees whatever it is built with.
CREATE FUNCTION threesigma_service_bucket(service text, buckets integer)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (abs(hashtextextended(service, 0) % buckets))::integer $$;
