-- taskflow install script, part 35: the background workers' SQL side.

-- taskflow runs its due work in background workers, which exist only when
-- it is preloaded: refuse to install it where they cannot run.
CREATE FUNCTION taskflow._check_preloaded()
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_check_preloaded';
SELECT taskflow._check_preloaded();

-- The next instant anything is due after "after": a member's next step
-- (due after due_after), a daily slot (chain.next_slot_at, kept by a
-- trigger), an "always" chain's next entry check.  NULL: nothing.
-- Members waiting for their criteria to match again (checked_at set) are
-- looked at when something changes, not on a timer.  A chain whose last run
-- failed is retried 10 seconds after the failure (at most 10 seconds after
-- "after"), not at once: what failed is still due, and retrying at once
-- would spin, writing an error each time, until the chain is paused.
-- PL/pgSQL with a generic plan, so that the scheduler's session plans the
-- query once (an SQL function with a subquery is not inlined, and was
-- planned at every call); no part of the plan depends on the arguments.
CREATE FUNCTION taskflow._next_wakeup(after timestamptz, due_after timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
	-- each part is an index range (see the indexes on taskflow.chain)
	RETURN (
		SELECT min(x.t) FROM (
			(SELECT cm.due_at AS t FROM taskflow.chain_member cm
			  WHERE cm.state OPERATOR(pg_catalog.=) 'waiting' AND cm.checked_at IS NULL
				AND cm.due_at OPERATOR(pg_catalog.>) due_after
				-- a filter, not a join: joined, the plans made with the
				-- statistics of an empty table (a preview's) read every
				-- member due after due_after and sorted them
				AND (SELECT c.enabled AND c.paused_reason IS NULL
							AND c.consecutive_failures OPERATOR(pg_catalog.=) 0
					   FROM taskflow.chain c
					  WHERE c.chain_id OPERATOR(pg_catalog.=) cm.chain_id)
			  ORDER BY cm.due_at LIMIT 1)
			UNION ALL
			-- failed chains: 10 seconds after the failure
			SELECT LEAST(c.last_error_at, after) OPERATOR(pg_catalog.+) interval '10 seconds'
			  FROM taskflow.chain c
			 WHERE c.consecutive_failures OPERATOR(pg_catalog.>) 0
			   AND c.enabled AND c.paused_reason IS NULL
			UNION ALL
			-- always and anchor chains: their next entry check
			SELECT COALESCE(c.last_entry_at OPERATOR(pg_catalog.+)
							COALESCE(c.entry_interval,
									 pg_catalog.current_setting('taskflow.entry_interval')::interval),
							after)
			  FROM taskflow.chain c
			 WHERE c.schedule OPERATOR(pg_catalog.<>) 'daily'
			   AND c.consecutive_failures OPERATOR(pg_catalog.=) 0
			   AND c.enabled AND c.paused_reason IS NULL
			UNION ALL
			-- daily chains: their next slot
			(SELECT c.next_slot_at FROM taskflow.chain c
			  WHERE c.schedule OPERATOR(pg_catalog.=) 'daily'
				AND c.next_slot_at OPERATOR(pg_catalog.>) after
				AND c.consecutive_failures OPERATOR(pg_catalog.=) 0
				AND c.enabled AND c.paused_reason IS NULL
			  ORDER BY c.next_slot_at LIMIT 1)
			UNION ALL
			-- a daily chain whose next slot has passed unentered: the slot after
			SELECT taskflow.daily_slot_after(GREATEST(after, c.enabled_at), c.daily_at,
											 c.weekdays, c.time_zone)
			  FROM taskflow.chain c
			 WHERE c.schedule OPERATOR(pg_catalog.=) 'daily'
			   AND c.next_slot_at OPERATOR(pg_catalog.<=) after
			   AND c.consecutive_failures OPERATOR(pg_catalog.=) 0
			   AND c.enabled AND c.paused_reason IS NULL) x);
END
$$;
COMMENT ON FUNCTION taskflow._next_wakeup(timestamptz, timestamptz) IS
	'next_wakeup(after), counting only members due after due_after';

-- The next instant anything is due after "after", NULL when nothing is
-- (see _next_wakeup: every waiting member counts).  A preview asks
-- _next_wakeup with due_after = after: inside its one transaction the index
-- entries of every step it applied stay behind, all due at or before
-- "after", and walking them at every instant of a year cost more than the
-- steps (src/preview.c).
CREATE FUNCTION taskflow.next_wakeup(after timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN taskflow._next_wakeup(after, '-infinity');
COMMENT ON FUNCTION taskflow.next_wakeup(timestamptz) IS
	'When the scheduler next has something to do after an instant';

-- Per database: the scheduler's state, its last run and its next wake-up.
CREATE FUNCTION taskflow.worker_status(
	OUT dboid oid, OUT database text, OUT state text, OUT pid integer,
	OUT started_at timestamptz, OUT last_run_at timestamptz, OUT last_run_ms float8,
	OUT runs bigint, OUT last_entered bigint, OUT last_applied bigint,
	OUT last_pending bigint, OUT last_left bigint, OUT last_errors bigint,
	OUT next_wakeup_at timestamptz, OUT last_error text)
RETURNS SETOF record
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_worker_status';
CREATE VIEW taskflow.worker_status AS SELECT * FROM taskflow.worker_status();
COMMENT ON VIEW taskflow.worker_status IS
	'Per database: scheduler state, pid, last run and what it did, next wake-up, last error';

-- Wake the scheduler at commit when what decides "due" changes.
CREATE FUNCTION taskflow._wake()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_wake_trigger';

CREATE TRIGGER wake AFTER INSERT OR UPDATE OR DELETE ON taskflow.member
	FOR EACH STATEMENT EXECUTE FUNCTION taskflow._wake();
CREATE TRIGGER wake AFTER INSERT OR UPDATE OR DELETE ON taskflow.event
	FOR EACH STATEMENT EXECUTE FUNCTION taskflow._wake();
CREATE TRIGGER wake AFTER INSERT OR UPDATE OR DELETE ON taskflow.group_membership
	FOR EACH STATEMENT EXECUTE FUNCTION taskflow._wake();
CREATE TRIGGER wake AFTER INSERT OR UPDATE OR DELETE ON taskflow.criteria
	FOR EACH STATEMENT EXECUTE FUNCTION taskflow._wake();
CREATE TRIGGER wake AFTER INSERT OR UPDATE OR DELETE ON taskflow.task
	FOR EACH STATEMENT EXECUTE FUNCTION taskflow._wake();
CREATE TRIGGER wake AFTER INSERT OR UPDATE OR DELETE ON taskflow.chain
	FOR EACH STATEMENT EXECUTE FUNCTION taskflow._wake();
CREATE TRIGGER wake AFTER INSERT OR UPDATE OR DELETE ON taskflow.chain_step
	FOR EACH STATEMENT EXECUTE FUNCTION taskflow._wake();
CREATE TRIGGER wake AFTER INSERT OR UPDATE OR DELETE ON taskflow.chain_member
	FOR EACH STATEMENT EXECUTE FUNCTION taskflow._wake();

-- CREATE EXTENSION: the launcher starts this database's scheduler at commit.
CREATE FUNCTION taskflow._wake_launcher()
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_wake_launcher';
SELECT taskflow._wake_launcher();

REVOKE ALL ON FUNCTION taskflow._check_preloaded(), taskflow._wake_launcher(),
	taskflow.worker_status(), taskflow.next_wakeup(timestamptz),
	taskflow._next_wakeup(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION taskflow.worker_status(), taskflow.next_wakeup(timestamptz)
	TO taskflow_app, taskflow_operator;
GRANT SELECT ON taskflow.worker_status TO taskflow_app, taskflow_operator;
