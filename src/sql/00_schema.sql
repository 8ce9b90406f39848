-- taskflow install script, part 00: schema and roles.
--
-- The script is built from src/sql/*.sql in file-name order.  Every name is
-- schema-qualified, every operator written OPERATOR(pg_catalog.x), and every
-- function pins search_path, so objects a user creates elsewhere can never be
-- picked up by the extension.

\echo Use "CREATE EXTENSION taskflow" to load this file. \quit

-- taskflow stores names, templates and mail text in Japanese: refuse a
-- database that cannot hold them before anything is created (SQL_ASCII
-- would install, then refuse every Japanese name).  The library makes the
-- same check before the script is read, when it is loaded (preloaded).
DO $encoding$
BEGIN
	IF pg_catalog.getdatabaseencoding() OPERATOR(pg_catalog.<>) 'UTF8' THEN
		RAISE EXCEPTION 'taskflow needs a UTF8 database; database "%" uses encoding %',
			pg_catalog.current_database(), pg_catalog.getdatabaseencoding()
			USING ERRCODE = 'object_not_in_prerequisite_state',
				DETAIL = 'taskflow stores names, templates and mail text in Japanese.',
				HINT = 'Create a database with CREATE DATABASE ... TEMPLATE template0 ENCODING ''UTF8'' and install taskflow there.';
	END IF;
END
$encoding$;

-- Fails cleanly ("schema already exists") if someone created it beforehand.
CREATE SCHEMA taskflow;
COMMENT ON SCHEMA taskflow IS 'taskflow: members, criteria, tasks, chains, outbox';

REVOKE ALL ON SCHEMA taskflow FROM PUBLIC;

-- Roles are cluster-wide and may already exist from another database where
-- taskflow is installed; they are created only when missing.
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles
				   WHERE rolname OPERATOR(pg_catalog.=) 'taskflow_app') THEN
		CREATE ROLE taskflow_app NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles
				   WHERE rolname OPERATOR(pg_catalog.=) 'taskflow_operator') THEN
		CREATE ROLE taskflow_operator NOLOGIN;
	END IF;
END
$roles$;

-- (No COMMENT ON ROLE: it would lock the shared role and make two
-- databases' CREATE EXTENSION wait for each other; see doc/reference.md.)

GRANT USAGE ON SCHEMA taskflow TO taskflow_app, taskflow_operator;
