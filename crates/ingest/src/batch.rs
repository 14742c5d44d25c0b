//! Group commit: many requests, one transaction.
//!
//! A request hands its events to a bounded queue as one [`Submission`] and waits for the
//! commit of the batch that carries them (a oneshot per request, like Vector's batch
//! notifiers). Writer tasks, each with its own PostgreSQL connection, take turns draining
//! the queue: the one holding the queue closes a batch at `max_batch_events`,
//! `max_batch_bytes` or `linger`, then writes it while the next writer fills the next batch.
//!
//! Guarantees:
//! - *Bounded memory*: the queue is bounded in events and bytes by semaphores whose permits
//!   travel with a submission and are returned only when its batch is done. A request that
//!   cannot get permits within `enqueue_timeout` is refused (503), so memory stays bounded
//!   under any load.
//! - *A 200 means committed*: a submission is answered `Ok` only after its batch's COMMIT.
//! - *A 503 means not stored*: writers retry an unavailable database with backoff, but
//!   before each attempt they drop (and answer 503 to) submissions whose deadline has
//!   passed, so an answered submission is never written afterwards. A writer waiting to
//!   retry also answers queued submissions whose deadline passes, so a request is told 503
//!   on time even while every writer waits (unless its own batch is in doubt).
//! - *Nothing written twice*: every batch carries a random id written in its transaction,
//!   and the batch is written only if its id is new. When an attempt's outcome is unknown
//!   (the connection, or the primary, died before the COMMIT's answer arrived), the same
//!   batch is sent again under the same id, on whatever primary answers: it is stored
//!   there once either way. Its requests are then *in doubt* and wait up to
//!   `in_doubt_timeout` past their deadline for the outcome instead of being told 503 (a
//!   503 would invite a retry of events that may be stored). A request's `Idempotency-Key`
//!   is stored in the same transaction; a request whose key is taken is answered from it
//!   (200 when it sent the same, [`WriteError::KeyReused`] otherwise) without writing.
//! - *One bad submission does not sink a batch*: a batch that fails for a reason other than
//!   availability is retried one submission per transaction, so only the culprit fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use domain::LogEvent;
use store::StoreError;
use tokio::sync::{Mutex, Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::IngestMetrics;

/// Knobs of the batch writer (all validated non-zero at boot).
#[derive(Debug, Clone)]
pub struct BatchConfig {
    pub max_batch_events: usize,
    pub max_batch_bytes: usize,
    pub linger: Duration,
    pub writers: usize,
    pub queue_max_events: usize,
    pub queue_max_bytes: usize,
    pub enqueue_timeout: Duration,
    /// How long a request waits for its commit before it is answered 503.
    pub request_timeout: Duration,
    /// Longest a single write attempt may take before the connection is abandoned.
    pub attempt_timeout: Duration,
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// How much longer than `request_timeout` a request waits when its batch's outcome is
    /// unknown (the database went away during the attempt).
    pub in_doubt_timeout: Duration,
    /// COPY or UNNEST (see `store::bulk`).
    pub bulk_method: store::bulk::BulkMethod,
}

/// Why a submission was not committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("ingest queue is full, retry later")]
    Overloaded,
    #[error("database unavailable, retry later")]
    Unavailable,
    #[error("ingest is shutting down, retry on another instance")]
    ShuttingDown,
    #[error("storing the events failed: {0}")]
    Failed(String),
    #[error(
        "this Idempotency-Key was used for a different request (another body or endpoint); use a new key for new events"
    )]
    KeyReused,
}

/// A request's `Idempotency-Key` (namespaced by the caller) and the SHA-256 of what the
/// request sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    pub key: String,
    pub digest: [u8; 32],
}

type Reply = oneshot::Sender<Result<(), WriteError>>;

/// Events of one request on their way to PostgreSQL.
struct Submission {
    events: Vec<LogEvent>,
    bytes: usize,
    key: Option<RequestKey>,
    /// Answer 503 rather than write after this instant.
    deadline: Instant,
    reply: Option<Reply>,
    /// Queue capacity held until the submission is done.
    _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

impl Submission {
    fn finish(self, outcome: Result<(), WriteError>, metrics: &IngestMetrics) {
        match &outcome {
            Ok(()) => {
                metrics.events_committed.inc_by(self.events.len() as u64);
            }
            Err(_) if self.reply.is_none() => {
                // Buffered acknowledgement: the client was told 202 and cannot be told now.
                metrics.events_lost.inc_by(self.events.len() as u64);
                tracing::error!(
                    events = self.events.len(),
                    "Dropped buffered events that could not be stored."
                );
            }
            Err(_) => {}
        }
        self.answer(outcome);
    }

    /// Tells the client (if it waits), counting nothing.
    fn answer(mut self, outcome: Result<(), WriteError>) {
        if let Some(reply) = self.reply.take() {
            // The client may have gone away; its events were handled either way.
            let _ = reply.send(outcome);
        }
    }
}

/// Submissions waiting for a writer.
struct Queue {
    receiver: mpsc::UnboundedReceiver<Submission>,
    /// One taken out and put back (by [`expire_queued`]); it goes first.
    front: Option<Submission>,
}

impl Queue {
    async fn recv(&mut self) -> Option<Submission> {
        match self.front.take() {
            Some(submission) => Some(submission),
            None => self.receiver.recv().await,
        }
    }

    fn try_recv(&mut self) -> Result<Submission, mpsc::error::TryRecvError> {
        match self.front.take() {
            Some(submission) => Ok(submission),
            None => self.receiver.try_recv(),
        }
    }
}

struct Shared {
    config: BatchConfig,
    database: store::pool::ConnectionConfig,
    metrics: IngestMetrics,
    queue: Mutex<Queue>,
    closing: CancellationToken,
    /// Cancelled when shutdown begins: batches stop lingering and are written at once.
    hurry: CancellationToken,
    /// Set once any writer has committed since start; used by readiness.
    database_ok: AtomicBool,
    /// Writers currently writing a batch.
    busy_writers: AtomicUsize,
    /// Notified whenever a writer finishes a batch.
    writer_free: Notify,
}

/// The handle requests use to submit events. Cheap to clone.
#[derive(Clone)]
pub struct BatchWriter {
    sender: mpsc::UnboundedSender<Submission>,
    events_capacity: Arc<Semaphore>,
    bytes_capacity: Arc<Semaphore>,
    shared: Arc<Shared>,
}

/// Running writer tasks; [`WriterTasks::drain`] flushes everything queued and stops them.
pub struct WriterTasks {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl BatchWriter {
    /// Starts `config.writers` writer tasks on the current runtime.
    pub fn start(
        config: BatchConfig,
        database: store::pool::ConnectionConfig,
        metrics: IngestMetrics,
    ) -> (BatchWriter, WriterTasks) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let events_capacity = Arc::new(Semaphore::new(config.queue_max_events));
        let bytes_capacity = Arc::new(Semaphore::new(config.queue_max_bytes));
        let writers = config.writers;
        let shared = Arc::new(Shared {
            config,
            database,
            metrics,
            queue: Mutex::new(Queue {
                receiver,
                front: None,
            }),
            closing: CancellationToken::new(),
            hurry: CancellationToken::new(),
            database_ok: AtomicBool::new(true),
            busy_writers: AtomicUsize::new(0),
            writer_free: Notify::new(),
        });
        let tasks = (0..writers)
            .map(|index| tokio::spawn(run_writer(index, Arc::clone(&shared))))
            .collect();
        let writer = BatchWriter {
            sender,
            events_capacity,
            bytes_capacity,
            shared: Arc::clone(&shared),
        };
        (writer, WriterTasks { shared, tasks })
    }

    /// Queues `events` for a durable acknowledgement; await [`Pending::committed`] for the
    /// outcome.
    pub async fn submit(
        &self,
        events: Vec<LogEvent>,
        key: Option<RequestKey>,
    ) -> Result<Pending, WriteError> {
        match self.enqueue(events, key, true).await? {
            Some(reply) => Ok(Pending(reply)),
            None => Err(WriteError::ShuttingDown),
        }
    }

    /// Queues `events` and returns once they are queued (buffered acknowledgement: they may
    /// still be lost if the process dies before the commit).
    pub async fn enqueue_buffered(
        &self,
        events: Vec<LogEvent>,
        key: Option<RequestKey>,
    ) -> Result<(), WriteError> {
        self.enqueue(events, key, false).await.map(|_| ())
    }

    async fn enqueue(
        &self,
        events: Vec<LogEvent>,
        key: Option<RequestKey>,
        wants_reply: bool,
    ) -> Result<Option<oneshot::Receiver<Result<(), WriteError>>>, WriteError> {
        let shared = &self.shared;
        if shared.closing.is_cancelled() {
            return Err(WriteError::ShuttingDown);
        }
        let bytes: usize = events.iter().map(LogEvent::weight).sum();
        // A request larger than the whole queue still gets in, alone.
        let event_permits = permits(events.len(), shared.config.queue_max_events);
        let byte_permits = permits(bytes, shared.config.queue_max_bytes);
        let permits = match (
            Arc::clone(&self.events_capacity).try_acquire_many_owned(event_permits),
            Arc::clone(&self.bytes_capacity).try_acquire_many_owned(byte_permits),
        ) {
            (Ok(events), Ok(bytes)) => (events, bytes),
            // The queue is (nearly) full: wait for room, at most `enqueue_timeout`.
            _ => {
                let acquire = async {
                    let events = Arc::clone(&self.events_capacity)
                        .acquire_many_owned(event_permits)
                        .await;
                    let bytes = Arc::clone(&self.bytes_capacity)
                        .acquire_many_owned(byte_permits)
                        .await;
                    (events, bytes)
                };
                match tokio::time::timeout(shared.config.enqueue_timeout, acquire).await {
                    Ok((Ok(events), Ok(bytes))) => (events, bytes),
                    Ok(_) => return Err(WriteError::ShuttingDown),
                    Err(_) => {
                        shared.metrics.overloaded.inc();
                        return Err(WriteError::Overloaded);
                    }
                }
            }
        };
        let (event_permit, byte_permit) = permits;
        let (reply, receiver) = if wants_reply {
            let (sender, receiver) = oneshot::channel();
            (Some(sender), Some(receiver))
        } else {
            (None, None)
        };
        let count = events.len();
        let submission = Submission {
            events,
            bytes,
            key,
            deadline: Instant::now() + shared.config.request_timeout,
            reply,
            _permits: (event_permit, byte_permit),
        };
        self.sender
            .send(submission)
            .map_err(|_| WriteError::ShuttingDown)?;
        shared.metrics.queued_events.inc_by(count as i64);
        shared.metrics.queued_bytes.inc_by(bytes as i64);
        Ok(receiver)
    }

    /// Whether the queue is (nearly) full: under 5% of its events or bytes left.
    pub fn is_saturated(&self) -> bool {
        let config = &self.shared.config;
        self.events_capacity.available_permits() * 20 < config.queue_max_events
            || self.bytes_capacity.available_permits() * 20 < config.queue_max_bytes
    }

    /// Whether the last write attempt reached the database.
    pub fn database_ok(&self) -> bool {
        self.shared.database_ok.load(Ordering::Relaxed)
    }
}

/// A queued submission whose commit has not been reported yet.
pub struct Pending(oneshot::Receiver<Result<(), WriteError>>);

impl Pending {
    /// Waits for the batch carrying the submission. A writer answers every submission:
    /// committed, or 503 once its deadline has passed (checked before every attempt, and
    /// every attempt is bounded). A reply dropped unanswered means the writers are gone.
    pub async fn committed(self) -> Result<(), WriteError> {
        self.0.await.unwrap_or(Err(WriteError::ShuttingDown))
    }
}

fn permits(amount: usize, capacity: usize) -> u32 {
    u32::try_from(amount.clamp(1, capacity.max(1))).unwrap_or(u32::MAX)
}

impl WriterTasks {
    /// Shutdown has begun: stop lingering, write what is queued right away (submissions
    /// are still accepted until [`WriterTasks::drain`]).
    pub fn hurry(&self) {
        self.shared.hurry.cancel();
    }

    /// Stops taking new submissions, writes everything queued, and waits up to `grace` for
    /// the writers to finish.
    pub async fn drain(self, grace: Duration) {
        self.shared.hurry.cancel();
        self.shared.closing.cancel();
        let all = futures_util::future::join_all(self.tasks);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("Batch writers did not finish within {grace:?}.");
        }
    }
}

async fn run_writer(index: usize, shared: Arc<Shared>) {
    let shard = i16::try_from(index).unwrap_or(i16::MAX);
    let mut client = None;
    while let Some(batch) = next_batch(&shared).await {
        shared.busy_writers.fetch_add(1, Ordering::AcqRel);
        write(&shared, &mut client, shard, batch).await;
        shared.busy_writers.fetch_sub(1, Ordering::AcqRel);
        shared.writer_free.notify_waiters();
    }
    tracing::debug!(writer = index, "Batch writer finished.");
}

/// Waits for the first submission, then gathers what is queued. When the queue runs dry the
/// batch closes at once if another writer is free to take the next one (waiting would only
/// add latency); only while every other writer is busy writing does it stay open, up to
/// `linger` after its first submission, to grow (and it closes as soon as a writer frees
/// up). So at low load a request is written immediately, and under load batches grow
/// instead of queueing small transactions. Returns `None` once closing and the queue is
/// empty.
async fn next_batch(shared: &Shared) -> Option<Vec<Submission>> {
    let config = &shared.config;
    let closing = shared.closing.clone();
    let hurry = shared.hurry.clone();
    let mut queue = shared.queue.lock().await;
    let first = tokio::select! {
        biased;
        next = queue.recv() => next?,
        () = closing.cancelled() => queue.try_recv().ok()?,
    };
    let mut events = first.events.len();
    let mut bytes = first.bytes;
    let mut batch = vec![first];
    let linger_until = Instant::now() + config.linger;
    while events < config.max_batch_events && bytes < config.max_batch_bytes {
        let next = match queue.try_recv() {
            Ok(next) => next,
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) => {
                if hurry.is_cancelled() {
                    break;
                }
                // Register for "a writer freed up" before looking, so none is missed.
                let writer_free = shared.writer_free.notified();
                tokio::pin!(writer_free);
                writer_free.as_mut().enable();
                let others_busy = shared.busy_writers.load(Ordering::Acquire) + 1 >= config.writers;
                if !others_busy {
                    break;
                }
                tokio::select! {
                    next = tokio::time::timeout_at(linger_until, queue.recv()) => match next {
                        Ok(Some(next)) => next,
                        _ => break,
                    },
                    () = &mut writer_free => continue,
                    () = hurry.cancelled() => break,
                }
            }
        };
        events += next.events.len();
        bytes += next.bytes;
        batch.push(next);
    }
    Some(batch)
}

/// Writes one batch. A batch that fails for a reason other than availability is split
/// into one transaction per submission, so only the culprit fails.
async fn write(
    shared: &Shared,
    client: &mut Option<store::bulk::BulkConnection>,
    shard: i16,
    batch: Vec<Submission>,
) {
    let mut pending = vec![batch];
    while let Some(batch) = pending.pop() {
        if let Some(split) = write_with_retry(shared, client, shard, batch).await {
            pending.extend(split.into_iter().map(|submission| vec![submission]));
        }
    }
}

/// Writes `batch` under one id, retrying while the database is unavailable and the
/// submissions' deadlines allow. Returns the submissions to retry one by one when the batch
/// failed for another reason.
async fn write_with_retry(
    shared: &Shared,
    client: &mut Option<store::bulk::BulkConnection>,
    shard: i16,
    mut batch: Vec<Submission>,
) -> Option<Vec<Submission>> {
    let config = &shared.config;
    let metrics = &shared.metrics;
    let id = store::bulk::new_batch_id();
    let mut backoff = config.retry_min;
    let mut in_doubt = false;
    let mut key_raced = false;
    loop {
        let now = Instant::now();
        let (expired, live): (Vec<_>, Vec<_>) = batch.into_iter().partition(|s| s.deadline <= now);
        for submission in expired {
            metrics.release(&submission);
            submission.finish(Err(WriteError::Unavailable), metrics);
        }
        batch = live;
        if batch.is_empty() {
            return None;
        }
        let started = Instant::now();
        let error = match attempt(shared, client, shard, &id, &mut batch).await {
            Ok(written) => {
                shared.database_ok.store(true, Ordering::Relaxed);
                if written == store::bulk::Written::AlreadyStored {
                    metrics.batches_already_stored.inc();
                    tracing::info!(batch = %id, "A batch whose answer was lost had been committed; not written again.");
                }
                if !batch.is_empty() {
                    metrics.observe_flush(&batch, started.elapsed());
                }
                for submission in batch {
                    metrics.release(&submission);
                    submission.finish(Ok(()), metrics);
                }
                return None;
            }
            Err(error) => error,
        };
        match error {
            Failure::Unavailable { error, sent } => {
                shared.database_ok.store(false, Ordering::Relaxed);
                *client = None;
                metrics.writer_retries.inc();
                if sent && !in_doubt {
                    // The COMMIT may have happened: a 503 would invite the client to send
                    // events that may be stored. Wait longer for the retry to find out.
                    in_doubt = true;
                    let until = Instant::now() + config.in_doubt_timeout;
                    for submission in &mut batch {
                        submission.deadline = submission.deadline.max(until);
                    }
                }
                tracing::warn!(%error, retry_in = ?backoff, in_doubt, "Database unavailable; batch will be retried.");
                // Wake at the earliest deadline too, so that request is answered on time.
                let earliest = batch.iter().map(|s| s.deadline).min().unwrap_or(now);
                wait_to_retry(shared, (Instant::now() + backoff).min(earliest)).await;
                backoff = (backoff * 2).min(config.retry_max);
            }
            // Another request with the same key committed between the look-up and the
            // write (another replica, or the same batch): look again, once.
            Failure::Failed(error)
                if error.is_unique_violation()
                    && !key_raced
                    && batch.iter().any(|s| s.key.is_some()) =>
            {
                key_raced = true;
                if batch.len() > 1 {
                    return Some(batch);
                }
            }
            Failure::Failed(error) if batch.len() > 1 => {
                tracing::warn!(%error, submissions = batch.len(), "Batch failed; retrying its requests one by one.");
                return Some(batch);
            }
            Failure::Failed(error) => {
                tracing::error!(%error, "Storing a request's events failed.");
                for submission in batch {
                    metrics.release(&submission);
                    submission.finish(Err(WriteError::Failed(error.to_string())), metrics);
                }
                return None;
            }
        }
    }
}

/// How often a writer waiting to retry looks for queued submissions past their deadline.
const EXPIRY_CHECK: Duration = Duration::from_millis(100);

/// Sleeps until `wake`, answering queued submissions whose deadline passes meanwhile: every
/// writer may be waiting to retry (a batch in doubt waits up to `in_doubt_timeout`), and
/// no free writer would take them until then.
async fn wait_to_retry(shared: &Shared, wake: Instant) {
    loop {
        expire_queued(shared);
        let now = Instant::now();
        if now >= wake {
            return;
        }
        tokio::time::sleep_until(wake.min(now + EXPIRY_CHECK)).await;
    }
}

/// Answers 503 to queued submissions past their deadline (they are queued in deadline
/// order, so it stops at the first still alive). Leaves the queue alone when a writer holds
/// it: that writer is free and answers them itself.
fn expire_queued(shared: &Shared) {
    let Ok(mut queue) = shared.queue.try_lock() else {
        return;
    };
    let now = Instant::now();
    while let Ok(submission) = queue.try_recv() {
        if submission.deadline > now {
            queue.front = Some(submission);
            return;
        }
        shared.metrics.release(&submission);
        submission.finish(Err(WriteError::Unavailable), &shared.metrics);
    }
}

/// Why an attempt failed.
enum Failure {
    /// The database could not be reached or went away; `sent` when the batch may have
    /// reached it (its outcome is unknown).
    Unavailable { error: StoreError, sent: bool },
    /// A statement failed for another reason.
    Failed(StoreError),
}

impl Failure {
    fn of(error: StoreError, sent: bool) -> Failure {
        if error.is_unavailable() {
            Failure::Unavailable { error, sent }
        } else {
            Failure::Failed(error)
        }
    }
}

/// One transaction attempt on this writer's connection (opened on demand). Requests whose
/// idempotency key is taken are answered from it first and leave the batch.
async fn attempt(
    shared: &Shared,
    client: &mut Option<store::bulk::BulkConnection>,
    shard: i16,
    id: &str,
    batch: &mut Vec<Submission>,
) -> Result<store::bulk::Written, Failure> {
    let config = &shared.config;
    if client
        .as_ref()
        .is_none_or(store::bulk::BulkConnection::is_closed)
    {
        *client = None;
        let connect = store::bulk::BulkConnection::connect(&shared.database);
        let connected = tokio::time::timeout(config.attempt_timeout, connect)
            .await
            .map_err(|_| StoreError::Unavailable("connecting timed out".to_owned()))
            .and_then(|connected| connected)
            .map_err(|error| Failure::of(error, false))?;
        *client = Some(connected);
    }
    let Some(connection) = client.as_mut() else {
        return Err(Failure::of(
            StoreError::Unavailable("no connection".to_owned()),
            false,
        ));
    };
    answer_taken_keys(shared, connection, batch).await?;
    if batch.is_empty() {
        return Ok(store::bulk::Written::Stored(0));
    }
    let events: Vec<&LogEvent> = batch
        .iter()
        .flat_map(|submission| &submission.events)
        .collect();
    let keys: Vec<&str> = batch
        .iter()
        .filter_map(|submission| submission.key.as_ref().map(|key| key.key.as_str()))
        .collect();
    let digests: Vec<&[u8]> = batch
        .iter()
        .filter_map(|submission| submission.key.as_ref().map(|key| key.digest.as_slice()))
        .collect();
    let identity = store::bulk::BatchIdentity {
        id,
        keys: &keys,
        digests: &digests,
    };
    let write = connection.write_batch(&events, shard, config.bulk_method, identity);
    match tokio::time::timeout(config.attempt_timeout, write).await {
        Ok(result) => result.map_err(|error| Failure::of(error, true)),
        Err(_) => {
            // The connection is in an unknown state: abandon it.
            *client = None;
            Err(Failure::of(
                StoreError::Unavailable("write timed out".to_owned()),
                true,
            ))
        }
    }
}

/// Answers, and takes out of `batch`, the requests whose idempotency key is already stored:
/// 200 when they sent what was stored under it, 422 otherwise.
async fn answer_taken_keys(
    shared: &Shared,
    connection: &store::bulk::BulkConnection,
    batch: &mut Vec<Submission>,
) -> Result<(), Failure> {
    let keys: Vec<&str> = batch
        .iter()
        .filter_map(|submission| submission.key.as_ref().map(|key| key.key.as_str()))
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    let look_up = connection.stored_keys(&keys);
    let stored = tokio::time::timeout(shared.config.attempt_timeout, look_up)
        .await
        .map_err(|_| StoreError::Unavailable("looking up idempotency keys timed out".to_owned()))
        .and_then(|stored| stored)
        .map_err(|error| Failure::of(error, false))?;
    if stored.is_empty() {
        return Ok(());
    }
    let stored: std::collections::HashMap<String, Vec<u8>> = stored.into_iter().collect();
    let (taken, rest): (Vec<_>, Vec<_>) = batch.drain(..).partition(|submission| {
        submission
            .key
            .as_ref()
            .is_some_and(|key| stored.contains_key(&key.key))
    });
    *batch = rest;
    for submission in taken {
        shared.metrics.release(&submission);
        let same = submission.key.as_ref().is_some_and(|key| {
            stored
                .get(&key.key)
                .is_some_and(|digest| digest[..] == key.digest)
        });
        if same {
            shared.metrics.requests_repeated.inc();
            submission.answer(Ok(()));
        } else {
            shared.metrics.keys_reused.inc();
            // A buffered request was told 202 already: its events count as lost.
            submission.finish(Err(WriteError::KeyReused), &shared.metrics);
        }
    }
    Ok(())
}

impl IngestMetrics {
    fn release(&self, submission: &Submission) {
        self.queued_events.dec_by(submission.events.len() as i64);
        self.queued_bytes.dec_by(submission.bytes as i64);
    }

    fn observe_flush(&self, batch: &[Submission], elapsed: Duration) {
        let events: usize = batch.iter().map(|s| s.events.len()).sum();
        self.batch_events.observe(events as f64);
        self.batch_requests.observe(batch.len() as f64);
        self.flush_seconds.observe(elapsed.as_secs_f64());
    }
}
