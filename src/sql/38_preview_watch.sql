-- taskflow install script, part 38: what a preview's simulation writes.
--
-- A preview runs months of the engine in one transaction, where nothing it
-- supersedes can be cleaned away.  While it runs, these row triggers tell
-- it which members were written and at which step and due time members
-- were placed, so the engine's due scans and anchor checks look only at
-- what can have changed (src/preview_watch.c).  At any other time the
-- trigger function returns at once.

CREATE FUNCTION taskflow._preview_watch()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_preview_watch';
COMMENT ON FUNCTION taskflow._preview_watch() IS
	'While a preview runs: notes the members written and where members are placed';

CREATE TRIGGER preview_watch BEFORE INSERT OR UPDATE ON taskflow.member
	FOR EACH ROW EXECUTE FUNCTION taskflow._preview_watch();
CREATE TRIGGER preview_watch BEFORE INSERT OR UPDATE ON taskflow.chain_member
	FOR EACH ROW EXECUTE FUNCTION taskflow._preview_watch();
