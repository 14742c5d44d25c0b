-- Log search (docs/SEARCH.md; why this design: docs/ARCHITECTURE.md, "Log search").
--
-- 1. Ingest stores each event's search terms beside it: 32-bit hashes of the first 256
--    words of the message (lowercased runs of letters, digits and _) and of its top-level
--    scalar attribute pairs (domain::search::terms), sorted. Adding a column with a constant
--    default is a catalogue change, not a rewrite. Rows stored before this migration have no
--    terms: word search does not find them (substring search does).
ALTER TABLE logs ADD COLUMN terms integer[] NOT NULL DEFAULT '{}';

COMMENT ON COLUMN logs.terms IS
    'Search terms (domain::search::terms): hashes of the message words and attribute pairs, sorted. Written by ingest.';

-- 2. A term index by time block, kept off the commit path. Event time is cut into 10-second
--    blocks; for each block the indexer (a background task of ingest) stores the distinct
--    terms of its rows, split into 64 slices by the term's low bits, so that looking one
--    term up reads one small row per block. A search reads the blocks of its terms, then
--    only the rows of the blocks that hold them. No per-row index is maintained on `logs`:
--    a GIN index on the terms cost ingest ~45% of its throughput (docs/ARCHITECTURE.md).
CREATE TABLE log_search_blocks (
    slice smallint    NOT NULL,
    block timestamptz NOT NULL,
    terms integer[]   NOT NULL,
    PRIMARY KEY (slice, block)
);

COMMENT ON TABLE log_search_blocks IS
    'For each 10-second block of event time and each slice (term & 63), the distinct terms of the rows in that block, sorted.';

-- 3. Blocks whose rows are not (all) in log_search_blocks yet: marked by ingest in the same
--    transaction as the rows, one row per block and writer (like log_counts.shard, so that
--    writers never contend), its version bumped by every batch. The indexer rebuilds a
--    block, then deletes the marks it saw with the versions it saw: a batch that lands
--    meanwhile leaves its mark behind. A search reads every marked block in full, so a
--    committed event is searchable at once, indexed or not.
CREATE TABLE log_search_pending (
    block   timestamptz NOT NULL,
    shard   smallint    NOT NULL,
    version bigint      NOT NULL DEFAULT 1,
    PRIMARY KEY (block, shard)
);
