-- The job queue: background work enqueued in the same transaction as the change that causes it,
-- claimed with FOR UPDATE SKIP LOCKED, leased to one worker at a time, and serialized per resource.

CREATE TABLE jobs (
    id uuid NOT NULL,
    kind text NOT NULL,
    team text,
    resource_type text NOT NULL,
    resource_name text NOT NULL,
    serial_key text NOT NULL,
    dedupe_key text,
    payload jsonb NOT NULL DEFAULT '{}',
    state text NOT NULL DEFAULT 'queued',
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 10,
    run_at timestamptz NOT NULL DEFAULT now(),
    lease_owner text,
    lease_expires_at timestamptz,
    last_error text,
    steps jsonb NOT NULL DEFAULT '[]',
    request_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CONSTRAINT jobs_pkey PRIMARY KEY (id),
    CONSTRAINT jobs_state_check CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    CONSTRAINT jobs_attempts_check CHECK (attempts >= 0 AND max_attempts >= 1)
);

-- At most one queued job per dedupe key: a burst of changes to one resource coalesces.
CREATE UNIQUE INDEX jobs_dedupe_queued_key ON jobs (dedupe_key) WHERE state = 'queued' AND dedupe_key IS NOT NULL;
-- At most one running job per serial key: two jobs never work on the same resource at once.
CREATE UNIQUE INDEX jobs_serial_running_key ON jobs (serial_key) WHERE state = 'running';
-- Claiming scans due queued jobs in run order.
CREATE INDEX jobs_queued_run_at_idx ON jobs (run_at) WHERE state = 'queued';
-- Expired leases are found among running jobs.
CREATE INDEX jobs_running_lease_idx ON jobs (lease_expires_at) WHERE state = 'running';
-- Listing: by team, newest first; by resource.
CREATE INDEX jobs_team_created_idx ON jobs (team, created_at DESC, id);
CREATE INDEX jobs_resource_idx ON jobs (resource_type, resource_name);

GRANT SELECT, INSERT, UPDATE, DELETE ON jobs TO podid_runtime;
