-- In MIC's `cluster` mode a binding matches labelled pods in every namespace, so a cluster shared by
-- teams must run MIC namespaced: podid refuses a `cluster`-mode cluster in more than one team's
-- policy unless an admin marks it single-team (its teams are one tenant).
ALTER TABLE clusters ADD COLUMN single_team boolean NOT NULL DEFAULT false;
