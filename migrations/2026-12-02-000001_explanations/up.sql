-- What an incident is made of: the message templates and attribute values over-represented
-- in its window against its baseline (domain::patterns::Explanation as jsonb). One row per
-- incident and stage: when it opens, again when it escalates or reopens, never more; the
-- detector writes it after the incident's own statement has committed.
CREATE TABLE incident_explanations (
    incident_id    bigint      NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    severity       text        NOT NULL,
    reopened       integer     NOT NULL,
    computed_at    timestamptz NOT NULL,
    window_from    timestamptz NOT NULL,
    window_until   timestamptz NOT NULL,
    baseline_from  timestamptz NOT NULL,
    baseline_until timestamptz NOT NULL,
    body           jsonb       NOT NULL,
    PRIMARY KEY (incident_id, severity, reopened),
    -- Bounded: at most ten templates and ten attribute values each.
    CONSTRAINT incident_explanations_bounded CHECK (
        jsonb_array_length(body -> 'patterns') <= 10
        AND jsonb_array_length(body -> 'attributes') <= 10)
);

-- Samples of a service's ERROR+ lines in a time range read only those lines: with a
-- million INFO lines a minute beside a few errors, the (service, ts, id) index would walk
-- them all. Errors are a small share of rows, so the index is small and cheap to keep.
CREATE INDEX logs_errors_service_ts ON logs (service, ts) WHERE level >= 17;
