DROP INDEX incidents_active_opened;
ALTER TABLE service_status DROP COLUMN config;
