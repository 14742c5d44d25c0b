-- Exactly-once ingest across ambiguous commits and client retries (docs/ARCHITECTURE.md,
-- "Nothing written twice").
--
-- 1. Every batch ingest writes carries a random id, inserted in the same transaction as its
--    rows. The statement writes the rows only if the id is new, so when a COMMIT's outcome
--    was lost (the connection, or the primary, died before the answer arrived) the writer
--    simply sends the same batch again: on a database that has it, the second write does
--    nothing; on one that does not (the commit never happened, or never reached the
--    promoted standby), it writes it. Ids are pruned by ingest after 10 minutes.
CREATE TABLE ingest_batches (
    id           uuid        PRIMARY KEY,
    committed_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE ingest_batches IS
    'Ids of the batches ingest committed in the last 10 minutes; a batch whose id is here is not written again.';

-- 2. A client's Idempotency-Key, stored with the digest of its request in the same
--    transaction as the request's events: the same key again with the same request is
--    answered without storing it twice, with another request it is refused (422). Kept for
--    ingest.idempotency_window (24 h by default).
CREATE TABLE ingest_idempotency_keys (
    key       text        PRIMARY KEY,
    digest    bytea       NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX ingest_idempotency_keys_stored_at ON ingest_idempotency_keys (stored_at);
CREATE INDEX ingest_batches_committed_at ON ingest_batches (committed_at);

COMMENT ON TABLE ingest_idempotency_keys IS
    'Idempotency-Key headers of committed ingest requests (namespaced by the caller) and the SHA-256 of what they sent.';
