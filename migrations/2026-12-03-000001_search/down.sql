DROP TABLE log_search_pending;
DROP TABLE log_search_blocks;
ALTER TABLE logs DROP COLUMN terms;
