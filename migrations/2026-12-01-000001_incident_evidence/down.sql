ALTER TABLE incidents DROP COLUMN opening;
