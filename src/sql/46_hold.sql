-- taskflow install script, part 46: holding the automation of a database
-- restored from a dump until the DBA resumes it.
--
-- pg_restore runs CREATE EXTENSION taskflow (the workers start at its
-- commit), then loads the tables one by one.  The first COPY into one of
-- taskflow's internal tables — only a restore does that — records a hold
-- here in its own transaction (src/hold.c): the scheduler runs nothing and
-- taskflow.claim_messages() claims nothing while a hold exists, so the
-- engine never acts on a half-loaded database and a copy sends nothing its
-- original also sends.  taskflow.resume_automation() releases it.  The
-- table is not dumped: a hold belongs to one database, and every restore
-- makes its own.
CREATE TABLE taskflow.hold (
	held		boolean PRIMARY KEY DEFAULT true CHECK (held),	/* one row at most */
	held_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	held_by		text NOT NULL DEFAULT CURRENT_USER,
	reason		text NOT NULL
);
COMMENT ON TABLE taskflow.hold IS
	'When it has a row, the scheduler and the delivery workers of this database do nothing (a restored copy waits for the DBA)';

-- the workers see a hold, and its release, at once
CREATE TRIGGER wake AFTER INSERT OR DELETE ON taskflow.hold
	FOR EACH STATEMENT EXECUTE FUNCTION taskflow._wake();
CREATE TRIGGER wake_delivery AFTER INSERT OR DELETE ON taskflow.hold
	FOR EACH STATEMENT EXECUTE FUNCTION taskflow._wake_delivery();

-- Holds this database's automation by hand (for example before restoring
-- a dump made with --inserts, which no COPY gives away).  False when it
-- was held already (the first reason is kept).
CREATE FUNCTION taskflow.hold_automation(reason text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF reason IS NULL OR pg_catalog.btrim(reason) OPERATOR(pg_catalog.=) '' THEN
		RAISE EXCEPTION 'a hold needs a reason'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Say why, for the status view: taskflow.hold_automation(''staging copy'').';
	END IF;
	INSERT INTO taskflow.hold (reason) VALUES (hold_automation.reason)
		ON CONFLICT DO NOTHING;
	RETURN FOUND;
END
$$;
COMMENT ON FUNCTION taskflow.hold_automation(text) IS
	'Stops this database''s scheduler and delivery workers until taskflow.resume_automation()';

-- Releases the hold: the scheduler runs what is due and the delivery
-- workers send what is pending, at commit.  Returns the reason it was
-- held, or NULL when it was not.
CREATE FUNCTION taskflow.resume_automation()
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	was text;
BEGIN
	DELETE FROM taskflow.hold RETURNING reason INTO was;
	RETURN was;
END
$$;
COMMENT ON FUNCTION taskflow.resume_automation() IS
	'Releases the hold of a restored (or held) database: its workers run again at commit';
