-- A chain that whoever holds the runtime role cannot shorten or bend, and whose keyed part the
-- owner role cannot rewrite without the key (which lives outside PostgreSQL, PODID_AUDIT_KEY_FILE).
--
-- * Seals record the rule they were made with: version 1 (SHA-256, before the key) or version 2
--   (HMAC-SHA256 under the audit key). audit_chain_keys records the position from which every seal
--   is keyed; signed checkpoints outside the database record it too.
-- * Pruning anchors carry a MAC under the key, so that an anchor written by hand is refused.
-- * The runtime role no longer writes these tables directly: events are appended through
--   podid_audit_append (the server's clock, the identity's next id), seals through podid_audit_seal
--   (which takes an event out of the sealer's queue only once it is sealed), and the keyed position
--   through podid_audit_keyed_from. Each is SECURITY DEFINER, owned by the owner role.

ALTER TABLE audit_seals ADD COLUMN version smallint NOT NULL DEFAULT 1;
ALTER TABLE audit_seals ADD CONSTRAINT audit_seals_version_check CHECK (version IN (1, 2));
ALTER TABLE audit_anchors ADD COLUMN mac text;

CREATE TABLE audit_chain_keys (
    from_position bigint NOT NULL,
    key_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_chain_keys_pkey PRIMARY KEY (from_position)
);

CREATE FUNCTION podid_audit_append(p_actor text, p_actor_team text, p_action text, p_outcome text, p_team text,
                                   p_resource_type text, p_resource_name text, p_request_id text, p_job_id uuid,
                                   p_details jsonb, p_before jsonb, p_after jsonb)
RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    INSERT INTO audit_events (actor, actor_team, action, outcome, team, resource_type, resource_name, request_id, job_id,
                              details, before, after)
    VALUES (p_actor, p_actor_team, p_action, p_outcome, p_team, p_resource_type, p_resource_name, p_request_id, p_job_id,
            coalesce(p_details, '{}'::jsonb), p_before, p_after)
    RETURNING id
$$;

CREATE FUNCTION podid_audit_seal(p_positions bigint[], p_event_ids bigint[], p_prev_hashes text[], p_hashes text[], p_version smallint,
                                 p_done bigint[])
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO audit_seals (position, event_id, prev_hash, hash, version)
    SELECT position, event_id, prev_hash, hash, p_version
    FROM unnest(p_positions, p_event_ids, p_prev_hashes, p_hashes) AS s(position, event_id, prev_hash, hash);
    DELETE FROM audit_unsealed AS u
    WHERE u.event_id = ANY(p_done) AND EXISTS (SELECT 1 FROM audit_seals AS s WHERE s.event_id = u.event_id);
END
$$;

CREATE FUNCTION podid_audit_keyed_from(p_position bigint, p_key_id text)
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    INSERT INTO audit_chain_keys (from_position, key_id)
    SELECT p_position, p_key_id WHERE NOT EXISTS (SELECT 1 FROM audit_chain_keys)
$$;

REVOKE ALL ON FUNCTION podid_audit_append(text, text, text, text, text, text, text, text, uuid, jsonb, jsonb, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION podid_audit_seal(bigint[], bigint[], text[], text[], smallint, bigint[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION podid_audit_keyed_from(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION podid_audit_append(text, text, text, text, text, text, text, text, uuid, jsonb, jsonb, jsonb) TO podid_runtime;
GRANT EXECUTE ON FUNCTION podid_audit_seal(bigint[], bigint[], text[], text[], smallint, bigint[]) TO podid_runtime;
GRANT EXECUTE ON FUNCTION podid_audit_keyed_from(bigint, text) TO podid_runtime;

REVOKE INSERT ON audit_events FROM podid_runtime;
REVOKE INSERT ON audit_seals FROM podid_runtime;
REVOKE INSERT, DELETE ON audit_unsealed FROM podid_runtime;
GRANT SELECT ON audit_chain_keys TO podid_runtime;
