DROP TABLE ingest_idempotency_keys;
DROP TABLE ingest_batches;
