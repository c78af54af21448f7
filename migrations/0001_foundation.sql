-- podid foundation: teams, tokens, the audit log and idempotency keys.
--
-- Rights are granted to the NOLOGIN role podid_runtime; the login role in PODID_DATABASE_URL is made a
-- member of it by `podid migrate apply`. The runtime role may INSERT and SELECT audit rows but never
-- UPDATE or DELETE them: the audit log is append-only for the server.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'podid_runtime') THEN
        CREATE ROLE podid_runtime NOLOGIN;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO podid_runtime;
GRANT SELECT ON schema_migrations TO podid_runtime;

CREATE TABLE teams (
    name text NOT NULL,
    display_name text NOT NULL,
    contacts text[] NOT NULL DEFAULT '{}',
    policy jsonb NOT NULL,
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT teams_pkey PRIMARY KEY (name),
    CONSTRAINT teams_name_check CHECK (name ~ '^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$')
);

CREATE TABLE tokens (
    id uuid NOT NULL,
    name text NOT NULL,
    role text NOT NULL,
    team text,
    secret_hash bytea NOT NULL,
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    CONSTRAINT tokens_pkey PRIMARY KEY (id),
    CONSTRAINT tokens_secret_hash_key UNIQUE (secret_hash),
    CONSTRAINT tokens_team_fkey FOREIGN KEY (team) REFERENCES teams (name) ON DELETE CASCADE,
    CONSTRAINT tokens_role_check CHECK (role IN ('admin', 'maintainer', 'viewer', 'auditor')),
    CONSTRAINT tokens_role_team_check CHECK ((role IN ('admin', 'auditor')) = (team IS NULL))
);
CREATE INDEX tokens_team_created_idx ON tokens (team, created_at, id);

-- The audit log: tens of millions of rows read newest first by keyset (id). team is not a foreign
-- key: a deleted team's history stays.
CREATE TABLE audit_events (
    id bigint GENERATED ALWAYS AS IDENTITY,
    occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor text NOT NULL,
    actor_team text,
    action text NOT NULL,
    outcome text NOT NULL,
    team text,
    resource_type text NOT NULL,
    resource_name text,
    request_id text,
    job_id uuid,
    details jsonb NOT NULL DEFAULT '{}',
    before jsonb,
    after jsonb,
    CONSTRAINT audit_events_pkey PRIMARY KEY (id),
    CONSTRAINT audit_events_outcome_check CHECK (outcome IN ('success', 'failure', 'denied'))
);
CREATE INDEX audit_events_team_id_idx ON audit_events (team, id);
CREATE INDEX audit_events_request_id_idx ON audit_events (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX audit_events_action_id_idx ON audit_events (action text_pattern_ops, id);

CREATE TABLE idempotency_keys (
    scope text NOT NULL,
    key text NOT NULL,
    fingerprint text NOT NULL,
    status integer,
    headers jsonb,
    body bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON teams, tokens, idempotency_keys TO podid_runtime;
GRANT SELECT, INSERT ON audit_events TO podid_runtime;
