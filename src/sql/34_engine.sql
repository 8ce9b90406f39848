-- taskflow install script, part 34: the engine's entry point, manual steps,
-- explain, and the views operators and applications read.

CREATE FUNCTION taskflow._check_actions(caller regrole, task_name text, actions jsonb)
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_check_actions';

-- Entry points default to taskflow.clock(): now(), or taskflow.as_of when a
-- session set it, so one setting moves everything a session does in time.

-- Runs everything due as of an instant: entries of chains whose schedule
-- is due, and every member whose next step is due.  Superusers run every
-- chain; other roles only chains of roles they belong to.
CREATE FUNCTION taskflow.run(as_of timestamptz DEFAULT taskflow.clock(), chain text DEFAULT NULL)
RETURNS TABLE (chain text, entered bigint, applied bigint, pending bigint,
			   "left" bigint, errors bigint)
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_run';
COMMENT ON FUNCTION taskflow.run(timestamptz, text) IS
	'Runs everything due as of an instant; per chain: entered, applied, pending, left, errors';

-- Manual steps: process (apply the task), skip (move on without it) or
-- cancel (take out of the chain) members pending at a manual task; all of
-- the chosen members or none.  member_ids NULL means every pending member;
-- chain NULL every chain with the task (a member pending at it in two
-- chains must have the chain named).  Processing checks the task's criteria
-- again (src/manual.c).
CREATE FUNCTION taskflow.process(task text, member_ids bigint[] DEFAULT NULL,
								 as_of timestamptz DEFAULT taskflow.clock(),
								 chain text DEFAULT NULL)
RETURNS bigint
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_process';
COMMENT ON FUNCTION taskflow.process(text, bigint[], timestamptz, text) IS
	'Processes members pending at a manual task (all of the chosen or none); returns how many';

CREATE FUNCTION taskflow.skip(task text, member_ids bigint[] DEFAULT NULL,
							  as_of timestamptz DEFAULT taskflow.clock(),
							  chain text DEFAULT NULL)
RETURNS bigint
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_skip';
COMMENT ON FUNCTION taskflow.skip(text, bigint[], timestamptz, text) IS
	'Moves members pending at a manual task on without applying it';

CREATE FUNCTION taskflow.cancel(task text, member_ids bigint[] DEFAULT NULL,
								as_of timestamptz DEFAULT taskflow.clock(),
								chain text DEFAULT NULL)
RETURNS bigint
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_cancel';
COMMENT ON FUNCTION taskflow.cancel(text, bigint[], timestamptz, text) IS
	'Takes members pending at a manual task out of the chain';

CREATE FUNCTION taskflow._member_matches(chain_id integer, step_id integer,
										 member_id bigint, as_of timestamptz)
RETURNS boolean
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_member_matches';

-- Formats an instant as local time of a zone, for messages.
CREATE FUNCTION taskflow._local(ts timestamptz, tz text)
RETURNS text
LANGUAGE sql STABLE
RETURN pg_catalog.to_char(ts AT TIME ZONE tz, 'YYYY-MM-DD HH24:MI');

-- Where a member is in each chain and why (not entered, waiting until,
-- pending at, finished, left because …), as of an instant: explain() on
-- behalf of caller, for each chain caller may see.  It says what the
-- engine will do: the entry criteria of a daily chain are evaluated at the
-- slot the engine will enter at (_entry_slot), and a change of a member's
-- anchor since it was placed is handled as the next entry check will
-- (src/anchor.c).  A criteria or anchor that fails for this member (an
-- error of its data, the classes src/isolate.c sets a member aside for)
-- is that chain's answer; the other chains are still explained.
CREATE FUNCTION taskflow._explain(caller regrole, member_id bigint, as_of timestamptz)
RETURNS TABLE (chain text, state text, task text, since timestamptz, due_at timestamptz,
			   reason text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	held text;
	r record;
	matches boolean;
	matches_now boolean;
	prefix text;
	entry_at timestamptz;
	owed boolean;
	off text;
	a record;
	evaluating text;
	failure text;
	base timestamptz;
	check_at timestamptz;
	entry_floor timestamptz;
	occ timestamptz;
	p record;
	change text;
	special text;
	note text;
BEGIN
	IF as_of IS NULL THEN
		RAISE EXCEPTION 'as_of cannot be NULL'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass the instant to explain as of, or leave the argument out for now().';
	END IF;
	IF NOT isfinite(as_of) THEN
		RAISE EXCEPTION 'taskflow cannot explain as of an infinite instant'
			USING ERRCODE = 'datetime_value_out_of_range',
				  HINT = 'Pass the instant to explain as of, or leave the argument out for now().';
	END IF;
	SELECT h.reason INTO held FROM taskflow.hold h;
	PERFORM FROM taskflow.member m WHERE m.member_id OPERATOR(pg_catalog.=) _explain.member_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'member % does not exist', _explain.member_id USING ERRCODE = 'no_data_found';
	END IF;
	FOR r IN
		SELECT c.chain_id, c.name AS chain_name, c.enabled, c.paused_reason, c.time_zone,
			   c.schedule, c.daily_at, c.weekdays, c.reentry,
			   cm.state AS st, cm.step_id, cm.waiting_since, cm.due_at AS due, cm.left_reason,
			   cm.finished_at, cm.rearmed, c.reentry_cooldown, c.anchor, c.anchor_change,
			   c.anchor_yearly, cm.anchor_base, s.wait_days, s.wait_at,
			   s.position, t.name AS task_name,
			   t.mode, t.assignee,
			   t.on_mismatch, cr.name AS criteria_name,
			   -- the slot or entry check due as of as_of (the engine's own rule)
			   taskflow._entry_slot(c, _explain.as_of) AS entry_due,
			   -- an anchor chain's next entry check
			   GREATEST(_explain.as_of, c.last_entry_at OPERATOR(pg_catalog.+)
						coalesce(c.entry_interval, current_setting('taskflow.entry_interval')::interval)) AS next_check,
			   coalesce(c.entry_interval, current_setting('taskflow.entry_interval')::interval) AS grace,
			   (SELECT fcr.name FROM taskflow.chain_step fs
				  JOIN taskflow.task ft ON ft.task_id OPERATOR(pg_catalog.=) fs.task_id
				  LEFT JOIN taskflow.criteria fcr ON fcr.criteria_id OPERATOR(pg_catalog.=) ft.criteria_id
				 WHERE fs.chain_id OPERATOR(pg_catalog.=) c.chain_id AND fs.position OPERATOR(pg_catalog.=) 1) AS entry_criteria,
			   (SELECT lt.name FROM taskflow.history h
				  JOIN taskflow.chain_step ls ON ls.step_id OPERATOR(pg_catalog.=) h.step_id
				  JOIN taskflow.task lt ON lt.task_id OPERATOR(pg_catalog.=) ls.task_id
				 WHERE h.chain_id OPERATOR(pg_catalog.=) c.chain_id
				   AND h.member_id OPERATOR(pg_catalog.=) _explain.member_id
				   AND h.event OPERATOR(pg_catalog.=) ANY (ARRAY['left', 'cancelled'])
				 ORDER BY h.history_id DESC LIMIT 1) AS left_task,
			   f.failures, f.failed_at, f.failure
		  FROM taskflow.chain c
		  LEFT JOIN taskflow.chain_member cm ON cm.chain_id OPERATOR(pg_catalog.=) c.chain_id
											AND cm.member_id OPERATOR(pg_catalog.=) _explain.member_id
		  LEFT JOIN taskflow.chain_step s ON s.step_id OPERATOR(pg_catalog.=) cm.step_id
		  LEFT JOIN taskflow.task t ON t.task_id OPERATOR(pg_catalog.=) s.task_id
		  LEFT JOIN taskflow.criteria cr ON cr.criteria_id OPERATOR(pg_catalog.=) t.criteria_id
		  -- the member's own failures at its step, when it was set aside (isolate.c)
		  LEFT JOIN LATERAL (
			SELECT pg_catalog.count(*) AS failures, pg_catalog.max(e.at) AS failed_at,
				   (pg_catalog.array_agg(e.message ORDER BY e.error_id DESC))[1] AS failure
			  FROM taskflow.chain_error e
			 WHERE e.chain_id OPERATOR(pg_catalog.=) c.chain_id
			   AND e.member_id OPERATOR(pg_catalog.=) _explain.member_id
			   AND e.step_id OPERATOR(pg_catalog.=) cm.step_id
			   AND e.at OPERATOR(pg_catalog.>=) cm.waiting_since) f ON true
		 WHERE taskflow._may_see(caller, c.owner)
		 ORDER BY c.name
	LOOP
		chain := r.chain_name;
		state := coalesce(r.st, 'not entered');
		task := r.task_name;
		since := CASE WHEN r.st IN ('done', 'left') THEN r.finished_at ELSE r.waiting_since END;
		due_at := r.due;
		prefix := CASE WHEN r.paused_reason IS NOT NULL THEN 'chain paused (' OPERATOR(pg_catalog.||) r.paused_reason OPERATOR(pg_catalog.||) '); '
					   WHEN NOT r.enabled THEN 'chain disabled; ' ELSE '' END;
		-- a restored copy runs nothing until the DBA resumes it (part 46)
		IF held IS NOT NULL THEN
			prefix := format('automation held (%s): nothing runs until taskflow.resume_automation(); ', held)
					  OPERATOR(pg_catalog.||) prefix;
		END IF;
		-- a disabled or paused chain runs nothing until it is enabled
		off := CASE WHEN prefix OPERATOR(pg_catalog.<>) '' THEN ' once the chain is enabled' ELSE '' END;
		-- nothing of the previous chain's row may carry over to this one
		matches := NULL;
		matches_now := NULL;
		special := NULL;
		note := '';
		SELECT * INTO a FROM taskflow._anchor_entry(NULL, NULL, NULL);
		-- the instant the engine enters at: a daily chain's slot still owed
		-- today is taken at the next run, else its next slot is awaited;
		-- the other schedules check at every entry interval
		owed := r.schedule OPERATOR(pg_catalog.=) 'daily' AND r.entry_due IS NOT NULL;
		entry_at := CASE WHEN r.schedule OPERATOR(pg_catalog.=) 'daily' AND NOT owed
						 THEN coalesce(taskflow.daily_slot_after(as_of, r.daily_at, r.weekdays, r.time_zone), as_of)
						 ELSE as_of END;
		BEGIN
			IF r.st IS NULL OR (r.st IN ('done', 'left') AND r.reentry OPERATOR(pg_catalog.<>) 'never') THEN
				evaluating := format('the entry criteria %s fails', quote_ident(r.entry_criteria));
				-- evaluated as of the entry check that would enter the member
				matches := taskflow._member_matches(r.chain_id, NULL, _explain.member_id, entry_at);
				IF r.st IS NULL AND entry_at OPERATOR(pg_catalog.<>) as_of THEN
					matches_now := taskflow._member_matches(r.chain_id, NULL, _explain.member_id, as_of);
				END IF;
			ELSIF r.st OPERATOR(pg_catalog.=) 'waiting' THEN
				evaluating := format('the criteria %s of task %s (step %s) fails', quote_ident(r.criteria_name),
									 quote_ident(r.task_name), r.position);
				matches := taskflow._member_matches(r.chain_id, r.step_id, _explain.member_id, as_of);
			-- a pending member is processed only while it matches (src/manual.c)
			ELSIF r.st OPERATOR(pg_catalog.=) 'pending' AND r.criteria_name IS NOT NULL THEN
				evaluating := format('the criteria %s of task %s (step %s) fails', quote_ident(r.criteria_name),
									 quote_ident(r.task_name), r.position);
				matches := taskflow._member_matches(r.chain_id, r.step_id, _explain.member_id, as_of);
			END IF;
			-- an anchor chain: the member's anchor decides whether it enters,
			-- and at which step
			evaluating := format('its anchor %s cannot be read', r.anchor);
			IF r.anchor IS NOT NULL AND r.st IS NULL AND matches THEN
				SELECT * INTO a FROM taskflow._anchor_entry(r.chain_id, _explain.member_id, as_of);
				task := a.task;
				due_at := a.due_at;
			END IF;
			-- a member in an anchor chain whose anchor changed since it was
			-- placed (anchor_base): the next entry check restarts it, moves
			-- its due time or ignores it, as the chain says; a removed anchor
			-- takes it out (src/anchor.c, TaskflowAnchorChanges)
			IF r.anchor IS NOT NULL AND (r.st OPERATOR(pg_catalog.=) 'waiting'
				OR (r.st IN ('done', 'left') AND r.anchor_change OPERATOR(pg_catalog.=) 'restart')) THEN
				EXECUTE format('SELECT %s FROM taskflow.member AS member WHERE member.member_id OPERATOR(pg_catalog.=) $1',
							   taskflow._anchor_sql(r.anchor, r.time_zone))
				   INTO base USING _explain.member_id;
				IF base IS DISTINCT FROM r.anchor_base AND (base IS NOT NULL OR r.st OPERATOR(pg_catalog.=) 'waiting') THEN
					check_at := r.next_check;
					change := CASE WHEN base IS NULL THEN format('its %s was removed', r.anchor)
								   ELSE format('its %s changed (%s → %s)', r.anchor,
											   coalesce(taskflow._local(r.anchor_base, r.time_zone), 'none'),
											   taskflow._local(base, r.time_zone)) END;
					-- where the entry check would place it (as anchor.c's enter and follow)
					IF base IS NOT NULL THEN
						entry_floor := taskflow.anchor_entry_floor(check_at, r.grace, r.time_zone);
						SELECT * INTO p FROM taskflow.chain_step l
						 WHERE l.chain_id OPERATOR(pg_catalog.=) r.chain_id ORDER BY l.position DESC LIMIT 1;
						occ := taskflow.anchor_occurrence(base, r.anchor_yearly, p.wait_days, p.wait_at,
														  r.time_zone, entry_floor);
						SELECT s.position, t.name, taskflow.anchor_due(occ, s.wait_days, s.wait_at, r.time_zone) AS due
						  INTO p
						  FROM taskflow.chain_step s JOIN taskflow.task t ON t.task_id OPERATOR(pg_catalog.=) s.task_id
						 WHERE s.chain_id OPERATOR(pg_catalog.=) r.chain_id
						   AND taskflow.anchor_due(occ, s.wait_days, s.wait_at, r.time_zone) OPERATOR(pg_catalog.>=) entry_floor
						 ORDER BY s.position LIMIT 1;
					END IF;
					IF base IS NOT NULL AND r.anchor_change OPERATOR(pg_catalog.=) 'ignore' THEN
						note := format('; %s: ignored (anchor_change ignore)', change);
					ELSIF r.st OPERATOR(pg_catalog.=) 'waiting' AND check_at OPERATOR(pg_catalog.>) as_of
						  AND r.due OPERATOR(pg_catalog.<) check_at THEN
						-- its step comes first: the change is seen after it
						note := format('; %s: handled at the next entry check (%s), after this step',
									   change, taskflow._local(check_at, r.time_zone));
					ELSIF base IS NULL THEN
						special := format('%s: leaves the chain at the next entry check%s', change, off);
					ELSIF r.anchor_change OPERATOR(pg_catalog.=) 'follow' THEN
						due_at := taskflow.anchor_due(occ, r.wait_days, r.wait_at, r.time_zone);
						special := format('%s: task %s (step %s) moves to %s at the next entry check%s',
										  change, quote_ident(r.task_name), r.position,
										  taskflow._local(due_at, r.time_zone), off);
					ELSIF p.position IS NOT NULL THEN
						task := p.name;
						due_at := p.due;
						special := format('%s: restarts at task %s (step %s), due %s, at the next entry check%s',
										  change, quote_ident(p.name), p.position,
										  taskflow._local(p.due, r.time_zone), off);
					ELSIF r.st OPERATOR(pg_catalog.=) 'waiting' THEN
						special := format('%s and no step of the new one is left: leaves the chain at the next entry check%s',
										  change, off);
					ELSE
						note := format('; %s but every step for it is past: does not enter again', change);
					END IF;
					-- and when that entry check comes
					IF special IS NOT NULL AND off OPERATOR(pg_catalog.=) '' THEN
						special := special OPERATOR(pg_catalog.||)
								   format(' (%s)', taskflow._local(check_at, r.time_zone));
					END IF;
				END IF;
			END IF;
			reason := prefix OPERATOR(pg_catalog.||) CASE
				WHEN special IS NOT NULL THEN special
				WHEN a.task IS NOT NULL THEN
					format('matches the entry criteria %s; enters at the next entry check%s at task %s (step %s), due %s',
						   coalesce(quote_ident(r.entry_criteria), '(everyone)'), off, quote_ident(a.task),
						   a.position, taskflow._local(a.due_at, r.time_zone))
				WHEN r.anchor IS NOT NULL AND r.st IS NULL AND matches AND a.base IS NULL THEN
					format('matches the entry criteria %s but has no %s: enters once it has one',
						   coalesce(quote_ident(r.entry_criteria), '(everyone)'), r.anchor)
				WHEN r.anchor IS NOT NULL AND r.st IS NULL AND matches AND a.base OPERATOR(pg_catalog.<) a.new_from THEN
					format('its %s (%s) is before the chain took new members from %s (activation new): does not enter',
						   r.anchor, taskflow._local(a.base, r.time_zone), taskflow._local(a.new_from, r.time_zone))
				WHEN r.anchor IS NOT NULL AND r.st IS NULL AND matches THEN
					format('every step for its %s (%s) is past: does not enter',
						   r.anchor, taskflow._local(a.base, r.time_zone))
				-- a daily chain: the criteria as of the slot, and as of now when that differs
				WHEN r.st IS NULL AND matches AND matches_now IS FALSE AND off OPERATOR(pg_catalog.=) '' THEN
					format('does not match the entry criteria %s now but does as of the next entry check (%s): enters then',
						   quote_ident(r.entry_criteria), taskflow._local(entry_at, r.time_zone))
				WHEN r.st IS NULL AND matches AND owed AND off OPERATOR(pg_catalog.=) '' THEN
					format('matches the entry criteria %s; enters at the next engine run (the %s slot has not run yet)',
						   coalesce(quote_ident(r.entry_criteria), '(everyone)'), taskflow._local(r.entry_due, r.time_zone))
				WHEN r.st IS NULL AND matches THEN
					format('matches the entry criteria %s; enters at the next entry check%s%s',
						   coalesce(quote_ident(r.entry_criteria), '(everyone)'), off,
						   CASE WHEN r.schedule OPERATOR(pg_catalog.=) 'daily' AND off OPERATOR(pg_catalog.=) ''
								THEN ' (' OPERATOR(pg_catalog.||) taskflow._local(entry_at, r.time_zone) OPERATOR(pg_catalog.||) ')' ELSE '' END)
				WHEN r.st IS NULL AND matches_now THEN
					format('matches the entry criteria %s now but not as of the next entry check (%s): does not enter then',
						   quote_ident(r.entry_criteria), taskflow._local(entry_at, r.time_zone))
				WHEN r.st IS NULL AND matches IS NULL AND r.paused_reason IS NOT NULL THEN
					'its entry criteria is not evaluated while the chain is paused'
				WHEN r.st IS NULL THEN
					format('does not match the entry criteria %s', quote_ident(r.entry_criteria))
				WHEN r.st OPERATOR(pg_catalog.=) 'waiting' AND r.due OPERATOR(pg_catalog.>) as_of
					 AND r.failures OPERATOR(pg_catalog.>) 0 THEN
					format('set aside: task %s (step %s) failed %s time(s) for this member, last on %s: %s; tried again at %s',
						   quote_ident(r.task_name), r.position, r.failures,
						   taskflow._local(r.failed_at, r.time_zone), r.failure, taskflow._local(r.due, r.time_zone))
				WHEN r.st OPERATOR(pg_catalog.=) 'waiting' AND r.due OPERATOR(pg_catalog.>) as_of THEN
					format('waiting for task %s (step %s) until %s', quote_ident(r.task_name), r.position,
						   taskflow._local(r.due, r.time_zone))
				WHEN r.st OPERATOR(pg_catalog.=) 'waiting' AND matches THEN
					format('task %s (step %s) is due since %s and runs at the next engine run%s',
						   quote_ident(r.task_name), r.position, taskflow._local(r.due, r.time_zone), off)
				WHEN r.st OPERATOR(pg_catalog.=) 'waiting' THEN
					format('task %s (step %s) is due but the member does not match %s: it will %s',
						   quote_ident(r.task_name), r.position, quote_ident(r.criteria_name),
						   CASE r.on_mismatch WHEN 'leave' THEN 'leave the chain' ELSE 'wait until it matches' END)
				WHEN r.st OPERATOR(pg_catalog.=) 'pending' THEN
					format('pending at manual task %s (step %s) since %s%s%s', quote_ident(r.task_name), r.position,
						   taskflow._local(r.waiting_since, r.time_zone),
						   coalesce(', assignee ' OPERATOR(pg_catalog.||) r.assignee, ''),
						   CASE WHEN matches IS FALSE THEN
								format('; no longer matches its criteria %s: process() does not apply the task to it (processing every pending member, it %s)',
									   quote_ident(r.criteria_name),
									   CASE r.on_mismatch WHEN 'leave' THEN 'leaves the chain' ELSE 'stays pending' END)
								ELSE '' END)
				WHEN r.st OPERATOR(pg_catalog.=) 'done' THEN
					format('finished the chain on %s%s', taskflow._local(r.finished_at, r.time_zone),
						   CASE WHEN r.anchor IS NOT NULL AND r.anchor_change OPERATOR(pg_catalog.=) 'restart'
								THEN format('; enters again when its %s changes', r.anchor)
								WHEN r.reentry OPERATOR(pg_catalog.=) 'never' THEN '; does not enter again'
								WHEN matches IS NOT TRUE THEN ''
								-- rematch re-enters only after an entry check at which it did not match
								WHEN r.reentry OPERATOR(pg_catalog.=) 'rematch' AND NOT r.rearmed
								THEN '; still matches: enters again (rematch) only after an entry check at which it does not match'
								WHEN r.reentry OPERATOR(pg_catalog.=) 'cooldown'
									 AND r.finished_at OPERATOR(pg_catalog.+) r.reentry_cooldown OPERATOR(pg_catalog.>) as_of
								THEN format('; matches again and may re-enter from %s (cooldown)',
											taskflow._local(r.finished_at OPERATOR(pg_catalog.+) r.reentry_cooldown, r.time_zone))
								ELSE '; matches again and may re-enter (' OPERATOR(pg_catalog.||) r.reentry OPERATOR(pg_catalog.||) ')' END)
				ELSE
					format('left%s on %s: %s', coalesce(' at task ' OPERATOR(pg_catalog.||) quote_ident(r.left_task), ''),
						   taskflow._local(r.finished_at, r.time_zone), r.left_reason)
				END OPERATOR(pg_catalog.||) note;
		EXCEPTION
			-- an error of this member's data (as src/isolate.c tells them):
			-- this chain's answer; anything else is raised
			WHEN cardinality_violation OR data_exception OR integrity_constraint_violation
				 OR sql_routine_exception OR external_routine_exception
				 OR external_routine_invocation_exception OR with_check_option_violation
				 OR plpgsql_error THEN
				GET STACKED DIAGNOSTICS failure = MESSAGE_TEXT;
				task := r.task_name;
				due_at := r.due;
				reason := prefix OPERATOR(pg_catalog.||)
						  format('%s for this member: %s', evaluating, failure);
		END;
		RETURN NEXT;
	END LOOP;
END
$$;
-- explain() for the caller: only the chains it may see (taskflow._may_see),
-- through the dispatcher, which runs taskflow._explain() as the extension
-- owner with the calling role as caller.
CREATE FUNCTION taskflow.explain(member_id bigint, as_of timestamptz DEFAULT taskflow.clock())
RETURNS TABLE (chain text, state text, task text, since timestamptz, due_at timestamptz,
			   reason text)
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'taskflow_api_call_set';
COMMENT ON FUNCTION taskflow.explain(bigint, timestamptz) IS
	'For each chain: where the member is and why, as of an instant';

-- The pending list (処理待ちタスク): members waiting for an operator.
CREATE VIEW taskflow.pending_tasks AS
SELECT c.name AS chain, s.position, t.name AS task, cm.member_id, m.external_id,
	   m.name AS member_name, m.email, cm.waiting_since AS pending_since,
	   t.assignee, t.priority, t.show_on_dashboard, cm.iteration
  FROM taskflow.chain_member cm
  JOIN taskflow.chain c ON c.chain_id OPERATOR(pg_catalog.=) cm.chain_id
  JOIN taskflow.chain_step s ON s.step_id OPERATOR(pg_catalog.=) cm.step_id
  JOIN taskflow.task t ON t.task_id OPERATOR(pg_catalog.=) s.task_id
  JOIN taskflow.member m ON m.member_id OPERATOR(pg_catalog.=) cm.member_id
 WHERE cm.state OPERATOR(pg_catalog.=) 'pending';
COMMENT ON VIEW taskflow.pending_tasks IS
	'Members pending at manual tasks: chain, task, member, since, assignee, priority, dashboard flag';

-- The dashboard: pending work of tasks shown on it, most urgent first.
CREATE VIEW taskflow.dashboard AS
SELECT task, chain, member_id, external_id, member_name, email, pending_since,
	   assignee, priority
  FROM taskflow.pending_tasks
 WHERE show_on_dashboard
 ORDER BY priority DESC, pending_since, member_id;
COMMENT ON VIEW taskflow.dashboard IS
	'Pending manual work shown on the dashboard, highest priority and oldest first';

-- Per chain and step: how many members wait, are pending, had it applied,
-- left there; with the chain's state and errors.
CREATE VIEW taskflow.chain_summary AS
SELECT c.name AS chain, s.position, t.name AS task, t.mode,
	   (SELECT count(*) FROM taskflow.chain_member cm
		 WHERE cm.step_id OPERATOR(pg_catalog.=) s.step_id AND cm.state OPERATOR(pg_catalog.=) 'waiting') AS waiting,
	   (SELECT count(*) FROM taskflow.chain_member cm
		 WHERE cm.step_id OPERATOR(pg_catalog.=) s.step_id AND cm.state OPERATOR(pg_catalog.=) 'pending') AS pending,
	   (SELECT count(*) FROM taskflow.history h
		 WHERE h.chain_id OPERATOR(pg_catalog.=) c.chain_id AND h.step_id OPERATOR(pg_catalog.=) s.step_id
		   AND h.event OPERATOR(pg_catalog.=) 'applied') AS applied,
	   (SELECT count(*) FROM taskflow.history h
		 WHERE h.chain_id OPERATOR(pg_catalog.=) c.chain_id AND h.step_id OPERATOR(pg_catalog.=) s.step_id
		   AND h.event OPERATOR(pg_catalog.=) ANY (ARRAY['left', 'cancelled'])) AS left_here,
	   (SELECT count(*) FROM taskflow.chain_member cm
		 WHERE cm.chain_id OPERATOR(pg_catalog.=) c.chain_id AND cm.state OPERATOR(pg_catalog.=) 'done') AS chain_done,
	   (SELECT count(*) FROM taskflow.chain_error e
		 WHERE e.chain_id OPERATOR(pg_catalog.=) c.chain_id AND e.step_id OPERATOR(pg_catalog.=) s.step_id) AS errors,
	   CASE WHEN c.paused_reason IS NOT NULL THEN 'paused: ' OPERATOR(pg_catalog.||) c.paused_reason
			WHEN c.enabled THEN 'enabled' ELSE 'disabled' END AS chain_state,
	   -- moved past the step without it (skip(), a step removed or moved)
	   (SELECT count(*) FROM taskflow.history h
		 WHERE h.chain_id OPERATOR(pg_catalog.=) c.chain_id AND h.step_id OPERATOR(pg_catalog.=) s.step_id
		   AND h.event OPERATOR(pg_catalog.=) 'skipped') AS skipped
  FROM taskflow.chain c
  JOIN taskflow.chain_step s ON s.chain_id OPERATOR(pg_catalog.=) c.chain_id
  JOIN taskflow.task t ON t.task_id OPERATOR(pg_catalog.=) s.task_id;
COMMENT ON VIEW taskflow.chain_summary IS
	'Per chain and step: waiting, pending, applied, left, done, errors, chain state, skipped';

-- Each member's place in each chain.
CREATE VIEW taskflow.member_state AS
SELECT cm.member_id, m.external_id, m.name AS member_name, c.name AS chain,
	   s.position, t.name AS task, cm.state, cm.iteration, cm.entered_at,
	   cm.waiting_since, cm.due_at, cm.finished_at, cm.left_reason
  FROM taskflow.chain_member cm
  JOIN taskflow.chain c ON c.chain_id OPERATOR(pg_catalog.=) cm.chain_id
  JOIN taskflow.member m ON m.member_id OPERATOR(pg_catalog.=) cm.member_id
  LEFT JOIN taskflow.chain_step s ON s.step_id OPERATOR(pg_catalog.=) cm.step_id
  LEFT JOIN taskflow.task t ON t.task_id OPERATOR(pg_catalog.=) s.task_id;
COMMENT ON VIEW taskflow.member_state IS
	'Per member and chain: step, state, iteration, waiting since, next due';

-- Grants for the engine's objects.
REVOKE ALL ON taskflow.task, taskflow.chain, taskflow.chain_step, taskflow.chain_member,
	taskflow.history, taskflow.outbox, taskflow.chain_error FROM PUBLIC;
REVOKE ALL ON FUNCTION taskflow._task_for(regrole, text, boolean),
	taskflow._check_task(regrole, text, text, text, jsonb, text, text, integer, text),
	taskflow._create_task(regrole, text, text, text, jsonb, text, text, boolean, text, integer, text),
	taskflow._alter_task(regrole, text, text, text, jsonb, text, text, boolean, text, integer, text, boolean, boolean),
	taskflow._drop_task(regrole, text),
	taskflow._settable_column_type(text), taskflow._action_error(text, integer, text, text),
	taskflow._compile_actions(text, jsonb), taskflow._check_actions(regrole, text, jsonb),
	taskflow._chain_for(regrole, text), taskflow._refuse_if_in_chain(integer, text),
	taskflow._check_chain(taskflow.chain), taskflow._parse_schedule(text),
	taskflow._create_chain(regrole, text, text[], text[], text, text[], text, boolean, text, text, interval, interval, boolean, text, integer, boolean, text, text[], boolean, text, text),
	taskflow._insert_step(regrole, taskflow.chain, text, text, integer),
	taskflow._add_step(regrole, text, text, text, integer),
	taskflow._set_wait(regrole, text, integer, text),
	taskflow._move_step(regrole, text, integer, integer),
	taskflow._check_step_waits(taskflow.chain),
	taskflow._remove_step(regrole, text, integer),
	taskflow._alter_chain(regrole, text, text, text[], text, boolean, text, text, interval, interval, text, integer, boolean, boolean),
	taskflow._enable_chain(regrole, text), taskflow._disable_chain(regrole, text),
	taskflow._drop_chain(regrole, text), taskflow._parse_wait(text),
	taskflow._entry_slot(taskflow.chain, timestamptz), taskflow._parse_weekdays(text[]),
	taskflow._member_matches(integer, integer, bigint, timestamptz),
	taskflow._explain(regrole, bigint, timestamptz)
	FROM PUBLIC;
REVOKE ALL ON FUNCTION taskflow.create_task, taskflow.alter_task, taskflow.drop_task,
	taskflow.create_chain, taskflow.add_step, taskflow.set_wait, taskflow.move_step,
	taskflow.remove_step, taskflow.alter_chain, taskflow.enable_chain,
	taskflow.disable_chain, taskflow.drop_chain, taskflow.run(timestamptz, text),
	taskflow.process(text, bigint[], timestamptz, text),
	taskflow.skip(text, bigint[], timestamptz, text),
	taskflow.cancel(text, bigint[], timestamptz, text), taskflow.explain(bigint, timestamptz),
	taskflow.wait_until(timestamptz, text, interval, integer, time, text),
	taskflow.daily_slot_before(timestamptz, time, integer[], text),
	taskflow.daily_slot_after(timestamptz, time, integer[], text),
	taskflow._local(timestamptz, text)
	FROM PUBLIC;

GRANT EXECUTE ON FUNCTION taskflow.create_task, taskflow.alter_task, taskflow.drop_task,
	taskflow.create_chain, taskflow.add_step, taskflow.set_wait, taskflow.move_step,
	taskflow.remove_step, taskflow.alter_chain, taskflow.enable_chain,
	taskflow.disable_chain, taskflow.drop_chain, taskflow.run(timestamptz, text)
	TO taskflow_app;
GRANT EXECUTE ON FUNCTION taskflow.process(text, bigint[], timestamptz, text),
	taskflow.skip(text, bigint[], timestamptz, text),
	taskflow.cancel(text, bigint[], timestamptz, text),
	taskflow.explain(bigint, timestamptz),
	taskflow.wait_until(timestamptz, text, interval, integer, time, text),
	taskflow.daily_slot_before(timestamptz, time, integer[], text),
	taskflow.daily_slot_after(timestamptz, time, integer[], text),
	taskflow._local(timestamptz, text)
	TO taskflow_app, taskflow_operator;
-- chain owners' entry queries read member states; operators read everything
GRANT SELECT ON taskflow.task, taskflow.chain, taskflow.chain_step, taskflow.chain_member,
	taskflow.history, taskflow.outbox, taskflow.chain_error, taskflow.pending_tasks,
	taskflow.dashboard, taskflow.chain_summary, taskflow.member_state
	TO taskflow_app, taskflow_operator;
