-- Runs once, when the PostgreSQL volume is created: the runtime login role podid serves as. The
-- owning role (POSTGRES_USER) runs the migrations, which grant this role what it needs.
CREATE ROLE podid_app LOGIN PASSWORD 'app-secret';
