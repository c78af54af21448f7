-- Teams get an immutable id, and the history of a team hangs on it. Until now audit events and jobs
-- named their team only: a team deleted and created again under the same name read the old team's
-- history. The name stays in both tables (audit events hash it, so sealed events still verify);
-- `team_id` is set on insert from the team that has the name at that moment, and the team-scoped
-- reads go by id. Existing rows get the id of the current team of their name when they are not older
-- than it; older ones belonged to an earlier team of that name and get none.
ALTER TABLE teams ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid();
ALTER TABLE teams ADD CONSTRAINT teams_id_key UNIQUE (id);

ALTER TABLE audit_events ADD COLUMN team_id uuid;
ALTER TABLE jobs ADD COLUMN team_id uuid;
UPDATE audit_events AS e SET team_id = t.id FROM teams AS t WHERE e.team = t.name AND e.occurred_at >= t.created_at;
UPDATE jobs AS j SET team_id = t.id FROM teams AS t WHERE j.team = t.name AND j.created_at >= t.created_at;
CREATE INDEX audit_events_team_uuid_id_idx ON audit_events (team_id, id);
CREATE INDEX jobs_team_id_created_idx ON jobs (team_id, created_at);

CREATE FUNCTION podid_team_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.team IS NOT NULL THEN
        NEW.team_id := (SELECT id FROM teams WHERE name = NEW.team);
    ELSE
        NEW.team_id := NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_events_team_id BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION podid_team_id();
CREATE TRIGGER jobs_team_id BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION podid_team_id();
