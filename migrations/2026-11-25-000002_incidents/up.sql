-- Incidents and their timeline.

CREATE TABLE incidents (
    id                 bigserial        PRIMARY KEY,
    service            text             NOT NULL,
    signal             text             NOT NULL CHECK (signal IN ('error_count', 'error_rate')),
    status             text             NOT NULL DEFAULT 'open'
                                        CHECK (status IN ('open', 'acknowledged', 'resolved')),
    severity           text             NOT NULL CHECK (severity IN ('warning', 'critical')),
    title              text             NOT NULL,
    opened_at          timestamptz      NOT NULL,
    acknowledged_at    timestamptz,
    acknowledged_by    text,
    resolved_at        timestamptz,
    resolved_by        text,
    last_evaluated_at  timestamptz      NOT NULL,
    -- The first and the newest minute buckets that fired: the incident's window.
    first_minute       timestamptz      NOT NULL,
    last_fired_minute  timestamptz      NOT NULL,
    current_z          double precision NOT NULL,
    peak_z             double precision NOT NULL,
    current_count      bigint           NOT NULL,
    -- All events (every level) in the evaluated window: the error rate is count / total.
    current_total      bigint           NOT NULL DEFAULT 0,
    peak_count         bigint           NOT NULL,
    p_value            double precision,
    -- The baseline in force when the incident opened (frozen while it is active).
    baseline_mean      double precision NOT NULL,
    baseline_stddev    double precision NOT NULL,
    baseline_minutes   integer          NOT NULL,
    -- Mean events (every level) per minute over the baseline.
    baseline_total_mean double precision NOT NULL DEFAULT 0,
    -- The thresholds in force.
    algorithm          text             NOT NULL,
    z_threshold        double precision NOT NULL,
    min_count          bigint           NOT NULL,
    reopened_count     integer          NOT NULL DEFAULT 0
);

-- At most one not-resolved incident per service and signal, however many detectors run.
-- INSERT ... ON CONFLICT (service, signal) WHERE status <> 'resolved' must repeat the predicate.
CREATE UNIQUE INDEX incidents_one_active ON incidents (service, signal) WHERE status <> 'resolved';

-- Keyset pages: (opened_at DESC, id DESC), globally and per service.
CREATE INDEX incidents_opened ON incidents (opened_at DESC, id DESC);
CREATE INDEX incidents_service_opened ON incidents (service, opened_at DESC, id DESC);

CREATE TABLE incident_events (
    id          bigserial        PRIMARY KEY,
    incident_id bigint           NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at          timestamptz      NOT NULL DEFAULT now(),
    kind        text             NOT NULL
                                 CHECK (kind IN ('opened', 'escalated', 'acknowledged', 'resolved', 'reopened')),
    actor       text             NOT NULL,
    reason      text             NOT NULL DEFAULT '',
    z           double precision,
    count       bigint
);

CREATE INDEX incident_events_incident ON incident_events (incident_id, at, id);
