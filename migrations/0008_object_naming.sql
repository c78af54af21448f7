-- Kubernetes object names that cannot collide across teams. Until now the AzureIdentity of team
-- `data`'s identity `platform-etl` and of team `data-platform`'s identity `etl` had the same name.
-- Each binding records the naming scheme of the objects it has in its cluster (1: the joined
-- names; 2: names with a digest of the exact team, identity and binding names). Existing bindings
-- keep 1 until their next apply, which podid's workers queue at start-up: it writes the objects
-- under the new names, removes the old ones (only where their labels say they are this binding's),
-- audits both, and records 2.
ALTER TABLE bindings ADD COLUMN object_naming smallint NOT NULL DEFAULT 1;
ALTER TABLE bindings ALTER COLUMN object_naming SET DEFAULT 2;
ALTER TABLE bindings ADD CONSTRAINT bindings_object_naming_check CHECK (object_naming IN (1, 2));
CREATE INDEX bindings_object_naming_idx ON bindings (object_naming) WHERE object_naming < 2;
