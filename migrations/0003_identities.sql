-- Identities: the desired state a team asked for (name, placement, tags, grants) and what the jobs
-- observed in Azure (ids, role assignments, state).

CREATE TABLE identities (
    team text NOT NULL,
    name text NOT NULL,
    subscription_id text NOT NULL,
    resource_group text NOT NULL,
    location text NOT NULL,
    tags jsonb NOT NULL DEFAULT '{}',
    grants jsonb NOT NULL DEFAULT '[]',
    deletion_policy text NOT NULL DEFAULT 'delete',
    adopt_resource_id text,
    adopted_by_admin boolean NOT NULL DEFAULT false,
    resource_id text,
    client_id text,
    principal_id text,
    tenant_id text,
    assignments jsonb NOT NULL DEFAULT '[]',
    state text NOT NULL DEFAULT 'pending',
    message text,
    last_error text,
    generation bigint NOT NULL DEFAULT 1,
    observed_generation bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT identities_pkey PRIMARY KEY (team, name),
    -- A team cannot be deleted while it owns identities.
    CONSTRAINT identities_team_fkey FOREIGN KEY (team) REFERENCES teams (name) ON DELETE RESTRICT,
    CONSTRAINT identities_state_check CHECK (state IN ('pending', 'provisioning', 'ready', 'failed', 'deleting')),
    CONSTRAINT identities_deletion_policy_check CHECK (deletion_policy IN ('delete', 'retain')),
    CONSTRAINT identities_generation_check CHECK (generation >= 1 AND observed_generation >= 0)
);

-- One Azure identity belongs to at most one podid identity (Azure names are case-insensitive).
CREATE UNIQUE INDEX identities_azure_key ON identities (lower(subscription_id), lower(resource_group), lower(name));

-- Jobs name the API path of the resource they work on, for `GET /v1/jobs?resource=`.
ALTER TABLE jobs ADD COLUMN resource text NOT NULL DEFAULT '';
CREATE INDEX jobs_resource_path_idx ON jobs (resource, created_at DESC, id);
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id);

GRANT SELECT, INSERT, UPDATE, DELETE ON identities TO podid_runtime;
