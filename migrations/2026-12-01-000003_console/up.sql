-- The detection settings each service was judged with, so `GET /api/v1/services/{name}/series`
-- draws baselines and thresholds with the detector's own settings (sidecars may differ per
-- service). NULL for rows written before this column existed.
ALTER TABLE service_status ADD COLUMN config jsonb;

-- The console lists active incidents first: with a million resolved ones, a scan of
-- `incidents_opened` filtering them out would read the whole index.
CREATE INDEX incidents_active_opened ON incidents (opened_at DESC, id DESC) WHERE status <> 'resolved';
