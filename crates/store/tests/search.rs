//! Log search against a real PostgreSQL: the term index built off the commit path, pending
//! blocks read in full, late rows, phrases and attributes re-checked, budgets that page.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use domain::search::Search;
use domain::{EventLimits, LogEvent};
use serde_json::{Value, json};
use store::logs::{Found, LogFilter};
use store::schema::{log_search_blocks, log_search_pending};
use store::testing::TestDatabase;

async fn connect(db: &TestDatabase) -> AsyncPgConnection {
    AsyncPgConnection::establish(&db.url).await.unwrap()
}

async fn write(db: &TestDatabase, events: &[LogEvent], shard: i16) {
    let config = store::pool::connection_config(&db.url, &store::PoolSettings::default()).unwrap();
    let mut client = store::bulk::BulkConnection::connect(&config).await.unwrap();
    let refs: Vec<&LogEvent> = events.iter().collect();
    client
        .write_new_batch(&refs, shard, store::bulk::BulkMethod::Unnest)
        .await
        .unwrap();
}

fn event(service: &str, ts: DateTime<Utc>, message: &str, attributes: Value) -> LogEvent {
    LogEvent::from_json(
        json!({"service": service, "message": message, "ts": ts.to_rfc3339(), "attributes": attributes}),
        Utc::now(),
        &EventLimits::default(),
    )
    .unwrap()
}

async fn find(
    conn: &mut AsyncPgConnection,
    q: Option<&str>,
    attributes: Vec<(String, String)>,
    since: DateTime<Utc>,
    limit: usize,
) -> Found {
    let search = Search::parse(q, attributes).unwrap();
    let filter = LogFilter {
        since: Some(since),
        terms: search.terms(),
        ..LogFilter::default()
    };
    store::logs::search(
        conn,
        &filter,
        &search,
        None,
        limit,
        StdDuration::from_secs(30),
    )
    .await
    .unwrap()
}

fn messages(found: &Found) -> Vec<&str> {
    found.rows.iter().map(|row| row.message.as_str()).collect()
}

async fn pending(conn: &mut AsyncPgConnection) -> i64 {
    log_search_pending::table
        .count()
        .get_result(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn words_are_found_before_and_after_their_blocks_are_indexed() {
    let db = TestDatabase::create().await;
    let base = domain::search::block_of(Utc::now() - Duration::hours(2));
    let mut events: Vec<LogEvent> = (0..600)
        .map(|i| {
            event(
                &format!("svc-{}", i % 3),
                base + Duration::seconds(i),
                &format!("GET /orders/{i} served in {} ms", i % 97),
                json!({"host": format!("web-{}", i % 4)}),
            )
        })
        .collect();
    events.push(event(
        "svc-1",
        base + Duration::seconds(100),
        "Payment CARD-declined for order 7",
        json!({}),
    ));
    events.push(event(
        "svc-2",
        base + Duration::seconds(400),
        "declined card for order 8",
        json!({}),
    ));
    write(&db, &events, 0).await;
    let mut conn = connect(&db).await;
    let since = base - Duration::minutes(1);

    // Not indexed yet: every block is pending and read in full.
    assert!(pending(&mut conn).await > 0);
    let words = find(&mut conn, Some("card declined"), vec![], since, 10).await;
    assert_eq!(
        messages(&words),
        [
            "declined card for order 8",
            "Payment CARD-declined for order 7"
        ]
    );

    let pass = store::search::index_pending(&mut conn, Utc::now(), 1000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pass.left, 0);
    assert_eq!(pass.rows, 602);
    assert_eq!(pending(&mut conn).await, 0);
    let blocks: i64 = log_search_blocks::table
        .select(diesel::dsl::count(log_search_blocks::block).aggregate_distinct())
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(blocks, 60, "600 seconds of rows: sixty 10-second blocks");

    // Indexed: the same answers, word order and case aside; a phrase needs the order.
    let words = find(&mut conn, Some("card declined"), vec![], since, 10).await;
    assert_eq!(
        messages(&words),
        [
            "declined card for order 8",
            "Payment CARD-declined for order 7"
        ]
    );
    let phrase = find(&mut conn, Some("\"card declined\""), vec![], since, 10).await;
    assert_eq!(messages(&phrase), ["Payment CARD-declined for order 7"]);
    assert!(phrase.next.is_none());
    let nothing = find(&mut conn, Some("zebra"), vec![], since, 10).await;
    assert!(nothing.rows.is_empty() && nothing.next.is_none());
    // Words, not substrings: "order" is not "orders".
    let order = find(&mut conn, Some("order"), vec![], since, 10).await;
    assert_eq!(order.rows.len(), 2);

    // Attributes, and paging through a common term without gaps or repeats.
    let search = Search::parse(Some("served"), vec![("host".into(), "web-3".into())]).unwrap();
    let filter = LogFilter {
        since: Some(since),
        terms: search.terms(),
        ..LogFilter::default()
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store::logs::search(
            &mut conn,
            &filter,
            &search,
            after,
            40,
            StdDuration::from_secs(30),
        )
        .await
        .unwrap();
        assert!(
            page.rows
                .iter()
                .all(|row| row.attributes["host"] == "web-3")
        );
        seen.extend(page.rows.iter().map(|row| row.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (150, 150));
}

#[tokio::test]
async fn a_late_row_in_an_indexed_block_is_found_at_once_and_indexed_again() {
    let db = TestDatabase::create().await;
    let at = Utc::now() - Duration::hours(1);
    write(&db, &[event("a", at, "first words", json!({}))], 0).await;
    let mut conn = connect(&db).await;
    store::search::index_pending(&mut conn, Utc::now(), 100)
        .await
        .unwrap();
    assert_eq!(pending(&mut conn).await, 0);

    // A late event for the same block, from another writer.
    write(
        &db,
        &[event(
            "a",
            at + Duration::milliseconds(1),
            "late arrival",
            json!({}),
        )],
        1,
    )
    .await;
    assert_eq!(pending(&mut conn).await, 1);
    let since = at - Duration::minutes(1);
    let found = find(&mut conn, Some("late"), vec![], since, 10).await;
    assert_eq!(messages(&found), ["late arrival"]);

    store::search::index_pending(&mut conn, Utc::now(), 100)
        .await
        .unwrap();
    assert_eq!(pending(&mut conn).await, 0);
    let found = find(&mut conn, Some("late"), vec![], since, 10).await;
    assert_eq!(messages(&found), ["late arrival"]);
    assert_eq!(
        find(&mut conn, Some("first"), vec![], since, 10)
            .await
            .rows
            .len(),
        1
    );
}

#[tokio::test]
async fn a_batch_committed_during_a_pass_keeps_its_block_pending() {
    let db = TestDatabase::create().await;
    let at = domain::search::block_of(Utc::now() - Duration::hours(1));
    write(&db, &[event("a", at, "one", json!({}))], 0).await;
    let mut writer = connect(&db).await;
    let mut watcher = connect(&db).await;
    let pass_db = db.url.clone();
    writer
        .transaction::<_, diesel::result::Error, _>(async |writer| {
            // A batch, as ingest writes it, left uncommitted: a row in the block and its mark.
            diesel::sql_query(
                "WITH l AS (INSERT INTO logs (ts, service, level, message, terms) \
                 VALUES ($1, 'a', 9, 'two', $2)) \
                 INSERT INTO log_search_pending (block, shard) VALUES ($1, 0) \
                 ON CONFLICT (block, shard) DO UPDATE SET version = log_search_pending.version + 1",
            )
            .bind::<diesel::sql_types::Timestamptz, _>(at)
            .bind::<diesel::sql_types::Array<diesel::sql_types::Int4>, _>(vec![
                domain::search::word_term("two"),
            ])
            .execute(writer)
            .await?;
            // The pass reads the mark and the block without the batch, then waits for the
            // batch's lock on the mark to delete it.
            let pass = tokio::spawn(async move {
                let mut conn = AsyncPgConnection::establish(&pass_db).await.unwrap();
                store::search::index_pending(&mut conn, Utc::now(), 100).await.unwrap()
            });
            let give_up = std::time::Instant::now() + StdDuration::from_secs(60);
            loop {
                assert!(std::time::Instant::now() < give_up, "the pass never waited for the batch");
                let waiting: i64 = diesel::sql_query(
                    "SELECT count(*) AS n FROM pg_stat_activity \
                     WHERE wait_event_type = 'Lock' AND query LIKE 'DELETE FROM log_search_pending%'",
                )
                .get_result::<Count>(&mut watcher)
                .await
                .unwrap()
                .n;
                if waiting > 0 {
                    break;
                }
                tokio::time::sleep(StdDuration::from_millis(5)).await;
            }
            Ok(pass)
        })
        .await
        .unwrap()
        .await
        .unwrap()
        .unwrap();
    // The batch committed after the pass read the block: its mark stays...
    let mut conn = connect(&db).await;
    assert_eq!(pending(&mut conn).await, 1);
    let since = at - Duration::minutes(1);
    assert_eq!(
        messages(&find(&mut conn, Some("two"), vec![], since, 10).await),
        ["two"]
    );
    // ... and the next pass builds the block with it.
    store::search::index_pending(&mut conn, Utc::now(), 100)
        .await
        .unwrap();
    assert_eq!(pending(&mut conn).await, 0);
    assert_eq!(
        messages(&find(&mut conn, Some("two"), vec![], since, 10).await),
        ["two"]
    );
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test]
async fn open_blocks_wait_and_other_indexers_skip() {
    let db = TestDatabase::create().await;
    let now = Utc::now();
    write(&db, &[event("a", now, "fresh words", json!({}))], 0).await;
    let mut conn = connect(&db).await;
    // The block is still open (it ends after `closed_before`): left pending, still found.
    let pass = store::search::index_pending(&mut conn, now, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pass.blocks, 0);
    assert_eq!(pending(&mut conn).await, 1);
    let found = find(
        &mut conn,
        Some("fresh"),
        vec![],
        now - Duration::minutes(1),
        10,
    )
    .await;
    assert_eq!(found.rows.len(), 1);

    // While one process indexes, another skips.
    let mut holder = connect(&db).await;
    holder
        .transaction::<_, diesel::result::Error, _>(async |holder| {
            diesel::sql_query("SELECT pg_advisory_xact_lock(29811, -3)")
                .execute(holder)
                .await?;
            let skipped =
                store::search::index_pending(&mut conn, Utc::now() + Duration::minutes(1), 100)
                    .await
                    .unwrap();
            assert!(skipped.is_none());
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_substring_scan_out_of_budget_pages_instead_of_timing_out() {
    let db = TestDatabase::create().await;
    let base = Utc::now() - Duration::hours(3);
    // Two hours of rows, a minute apart; the needle in three of them.
    let events: Vec<LogEvent> = (0..120)
        .map(|i| {
            let message = if i % 50 == 7 {
                format!("x-needle-{i}")
            } else {
                format!("hay {i}")
            };
            event("a", base + Duration::minutes(i), &message, json!({}))
        })
        .collect();
    write(&db, &events, 0).await;
    let mut conn = connect(&db).await;
    let search = Search::default();
    let filter = LogFilter {
        since: Some(base - Duration::minutes(1)),
        text: Some("NEEDLE".to_owned()),
        ..LogFilter::default()
    };
    // A zero budget: every page reads one slice, then answers with a cursor.
    let mut found = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        pages += 1;
        let page = store::logs::search(&mut conn, &filter, &search, after, 50, StdDuration::ZERO)
            .await
            .unwrap();
        found.extend(page.rows.into_iter().map(|row| row.message));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
        assert!(pages < 200, "the scan must make progress");
    }
    assert!(pages > 1, "a spent budget pages");
    assert_eq!(found, ["x-needle-107", "x-needle-57", "x-needle-7"]);
}
