-- taskflow install script, part 01: the engine's clock.

-- The instant the engine runs as: the setting taskflow.as_of when set (by
-- the engine, a search "as of" an instant, or the preview), else now().
CREATE FUNCTION taskflow.clock()
RETURNS timestamptz
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'taskflow_clock';
COMMENT ON FUNCTION taskflow.clock() IS
	'The instant taskflow runs as (taskflow.as_of when set, else now()); use it instead of now() in criteria';
