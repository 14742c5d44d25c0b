DROP FUNCTION threesigma_service_bucket(text, integer);
DROP TABLE log_counts;
DROP FUNCTION threesigma_drop_log_partitions(date);
DROP FUNCTION threesigma_ensure_log_partitions(date, integer);
DROP TABLE logs;
