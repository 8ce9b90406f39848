-- taskflow install script, part 33: creating and changing chains.
--
-- Every public function here is the C dispatcher taskflow_api_call, which
-- runs taskflow._<name>(caller, ...) as the extension owner with the calling
-- role as "caller"; the caller owns what it creates and may change only
-- chains of roles it belongs to.

-- Resolves a chain name for the caller, who must have the owner's privileges.
CREATE FUNCTION taskflow._chain_for(caller regrole, chain_name text)
RETURNS taskflow.chain
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c taskflow.chain;
BEGIN
	IF chain_name IS NULL THEN
		RAISE EXCEPTION 'a chain name is required'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO c FROM taskflow.chain WHERE name OPERATOR(pg_catalog.=) chain_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'chain "%" does not exist', chain_name
			USING ERRCODE = 'undefined_object';
	END IF;
	IF NOT pg_has_role(caller, c.owner, 'USAGE') THEN
		RAISE EXCEPTION 'permission denied for chain "%"', chain_name
			USING ERRCODE = 'insufficient_privilege',
				  HINT = format('Only members of role %s may change it.', c.owner);
	END IF;
	RETURN c;
END
$$;

-- A chain runs its tasks' criteria and actions with its owner's privileges,
-- while the task's owner, and its criteria's, may change them at any time:
-- each must already have the chain owner's privileges, or the chain would
-- run that role's code with privileges it does not have.  Refuses a task
-- (with criteria_id its criteria, which may be a new one) otherwise.
CREATE FUNCTION taskflow._check_runs_as(c taskflow.chain, t taskflow.task, criteria_id integer)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	cr record;
BEGIN
	IF NOT pg_catalog.pg_has_role(t.owner, c.owner, 'USAGE') THEN
		RAISE EXCEPTION 'chain "%" cannot use task "%" of role %', c.name, t.name, t.owner
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('A chain runs the criteria and actions of its tasks with the privileges of its owner, %s; role %s, which may change the task, does not have them.',
								  c.owner, t.owner),
				  HINT = format('Create the chain as role %s, or the task as role %s.', t.owner, c.owner);
	END IF;
	SELECT x.name, x.owner INTO cr FROM taskflow.criteria x
	 WHERE x.criteria_id OPERATOR(pg_catalog.=) _check_runs_as.criteria_id;
	IF FOUND AND NOT pg_catalog.pg_has_role(cr.owner, c.owner, 'USAGE') THEN
		RAISE EXCEPTION 'chain "%" cannot use criteria "%" of role % (task "%")', c.name, cr.name, cr.owner, t.name
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('A chain runs the criteria of its tasks with the privileges of its owner, %s; role %s, which may change the criteria, does not have them.',
								  c.owner, cr.owner),
				  HINT = format('Give the task a criteria saved by role %s.', c.owner);
	END IF;
END
$$;

-- Refuses to make a task criteria_only or drop it while a chain uses it.
CREATE FUNCTION taskflow._refuse_if_in_chain(task_id integer, task_name text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	chain_name text;
BEGIN
	SELECT c.name INTO chain_name FROM taskflow.chain_step s
	  JOIN taskflow.chain c USING (chain_id)
	 WHERE s.task_id OPERATOR(pg_catalog.=) _refuse_if_in_chain.task_id
	 ORDER BY c.name LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'task "%" is used by chain "%"', task_name, chain_name
			USING ERRCODE = 'dependent_objects_still_exist',
				  HINT = 'Remove it from the chain first (taskflow.remove_step()).';
	END IF;
END
$$;

-- Checks the chain-level settings shared by create_chain and alter_chain.
CREATE FUNCTION taskflow._check_chain(c taskflow.chain)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF c.name IS NULL OR btrim(c.name) OPERATOR(pg_catalog.=) '' OR length(c.name) OPERATOR(pg_catalog.>) 200
	   OR c.name OPERATOR(pg_catalog.~) '[[:cntrl:]]' THEN
		RAISE EXCEPTION 'invalid chain name %', coalesce(to_json(c.name)::text, 'NULL')
			USING ERRCODE = 'invalid_name',
				  HINT = 'A chain name is 1 to 200 characters without control characters.';
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_timezone_names WHERE name OPERATOR(pg_catalog.=) c.time_zone) THEN
		RAISE EXCEPTION 'unknown time zone %', coalesce(quote_literal(c.time_zone), 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use a name from pg_timezone_names, for example Asia/Tokyo.';
	END IF;
	IF c.entry_interval IS NOT NULL AND (c.entry_interval OPERATOR(pg_catalog.<) interval '1 second'
										 OR c.entry_interval OPERATOR(pg_catalog.>) interval '1 day') THEN
		RAISE EXCEPTION 'entry interval % of chain "%" is out of range', c.entry_interval, c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use between 1 second and 1 day; for once a day use schedule => ''daily at HH:MM''.';
	END IF;
	IF c.reentry OPERATOR(pg_catalog.=) 'cooldown' AND (c.reentry_cooldown IS NULL
			OR c.reentry_cooldown OPERATOR(pg_catalog.<) interval '0') THEN
		RAISE EXCEPTION 're-entry "cooldown" of chain "%" needs a cooldown interval of 0 or more', c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example reentry => ''cooldown'', reentry_cooldown => ''30 days''.';
	END IF;
	-- a longer one would overflow the timestamps it is added to when runs
	-- check who may re-enter (and is "never" in practice)
	IF c.reentry_cooldown OPERATOR(pg_catalog.>) interval '100 years' THEN
		RAISE EXCEPTION 'cooldown interval % of chain "%" is out of range', c.reentry_cooldown, c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use at most 100 years; for no re-entry at all use reentry => ''never''.';
	END IF;
	IF c.reentry OPERATOR(pg_catalog.<>) 'cooldown' AND c.reentry_cooldown IS NOT NULL THEN
		RAISE EXCEPTION 'a cooldown interval needs reentry => ''cooldown'' (chain "%")', c.name
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF c.repeat AND c.repeat_wait_kind OPERATOR(pg_catalog.=) 'none' THEN
		RAISE EXCEPTION 'repeating chain "%" needs repeat_wait', c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example repeat_wait => ''30 days at 09:00'': how long after the last task task 1 runs again.';
	END IF;
	IF c.pause_after_failures IS NULL OR c.pause_after_failures OPERATOR(pg_catalog.<) 1 THEN
		RAISE EXCEPTION 'pause_after_failures must be at least 1'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
END
$$;

-- A chain's time zone spelled as in pg_timezone_names: the name given, in
-- any letter case, or by default the session's TimeZone (what SHOW
-- TimeZone says).  A default that is not a named zone (an abbreviation or
-- POSIX spec such as 'JST-9' or '+09') is refused: only a name carries the
-- zone's rules.  A name given that is no zone comes back as it is, for
-- _check_chain to refuse.
CREATE FUNCTION taskflow._chain_time_zone(time_zone text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	wanted text := coalesce(time_zone, current_setting('TimeZone'));
	zone text;
BEGIN
	SELECT z.name INTO zone FROM pg_catalog.pg_timezone_names z
	 WHERE lower(z.name) OPERATOR(pg_catalog.=) lower(wanted)
	 ORDER BY z.name OPERATOR(pg_catalog.=) wanted DESC, z.name LIMIT 1;
	IF zone IS NULL AND time_zone IS NULL THEN
		RAISE EXCEPTION 'the default time zone % is not a named time zone', quote_literal(wanted)
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A chain without time_zone takes the session''s TimeZone, which is an abbreviation or offset here, not a name from pg_timezone_names.',
				  HINT = 'Pass the zone by name, for example time_zone => ''Asia/Tokyo''.';
	END IF;
	RETURN coalesce(zone, time_zone);
END
$$;

-- Parses a wait between two tasks (or a repeat_wait) like
-- taskflow._parse_wait(), refusing '0 days at HH:MM': it would fall due
-- at once whenever the task before finished after HH:MM.
CREATE FUNCTION taskflow._parse_chain_wait(wait text, OUT kind text, OUT after interval,
										   OUT days integer, OUT at time)
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	SELECT * INTO kind, after, days, at FROM taskflow._parse_wait(wait);
	IF kind OPERATOR(pg_catalog.=) 'days_at' AND days OPERATOR(pg_catalog.=) 0 THEN
		RAISE EXCEPTION 'wait "%" is out of range', wait
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A "days at" wait is at least 1 day; for the same day use ''N hours'' or ''N minutes''.';
	END IF;
END
$$;

-- Parses 'always' or 'daily at HH:MM' into schedule and daily_at.
CREATE FUNCTION taskflow._parse_schedule(schedule text, OUT kind text, OUT daily_at time)
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	m text[];
BEGIN
	IF lower(btrim(schedule)) OPERATOR(pg_catalog.=) 'always' THEN
		kind := 'always';
		RETURN;
	END IF;
	m := regexp_match(lower(btrim(schedule)), '^daily at (\d{1,2}):(\d{2})$');
	IF m IS NULL OR m[1]::int OPERATOR(pg_catalog.>) 23 OR m[2]::int OPERATOR(pg_catalog.>) 59 THEN
		RAISE EXCEPTION 'invalid schedule %', coalesce(quote_literal(schedule), 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use ''always'' (every entry interval, for whoever matches) or ''daily at HH:MM'' (00:00 to 23:59).';
	END IF;
	kind := 'daily';
	daily_at := make_time(m[1]::int, m[2]::int, 0);
END
$$;

CREATE FUNCTION taskflow._create_chain(caller regrole, name text, tasks text[], waits text[],
									   schedule text, weekdays text[], time_zone text,
									   repeat boolean, repeat_wait text, reentry text,
									   reentry_cooldown interval, entry_interval interval,
									   enabled boolean, description text,
									   pause_after_failures integer, test boolean,
									   anchor text, offsets text[], yearly boolean,
									   anchor_change text, activation text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c taskflow.chain;
	s record;
	w record;
	i integer;
BEGIN
	s := taskflow._parse_schedule(schedule);
	w := taskflow._parse_chain_wait(repeat_wait);
	IF reentry IS NULL OR NOT reentry OPERATOR(pg_catalog.=) ANY (ARRAY['never', 'rematch', 'cooldown']) THEN
		RAISE EXCEPTION 'invalid re-entry policy %', coalesce(quote_literal(reentry), 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use never, rematch (when the member matches again after not matching) or cooldown (after reentry_cooldown).';
	END IF;
	c.name := btrim(name);
	c.description := description;
	c.owner := caller;
	c.enabled := coalesce(enabled, true);
	c.schedule := s.kind;
	c.daily_at := s.daily_at;
	c.weekdays := taskflow._parse_weekdays(weekdays);
	c.entry_interval := entry_interval;
	c.time_zone := taskflow._chain_time_zone(time_zone);
	c.repeat := coalesce(repeat, false);
	c.repeat_wait_kind := w.kind;
	c.repeat_wait_after := w.after;
	c.repeat_wait_days := w.days;
	c.repeat_wait_at := w.at;
	c.reentry := reentry;
	c.reentry_cooldown := reentry_cooldown;
	c.pause_after_failures := pause_after_failures;
	c.is_test := coalesce(test, false);
	c.enabled_at := taskflow.clock();
	IF anchor IS NOT NULL THEN
		-- an anchor chain: steps at offsets from each member's anchor date
		IF schedule OPERATOR(pg_catalog.<>) 'always' OR weekdays IS NOT NULL OR c.repeat THEN
			RAISE EXCEPTION 'anchor chain "%" has no schedule, weekdays or repeat of its own', name
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Its steps run at their offsets from each member''s anchor; use yearly => true for a birthday or anniversary every year.';
		END IF;
		IF waits IS NOT NULL THEN
			RAISE EXCEPTION 'anchor chain "%" takes offsets, not waits', name
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'offsets[i] is when tasks[i] runs, counted from the anchor: ''immediately'', ''2 days at 10:00'', ''-3 days at 09:00''.';
		END IF;
		IF offsets IS NULL OR cardinality(offsets) OPERATOR(pg_catalog.<>) cardinality(tasks) THEN
			RAISE EXCEPTION 'anchor chain "%" needs one offset per task', name
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'For example offsets => ARRAY[''immediately'', ''2 days at 10:00''].';
		END IF;
		IF anchor_change IS NULL OR NOT anchor_change OPERATOR(pg_catalog.=) ANY (ARRAY['restart', 'follow', 'ignore']) THEN
			RAISE EXCEPTION 'invalid anchor_change %', coalesce(quote_literal(anchor_change), 'NULL')
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Use restart (from the first task at the new anchor), follow (keep going on the new anchor) or ignore.';
		END IF;
		IF activation IS NULL OR NOT activation OPERATOR(pg_catalog.=) ANY (ARRAY['new', 'existing']) THEN
			RAISE EXCEPTION 'invalid activation %', coalesce(quote_literal(activation), 'NULL')
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Use new (only members whose anchor falls after the chain is enabled) or existing (existing members too; their past steps are skipped).';
		END IF;
		c.schedule := 'anchor';
		c.anchor := taskflow._parse_anchor(anchor);
		c.anchor_yearly := coalesce(yearly, false);
		c.anchor_change := anchor_change;
		c.activation := activation;
		waits := offsets;
	ELSIF offsets IS NOT NULL OR coalesce(yearly, false) THEN
		RAISE EXCEPTION 'offsets and yearly need an anchor (chain "%")', name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example anchor => ''birthday'', yearly => true, offsets => ARRAY[''0 days at 09:00''].';
	END IF;
	IF s.kind OPERATOR(pg_catalog.=) 'always' AND weekdays IS NOT NULL THEN
		RAISE EXCEPTION 'weekdays need a daily schedule (chain "%")', name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example schedule => ''daily at 09:00'', weekdays => ARRAY[''mon'', ''wed'', ''fri''].';
	END IF;
	IF NOT c.repeat AND repeat_wait IS NOT NULL THEN
		RAISE EXCEPTION 'repeat_wait needs repeat => true (chain "%")', name
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM taskflow._check_chain(c);
	IF tasks IS NULL OR cardinality(tasks) OPERATOR(pg_catalog.=) 0 THEN
		RAISE EXCEPTION 'chain "%" needs at least one task', name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example tasks => ARRAY[''サンクスメール''].';
	END IF;
	IF waits IS NOT NULL AND cardinality(waits) OPERATOR(pg_catalog.<>) cardinality(tasks) THEN
		RAISE EXCEPTION 'chain "%" has % tasks but % waits', name, cardinality(tasks), cardinality(waits)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'waits[i] is the wait before tasks[i]; waits[1] is NULL.';
	END IF;

	INSERT INTO taskflow.chain AS ch (name, description, owner, owner_could_login, enabled, schedule, daily_at, weekdays,
		entry_interval, time_zone, repeat, repeat_wait_kind, repeat_wait_after,
		repeat_wait_days, repeat_wait_at, reentry, reentry_cooldown,
		pause_after_failures, enabled_at, is_test, anchor, anchor_yearly, anchor_change, activation)
	VALUES (c.name, c.description, c.owner,
		(SELECT r.rolcanlogin FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) caller),
		c.enabled, c.schedule, c.daily_at, c.weekdays,
		c.entry_interval, c.time_zone, c.repeat, c.repeat_wait_kind, c.repeat_wait_after,
		c.repeat_wait_days, c.repeat_wait_at, c.reentry, c.reentry_cooldown,
		c.pause_after_failures, c.enabled_at, c.is_test, c.anchor, coalesce(c.anchor_yearly, false),
		coalesce(c.anchor_change, 'restart'), coalesce(c.activation, 'new'))
	RETURNING ch.chain_id INTO c.chain_id;

	FOR i IN 1 .. cardinality(tasks) LOOP
		PERFORM taskflow._insert_step(caller, c, tasks[i], waits[i], i);
	END LOOP;
	RETURN c.chain_id;
EXCEPTION WHEN unique_violation THEN
	RAISE EXCEPTION 'chain "%" already exists', name
		USING ERRCODE = 'duplicate_object',
			  HINT = 'Change it with taskflow.alter_chain() or taskflow.add_step().';
END
$$;

CREATE FUNCTION taskflow.create_chain(name text,
									  tasks text[],
									  waits text[] DEFAULT NULL,
									  schedule text DEFAULT 'always',
									  weekdays text[] DEFAULT NULL,
									  time_zone text DEFAULT NULL,
									  repeat boolean DEFAULT false,
									  repeat_wait text DEFAULT NULL,
									  reentry text DEFAULT 'never',
									  reentry_cooldown interval DEFAULT NULL,
									  entry_interval interval DEFAULT NULL,
									  enabled boolean DEFAULT true,
									  description text DEFAULT NULL,
									  pause_after_failures integer DEFAULT 3,
									  test boolean DEFAULT false,
									  anchor text DEFAULT NULL,
									  offsets text[] DEFAULT NULL,
									  yearly boolean DEFAULT false,
									  anchor_change text DEFAULT 'restart',
									  activation text DEFAULT 'new')
RETURNS integer
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_api_call';
COMMENT ON FUNCTION taskflow.create_chain IS
	'Creates a chain of tasks: waits[i] is the wait before tasks[i] (''3 hours'', ''5 days at 10:00''); or, with anchor => a member date, offsets[i] from it (''-3 days at 09:00''); test => true sends its mail to the channel''s test recipients only';

-- Inserts a task into a chain at a position (shifting later steps), with
-- the wait before it.  Members keep waiting for the step they were waiting
-- for; those who finish the step before the new one go to the new one.
CREATE FUNCTION taskflow._insert_step(caller regrole, c taskflow.chain, task_name text,
									  wait text, pos integer)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t taskflow.task := taskflow._task_for(caller, task_name, false);
	w record;
	o record;
	n integer;
	new_id integer;
BEGIN
	IF t.mode OPERATOR(pg_catalog.=) 'criteria_only' THEN
		RAISE EXCEPTION 'task "%" is criteria_only and cannot be part of a chain', task_name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Switch it to manual or auto first (taskflow.alter_task()).';
	END IF;
	PERFORM taskflow._check_runs_as(c, t, t.criteria_id);
	IF c.schedule OPERATOR(pg_catalog.=) 'anchor' THEN
		-- anchor chains: "wait" is the offset from the anchor
		o := taskflow._parse_offset(wait);
		SELECT count(*) INTO n FROM taskflow.chain_step s WHERE s.chain_id OPERATOR(pg_catalog.=) c.chain_id;
		pos := coalesce(pos, n OPERATOR(pg_catalog.+) 1);
		IF pos OPERATOR(pg_catalog.<) 1 OR pos OPERATOR(pg_catalog.>) (n OPERATOR(pg_catalog.+) 1) THEN
			RAISE EXCEPTION 'position % is out of range for chain "%" (1 to %)', pos, c.name, n OPERATOR(pg_catalog.+) 1
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		UPDATE taskflow.chain_step s SET position = s.position OPERATOR(pg_catalog.+) 1
		 WHERE s.chain_id OPERATOR(pg_catalog.=) c.chain_id AND s.position OPERATOR(pg_catalog.>=) pos;
		INSERT INTO taskflow.chain_step AS s (chain_id, position, task_id, wait_kind, wait_days, wait_at)
		VALUES (c.chain_id, pos, t.task_id, 'anchor', o.days, o.at)
		RETURNING s.step_id INTO new_id;
		PERFORM taskflow._check_anchor_order(c);
		RETURN new_id;
	END IF;
	w := taskflow._parse_chain_wait(wait);
	SELECT count(*) INTO n FROM taskflow.chain_step s WHERE s.chain_id OPERATOR(pg_catalog.=) c.chain_id;
	IF pos IS NULL THEN
		pos := n OPERATOR(pg_catalog.+) 1;
	END IF;
	IF pos OPERATOR(pg_catalog.<) 1 OR pos OPERATOR(pg_catalog.>) (n OPERATOR(pg_catalog.+) 1) THEN
		RAISE EXCEPTION 'position % is out of range for chain "%" (1 to %)', pos, c.name, n OPERATOR(pg_catalog.+) 1
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF pos OPERATOR(pg_catalog.=) 1 AND n OPERATOR(pg_catalog.=) 0 AND w.kind OPERATOR(pg_catalog.<>) 'none' THEN
		RAISE EXCEPTION 'the first task of chain "%" has no wait: it runs on the chain''s schedule', c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give a wait only for later tasks.';
	END IF;
	IF pos OPERATOR(pg_catalog.=) 1 AND n OPERATOR(pg_catalog.>) 0 THEN
		-- a new first task: the wait given goes between it and the old first task
		IF w.kind OPERATOR(pg_catalog.=) 'none' THEN
			RAISE EXCEPTION 'a new first task of chain "%" needs the wait before the old first task', c.name
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'For example wait => ''1 days at 09:00''.';
		END IF;
		UPDATE taskflow.chain_step s
		   SET wait_kind = w.kind, wait_after = w.after, wait_days = w.days, wait_at = w.at
		 WHERE s.chain_id OPERATOR(pg_catalog.=) c.chain_id AND s.position OPERATOR(pg_catalog.=) 1;
		w := taskflow._parse_wait(NULL);
	END IF;
	IF pos OPERATOR(pg_catalog.>) 1 AND w.kind OPERATOR(pg_catalog.=) 'none' THEN
		RAISE EXCEPTION 'task % of chain "%" needs a wait', pos, c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Write ''3 hours'' (same day, 3 hours later) or ''5 days at 10:00''.';
	END IF;
	UPDATE taskflow.chain_step s SET position = s.position OPERATOR(pg_catalog.+) 1
	 WHERE s.chain_id OPERATOR(pg_catalog.=) c.chain_id AND s.position OPERATOR(pg_catalog.>=) pos;
	INSERT INTO taskflow.chain_step AS s (chain_id, position, task_id, wait_kind, wait_after, wait_days, wait_at)
	VALUES (c.chain_id, pos, t.task_id, w.kind, w.after, w.days, w.at)
	RETURNING s.step_id INTO new_id;
	RETURN new_id;
END
$$;

CREATE FUNCTION taskflow._add_step(caller regrole, chain text, task text, wait text, "position" integer)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c taskflow.chain := taskflow._chain_for(caller, chain);
BEGIN
	RETURN taskflow._insert_step(caller, c, task, wait, "position");
END
$$;

CREATE FUNCTION taskflow.add_step(chain text, task text, wait text DEFAULT NULL,
								  "position" integer DEFAULT NULL)
RETURNS integer
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_api_call';
COMMENT ON FUNCTION taskflow.add_step IS
	'Adds a task to a chain (at the end, or at a position), with the wait before it';

-- Changes the wait before a step.
CREATE FUNCTION taskflow._set_wait(caller regrole, chain text, "position" integer, wait text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c taskflow.chain := taskflow._chain_for(caller, chain);
	w record;
	o record;
BEGIN
	IF c.schedule OPERATOR(pg_catalog.=) 'anchor' THEN
		-- an anchor chain's "wait" is the step's offset from the anchor
		o := taskflow._parse_offset(wait);
		UPDATE taskflow.chain_step s SET wait_days = o.days, wait_at = o.at
		 WHERE s.chain_id OPERATOR(pg_catalog.=) c.chain_id AND s.position OPERATOR(pg_catalog.=) _set_wait."position";
		IF NOT FOUND THEN
			RAISE EXCEPTION 'chain "%" has no task at position %', chain, "position"
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		PERFORM taskflow._check_anchor_order(c);
		RETURN;
	END IF;
	w := taskflow._parse_chain_wait(wait);
	IF "position" IS NULL OR "position" OPERATOR(pg_catalog.<=) 1 OR w.kind OPERATOR(pg_catalog.=) 'none' THEN
		RAISE EXCEPTION 'only tasks after the first have a wait, and it cannot be empty'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	UPDATE taskflow.chain_step s
	   SET wait_kind = w.kind, wait_after = w.after, wait_days = w.days, wait_at = w.at
	 WHERE s.chain_id OPERATOR(pg_catalog.=) c.chain_id AND s.position OPERATOR(pg_catalog.=) _set_wait."position";
	IF NOT FOUND THEN
		RAISE EXCEPTION 'chain "%" has no task at position %', chain, "position"
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
END
$$;

CREATE FUNCTION taskflow.set_wait(chain text, "position" integer, wait text)
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_api_call';

-- Moves a step to another position.  Members stay at the step they are at;
-- from then on they follow the new order.
CREATE FUNCTION taskflow._move_step(caller regrole, chain text, from_position integer, to_position integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c taskflow.chain := taskflow._chain_for(caller, chain);
	n integer;
	moving integer;
BEGIN
	IF c.schedule OPERATOR(pg_catalog.=) 'anchor' THEN
		RAISE EXCEPTION 'the tasks of anchor chain "%" are in the order of their offsets', chain
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Change when a task runs with taskflow.set_wait(chain, position, ''N days at HH:MM'').';
	END IF;
	SELECT count(*) INTO n FROM taskflow.chain_step s WHERE s.chain_id OPERATOR(pg_catalog.=) c.chain_id;
	IF from_position IS NULL OR to_position IS NULL
	   OR from_position NOT BETWEEN 1 AND n OR to_position NOT BETWEEN 1 AND n THEN
		RAISE EXCEPTION 'positions must be between 1 and % for chain "%"', n, chain
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT s.step_id INTO moving FROM taskflow.chain_step s
	 WHERE s.chain_id OPERATOR(pg_catalog.=) c.chain_id AND s.position OPERATOR(pg_catalog.=) from_position;
	UPDATE taskflow.chain_step s
	   SET position = CASE
			WHEN s.step_id OPERATOR(pg_catalog.=) moving THEN to_position
			WHEN from_position OPERATOR(pg_catalog.<) to_position THEN s.position OPERATOR(pg_catalog.-) 1
			ELSE s.position OPERATOR(pg_catalog.+) 1 END
	 WHERE s.chain_id OPERATOR(pg_catalog.=) c.chain_id
	   AND s.position BETWEEN least(from_position, to_position) AND greatest(from_position, to_position);
	-- the first task has no wait: a step moved to the front hands its wait
	-- to the step that was first before
	UPDATE taskflow.chain_step s
	   SET wait_kind = f.wait_kind, wait_after = f.wait_after, wait_days = f.wait_days, wait_at = f.wait_at
	  FROM taskflow.chain_step f
	 WHERE f.chain_id OPERATOR(pg_catalog.=) c.chain_id AND f.position OPERATOR(pg_catalog.=) 1
	   AND f.wait_kind OPERATOR(pg_catalog.<>) 'none'
	   AND s.chain_id OPERATOR(pg_catalog.=) c.chain_id AND s.wait_kind OPERATOR(pg_catalog.=) 'none';
	UPDATE taskflow.chain_step s SET wait_kind = 'none', wait_after = NULL, wait_days = NULL, wait_at = NULL
	 WHERE s.chain_id OPERATOR(pg_catalog.=) c.chain_id AND s.position OPERATOR(pg_catalog.=) 1;
	PERFORM taskflow._check_step_waits(c);
END
$$;

-- After a reorder the first step must have no wait and the others one.
CREATE FUNCTION taskflow._check_step_waits(c taskflow.chain)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	bad record;
BEGIN
	SELECT s.position, t.name INTO bad FROM taskflow.chain_step s JOIN taskflow.task t USING (task_id)
	 WHERE s.chain_id OPERATOR(pg_catalog.=) c.chain_id
	   AND ((s.position OPERATOR(pg_catalog.=) 1) OPERATOR(pg_catalog.<>) (s.wait_kind OPERATOR(pg_catalog.=) 'none'))
	 ORDER BY s.position LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'after this change task "%" at position % of chain "%" %', bad.name, bad.position, c.name,
			CASE WHEN bad.position OPERATOR(pg_catalog.=) 1 THEN 'would be first but has a wait'
				 ELSE 'would have no wait' END
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Fix the waits with taskflow.set_wait() (or remove and re-add the step with a wait).';
	END IF;
END
$$;

CREATE FUNCTION taskflow.move_step(chain text, from_position integer, to_position integer)
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_api_call';

-- Removes a step.  Members waiting at it, or pending at it, move on to the
-- step that now follows (keeping their due time), or, if it was the last,
-- finish (or, in a repeating chain, go back to task 1 in a new iteration)
-- as after the last task; the history records them as skipped.
CREATE FUNCTION taskflow._remove_step(caller regrole, chain text, "position" integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c taskflow.chain := taskflow._chain_for(caller, chain);
	gone taskflow.chain_step;
	next_step taskflow.chain_step;
	n integer;
BEGIN
	SELECT count(*) INTO n FROM taskflow.chain_step s WHERE s.chain_id OPERATOR(pg_catalog.=) c.chain_id;
	SELECT * INTO gone FROM taskflow.chain_step s
	 WHERE s.chain_id OPERATOR(pg_catalog.=) c.chain_id AND s.position OPERATOR(pg_catalog.=) _remove_step."position";
	IF NOT FOUND THEN
		RAISE EXCEPTION 'chain "%" has no task at position %', chain, "position"
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF n OPERATOR(pg_catalog.=) 1 THEN
		RAISE EXCEPTION 'cannot remove the only task of chain "%"', chain
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Drop the chain instead (taskflow.drop_chain()).';
	END IF;
	SELECT * INTO next_step FROM taskflow.chain_step s
	 WHERE s.chain_id OPERATOR(pg_catalog.=) c.chain_id AND s.position OPERATOR(pg_catalog.=) (gone.position OPERATOR(pg_catalog.+) 1);

	INSERT INTO taskflow.history (chain_id, chain_name, member_id, step_id, task_name, iteration, event, at, actor, detail)
	SELECT cm.chain_id, c.name, cm.member_id, cm.step_id,
		   (SELECT t.name FROM taskflow.task t WHERE t.task_id OPERATOR(pg_catalog.=) gone.task_id),
		   cm.iteration, 'skipped', taskflow.clock(), caller::text,
		   jsonb_build_object('reason', 'step removed from the chain')
	  FROM taskflow.chain_member cm
	 WHERE cm.chain_id OPERATOR(pg_catalog.=) c.chain_id AND cm.step_id OPERATOR(pg_catalog.=) gone.step_id
	   AND cm.state OPERATOR(pg_catalog.=) ANY (ARRAY['waiting', 'pending']);
	IF next_step.step_id IS NOT NULL THEN
		UPDATE taskflow.chain_member cm
		   SET step_id = next_step.step_id, state = 'waiting',
			   due_at = coalesce(CASE WHEN cm.state OPERATOR(pg_catalog.=) 'waiting' THEN cm.due_at END,
								 taskflow.clock()),
			   checked_at = NULL
		 WHERE cm.chain_id OPERATOR(pg_catalog.=) c.chain_id AND cm.step_id OPERATOR(pg_catalog.=) gone.step_id
		   AND cm.state OPERATOR(pg_catalog.=) ANY (ARRAY['waiting', 'pending']);
	ELSIF c.repeat THEN
		-- the last task is gone: as after the last task, a repeating chain
		-- starts the next iteration at task 1, repeat_wait from now
		WITH r AS (
			UPDATE taskflow.chain_member cm
			   SET step_id = f.step_id, state = 'waiting',
				   iteration = cm.iteration OPERATOR(pg_catalog.+) 1,
				   waiting_since = taskflow.clock(), checked_at = NULL,
				   due_at = taskflow.wait_until(taskflow.clock(), c.repeat_wait_kind, c.repeat_wait_after,
												c.repeat_wait_days, c.repeat_wait_at, c.time_zone)
			  FROM taskflow.chain_step f
			 WHERE f.chain_id OPERATOR(pg_catalog.=) c.chain_id AND f.position OPERATOR(pg_catalog.=) 1
			   AND cm.chain_id OPERATOR(pg_catalog.=) c.chain_id AND cm.step_id OPERATOR(pg_catalog.=) gone.step_id
			   AND cm.state OPERATOR(pg_catalog.=) ANY (ARRAY['waiting', 'pending'])
			RETURNING cm.member_id, cm.iteration, cm.step_id)
		INSERT INTO taskflow.history (chain_id, chain_name, member_id, step_id, task_name, iteration, event, at, actor, detail)
		SELECT c.chain_id, c.name, r.member_id, r.step_id, NULL, r.iteration, 'repeated',
			   taskflow.clock(), caller::text, '{}'::jsonb
		  FROM r;
	ELSE
		-- the last task is gone: the members finish, as after the last task
		WITH f AS (
			UPDATE taskflow.chain_member cm
			   SET state = 'done', finished_at = taskflow.clock(), due_at = NULL, step_id = NULL,
				   checked_at = NULL, rearmed = false
			 WHERE cm.chain_id OPERATOR(pg_catalog.=) c.chain_id AND cm.step_id OPERATOR(pg_catalog.=) gone.step_id
			   AND cm.state OPERATOR(pg_catalog.=) ANY (ARRAY['waiting', 'pending'])
			RETURNING cm.member_id, cm.iteration)
		INSERT INTO taskflow.history (chain_id, chain_name, member_id, step_id, task_name, iteration, event, at, actor, detail)
		SELECT c.chain_id, c.name, f.member_id, gone.step_id,
			   (SELECT t.name FROM taskflow.task t WHERE t.task_id OPERATOR(pg_catalog.=) gone.task_id),
			   f.iteration, 'finished', taskflow.clock(), caller::text, '{}'::jsonb
		  FROM f;
	END IF;
	DELETE FROM taskflow.chain_step s WHERE s.step_id OPERATOR(pg_catalog.=) gone.step_id;
	UPDATE taskflow.chain_step s SET position = s.position OPERATOR(pg_catalog.-) 1
	 WHERE s.chain_id OPERATOR(pg_catalog.=) c.chain_id AND s.position OPERATOR(pg_catalog.>) gone.position;
	IF gone.position OPERATOR(pg_catalog.=) 1 THEN
		-- the new first task runs on the schedule: it has no wait
		UPDATE taskflow.chain_step s SET wait_kind = 'none', wait_after = NULL, wait_days = NULL, wait_at = NULL
		 WHERE s.chain_id OPERATOR(pg_catalog.=) c.chain_id AND s.position OPERATOR(pg_catalog.=) 1;
	END IF;
END
$$;

CREATE FUNCTION taskflow.remove_step(chain text, "position" integer)
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_api_call';

-- alter_chain: NULL leaves a setting unchanged.
CREATE FUNCTION taskflow._alter_chain(caller regrole, name text, schedule text, weekdays text[],
									  time_zone text, repeat boolean, repeat_wait text,
									  reentry text, reentry_cooldown interval,
									  entry_interval interval, description text,
									  pause_after_failures integer, every_day boolean,
									  test boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c taskflow.chain := taskflow._chain_for(caller, name);
	s record;
	w record;
BEGIN
	IF schedule IS NOT NULL AND c.schedule OPERATOR(pg_catalog.=) 'anchor' THEN
		RAISE EXCEPTION 'anchor chain "%" has no schedule: its tasks run at offsets from each member''s anchor', name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Change offsets with taskflow.set_wait(); for another kind of chain create a new one.';
	END IF;
	IF schedule IS NOT NULL THEN
		s := taskflow._parse_schedule(schedule);
		c.schedule := s.kind;
		c.daily_at := s.daily_at;
	END IF;
	IF every_day AND weekdays IS NOT NULL THEN
		RAISE EXCEPTION 'weekdays and every_day => true contradict each other (chain "%")', c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give weekdays to run on those days only, or every_day => true to run every day.';
	END IF;
	IF every_day THEN
		c.weekdays := NULL;
	ELSIF weekdays IS NOT NULL THEN
		c.weekdays := taskflow._parse_weekdays(weekdays);
	END IF;
	IF c.schedule OPERATOR(pg_catalog.=) 'always' THEN
		-- weekdays given for an "always" chain are refused as by create_chain;
		-- those of a daily schedule being replaced by "always" just go
		IF weekdays IS NOT NULL AND NOT every_day THEN
			RAISE EXCEPTION 'weekdays need a daily schedule (chain "%")', c.name
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'For example schedule => ''daily at 09:00'', weekdays => ARRAY[''mon'', ''wed'', ''fri''].';
		END IF;
		c.weekdays := NULL;
	END IF;
	IF time_zone IS NOT NULL THEN
		c.time_zone := taskflow._chain_time_zone(time_zone);
	END IF;
	c.repeat := coalesce(repeat, c.repeat);
	IF NOT c.repeat AND repeat_wait IS NOT NULL THEN
		RAISE EXCEPTION 'repeat_wait needs repeat => true (chain "%")', c.name
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF repeat_wait IS NOT NULL THEN
		w := taskflow._parse_chain_wait(repeat_wait);
		c.repeat_wait_kind := w.kind;
		c.repeat_wait_after := w.after;
		c.repeat_wait_days := w.days;
		c.repeat_wait_at := w.at;
	END IF;
	IF reentry IS NOT NULL THEN
		IF NOT reentry OPERATOR(pg_catalog.=) ANY (ARRAY['never', 'rematch', 'cooldown']) THEN
			RAISE EXCEPTION 'invalid re-entry policy %', quote_literal(reentry)
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Use never, rematch or cooldown.';
		END IF;
		c.reentry := reentry;
		c.reentry_cooldown := CASE WHEN reentry OPERATOR(pg_catalog.=) 'cooldown'
								   THEN coalesce(reentry_cooldown, c.reentry_cooldown) END;
	ELSIF reentry_cooldown IS NOT NULL THEN
		c.reentry_cooldown := reentry_cooldown;
	END IF;
	c.entry_interval := coalesce(entry_interval, c.entry_interval);
	c.description := coalesce(description, c.description);
	c.pause_after_failures := coalesce(pause_after_failures, c.pause_after_failures);
	c.is_test := coalesce(test, c.is_test);
	PERFORM taskflow._check_chain(c);
	UPDATE taskflow.chain AS u
	   SET schedule = c.schedule, daily_at = c.daily_at, weekdays = c.weekdays,
		   time_zone = c.time_zone, repeat = c.repeat, repeat_wait_kind = c.repeat_wait_kind,
		   repeat_wait_after = c.repeat_wait_after, repeat_wait_days = c.repeat_wait_days,
		   repeat_wait_at = c.repeat_wait_at, reentry = c.reentry,
		   reentry_cooldown = c.reentry_cooldown, entry_interval = c.entry_interval,
		   description = c.description, pause_after_failures = c.pause_after_failures,
		   is_test = c.is_test
	 WHERE u.chain_id OPERATOR(pg_catalog.=) c.chain_id;
END
$$;

CREATE FUNCTION taskflow.alter_chain(name text,
									 schedule text DEFAULT NULL,
									 weekdays text[] DEFAULT NULL,
									 time_zone text DEFAULT NULL,
									 repeat boolean DEFAULT NULL,
									 repeat_wait text DEFAULT NULL,
									 reentry text DEFAULT NULL,
									 reentry_cooldown interval DEFAULT NULL,
									 entry_interval interval DEFAULT NULL,
									 description text DEFAULT NULL,
									 pause_after_failures integer DEFAULT NULL,
									 every_day boolean DEFAULT false,
									 test boolean DEFAULT NULL)
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_api_call';

-- Enables a chain (and clears a pause): daily slots before now are not
-- replayed; members' due steps run on the next run.
CREATE FUNCTION taskflow._enable_chain(caller regrole, name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c taskflow.chain := taskflow._chain_for(caller, name);
BEGIN
	UPDATE taskflow.chain u
	   SET enabled = true, paused_reason = NULL, paused_at = NULL, consecutive_failures = 0,
		   enabled_at = CASE WHEN c.enabled AND c.paused_reason IS NULL THEN u.enabled_at
							 ELSE taskflow.clock() END
	 WHERE u.chain_id OPERATOR(pg_catalog.=) c.chain_id;
END
$$;

CREATE FUNCTION taskflow.enable_chain(name text)
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_api_call';

-- Disables a chain: nothing runs; members stay where they are.
CREATE FUNCTION taskflow._disable_chain(caller regrole, name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c taskflow.chain := taskflow._chain_for(caller, name);
BEGIN
	UPDATE taskflow.chain u SET enabled = false WHERE u.chain_id OPERATOR(pg_catalog.=) c.chain_id;
END
$$;

CREATE FUNCTION taskflow.disable_chain(name text)
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_api_call';

-- Drops a chain and its member states; the history is kept.
CREATE FUNCTION taskflow._drop_chain(caller regrole, name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c taskflow.chain := taskflow._chain_for(caller, name);
BEGIN
	DELETE FROM taskflow.chain u WHERE u.chain_id OPERATOR(pg_catalog.=) c.chain_id;
END
$$;

CREATE FUNCTION taskflow.drop_chain(name text)
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_api_call';
