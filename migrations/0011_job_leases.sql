-- Fenced job leases: every claim gets a token of its own; heartbeats, completion, failure and the
-- job's own writes (PostgresPool.transaction under JobLease.current) must present it, so a worker
-- that lost its lease can neither finish the job nor overwrite what the lease's new holder does.
-- lease_expiries counts the workers that died holding the job: a job that has used its attempts
-- when its lease expires fails instead of moving from replica to replica for ever.

ALTER TABLE jobs ADD COLUMN lease_token uuid;
ALTER TABLE jobs ADD COLUMN lease_expiries integer NOT NULL DEFAULT 0;
UPDATE jobs SET lease_token = gen_random_uuid() WHERE state = 'running';

-- Retention (PODID_JOB_RETENTION_DAYS) deletes finished jobs by age.
CREATE INDEX jobs_finished_idx ON jobs (finished_at) WHERE finished_at IS NOT NULL;
