-- The detector's verdict on each service's last complete minute, so `GET /api/v1/services`
-- shows what the detector decided (its settings, its baseline with anomalous minutes left
-- out) instead of recomputing it. One row per service, upserted by whichever detector
-- evaluates the service when a minute completes (or its counts change).
CREATE TABLE service_status (
    service          text             PRIMARY KEY,
    judged_at        timestamptz      NOT NULL,
    minute           timestamptz      NOT NULL,
    errors           bigint           NOT NULL,
    total            bigint           NOT NULL,
    expected         double precision NOT NULL,
    spread           double precision NOT NULL,
    z                double precision NOT NULL,
    -- NULL when the count is within the count guard (nothing could fire).
    p_value          double precision,
    fires            boolean          NOT NULL,
    baseline_mean    double precision NOT NULL,
    baseline_stddev  double precision NOT NULL,
    baseline_minutes integer          NOT NULL,
    baseline_total_mean double precision NOT NULL,
    -- 'window', 'lookback' or 'unfiltered': how far the baseline reached for usable minutes.
    baseline_reach   text             NOT NULL,
    algorithm        text             NOT NULL
);
