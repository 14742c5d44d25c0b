//! Diesel's view of the tables created by `migrations/`. Written by hand to match them;
//! `store::tests::schema_matches_migrations` checks the two agree.

diesel::table! {
    logs (ts, id) {
        ts -> Timestamptz,
        id -> Int8,
        received_at -> Timestamptz,
        service -> Text,
        level -> Int2,
        message -> Text,
        attributes -> Jsonb,
        trace_id -> Nullable<Text>,
        span_id -> Nullable<Text>,
        terms -> Array<Int4>,
    }
}

diesel::table! {
    log_counts (service, minute, level, shard) {
        service -> Text,
        minute -> Timestamptz,
        level -> Int2,
        shard -> Int2,
        n -> Int4,
    }
}

diesel::table! {
    incidents (id) {
        id -> Int8,
        service -> Text,
        signal -> Text,
        status -> Text,
        severity -> Text,
        title -> Text,
        opened_at -> Timestamptz,
        acknowledged_at -> Nullable<Timestamptz>,
        acknowledged_by -> Nullable<Text>,
        resolved_at -> Nullable<Timestamptz>,
        resolved_by -> Nullable<Text>,
        last_evaluated_at -> Timestamptz,
        first_minute -> Timestamptz,
        last_fired_minute -> Timestamptz,
        current_z -> Float8,
        peak_z -> Float8,
        current_count -> Int8,
        current_total -> Int8,
        peak_count -> Int8,
        p_value -> Nullable<Float8>,
        baseline_mean -> Float8,
        baseline_stddev -> Float8,
        baseline_minutes -> Int4,
        baseline_total_mean -> Float8,
        algorithm -> Text,
        z_threshold -> Float8,
        min_count -> Int8,
        reopened_count -> Int4,
        opening -> Nullable<Jsonb>,
    }
}

diesel::table! {
    incident_events (id) {
        id -> Int8,
        incident_id -> Int8,
        at -> Timestamptz,
        kind -> Text,
        actor -> Text,
        reason -> Text,
        z -> Nullable<Float8>,
        count -> Nullable<Int8>,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        email -> Text,
        password_hash -> Text,
        role -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    revoked_tokens (jti) {
        jti -> Text,
        revoked_at -> Timestamptz,
        expires_at -> Timestamptz,
        reason -> Text,
    }
}

diesel::table! {
    service_status (service) {
        service -> Text,
        judged_at -> Timestamptz,
        minute -> Timestamptz,
        errors -> Int8,
        total -> Int8,
        expected -> Float8,
        spread -> Float8,
        z -> Float8,
        p_value -> Nullable<Float8>,
        fires -> Bool,
        baseline_mean -> Float8,
        baseline_stddev -> Float8,
        baseline_minutes -> Int4,
        baseline_total_mean -> Float8,
        baseline_reach -> Text,
        algorithm -> Text,
        config -> Nullable<Jsonb>,
    }
}

diesel::table! {
    incident_explanations (incident_id, severity, reopened) {
        incident_id -> Int8,
        severity -> Text,
        reopened -> Int4,
        computed_at -> Timestamptz,
        window_from -> Timestamptz,
        window_until -> Timestamptz,
        baseline_from -> Timestamptz,
        baseline_until -> Timestamptz,
        body -> Jsonb,
    }
}

diesel::joinable!(incident_events -> incidents (incident_id));
diesel::joinable!(incident_explanations -> incidents (incident_id));
diesel::table! {
    log_search_blocks (slice, block) {
        slice -> Int2,
        block -> Timestamptz,
        terms -> Array<Int4>,
    }
}

diesel::table! {
    log_search_pending (block, shard) {
        block -> Timestamptz,
        shard -> Int2,
        version -> Int8,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    logs,
    log_search_blocks,
    log_search_pending,
    log_counts,
    incidents,
    incident_events,
    incident_explanations,
    users,
    revoked_tokens,
    service_status
);
