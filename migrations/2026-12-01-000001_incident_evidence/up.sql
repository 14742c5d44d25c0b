-- Evidence that tells the truth: what opened the incident, kept apart from the current and
-- peak figures that move while it is active. One jsonb document (see
-- store::models::OpeningEvidence): the opening window's errors and z, the errors the test
-- expected and the standard deviation it measured z in, and the rule that fired (its
-- tail-probability threshold, NULL for the classic rule, and the smallest count that would
-- have fired in that window against that baseline).
ALTER TABLE incidents ADD COLUMN opening jsonb;

-- Incidents opened before this migration: their opening figures are in the timeline.
UPDATE incidents i
   SET opening = jsonb_build_object('count', e.count, 'z', e.z)
  FROM incident_events e
 WHERE e.incident_id = i.id AND e.kind = 'opened' AND e.count IS NOT NULL AND e.z IS NOT NULL;
