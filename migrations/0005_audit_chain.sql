-- Tamper evidence for the audit log, and indexes for the filters dashboards use.
--
-- Every event is sealed into a SHA-256 chain after it commits: a single sealer (an advisory lock)
-- gives each event the next chain position and hash(previous hash, canonical event) in audit_seals.
-- Events reach the sealer through audit_unsealed, filled by a trigger in the inserting transaction,
-- so that API writes never wait for one another. The runtime role may insert and read events and
-- seals, never change or delete them; pruning is the owner's job and leaves an anchor behind.

CREATE TABLE audit_seals (
    position bigint NOT NULL,
    event_id bigint NOT NULL,
    prev_hash text NOT NULL,
    hash text NOT NULL,
    sealed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_seals_pkey PRIMARY KEY (position),
    CONSTRAINT audit_seals_event_key UNIQUE (event_id)
);

-- Events written but not sealed yet (the sealer's queue).
CREATE TABLE audit_unsealed (
    event_id bigint NOT NULL,
    CONSTRAINT audit_unsealed_pkey PRIMARY KEY (event_id)
);

-- Where the chain continues after pruning: the position and hash of the last pruned event.
CREATE TABLE audit_anchors (
    position bigint NOT NULL,
    hash text NOT NULL,
    pruned_before timestamptz NOT NULL,
    pruned_events bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_anchors_pkey PRIMARY KEY (position)
);

CREATE FUNCTION podid_audit_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_unsealed (event_id) VALUES (NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER audit_events_enqueue AFTER INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION podid_audit_enqueue();

-- Newest first, by time then id, alone and with each filter dashboards combine.
CREATE INDEX audit_events_time_idx ON audit_events (occurred_at DESC, id DESC);
CREATE INDEX audit_events_team_time_idx ON audit_events (team, occurred_at DESC, id DESC);
CREATE INDEX audit_events_actor_time_idx ON audit_events (actor, occurred_at DESC, id DESC);
CREATE INDEX audit_events_action_time_idx ON audit_events (action, occurred_at DESC, id DESC);
CREATE INDEX audit_events_resource_time_idx ON audit_events (resource_type, resource_name, occurred_at DESC, id DESC);
CREATE INDEX audit_events_problem_time_idx ON audit_events (outcome, occurred_at DESC, id DESC) WHERE outcome <> 'success';
DROP INDEX audit_events_team_id_idx;

GRANT SELECT, INSERT ON audit_seals TO podid_runtime;
GRANT SELECT, INSERT, DELETE ON audit_unsealed TO podid_runtime;
GRANT SELECT ON audit_anchors TO podid_runtime;
