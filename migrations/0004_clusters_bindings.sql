-- Clusters podid manages and bindings of identities in them.

CREATE TABLE clusters (
    name text NOT NULL,
    api_server text,
    connection jsonb NOT NULL,
    broker_namespace text NOT NULL DEFAULT 'aad-broker',
    mic_mode text NOT NULL DEFAULT 'cluster',
    node_resource_group text,
    kubelet_identity jsonb,
    status jsonb,
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT clusters_pkey PRIMARY KEY (name),
    CONSTRAINT clusters_mic_mode_check CHECK (mic_mode IN ('cluster', 'namespaced'))
);

CREATE TABLE bindings (
    team text NOT NULL,
    identity text NOT NULL,
    name text NOT NULL,
    cluster text NOT NULL,
    namespace text NOT NULL,
    selector text NOT NULL,
    state text NOT NULL DEFAULT 'pending',
    message text,
    last_error text,
    generation bigint NOT NULL DEFAULT 1,
    observed_generation bigint NOT NULL DEFAULT 0,
    applied_client_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT bindings_pkey PRIMARY KEY (team, identity, name),
    -- An identity with bindings is deleted only after them; a cluster with bindings cannot be deleted.
    CONSTRAINT bindings_identity_fkey FOREIGN KEY (team, identity) REFERENCES identities (team, name) ON DELETE RESTRICT,
    CONSTRAINT bindings_cluster_fkey FOREIGN KEY (cluster) REFERENCES clusters (name) ON DELETE RESTRICT,
    CONSTRAINT bindings_state_check CHECK (state IN ('pending', 'provisioning', 'ready', 'failed', 'deleting'))
);

-- Selectors per cluster (another team may not use one; health checks match pods by them).
CREATE INDEX bindings_cluster_selector_idx ON bindings (cluster, selector);
-- The bindings sharing one AzureIdentity object.
CREATE INDEX bindings_cluster_namespace_idx ON bindings (cluster, namespace, team, identity);

GRANT SELECT, INSERT, UPDATE, DELETE ON clusters, bindings TO podid_runtime;
