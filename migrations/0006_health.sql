-- Assignment health: the latest result per binding, and the changes over time.

CREATE TABLE binding_health (
    team text NOT NULL,
    identity text NOT NULL,
    binding text NOT NULL,
    cluster text NOT NULL,
    status text NOT NULL,
    findings jsonb NOT NULL DEFAULT '[]',
    observed_at timestamptz NOT NULL,
    changed_at timestamptz NOT NULL,
    CONSTRAINT binding_health_pkey PRIMARY KEY (team, identity, binding),
    CONSTRAINT binding_health_binding_fkey FOREIGN KEY (team, identity, binding)
        REFERENCES bindings (team, identity, name) ON DELETE CASCADE,
    CONSTRAINT binding_health_status_check CHECK (status IN ('healthy', 'degraded', 'unhealthy', 'unknown'))
);
CREATE INDEX binding_health_cluster_idx ON binding_health (cluster, status);

-- One row per status change (kept PODID_HEALTH_HISTORY_DAYS, default 30).
CREATE TABLE binding_health_history (
    id bigint GENERATED ALWAYS AS IDENTITY,
    team text NOT NULL,
    identity text NOT NULL,
    binding text NOT NULL,
    cluster text NOT NULL,
    status text NOT NULL,
    previous text,
    findings jsonb NOT NULL DEFAULT '[]',
    observed_at timestamptz NOT NULL,
    CONSTRAINT binding_health_history_pkey PRIMARY KEY (id)
);
CREATE INDEX binding_health_history_binding_idx ON binding_health_history (team, identity, binding, observed_at DESC);
CREATE INDEX binding_health_history_time_idx ON binding_health_history (observed_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON binding_health, binding_health_history TO podid_runtime;
