-- taskflow update script: 0.1 (the first release) to 0.2.
--
-- ALTER EXTENSION taskflow UPDATE runs it.  It must leave a database
-- exactly as CREATE EXTENSION taskflow VERSION '0.2' would: test/t/050_upgrade.pl
-- compares every object of the extension (definitions, columns in order,
-- constraints, indexes, triggers, privileges, comments) in an updated
-- database with a fresh install.  Keep the same rules as the install
-- script: every name schema-qualified, operators written
-- OPERATOR(pg_catalog.x), functions with a pinned search_path.  New
-- columns go at the end of their table in src/sql/ too, so both orders
-- agree.  The workers wait while a database is at a version the library
-- does not run against, and go on when this update commits.

\echo Use "ALTER EXTENSION taskflow UPDATE TO '0.2'" to load this file. \quit

-- A database restored from a dump holds its automation until the DBA
-- resumes it (src/sql/46_hold.sql, src/hold.c); the delivery functions
-- claim nothing while it is held.
CREATE OR REPLACE FUNCTION taskflow.claim_messages(channel text, worker text, max integer,
										lease interval DEFAULT '5 minutes',
										as_of timestamptz DEFAULT pg_catalog.now())
RETURNS SETOF taskflow.outbox
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ch taskflow.channel;
	ids bigint[];
	claimed integer;
	window_start timestamptz := to_timestamp(floor(EXTRACT(epoch FROM as_of))::float8);
BEGIN
	PERFORM taskflow._check_worker(worker, as_of);
	IF max IS NULL OR max OPERATOR(pg_catalog.<) 1 OR max OPERATOR(pg_catalog.>) 10000 THEN
		RAISE EXCEPTION 'max must be between 1 and 10000, not %', coalesce(max::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF lease IS NULL OR lease OPERATOR(pg_catalog.<) interval '1 second'
	   OR lease OPERATOR(pg_catalog.>) interval '1 day' THEN
		RAISE EXCEPTION 'lease must be between 1 second and 1 day, not %', coalesce(lease::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Longer than the worker needs to send a batch; a message whose lease ends is sent again.';
	END IF;
	-- one claim per channel at a time: the rate window lives on this row
	SELECT * INTO ch FROM taskflow.channel c
	 WHERE c.name OPERATOR(pg_catalog.=) claim_messages.channel FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'channel "%" does not exist', claim_messages.channel
			USING ERRCODE = 'undefined_object';
	END IF;
	-- a restored copy sends nothing until the DBA resumes it (part 46):
	-- the lock waits for a restore's transaction, the next statement's
	-- snapshot then sees its hold, and no restore commits until this one
	IF NOT ch.enabled THEN
		RETURN;
	END IF;
	LOCK TABLE taskflow.hold IN SHARE MODE;
	IF EXISTS (SELECT FROM taskflow.hold) THEN
		RETURN;
	END IF;

	PERFORM taskflow._reclaim_leases(ch, worker, as_of);
	SELECT array_agg(x.outbox_id) INTO ids FROM (
		SELECT o.outbox_id FROM taskflow.outbox o
		 WHERE o.channel OPERATOR(pg_catalog.=) ch.name
		   AND o.state OPERATOR(pg_catalog.=) ANY (ARRAY['pending', 'deferred'])
		   AND o.not_before OPERATOR(pg_catalog.<=) as_of
		 ORDER BY o.not_before, o.outbox_id
		 LIMIT max
		 FOR UPDATE SKIP LOCKED) x;
	IF ids IS NULL THEN
		RETURN;
	END IF;
	PERFORM taskflow._claim_cancel(ch, worker, ids, as_of);
	PERFORM taskflow._claim_member_guardrails(ch, ids, as_of);
	PERFORM taskflow._claim_quota(ch, ids, as_of);

	RETURN QUERY
	WITH l AS (
		UPDATE taskflow.outbox o
		   SET state = 'sending', state_reason = NULL,
			   attempts = o.attempts OPERATOR(pg_catalog.+) 1,
			   lease_owner = worker, lease_expires_at = as_of OPERATOR(pg_catalog.+) lease,
			   message_id = coalesce(o.message_id,
					format('<%s.%s@%s>', o.outbox_id, o.chain_id,
						   coalesce(ch.message_id_domain,
									nullif(split_part(o.sender_address, '@', 2), ''),
									'localhost'))),
			   original_recipient = CASE WHEN o.is_test
										 THEN coalesce(o.original_recipient, o.recipient) END,
			   recipient = CASE WHEN o.is_test
								THEN ch.test_recipients[1 OPERATOR(pg_catalog.+)
									 (o.member_id OPERATOR(pg_catalog.%)
									  cardinality(ch.test_recipients))::integer]
								ELSE o.recipient END
		  FROM (SELECT x.outbox_id FROM taskflow.outbox x
				 WHERE x.outbox_id OPERATOR(pg_catalog.=) ANY (ids)
				   AND x.state OPERATOR(pg_catalog.=) ANY (ARRAY['pending', 'deferred'])
				   AND x.not_before OPERATOR(pg_catalog.<=) as_of
				 ORDER BY x.not_before, x.outbox_id
				 LIMIT taskflow._rate_budget(ch, max, as_of)) p
		 WHERE o.outbox_id OPERATOR(pg_catalog.=) p.outbox_id
		RETURNING o.*),
	a AS (
		INSERT INTO taskflow.delivery_attempt (outbox_id, attempt, worker, recipient, started_at)
		SELECT l.outbox_id, l.attempts, worker, l.recipient, as_of FROM l)
	SELECT l.* FROM l ORDER BY l.not_before, l.outbox_id;
	GET DIAGNOSTICS claimed = ROW_COUNT;

	IF ch.rate_per_second IS NOT NULL AND claimed OPERATOR(pg_catalog.>) 0 THEN
		UPDATE taskflow.channel c
		   SET rate_window_count = CASE WHEN c.rate_window_start OPERATOR(pg_catalog.=) window_start
										THEN c.rate_window_count OPERATOR(pg_catalog.+) claimed
										ELSE claimed END,
			   rate_window_start = window_start
		 WHERE c.name OPERATOR(pg_catalog.=) ch.name;
	END IF;
END
$$;

CREATE OR REPLACE FUNCTION taskflow.next_delivery_at(channel text,
										  as_of timestamptz DEFAULT pg_catalog.now())
RETURNS timestamptz
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ch taskflow.channel;
	next_at timestamptz;
BEGIN
	SELECT * INTO ch FROM taskflow.channel c WHERE c.name OPERATOR(pg_catalog.=) next_delivery_at.channel;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'channel "%" does not exist', next_delivery_at.channel
			USING ERRCODE = 'undefined_object';
	END IF;
	IF NOT ch.enabled OR as_of IS NULL OR EXISTS (SELECT FROM taskflow.hold) THEN
		RETURN NULL;
	END IF;
	next_at := LEAST(
		(SELECT o.not_before FROM taskflow.outbox o
		  WHERE o.channel OPERATOR(pg_catalog.=) ch.name
			AND o.state OPERATOR(pg_catalog.=) ANY (ARRAY['pending', 'deferred'])
		  ORDER BY o.not_before LIMIT 1),
		(SELECT o.lease_expires_at FROM taskflow.outbox o
		  WHERE o.channel OPERATOR(pg_catalog.=) ch.name
			AND o.state OPERATOR(pg_catalog.=) 'sending'
		  ORDER BY o.lease_expires_at LIMIT 1));
	IF next_at IS NULL THEN
		RETURN NULL;
	END IF;
	IF next_at OPERATOR(pg_catalog.<=) as_of AND taskflow._rate_budget(ch, 1, as_of) OPERATOR(pg_catalog.=) 0 THEN
		-- the rate limit is used up for this second
		RETURN ch.rate_window_start OPERATOR(pg_catalog.+) interval '1 second';
	END IF;
	RETURN GREATEST(next_at, as_of);
END
$$;

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

REVOKE ALL ON TABLE taskflow.hold FROM PUBLIC;
REVOKE ALL ON FUNCTION taskflow.hold_automation(text), taskflow.resume_automation() FROM PUBLIC;

-- Row security (src/sql/91_row_security.sql): each application role sees
-- only its own tasks, chains, templates and what its chains did; explain(),
-- preview_template() and mime_message() go through the dispatcher, which
-- tells them who calls, instead of SECURITY DEFINER.
-- Whether caller may see the rows of objects owned by owner: it has the
-- owner's privileges, or is an operator (superusers: always).  For a
-- dropped owner: operators and superusers only.
CREATE FUNCTION taskflow._may_see(caller regrole, owner regrole)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN COALESCE(pg_catalog.pg_has_role(caller::pg_catalog.oid, 'taskflow_operator', 'USAGE'), false)
	OR CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) owner::pg_catalog.oid)
			THEN COALESCE(pg_catalog.pg_has_role(caller::pg_catalog.oid, owner::pg_catalog.oid, 'USAGE'), false)
			ELSE false END;
COMMENT ON FUNCTION taskflow._may_see(regrole, regrole) IS
	'Whether a role may see the rows of objects another role owns (its privileges, or an operator)';

-- The same for the current role: the row security policies below.
CREATE FUNCTION taskflow._may_see(owner regrole)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN taskflow._may_see((SELECT r.oid FROM pg_catalog.pg_roles r
						   WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER)::regrole, owner);
COMMENT ON FUNCTION taskflow._may_see(regrole) IS
	'Whether the current role may see the rows of objects a role owns';
REVOKE ALL ON FUNCTION taskflow._may_see(regrole, regrole), taskflow._may_see(regrole) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION taskflow._may_see(regrole, regrole), taskflow._may_see(regrole)
	TO taskflow_app, taskflow_operator, taskflow_relay;

-- Policies are per role: a role sees the rows any of its roles' policies
-- allow.  A role with none of the three roles sees no row, even if the
-- DBA granted it SELECT (grant it taskflow_operator to read everything).

-- Definitions with an owner.
CREATE POLICY own ON taskflow.task FOR SELECT TO taskflow_app
	USING (taskflow._may_see(owner));
CREATE POLICY every ON taskflow.task FOR SELECT TO taskflow_operator USING (true);
ALTER TABLE taskflow.task ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON taskflow.chain FOR SELECT TO taskflow_app
	USING (taskflow._may_see(owner));
CREATE POLICY every ON taskflow.chain FOR SELECT TO taskflow_operator USING (true);
ALTER TABLE taskflow.chain ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON taskflow.template FOR SELECT TO taskflow_app
	USING (taskflow._may_see(owner));
CREATE POLICY every ON taskflow.template FOR SELECT TO taskflow_operator USING (true);
ALTER TABLE taskflow.template ENABLE ROW LEVEL SECURITY;

-- What a chain has and did: seen with the chain (itself row-secured).
-- history keeps a dropped chain's name: its rows are the operators' then.
CREATE POLICY own ON taskflow.chain_step FOR SELECT TO taskflow_app
	USING (EXISTS (SELECT FROM taskflow.chain c WHERE c.chain_id OPERATOR(pg_catalog.=) chain_step.chain_id));
CREATE POLICY every ON taskflow.chain_step FOR SELECT TO taskflow_operator USING (true);
ALTER TABLE taskflow.chain_step ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON taskflow.chain_member FOR SELECT TO taskflow_app
	USING (EXISTS (SELECT FROM taskflow.chain c WHERE c.chain_id OPERATOR(pg_catalog.=) chain_member.chain_id));
CREATE POLICY every ON taskflow.chain_member FOR SELECT TO taskflow_operator USING (true);
ALTER TABLE taskflow.chain_member ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON taskflow.chain_error FOR SELECT TO taskflow_app
	USING (EXISTS (SELECT FROM taskflow.chain c WHERE c.chain_id OPERATOR(pg_catalog.=) chain_error.chain_id));
CREATE POLICY every ON taskflow.chain_error FOR SELECT TO taskflow_operator USING (true);
ALTER TABLE taskflow.chain_error ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON taskflow.history FOR SELECT TO taskflow_app
	USING (EXISTS (SELECT FROM taskflow.chain c WHERE c.chain_id OPERATOR(pg_catalog.=) history.chain_id));
CREATE POLICY every ON taskflow.history FOR SELECT TO taskflow_operator USING (true);
ALTER TABLE taskflow.history ENABLE ROW LEVEL SECURITY;

-- Messages: with their chain; relays and operators see every message.
CREATE POLICY own ON taskflow.outbox FOR SELECT TO taskflow_app
	USING (EXISTS (SELECT FROM taskflow.chain c WHERE c.chain_id OPERATOR(pg_catalog.=) outbox.chain_id));
CREATE POLICY every ON taskflow.outbox FOR SELECT TO taskflow_operator, taskflow_relay USING (true);
ALTER TABLE taskflow.outbox ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON taskflow.delivery_attempt FOR SELECT TO taskflow_app
	USING (EXISTS (SELECT FROM taskflow.outbox o WHERE o.outbox_id OPERATOR(pg_catalog.=) delivery_attempt.outbox_id));
CREATE POLICY every ON taskflow.delivery_attempt FOR SELECT TO taskflow_operator, taskflow_relay USING (true);
ALTER TABLE taskflow.delivery_attempt ENABLE ROW LEVEL SECURITY;

-- The views over them read as the calling role, so its rows only.
ALTER VIEW taskflow.pending_tasks SET (security_invoker = true);
ALTER VIEW taskflow.dashboard SET (security_invoker = true);
ALTER VIEW taskflow.chain_summary SET (security_invoker = true);
ALTER VIEW taskflow.member_state SET (security_invoker = true);
ALTER VIEW taskflow.member_activity SET (security_invoker = true);

-- explain() for the caller: the chains it may see (src/sql/34_engine.sql).
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
					-- when that entry check is not the next run's
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
					format('pending at manual task %s (step %s) since %s%s', quote_ident(r.task_name), r.position,
						   taskflow._local(r.waiting_since, r.time_zone),
						   coalesce(', assignee ' OPERATOR(pg_catalog.||) r.assignee, ''))
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
CREATE OR REPLACE FUNCTION taskflow.explain(member_id bigint, as_of timestamptz DEFAULT taskflow.clock())
RETURNS TABLE (chain text, state text, task text, since timestamptz, due_at timestamptz,
			   reason text)
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'taskflow_api_call_set';

-- preview_template() for the caller (src/sql/25_templates.sql).
CREATE FUNCTION taskflow._preview_template(caller regrole, name text, member_id bigint)
RETURNS TABLE (subject text, body_text text, body_html text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t taskflow.template;
	m taskflow.member;
	r taskflow.rendered_message;
BEGIN
	SELECT * INTO t FROM taskflow.template x
	 WHERE x.name OPERATOR(pg_catalog.=) _preview_template.name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'template "%" does not exist', _preview_template.name
			USING ERRCODE = 'undefined_object';
	END IF;
	IF NOT taskflow._may_see(caller, t.owner) THEN
		RAISE EXCEPTION 'permission denied for template "%"', _preview_template.name
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('It belongs to role %s, whose privileges role %s does not have.', t.owner, caller),
				  HINT = 'Only the owning role, its members and operators can preview it.';
	END IF;
	SELECT * INTO m FROM taskflow.member x
	 WHERE x.member_id OPERATOR(pg_catalog.=) _preview_template.member_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'member % does not exist', _preview_template.member_id
			USING ERRCODE = 'no_data_found';
	END IF;
	r := taskflow.render_message(t, m);
	RETURN QUERY SELECT r.subject, r.body_text, r.body_html;
END
$$;
-- preview_template() for the caller, through the dispatcher.
CREATE OR REPLACE FUNCTION taskflow.preview_template(name text, member_id bigint)
RETURNS TABLE (subject text, body_text text, body_html text)
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'taskflow_api_call_set';

-- mime_message() for relays, operators and the chain's owner
-- (src/sql/42_mime.sql).
CREATE FUNCTION taskflow._mime_message(caller regrole, outbox_id bigint, as_of timestamptz)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	o_owner regrole;
	o_channel text;
	o_transactional boolean;
	kind	text;
	unsub	text;
BEGIN
	SELECT x.channel, x.transactional, c.kind, c.unsubscribe_url, ch.owner
	  INTO o_channel, o_transactional, kind, unsub, o_owner
	  FROM taskflow.outbox x
	  LEFT JOIN taskflow.channel c ON c.name OPERATOR(pg_catalog.=) x.channel
	  LEFT JOIN taskflow.chain ch ON ch.chain_id OPERATOR(pg_catalog.=) x.chain_id
	 WHERE x.outbox_id OPERATOR(pg_catalog.=) _mime_message.outbox_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'outbox row % does not exist', _mime_message.outbox_id
			USING ERRCODE = 'no_data_found';
	END IF;
	IF NOT (COALESCE(pg_has_role(caller, 'taskflow_relay', 'USAGE'), false)
			OR (o_owner IS NOT NULL AND taskflow._may_see(caller, o_owner))
			OR COALESCE(pg_has_role(caller, 'taskflow_operator', 'USAGE'), false)) THEN
		RAISE EXCEPTION 'permission denied for outbox row %', _mime_message.outbox_id
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = CASE WHEN o_owner IS NULL THEN 'Its chain was dropped.'
								ELSE format('Its chain belongs to role %s.', o_owner) END,
				  HINT = 'Relays, operators and members of the role that owns the chain may build its mail.';
	END IF;
	kind := coalesce(kind, CASE WHEN o_channel OPERATOR(pg_catalog.=) 'webhook'
								THEN 'webhook' ELSE 'smtp' END);
	IF kind OPERATOR(pg_catalog.<>) 'smtp' THEN
		RAISE EXCEPTION 'outbox row % is for channel "%" (%), which does not send mail',
			_mime_message.outbox_id, o_channel, kind
			USING ERRCODE = 'wrong_object_type';
	END IF;
	IF NOT o_transactional
	   AND strpos(unsub, '{{token}}') OPERATOR(pg_catalog.>) 0
	   AND to_regprocedure('taskflow.unsubscribe_token(bigint)') IS NULL THEN
		RAISE EXCEPTION 'the unsubscribe_url of channel "%" uses {{token}}, but taskflow.unsubscribe_token(bigint) does not exist',
			o_channel
			USING ERRCODE = 'undefined_function';
	END IF;

	-- built as a delivery worker builds a batch (src/sql/45_delivery_worker.sql)
	RETURN (SELECT m.message FROM taskflow._mime_messages(ARRAY[_mime_message.outbox_id], as_of) m);
END
$$;

-- The mail of an outbox row, for the caller (through the dispatcher).
CREATE OR REPLACE FUNCTION taskflow.mime_message(outbox_id bigint,
									  as_of timestamptz DEFAULT pg_catalog.now())
RETURNS text
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'taskflow_api_call';
REVOKE ALL ON FUNCTION taskflow._explain(regrole, bigint, timestamptz),
	taskflow._preview_template(regrole, text, bigint),
	taskflow._mime_message(regrole, bigint, timestamptz)
	FROM PUBLIC;

-- A batch that fails for one member's data sets that member aside and goes
-- on with the others (src/isolate.c); the member's failures are kept in
-- chain_error with its id.
ALTER TABLE taskflow.chain_error ADD COLUMN member_id bigint;

-- next_wakeup() is _next_wakeup(after, '-infinity'); a preview asks for the
-- members due after its instant only (src/sql/35_worker.sql).
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
CREATE OR REPLACE FUNCTION taskflow.next_wakeup(after timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN taskflow._next_wakeup(after, '-infinity');
COMMENT ON FUNCTION taskflow.next_wakeup(timestamptz) IS
	'When the scheduler next has something to do after an instant';

REVOKE ALL ON FUNCTION taskflow._next_wakeup(timestamptz, timestamptz) FROM PUBLIC;

-- What a preview's simulation writes (src/sql/38_preview_watch.sql).
CREATE FUNCTION taskflow._preview_watch()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_preview_watch';
COMMENT ON FUNCTION taskflow._preview_watch() IS
	'While a preview runs: notes the members written and where members are placed';
REVOKE ALL ON FUNCTION taskflow._preview_watch() FROM PUBLIC;

CREATE TRIGGER preview_watch BEFORE INSERT OR UPDATE ON taskflow.member
	FOR EACH ROW EXECUTE FUNCTION taskflow._preview_watch();
CREATE TRIGGER preview_watch BEFORE INSERT OR UPDATE ON taskflow.chain_member
	FOR EACH ROW EXECUTE FUNCTION taskflow._preview_watch();

-- The anchor date arithmetic in C (src/anchor_dates.c): the same results,
-- without the SQL function's subquery at every call.
CREATE OR REPLACE FUNCTION taskflow.anchor_due(anchor_at timestamptz, days integer, at time, tz text)
RETURNS timestamptz
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'taskflow_anchor_due';
CREATE OR REPLACE FUNCTION taskflow.anchor_occurrence(base timestamptz, yearly boolean, last_days integer,
										   last_at time, tz text, not_before timestamptz)
RETURNS timestamptz
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'taskflow_anchor_occurrence';

-- A missed daily slot is caught up only on its own local day (or within
-- the entry interval), so a weekday chain never runs on a day not chosen
-- (src/sql/32_chains.sql).
CREATE OR REPLACE FUNCTION taskflow._entry_slot(c taskflow.chain, as_of timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	slot timestamptz;
	grace interval := coalesce(c.entry_interval, current_setting('taskflow.entry_interval')::interval);
BEGIN
	IF c.schedule OPERATOR(pg_catalog.=) ANY (ARRAY['always', 'anchor']) THEN
		IF c.last_entry_at IS NULL
		   OR c.last_entry_at OPERATOR(pg_catalog.+) grace OPERATOR(pg_catalog.<=) as_of THEN
			RETURN as_of;
		END IF;
		RETURN NULL;
	END IF;
	slot := taskflow.daily_slot_before(as_of, c.daily_at, c.weekdays, c.time_zone);
	IF slot IS NULL OR slot OPERATOR(pg_catalog.<) c.enabled_at
	   OR (c.last_entry_at IS NOT NULL AND slot OPERATOR(pg_catalog.<=) c.last_entry_at)
	   OR slot OPERATOR(pg_catalog.<) taskflow.anchor_entry_floor(as_of, grace, c.time_zone) THEN
		RETURN NULL;
	END IF;
	RETURN slot;
END
$$;

-- process(), skip() and cancel() take the chain: a member pending at a
-- manual task in two chains is worked in the one named (src/manual.c).
DROP FUNCTION taskflow.process(text, bigint[], timestamptz);
DROP FUNCTION taskflow.skip(text, bigint[], timestamptz);
DROP FUNCTION taskflow.cancel(text, bigint[], timestamptz);
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
REVOKE ALL ON FUNCTION taskflow.process(text, bigint[], timestamptz, text),
	taskflow.skip(text, bigint[], timestamptz, text),
	taskflow.cancel(text, bigint[], timestamptz, text)
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION taskflow.process(text, bigint[], timestamptz, text),
	taskflow.skip(text, bigint[], timestamptz, text),
	taskflow.cancel(text, bigint[], timestamptz, text)
	TO taskflow_app, taskflow_operator;
