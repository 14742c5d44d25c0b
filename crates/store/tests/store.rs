//! The storage layer against a real PostgreSQL: a fresh database per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use domain::{EventLimits, LogEvent, Minute, Severity};
use serde_json::json;
use store::incidents::{self, Actor, IncidentFilter, Measurement};
use store::schema::{incident_events, log_counts, logs};
use store::testing::TestDatabase;

async fn connect(db: &TestDatabase) -> AsyncPgConnection {
    AsyncPgConnection::establish(&db.url).await.unwrap()
}

async fn raw(db: &TestDatabase) -> store::bulk::BulkConnection {
    let config = store::pool::connection_config(&db.url, &store::PoolSettings::default()).unwrap();
    store::bulk::BulkConnection::connect(&config).await.unwrap()
}

fn event(service: &str, level: &str, ts: chrono::DateTime<Utc>, message: &str) -> LogEvent {
    LogEvent::from_json(
        json!({"service": service, "level": level, "message": message, "ts": ts.to_rfc3339(), "k": 1}),
        Utc::now(),
        &EventLimits::default(),
    )
    .unwrap()
}

fn detector() -> Actor<'static> {
    Actor {
        name: "detector",
        reason: "test",
    }
}

use store::testing::new_incident;

#[tokio::test]
async fn migrations_leave_nothing_pending() {
    let db = TestDatabase::create().await;
    assert_eq!(store::migrate::pending_count(&db.url).await.unwrap(), 0);
    store::migrate::ensure_current(&db.url).await.unwrap();
}

#[tokio::test]
async fn a_batch_writes_logs_and_rollups_together() {
    let db = TestDatabase::create().await;
    let now = Utc::now();
    let events = [
        event("a", "error", now, "one"),
        event("a", "error", now, "two"),
        event("a", "info", now, "three"),
        event("b", "warn", now - Duration::minutes(3), "four"),
    ];
    let mut client = raw(&db).await;
    assert_eq!(
        client
            .write_new_batch(
                &events.iter().collect::<Vec<_>>(),
                0,
                store::bulk::BulkMethod::Copy
            )
            .await
            .unwrap(),
        store::bulk::Written::Stored(4)
    );
    assert_eq!(
        client
            .write_new_batch(&[&events[0]], 1, store::bulk::BulkMethod::Unnest)
            .await
            .unwrap(),
        store::bulk::Written::Stored(1)
    );

    let mut conn = connect(&db).await;
    let stored: i64 = logs::table.count().get_result(&mut conn).await.unwrap();
    assert_eq!(stored, 5);
    let attributes: serde_json::Value = logs::table
        .filter(logs::message.eq("four"))
        .select(logs::attributes)
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!(attributes, json!({"k": 1}));
    let counts = store::counts::minute_counts(
        &mut conn,
        now - Duration::minutes(10),
        now,
        &store::scope::Scope::All,
        17,
    )
    .await
    .unwrap();
    let a = counts.iter().find(|row| row.service == "a").unwrap();
    assert_eq!((a.errors, a.total), (Some(3), Some(4)));
    let b = counts.iter().find(|row| row.service == "b").unwrap();
    assert_eq!((b.errors, b.total), (None, Some(1)));
    let shards: i64 = log_counts::table
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(shards, 4, "writer shards keep separate rollup rows");
}

#[tokio::test]
async fn a_batch_sent_again_under_its_id_is_stored_once() {
    use store::bulk::{BatchIdentity, BulkMethod, Written};
    let db = TestDatabase::create().await;
    let now = Utc::now();
    let events = [
        event("a", "error", now, "one"),
        event("b", "info", now, "two"),
    ];
    let refs: Vec<&LogEvent> = events.iter().collect();
    let mut client = raw(&db).await;
    for (method, key) in [
        (BulkMethod::Copy, "k-copy"),
        (BulkMethod::Unnest, "k-unnest"),
    ] {
        let id = store::bulk::new_batch_id();
        let identity = BatchIdentity {
            id: &id,
            keys: &[key],
            digests: &[b"digest".as_slice()],
        };
        assert_eq!(
            client
                .write_batch(&refs, 0, method, identity)
                .await
                .unwrap(),
            Written::Stored(2)
        );
        // The answer was lost; the writer sends the same batch again (by either method).
        for again in [BulkMethod::Copy, BulkMethod::Unnest] {
            assert_eq!(
                client.write_batch(&refs, 1, again, identity).await.unwrap(),
                Written::AlreadyStored
            );
        }
        // Another batch carrying a request whose key is taken fails as a whole.
        let other = store::bulk::new_batch_id();
        let error = client
            .write_batch(
                &refs,
                0,
                method,
                BatchIdentity {
                    id: &other,
                    keys: &[key],
                    digests: &[b"other".as_slice()],
                },
            )
            .await
            .unwrap_err();
        assert!(error.is_unique_violation(), "{error}");
    }
    let stored = client
        .stored_keys(&["k-copy", "k-unnest", "unknown"])
        .await
        .unwrap();
    let mut keys: Vec<_> = stored
        .iter()
        .map(|(key, digest)| (key.as_str(), digest.as_slice()))
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            ("k-copy", b"digest".as_slice()),
            ("k-unnest", b"digest".as_slice())
        ]
    );

    let mut conn = connect(&db).await;
    let rows: i64 = logs::table.count().get_result(&mut conn).await.unwrap();
    assert_eq!(rows, 4, "two batches of two rows, each stored once");
    let counted: Vec<Option<i64>> = log_counts::table
        .select(diesel::dsl::sum(log_counts::n))
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(counted, [Some(4)], "rollups counted once too");
}

#[tokio::test]
async fn copy_and_unnest_store_the_same_rows() {
    let db = TestDatabase::create().await;
    let now = Utc::now();
    let mut with_ids = event("a", "fatal", now, "with ids");
    with_ids.trace_id = Some("t1".to_owned());
    with_ids.span_id = Some("s1".to_owned());
    let events = [with_ids, event("b", "debug", now, "plain")];
    let refs: Vec<&LogEvent> = events.iter().collect();
    let mut client = raw(&db).await;
    for method in [
        store::bulk::BulkMethod::Copy,
        store::bulk::BulkMethod::Unnest,
    ] {
        assert_eq!(
            client.write_new_batch(&refs, 0, method).await.unwrap(),
            store::bulk::Written::Stored(2)
        );
    }
    let mut conn = connect(&db).await;
    type Row = (
        String,
        i16,
        String,
        serde_json::Value,
        Option<String>,
        Option<String>,
        Vec<i32>,
    );
    let rows: Vec<Row> = logs::table
        .order((logs::service, logs::id))
        .select((
            logs::service,
            logs::level,
            logs::message,
            logs::attributes,
            logs::trace_id,
            logs::span_id,
            logs::terms,
        ))
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0], rows[1], "COPY and UNNEST rows are identical");
    assert_eq!(rows[2], rows[3]);
    assert_eq!(rows[0].4.as_deref(), Some("t1"));
    assert_eq!(rows[0].3, json!({"k": 1}));
    // Each row carries its own search terms (UNNEST slices them out of one array).
    assert_eq!(rows[0].6, events[0].terms);
    assert_eq!(rows[2].6, events[1].terms);
    assert_ne!(rows[0].6, rows[2].6);
}

#[tokio::test]
async fn a_failed_batch_leaves_nothing_behind() {
    let db = TestDatabase::create().await;
    let mut client = raw(&db).await;
    // A NUL byte is valid in Rust strings and refused by PostgreSQL text (validation
    // replaces it; this event skips validation): the batch fails after the first, valid
    // row was already sent.
    let mut bad = event("a", "error", Utc::now(), "bad");
    bad.message.push('\0');
    let events = [event("a", "error", Utc::now(), "fine"), bad];
    assert!(
        client
            .write_new_batch(
                &events.iter().collect::<Vec<_>>(),
                0,
                store::bulk::BulkMethod::Copy
            )
            .await
            .is_err()
    );
    let mut conn = connect(&db).await;
    let stored: i64 = logs::table.count().get_result(&mut conn).await.unwrap();
    let counted: i64 = log_counts::table
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!((stored, counted), (0, 0));
}

#[tokio::test]
async fn only_one_active_incident_per_service_and_signal() {
    let db = TestDatabase::create().await;
    let mut conn = connect(&db).await;
    let now = Utc::now();
    let first = incidents::open(&mut conn, &new_incident("a", now), detector())
        .await
        .unwrap();
    let second = incidents::open(&mut conn, &new_incident("a", now), detector())
        .await
        .unwrap();
    assert!(first.is_some());
    assert_eq!(second, None);
    let other = incidents::open(&mut conn, &new_incident("b", now), detector())
        .await
        .unwrap();
    assert!(other.is_some());

    let id = first.unwrap();
    let measurement = Measurement {
        at: now,
        z: 7.0,
        count: 50,
        total: 500,
        p_value: None,
    };
    incidents::update(
        &mut conn,
        id,
        measurement,
        "a: 50 errors/min",
        now,
        Some(Severity::Critical),
        detector(),
    )
    .await
    .unwrap();
    incidents::update(
        &mut conn,
        id,
        Measurement {
            z: 3.5,
            ..measurement
        },
        "a: 50 errors/min, z = 3.5",
        now,
        Some(Severity::Critical),
        detector(),
    )
    .await
    .unwrap();
    let row = incidents::find(&mut conn, id).await.unwrap().unwrap();
    assert_eq!((row.current_z, row.peak_z, row.peak_count), (3.5, 7.0, 50));
    assert_eq!(row.title, "a: 50 errors/min, z = 3.5");
    assert_eq!(row.severity, domain::Severity::Critical);

    assert!(
        incidents::resolve(&mut conn, id, now, detector())
            .await
            .unwrap()
    );
    assert!(
        !incidents::resolve(&mut conn, id, now, detector())
            .await
            .unwrap()
    );
    let kinds: Vec<String> = incident_events::table
        .filter(incident_events::incident_id.eq(id))
        .order(incident_events::id)
        .select(incident_events::kind)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(kinds, ["opened", "escalated", "resolved"]);

    // Resolved: a new one may open; the old one can then not be reopened beside it.
    let third = incidents::open(&mut conn, &new_incident("a", now), detector())
        .await
        .unwrap();
    assert!(third.is_some());
    assert!(
        !incidents::reopen(
            &mut conn,
            id,
            measurement,
            "a: again",
            now,
            Severity::Warning,
            detector()
        )
        .await
        .unwrap()
    );
}

#[tokio::test]
async fn incident_pages_are_keyset_and_complete() {
    let db = TestDatabase::create().await;
    let mut conn = connect(&db).await;
    let base = Utc::now();
    let mut opened = Vec::new();
    for i in 0..25 {
        let service = format!("s{i}");
        // Pairs share an opened_at, so ties on the timestamp are exercised.
        let at = base - Duration::seconds(i / 2);
        let id = incidents::open(&mut conn, &new_incident(&service, at), detector())
            .await
            .unwrap()
            .unwrap();
        opened.push(id);
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = incidents::page(&mut conn, &IncidentFilter::default(), after, 7)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|row| (row.opened_at, row.id));
        seen.extend(page.iter().map(|row| row.id));
    }
    let mut expected = opened.clone();
    expected.sort_unstable();
    let mut sorted_seen = seen.clone();
    sorted_seen.sort_unstable();
    assert_eq!(sorted_seen, expected, "every incident exactly once");
    assert_eq!(seen.len(), 25);
}

#[tokio::test]
async fn partitions_are_created_ahead_and_dropped_behind() {
    let db = TestDatabase::create().await;
    let mut conn = connect(&db).await;
    store::partitions::ensure_ahead(&mut conn, 30)
        .await
        .unwrap();
    assert_eq!(
        store::partitions::ensure_ahead(&mut conn, 30)
            .await
            .unwrap(),
        0
    );
    let dropped = store::partitions::drop_expired(&mut conn, 3).await.unwrap();
    assert!(!dropped.is_empty());
    assert!(dropped.iter().all(|name| name.starts_with("logs_p")));
}

#[tokio::test]
async fn maintenance_prunes_old_rollups_and_runs_in_one_place_at_a_time() {
    let db = TestDatabase::create().await;
    let mut conn = connect(&db).await;
    let now = Utc::now();
    for (service, age_days) in [("old", 40), ("recent", 1)] {
        diesel::insert_into(log_counts::table)
            .values((
                log_counts::service.eq(service),
                log_counts::minute.eq(Minute::containing(now - Duration::days(age_days)).start()),
                log_counts::level.eq(17_i16),
                log_counts::shard.eq(0_i16),
                log_counts::n.eq(3),
            ))
            .execute(&mut conn)
            .await
            .unwrap();
    }

    // Another detector holds the maintenance lock: this one leaves everything alone.
    let mut other = connect(&db).await;
    diesel::sql_query("BEGIN")
        .execute(&mut other)
        .await
        .unwrap();
    diesel::sql_query("SELECT pg_advisory_xact_lock(29811, -2)")
        .execute(&mut other)
        .await
        .unwrap();
    assert_eq!(
        store::partitions::maintain(&mut conn, 3, 30).await.unwrap(),
        None
    );
    diesel::sql_query("COMMIT")
        .execute(&mut other)
        .await
        .unwrap();

    let done = store::partitions::maintain(&mut conn, 3, 30)
        .await
        .unwrap()
        .expect("the lock is free");
    assert_eq!(done.pruned_counts, 1);
    let left: Vec<String> = log_counts::table
        .select(log_counts::service)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, ["recent"]);
}

/// PostgreSQL switches a prepared statement to a generic plan after five executions, and a
/// generic plan cannot infer the partial unique index from a bound `status <> $1` ("no
/// unique or exclusion constraint matching the ON CONFLICT specification", checked with
/// psql). diesel does not keep this statement in its per-connection cache today; if it ever
/// did, every open after the fifth on a long-lived pooled connection would fail. This pins
/// it.
#[tokio::test]
async fn incidents_keep_opening_on_one_connection_beyond_the_plan_cache_switch() {
    let db = TestDatabase::create().await;
    let mut conn = connect(&db).await;
    let now = Utc::now();
    let services: Vec<String> = (0..12).map(|i| format!("svc-{i}")).collect();
    for service in &services {
        let opened = incidents::open(&mut conn, &new_incident(service, now), detector())
            .await
            .unwrap();
        assert!(opened.is_some(), "{service}");
        // And a duplicate is still refused by the index, not by an error.
        let again = incidents::open(&mut conn, &new_incident(service, now), detector())
            .await
            .unwrap();
        assert!(again.is_none(), "{service}");
    }
}

/// A token is accepted until `exp` + the verifier's leeway (30 s): its revocation must be
/// listed that long too. It was deleted at `exp`, so a revoked token worked again for up to
/// 30 s after it expired.
#[tokio::test]
async fn revocations_outlive_their_tokens_by_the_leeway() {
    let db = TestDatabase::create().await;
    let mut conn = connect(&db).await;
    let now = Utc::now();
    let leeway = Duration::seconds(30);
    store::users::revoke_token(
        &mut conn,
        "expired-10s-ago",
        now - Duration::seconds(10),
        "",
    )
    .await
    .unwrap();
    store::users::revoke_token(&mut conn, "expired-1m-ago", now - Duration::minutes(1), "")
        .await
        .unwrap();
    store::users::revoke_token(&mut conn, "valid", now + Duration::hours(1), "")
        .await
        .unwrap();
    let mut ids = store::users::revoked_token_ids(&mut conn, leeway)
        .await
        .unwrap();
    ids.sort();
    assert_eq!(ids, ["expired-10s-ago", "valid"]);
    // Past the leeway the row is gone.
    let rows: i64 = store::schema::revoked_tokens::table
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows, 2);
}

#[tokio::test]
async fn samples_are_bounded_per_minute_weighted_and_read_through_the_error_index() {
    let db = TestDatabase::create().await;
    let minute = Minute::containing(Utc::now()).minus(10);
    let mut events = Vec::new();
    // Minute 0: 300 errors and 1,000 infos; minute 1: 4 errors; minute 2: nothing.
    for i in 0..300 {
        events.push(event(
            "svc",
            "error",
            minute.start() + Duration::milliseconds(150 * i),
            "e",
        ));
    }
    for i in 0..1_000 {
        events.push(event(
            "svc",
            "info",
            minute.start() + Duration::milliseconds(50 * i),
            "i",
        ));
    }
    for i in 0..4 {
        events.push(event(
            "svc",
            "fatal",
            minute.plus(1).start() + Duration::seconds(i),
            "f",
        ));
    }
    events.push(event("other", "error", minute.start(), "not svc"));
    raw(&db)
        .await
        .write_new_batch(
            &events.iter().collect::<Vec<_>>(),
            0,
            store::bulk::BulkMethod::Copy,
        )
        .await
        .unwrap();
    let mut conn = connect(&db).await;
    let error = domain::Level::Error.as_i16();
    // 90 lines over three minutes: at most 30 a minute.
    let sample = store::explanations::sample(
        &mut conn,
        "svc",
        (minute.start(), minute.plus(3).start()),
        error,
        90,
        true,
    )
    .await
    .unwrap();
    let first: Vec<f64> = sample
        .lines
        .iter()
        .filter(|(l, _)| l.minute == minute.start())
        .map(|(_, w)| *w)
        .collect();
    let second: Vec<f64> = sample
        .lines
        .iter()
        .filter(|(l, _)| l.minute == minute.plus(1).start())
        .map(|(_, w)| *w)
        .collect();
    // The quiet minute is read whole; the busy one gets the rest of the 90.
    assert_eq!(second, vec![1.0; 4]);
    assert_eq!(first.len(), 86);
    assert!(
        first.iter().all(|w| (w - 300.0 / 86.0).abs() < 1e-9),
        "{first:?}"
    );
    assert_eq!(sample.lines.len(), 90);
    assert!(
        sample
            .lines
            .iter()
            .all(|(l, _)| l.attributes == json!({"k": 1}))
    );
    assert!(
        sample
            .lines
            .iter()
            .all(|(l, _)| l.message != "i" && l.message != "not svc")
    );
    let estimated: f64 = sample.lines.iter().map(|(_, w)| w).sum();
    assert!((estimated - 304.0).abs() < 1e-9);

    // Every level (the patterns endpoint's default) reads the infos too.
    let all = store::explanations::sample(
        &mut conn,
        "svc",
        (minute.start(), minute.plus(1).start()),
        domain::Level::Trace.as_i16(),
        50,
        false,
    )
    .await
    .unwrap();
    assert_eq!(all.lines.len(), 50);
    assert!(all.lines.iter().all(|(_, w)| (w - 26.0).abs() < 1e-9));
    // Not asked for: no attributes read.
    assert!(all.lines.iter().all(|(l, _)| l.attributes == json!({})));

    // The ERROR+ read can use the partial index (its predicate is provable from the
    // statement); with sequential scans off, the planner shows it does.
    diesel::sql_query("SET enable_seqscan = off")
        .execute(&mut conn)
        .await
        .unwrap();
    // EXPLAIN's column is named "QUERY PLAN"; a function gives it a name diesel can read.
    diesel::sql_query(
        "CREATE FUNCTION threesigma_test_plan(statement text) RETURNS SETOF text \
         LANGUAGE plpgsql AS $f$ DECLARE line text; BEGIN \
         FOR line IN EXECUTE 'EXPLAIN ' || statement LOOP RETURN NEXT line; END LOOP; END $f$",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let forced: Vec<String> = diesel::sql_query(format!(
        "SELECT * FROM threesigma_test_plan($$SELECT id FROM logs WHERE service = 'svc' AND level >= {error} \
         AND ts >= now() - interval '1 hour' AND ts < now() ORDER BY ts DESC LIMIT 30$$) AS plan"
    ))
    .load::<PlanLine>(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|l| l.plan)
    .collect();
    // Partitions carry their own copies of the partitioned index, under their own names.
    let partial: Vec<String> = diesel::sql_query(
        "SELECT c.relname AS plan FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'logs_errors_service_ts'::regclass",
    )
    .load::<PlanLine>(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|l| l.plan)
    .collect();
    assert!(
        forced
            .iter()
            .any(|l| partial.iter().any(|name| l.contains(&format!(" {name} ")))),
        "{forced:#?} uses none of {partial:?}"
    );
}

#[derive(diesel::QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = diesel::sql_types::Text)]
    plan: String,
}

#[tokio::test]
async fn explanations_are_stored_once_per_stage_and_listed_while_missing() {
    let db = TestDatabase::create().await;
    let mut conn = connect(&db).await;
    let now = Utc::now();
    let id = incidents::open(&mut conn, &new_incident("svc", now), detector())
        .await
        .unwrap()
        .unwrap();
    let all = store::scope::Scope::All;
    let pending = store::explanations::pending(&mut conn, &all, 10)
        .await
        .unwrap();
    assert_eq!(pending.iter().map(|i| i.id).collect::<Vec<_>>(), vec![id]);
    let body = domain::patterns::Explanation::default();
    let new = store::explanations::NewExplanation {
        incident_id: id,
        severity: pending[0].severity,
        reopened: pending[0].reopened_count,
        computed_at: now,
        window_from: now - Duration::minutes(2),
        window_until: now,
        baseline_from: now - Duration::minutes(62),
        baseline_until: now - Duration::minutes(2),
        body,
    };
    assert!(store::explanations::insert(&mut conn, &new).await.unwrap());
    assert!(!store::explanations::insert(&mut conn, &new).await.unwrap());
    assert!(
        store::explanations::pending(&mut conn, &all, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let latest = store::explanations::latest(&mut conn, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        latest.explanation().unwrap(),
        domain::patterns::Explanation::default()
    );
    // Another service's scope does not list it; a new stage lists it again.
    diesel::update(store::schema::incidents::table.find(id))
        .set(store::schema::incidents::severity.eq("critical"))
        .execute(&mut conn)
        .await
        .unwrap();
    let other = store::scope::Scope::Services(vec!["other".to_owned()]);
    assert!(
        store::explanations::pending(&mut conn, &other, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store::explanations::pending(&mut conn, &all, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // The table refuses more than ten templates.
    let mut big = new.clone();
    big.severity = Severity::Critical;
    big.body.patterns = (0..11)
        .map(|i| domain::patterns::PatternChange {
            template: format!("t{i}"),
            window_count: 1,
            baseline_count: 0,
            lift: None,
            new: true,
            over_represented: false,
            example_log_id: i,
            example_ts: now,
            example_message: String::new(),
        })
        .collect();
    assert!(store::explanations::insert(&mut conn, &big).await.is_err());
}

#[tokio::test]
async fn samples_read_bounded_attributes_and_messages() {
    let db = TestDatabase::create().await;
    let at = Minute::containing(Utc::now()).minus(5).start();
    let huge: serde_json::Map<String, serde_json::Value> = (0..1_200)
        .map(|i| {
            (
                format!("key{i}"),
                json!(format!("value number {i} of a large object")),
            )
        })
        .collect();
    let mut nested = serde_json::Map::new();
    for i in 0..100 {
        nested.insert(format!("k{i:03}"), json!(i));
    }
    let events: Vec<LogEvent> = [
        json!({"host": "web-1", "ok": true, "n": 3, "k8s": {"pod": "p-1", "deep": {"x": 1}},
               "list": [1, 2], "body": "x".repeat(500)}),
        serde_json::Value::Object(huge),
        serde_json::Value::Object(nested),
    ]
    .into_iter()
    .map(|attributes| {
        LogEvent::from_json(
            json!({"service": "svc", "level": "error", "message": "m ".repeat(3_000),
                   "ts": at.to_rfc3339(), "attributes": attributes}),
            Utc::now(),
            &EventLimits::default(),
        )
        .unwrap()
    })
    .collect();
    raw(&db)
        .await
        .write_new_batch(
            &events.iter().collect::<Vec<_>>(),
            0,
            store::bulk::BulkMethod::Copy,
        )
        .await
        .unwrap();
    let mut conn = connect(&db).await;
    let sample = store::explanations::sample(
        &mut conn,
        "svc",
        (at, at + Duration::minutes(1)),
        domain::Level::Error.as_i16(),
        10,
        true,
    )
    .await
    .unwrap();
    assert_eq!(sample.lines.len(), 3);
    let attributes: Vec<serde_json::Value> = sample
        .lines
        .iter()
        .map(|(l, _)| l.attributes.clone())
        .collect();
    // Small objects are read as they are (the domain picks their values); a large one
    // (48 KB of text) is left out.
    assert_eq!(
        attributes
            .iter()
            .filter(|a| a.as_object().unwrap().is_empty())
            .count(),
        1
    );
    assert!(attributes.iter().any(|a| a["host"] == "web-1"));
    assert!(
        attributes
            .iter()
            .any(|a| a.as_object().unwrap().len() == 100)
    );
    assert!(
        sample
            .lines
            .iter()
            .all(|(l, _)| l.message.chars().count() == 2_048)
    );
}

/// A failover ends the session that held a detector's bucket locks: `confirm` (called
/// before a cycle writes) notices, and the next refresh takes the buckets again.
#[tokio::test]
async fn bucket_locks_lost_with_their_session_are_noticed_and_taken_again() {
    let db = TestDatabase::create().await;
    let config = store::pool::ConnectionConfig::parse(&db.url).unwrap();
    let mut leases = store::leases::BucketLeases::new(config, 8);
    assert_eq!(leases.refresh().await.unwrap(), (0..8).collect::<Vec<_>>());
    leases.confirm().await.unwrap();

    let mut conn = connect(&db).await;
    let ended: Vec<bool> = diesel::sql_query(
        "SELECT pg_terminate_backend(pid) AS ended FROM pg_locks \
         WHERE locktype = 'advisory' AND pid <> pg_backend_pid() \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         GROUP BY pid",
    )
    .load::<Ended>(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|row| row.ended)
    .collect();
    assert_eq!(ended, [true]);

    let error = leases.confirm().await.unwrap_err();
    assert!(error.is_unavailable(), "{error}");
    assert_eq!(leases.refresh().await.unwrap(), (0..8).collect::<Vec<_>>());
    leases.confirm().await.unwrap();
}

#[derive(diesel::QueryableByName)]
struct Ended {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    ended: bool,
}

/// A pool whose URL asks for the primary checks, before reusing a connection, that its
/// server is still one (after a switchover the old primary is a standby).
#[tokio::test]
async fn a_read_write_pool_reuses_connections_to_a_primary() {
    let db = TestDatabase::create().await;
    let separator = if db.url.contains('?') { '&' } else { '?' };
    let url = format!("{}{separator}target_session_attrs=read-write", db.url);
    let settings = store::pool::PoolSettings {
        max_size: 1,
        ..store::pool::PoolSettings::default()
    };
    let pool = store::pool::build_pool(&url, &settings).unwrap();
    let mut backends = Vec::new();
    for _ in 0..3 {
        // The recycle query passes on a primary, so the same connection is reused (a
        // failing check would replace it: another backend).
        let mut conn = store::pool::connection(&pool).await.unwrap();
        let row: Backend = diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .get_result(&mut conn)
            .await
            .unwrap();
        backends.push(row.pid);
    }
    assert_eq!(backends, [backends[0]; 3]);
}

#[derive(diesel::QueryableByName)]
struct Backend {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

#[tokio::test]
async fn batch_ids_past_their_window_are_pruned() {
    let db = TestDatabase::create().await;
    let mut conn = connect(&db).await;
    diesel::sql_query(
        "INSERT INTO ingest_batches (id, committed_at) VALUES \
         ('0190b2a0-0000-7000-8000-000000000001', now() - interval '11 minutes'), \
         ('0190b2a0-0000-7000-8000-000000000002', now() - interval '9 minutes')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(store::bulk::prune_batch_ids(&mut conn).await.unwrap(), 1);
    let left: i64 = diesel::sql_query("SELECT count(*) AS n FROM ingest_batches")
        .get_result::<Count>(&mut conn)
        .await
        .unwrap()
        .n;
    assert_eq!(left, 1, "the id still within its window stays");
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}
