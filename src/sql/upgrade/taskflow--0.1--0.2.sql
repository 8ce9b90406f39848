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
-- claim nothing while it is held.  The claim reads each recipient again
-- from the member row (taskflow._claim_recipients, at the end).
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
	PERFORM taskflow._claim_recipients(ids);
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
	o_is_test boolean;
	kind	text;
	unsub	text;
BEGIN
	SELECT x.channel, x.transactional, x.is_test, c.kind, c.unsubscribe_url, ch.owner
	  INTO o_channel, o_transactional, o_is_test, kind, unsub, o_owner
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
	IF NOT o_transactional AND NOT o_is_test
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

-- fv (review r2 §3, §4, §6-§10, r1 F5): checks of definitions, actions,
-- member helpers and chains (src/sql/11, 12, 20, 25, 30, 31, 33).

-- is_valid_date(): false, never an error, for text that is not exactly YYYY-MM-DD.
-- True when a text is exactly YYYY-MM-DD and a real calendar date; false
-- (never an error) for anything else, NULL included.
CREATE OR REPLACE FUNCTION taskflow.is_valid_date(value text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF value IS NULL OR value OPERATOR(pg_catalog.!~) '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN
		RETURN false;
	END IF;
	RETURN make_date(substr(value, 1, 4)::int, substr(value, 6, 2)::int,
					 substr(value, 9, 2)::int) IS NOT NULL;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
	RETURN false;
END
$$;

-- define_property(): no new type while the property is used, no list value removed that an action sets;
-- list values trimmed and checked, a NULL description keeps the old one (r5 F11).
-- Defines a typed custom property.  Changing the type of a property some
-- members already have is refused when any of their values would not fit,
-- and while anything uses the property (taskflow.property_used_by());
-- removing a list value is refused while a task's action sets it.
CREATE OR REPLACE FUNCTION taskflow.define_property(name text, type text,
										 allowed_values text[] DEFAULT NULL,
										 description text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	bad record;
	old_type text;
	user_name text;
	list_value text;
	kept text[] := '{}';
BEGIN
	IF name IS NULL OR name OPERATOR(pg_catalog.!~) '^[a-z][a-z0-9_]{0,62}$' THEN
		RAISE EXCEPTION 'invalid property name %', coalesce(quote_literal(name), 'NULL')
			USING ERRCODE = 'invalid_name',
				  HINT = 'A property name is lower-case ASCII letters, digits and underscores, starting with a letter (at most 63).';
	END IF;
	IF type IS NULL OR NOT type OPERATOR(pg_catalog.=) ANY
		(ARRAY['text', 'email', 'number', 'boolean', 'date', 'list']) THEN
		RAISE EXCEPTION 'invalid type % for property "%"',
			coalesce(quote_literal(type), 'NULL'), name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The types are text, email, number, boolean, date and list.';
	END IF;
	IF (type OPERATOR(pg_catalog.=) 'list')
	   AND (allowed_values IS NULL OR cardinality(allowed_values) OPERATOR(pg_catalog.=) 0) THEN
		RAISE EXCEPTION 'list property "%" needs a non-empty array of allowed values', name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example ARRAY[''ブロンズ'', ''シルバー'', ''ゴールド''].';
	END IF;
	IF type OPERATOR(pg_catalog.<>) 'list' AND allowed_values IS NOT NULL THEN
		RAISE EXCEPTION 'only list properties take allowed values ("%" is %)', name, type
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- list values: trimmed like tags, each a distinct non-empty line
	IF type OPERATOR(pg_catalog.=) 'list' THEN
		FOREACH list_value IN ARRAY allowed_values LOOP
			list_value := btrim(list_value, E' \u3000');
			IF list_value IS NULL OR list_value OPERATOR(pg_catalog.=) '' THEN
				RAISE EXCEPTION 'list property "%" has % allowed value', name,
					CASE WHEN list_value IS NULL THEN 'a NULL' ELSE 'an empty' END
					USING ERRCODE = 'invalid_parameter_value',
						  HINT = 'For example ARRAY[''ブロンズ'', ''シルバー'', ''ゴールド''].';
			END IF;
			IF list_value OPERATOR(pg_catalog.~) '[[:cntrl:]]' THEN
				RAISE EXCEPTION 'allowed value % of list property "%" contains a control character',
					to_json(list_value), name
					USING ERRCODE = 'invalid_parameter_value',
						  HINT = 'A list value is one line, without line breaks, tabs or other control characters.';
			END IF;
			IF list_value OPERATOR(pg_catalog.=) ANY (kept) THEN
				RAISE EXCEPTION 'list property "%" has the allowed value "%" twice', name, list_value
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			kept := array_append(kept, list_value);
		END LOOP;
		allowed_values := kept;
	END IF;

	-- what reads or writes the property expects its type
	SELECT p.type INTO old_type FROM taskflow.custom_property p
	 WHERE p.name OPERATOR(pg_catalog.=) define_property.name FOR UPDATE;
	IF old_type OPERATOR(pg_catalog.<>) type THEN
		user_name := taskflow.property_used_by(name);
		IF user_name IS NOT NULL THEN
			RAISE EXCEPTION 'property "%" is used by %', name, user_name
				USING ERRCODE = 'dependent_objects_still_exist',
					  DETAIL = format('Its type cannot change from %s to %s while it is used.', old_type, type),
					  HINT = 'Change or drop what uses it first, or define a new property.';
		END IF;
	END IF;
	-- a value a task's action sets must stay allowed
	IF type OPERATOR(pg_catalog.=) 'list' THEN
		SELECT t.name, a.value OPERATOR(pg_catalog.->) 'to' AS value INTO bad
		  FROM taskflow.task t, jsonb_array_elements(t.actions) a
		 WHERE a.value OPERATOR(pg_catalog.->>) 'set_property' OPERATOR(pg_catalog.=) define_property.name
		   AND NOT coalesce((a.value OPERATOR(pg_catalog.->>) 'to') OPERATOR(pg_catalog.=) ANY (allowed_values), false)
		 ORDER BY t.name LIMIT 1;
		IF FOUND THEN
			RAISE EXCEPTION 'property "%" is used by task "%", which sets it to %', name, bad.name, bad.value
				USING ERRCODE = 'dependent_objects_still_exist',
					  HINT = 'Keep the value in allowed_values, or change the task''s actions first.';
		END IF;
	END IF;
	-- a new type or fewer list values: members written by transactions
	-- still open must be checked too, so wait for them, and keep new
	-- writers out until this commits (a new description needs neither)
	IF old_type OPERATOR(pg_catalog.<>) type
	   OR NOT (SELECT p.allowed_values FROM taskflow.custom_property p
				WHERE p.name OPERATOR(pg_catalog.=) define_property.name)
			  OPERATOR(pg_catalog.<@) allowed_values THEN
		PERFORM taskflow._lock_member_values(format('change the type or list values of property "%s"', name));
	END IF;

	INSERT INTO taskflow.custom_property AS p (name, type, allowed_values, description)
	VALUES (define_property.name, define_property.type,
			define_property.allowed_values, define_property.description)
	ON CONFLICT ON CONSTRAINT custom_property_pkey
	DO UPDATE SET type = EXCLUDED.type, allowed_values = EXCLUDED.allowed_values,
				  description = coalesce(EXCLUDED.description, p.description);

	-- existing values must still be valid under the new definition
	FOR bad IN
		SELECT m.member_id, m.properties OPERATOR(pg_catalog.->) define_property.name AS value
		  FROM taskflow.member m
		 WHERE m.properties OPERATOR(pg_catalog.?) define_property.name
	LOOP
		PERFORM taskflow.check_property_value(define_property.name, bad.value,
											  bad.member_id::text);
	END LOOP;
END
$$;

-- Member helpers: a member id that does not exist is an error (P0002), never false or a foreign key error.
-- Removes one custom property value of a member.
CREATE OR REPLACE FUNCTION taskflow.remove_property(member_id bigint, name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	-- "properties - NULL" is NULL: it would not remove one, it would fail
	IF name IS NULL THEN
		RAISE EXCEPTION 'a property name is required'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Name the property to remove, for example taskflow.remove_property(42, ''plan'').';
	END IF;
	UPDATE taskflow.member m
	   SET properties = m.properties OPERATOR(pg_catalog.-) remove_property.name
	 WHERE m.member_id OPERATOR(pg_catalog.=) remove_property.member_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'member % does not exist', member_id
			USING ERRCODE = 'no_data_found';
	END IF;
END
$$;

-- remove_tag(): trims the tag as add_tag() does (r5 F9).
-- Removes a tag from a member; returns false when the member did not have it.
CREATE OR REPLACE FUNCTION taskflow.remove_tag(member_id bigint, tag text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	trimmed text := btrim(tag, E' \u3000');
BEGIN
	UPDATE taskflow.member m
	   SET tags = array_remove(m.tags, trimmed)
	 WHERE m.member_id OPERATOR(pg_catalog.=) remove_tag.member_id
	   AND m.tags OPERATOR(pg_catalog.@>) ARRAY[trimmed];
	IF NOT FOUND THEN
		PERFORM FROM taskflow.member m WHERE m.member_id OPERATOR(pg_catalog.=) remove_tag.member_id;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'member % does not exist', member_id USING ERRCODE = 'no_data_found';
		END IF;
		RETURN false;
	END IF;
	PERFORM taskflow.record_event(member_id, 'tag_removed', jsonb_build_object('tag', trimmed));
	RETURN true;
END
$$;

-- create_group(): no control characters.
-- Creates a membership group.
CREATE OR REPLACE FUNCTION taskflow.create_group(name text, description text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	new_id integer;
BEGIN
	IF name IS NULL OR btrim(name) OPERATOR(pg_catalog.=) '' THEN
		RAISE EXCEPTION 'a group needs a name' USING ERRCODE = 'invalid_name';
	END IF;
	IF name OPERATOR(pg_catalog.~) '[[:cntrl:]]' THEN
		RAISE EXCEPTION 'invalid group name %', to_json(name)
			USING ERRCODE = 'invalid_name',
				  HINT = 'A group name has no control characters (line breaks, tabs).';
	END IF;
	INSERT INTO taskflow.member_group (name, description)
	VALUES (btrim(name), description) RETURNING group_id INTO new_id;
	RETURN new_id;
EXCEPTION WHEN unique_violation THEN
	RAISE EXCEPTION 'group "%" already exists', btrim(name) USING ERRCODE = 'duplicate_object';
END
$$;

-- join_group() / leave_group(): no infinite instants; a member that does not exist is an error;
-- no stay overlapping an earlier one, no leaving before joining (r5 F10).
-- Puts a member into a group as of an instant (default: the engine's clock).
-- Returns false when the member is already in the group.
CREATE OR REPLACE FUNCTION taskflow.join_group(member_id bigint, group_name text,
									at timestamptz DEFAULT taskflow.clock())
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	gid integer := taskflow.group_id(group_name);
	stay record;
BEGIN
	-- a NULL would fail as a bare "null value" error, or be ignored
	IF member_id IS NULL OR at IS NULL THEN
		RAISE EXCEPTION '% cannot be NULL', CASE WHEN member_id IS NULL THEN 'member_id' ELSE 'at' END
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Leave "at" out for taskflow.clock().';
	END IF;
	-- an infinite date would keep the membership open (or closed) for ever
	IF NOT isfinite(at) THEN
		RAISE EXCEPTION 'a member cannot join a group at %', at
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give the instant they joined, or leave "at" out for taskflow.clock().';
	END IF;
	PERFORM FROM taskflow.member m WHERE m.member_id OPERATOR(pg_catalog.=) join_group.member_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'member % does not exist', member_id USING ERRCODE = 'no_data_found';
	END IF;
	-- already in the group: nothing to do
	PERFORM FROM taskflow.group_membership gm
	 WHERE gm.member_id OPERATOR(pg_catalog.=) join_group.member_id
	   AND gm.group_id OPERATOR(pg_catalog.=) gid AND gm.left_at IS NULL;
	IF FOUND THEN
		RETURN false;
	END IF;
	-- a new stay runs from "at" on: no earlier stay may end after it starts
	SELECT gm.joined_at, gm.left_at INTO stay FROM taskflow.group_membership gm
	 WHERE gm.member_id OPERATOR(pg_catalog.=) join_group.member_id
	   AND gm.group_id OPERATOR(pg_catalog.=) gid
	   AND (gm.left_at OPERATOR(pg_catalog.>) at OR gm.joined_at OPERATOR(pg_catalog.=) at)
	 ORDER BY gm.joined_at DESC LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'member % cannot join group "%" at %: they were in it from % to %',
			member_id, group_name, at, stay.joined_at, stay.left_at
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A stay cannot overlap an earlier one: give an instant after the member last left the group.';
	END IF;
	INSERT INTO taskflow.group_membership (member_id, group_id, joined_at)
	VALUES (join_group.member_id, gid, at)
	ON CONFLICT (member_id, group_id) WHERE left_at IS NULL DO NOTHING;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	INSERT INTO taskflow.event (member_id, kind, occurred_at, detail)
	VALUES (join_group.member_id, 'group_joined', at, jsonb_build_object('group', group_name));
	RETURN true;
END
$$;

-- Takes a member out of a group; returns false when they were not in it.
CREATE OR REPLACE FUNCTION taskflow.leave_group(member_id bigint, group_name text,
									 at timestamptz DEFAULT taskflow.clock())
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	gid integer := taskflow.group_id(group_name);
	joined timestamptz;
BEGIN
	-- a NULL would fail as a bare "null value" error, or be ignored
	IF member_id IS NULL OR at IS NULL THEN
		RAISE EXCEPTION '% cannot be NULL', CASE WHEN member_id IS NULL THEN 'member_id' ELSE 'at' END
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Leave "at" out for taskflow.clock().';
	END IF;
	IF NOT isfinite(at) THEN
		RAISE EXCEPTION 'a member cannot leave a group at %', at
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give the instant they left, or leave "at" out for taskflow.clock().';
	END IF;
	SELECT gm.joined_at INTO joined FROM taskflow.group_membership gm
	 WHERE gm.member_id OPERATOR(pg_catalog.=) leave_group.member_id
	   AND gm.group_id OPERATOR(pg_catalog.=) gid AND gm.left_at IS NULL
	   FOR UPDATE;
	IF NOT FOUND THEN
		PERFORM FROM taskflow.member m WHERE m.member_id OPERATOR(pg_catalog.=) leave_group.member_id;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'member % does not exist', member_id USING ERRCODE = 'no_data_found';
		END IF;
		RETURN false;
	END IF;
	-- the stay and the group_left event both end at "at", never before the start
	IF at OPERATOR(pg_catalog.<) joined THEN
		RAISE EXCEPTION 'member % cannot leave group "%" at %: they joined it at %',
			member_id, group_name, at, joined
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give an instant at or after the one they joined.';
	END IF;
	UPDATE taskflow.group_membership gm SET left_at = at
	 WHERE gm.member_id OPERATOR(pg_catalog.=) leave_group.member_id
	   AND gm.group_id OPERATOR(pg_catalog.=) gid AND gm.left_at IS NULL;
	INSERT INTO taskflow.event (member_id, kind, occurred_at, detail)
	VALUES (leave_group.member_id, 'group_left', at, jsonb_build_object('group', group_name));
	RETURN true;
END
$$;

-- record_payment(): no NaN or Infinity amount.
-- Records a payment of amount for the dates [period_from, period_to].
CREATE OR REPLACE FUNCTION taskflow.record_payment(member_id bigint, amount numeric,
										period_from date, period_to date,
										occurred_at timestamptz DEFAULT taskflow.clock(),
										detail jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF amount IS NULL OR amount OPERATOR(pg_catalog.<) 0 THEN
		RAISE EXCEPTION 'a payment needs a non-negative amount'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- NaN and Infinity are not below 0, and are no amount either
	IF amount OPERATOR(pg_catalog.=) ANY (ARRAY['NaN', 'Infinity']::numeric[]) THEN
		RAISE EXCEPTION 'a payment needs a finite amount, not %', amount
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF period_from IS NULL OR period_to IS NULL OR period_to OPERATOR(pg_catalog.<) period_from THEN
		RAISE EXCEPTION 'a payment needs a period with period_from <= period_to'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN taskflow.record_event(member_id, 'payment', detail, occurred_at, amount,
								 daterange(period_from, period_to, '[]'));
END
$$;

-- unsubscribe() / resubscribe(): a member that does not exist is an error, not false ("already unsubscribed").
-- Unsubscribes a member from marketing messages (配信停止).
CREATE OR REPLACE FUNCTION taskflow.unsubscribe(member_id bigint,
									 at timestamptz DEFAULT taskflow.clock(),
									 reason text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	-- a NULL would fail as a bare "null value" error, or be ignored
	IF member_id IS NULL OR at IS NULL THEN
		RAISE EXCEPTION '% cannot be NULL', CASE WHEN member_id IS NULL THEN 'member_id' ELSE 'at' END
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Leave "at" out for taskflow.clock().';
	END IF;
	UPDATE taskflow.member m SET unsubscribed_at = at
	 WHERE m.member_id OPERATOR(pg_catalog.=) unsubscribe.member_id
	   AND m.unsubscribed_at IS NULL;
	IF NOT FOUND THEN
		-- "already unsubscribed" must not hide a wrong id
		PERFORM FROM taskflow.member m WHERE m.member_id OPERATOR(pg_catalog.=) unsubscribe.member_id;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'member % does not exist', member_id USING ERRCODE = 'no_data_found';
		END IF;
		RETURN false;
	END IF;
	PERFORM taskflow.record_event(member_id, 'unsubscribed',
								  jsonb_strip_nulls(jsonb_build_object('reason', reason)), at);
	RETURN true;
END
$$;

-- Subscribes an unsubscribed member again.
CREATE OR REPLACE FUNCTION taskflow.resubscribe(member_id bigint,
									 at timestamptz DEFAULT taskflow.clock())
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	-- a NULL would fail as a bare "null value" error, or be ignored
	IF member_id IS NULL OR at IS NULL THEN
		RAISE EXCEPTION '% cannot be NULL', CASE WHEN member_id IS NULL THEN 'member_id' ELSE 'at' END
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Leave "at" out for taskflow.clock().';
	END IF;
	UPDATE taskflow.member m SET unsubscribed_at = NULL
	 WHERE m.member_id OPERATOR(pg_catalog.=) resubscribe.member_id
	   AND m.unsubscribed_at IS NOT NULL;
	IF NOT FOUND THEN
		PERFORM FROM taskflow.member m WHERE m.member_id OPERATOR(pg_catalog.=) resubscribe.member_id;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'member % does not exist', member_id USING ERRCODE = 'no_data_found';
		END IF;
		RETURN false;
	END IF;
	PERFORM taskflow.record_event(member_id, 'resubscribed', '{}', at);
	RETURN true;
END
$$;

-- property_used_by(): anchor chains, templates and task actions use properties too (now PL/pgSQL: it reads tables created after it).
-- What uses a custom property, for taskflow.drop_property() and a change
-- of its type in taskflow.define_property(): the first saved criteria
-- reading it, anchor chain anchored on it, template with a merge field
-- {{properties.<name>}}, task whose actions set or remove it or channel
-- addressing its members by it, as 'criteria "name"', 'chain "name"',
-- 'template "name"', 'task "name"' or 'channel "name"';
-- NULL when nothing does.  PL/pgSQL: templates, tasks and chains are
-- created by later parts of the script.
CREATE OR REPLACE FUNCTION taskflow.property_used_by(property_name text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	field text := 'properties.' OPERATOR(pg_catalog.||) property_name;
	user_name text;
BEGIN
	SELECT format('criteria "%s"', c.name) INTO user_name
	  FROM taskflow.criteria c
	 WHERE property_name OPERATOR(pg_catalog.=) ANY (c.properties)
	 ORDER BY c.name LIMIT 1;
	IF user_name IS NULL THEN
		SELECT format('chain "%s"', ch.name) INTO user_name
		  FROM taskflow.chain ch
		 WHERE ch.anchor OPERATOR(pg_catalog.=) field
		 ORDER BY ch.name LIMIT 1;
	END IF;
	IF user_name IS NULL THEN
		SELECT format('template "%s"', t.name) INTO user_name
		  FROM taskflow.template t
		 WHERE field OPERATOR(pg_catalog.=) ANY (
				   coalesce(taskflow.template_fields(t.subject), '{}')
				   OPERATOR(pg_catalog.||) coalesce(taskflow.template_fields(t.body_text), '{}')
				   OPERATOR(pg_catalog.||) coalesce(taskflow.template_fields(t.body_html), '{}'))
		 ORDER BY t.name LIMIT 1;
	END IF;
	IF user_name IS NULL THEN
		SELECT format('task "%s"', t.name) INTO user_name
		  FROM taskflow.task t
		 WHERE EXISTS (SELECT FROM jsonb_array_elements(t.actions) a
						WHERE property_name OPERATOR(pg_catalog.=) ANY
							  (ARRAY[a.value OPERATOR(pg_catalog.->>) 'set_property',
									 a.value OPERATOR(pg_catalog.->>) 'remove_property']))
		 ORDER BY t.name LIMIT 1;
	END IF;
	IF user_name IS NULL THEN
		SELECT format('channel "%s"', ch.name) INTO user_name
		  FROM taskflow.channel ch
		 WHERE ch.recipient_property OPERATOR(pg_catalog.=) property_name
		 ORDER BY ch.name LIMIT 1;
	END IF;
	RETURN user_name;
END
$$;

-- Template names are trimmed of surrounding blanks, as task and chain names.
-- create_template, as the extension owner on behalf of caller, who owns
-- the template.  The name is trimmed of surrounding blanks, as task and
-- chain names are.
CREATE OR REPLACE FUNCTION taskflow._create_template(caller regrole, name text, subject text, body_text text,
										  body_html text, sender_name text, sender_address text,
										  reply_to text, channel text, transactional boolean,
										  missing_field text, description text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t taskflow.template;
BEGIN
	t.name := btrim(_create_template.name);
	t.channel := coalesce(_create_template.channel, 'email');
	t.subject := nullif(_create_template.subject, '');
	t.body_text := _create_template.body_text;
	t.body_html := nullif(_create_template.body_html, '');
	t.sender_name := nullif(_create_template.sender_name, '');
	t.sender_address := nullif(_create_template.sender_address, '');
	t.reply_to := nullif(_create_template.reply_to, '');
	t.transactional := coalesce(_create_template.transactional, false);
	t.missing_field := coalesce(_create_template.missing_field, 'empty');
	t.description := nullif(_create_template.description, '');
	t.owner := caller;
	PERFORM taskflow._check_template(t);
	IF EXISTS (SELECT FROM taskflow.template x WHERE x.name OPERATOR(pg_catalog.=) t.name) THEN
		RAISE EXCEPTION 'template "%" already exists', t.name
			USING ERRCODE = 'duplicate_object',
				  HINT = 'Change it with taskflow.alter_template().';
	END IF;
	INSERT INTO taskflow.template AS x
		(name, channel, subject, body_text, body_html, sender_name, sender_address,
		 reply_to, transactional, missing_field, description, owner)
	VALUES (t.name, t.channel, t.subject, t.body_text, t.body_html, t.sender_name,
			t.sender_address, t.reply_to, t.transactional, t.missing_field, t.description,
			t.owner)
	RETURNING x.template_id INTO t.template_id;
	RETURN t.template_id;
END
$$;

-- alter_template, as the extension owner on behalf of caller.
CREATE OR REPLACE FUNCTION taskflow._alter_template(caller regrole, name text, subject text, body_text text,
										 body_html text, sender_name text, sender_address text,
										 reply_to text, channel text, transactional boolean,
										 missing_field text, description text, new_name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t taskflow.template := taskflow._template_for(caller, name, true);
BEGIN
	SELECT * INTO t FROM taskflow.template x
	 WHERE x.template_id OPERATOR(pg_catalog.=) t.template_id FOR UPDATE;
	t.name := coalesce(btrim(new_name), t.name);
	t.subject := CASE WHEN _alter_template.subject IS NULL THEN t.subject
					  ELSE nullif(_alter_template.subject, '') END;
	t.body_text := coalesce(_alter_template.body_text, t.body_text);
	t.body_html := CASE WHEN _alter_template.body_html IS NULL THEN t.body_html
						ELSE nullif(_alter_template.body_html, '') END;
	t.sender_name := CASE WHEN _alter_template.sender_name IS NULL THEN t.sender_name
						  ELSE nullif(_alter_template.sender_name, '') END;
	t.sender_address := CASE WHEN _alter_template.sender_address IS NULL THEN t.sender_address
							 ELSE nullif(_alter_template.sender_address, '') END;
	t.reply_to := CASE WHEN _alter_template.reply_to IS NULL THEN t.reply_to
					   ELSE nullif(_alter_template.reply_to, '') END;
	t.channel := coalesce(_alter_template.channel, t.channel);
	t.transactional := coalesce(_alter_template.transactional, t.transactional);
	t.missing_field := coalesce(_alter_template.missing_field, t.missing_field);
	t.description := CASE WHEN _alter_template.description IS NULL THEN t.description
						  ELSE nullif(_alter_template.description, '') END;
	PERFORM taskflow._check_template(t);
	IF t.name OPERATOR(pg_catalog.<>) _alter_template.name
	   AND EXISTS (SELECT FROM taskflow.template x WHERE x.name OPERATOR(pg_catalog.=) t.name) THEN
		RAISE EXCEPTION 'template "%" already exists', t.name
			USING ERRCODE = 'duplicate_object';
	END IF;
	UPDATE taskflow.template AS x
	   SET name = t.name, channel = t.channel, subject = t.subject, body_text = t.body_text,
		   body_html = t.body_html, sender_name = t.sender_name,
		   sender_address = t.sender_address, reply_to = t.reply_to,
		   transactional = t.transactional, missing_field = t.missing_field,
		   description = t.description, updated_at = pg_catalog.now()
	 WHERE x.template_id OPERATOR(pg_catalog.=) t.template_id;
END
$$;

-- Actions: a key the verb does not use is refused when the task is saved.
-- Raises when an action has a key its verb does not use: "to" belongs to
-- set and set_property, "detail" to record_event; anywhere else it would
-- be dropped without a word ({"extend_expires": "1 month", "to":
-- "2027-12-31"} extends by a month).  Called when a task is saved, not by
-- _compile_actions, so a task saved before the check keeps running.
CREATE FUNCTION taskflow._check_action_keys(task_name text, actions jsonb)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a jsonb;
	n integer := 0;
	verb text;
BEGIN
	IF jsonb_typeof(actions) OPERATOR(pg_catalog.<>) 'array' THEN
		RETURN;					-- _compile_actions says what is wrong
	END IF;
	FOR a IN SELECT value FROM jsonb_array_elements(actions) LOOP
		n := n OPERATOR(pg_catalog.+) 1;
		CONTINUE WHEN jsonb_typeof(a) OPERATOR(pg_catalog.<>) 'object';
		SELECT k INTO verb FROM jsonb_object_keys(a) k
		 WHERE k OPERATOR(pg_catalog.<>) ALL (ARRAY['to', 'detail'])
		 ORDER BY k LIMIT 1;
		IF a OPERATOR(pg_catalog.?) 'to'
		   AND verb OPERATOR(pg_catalog.=) ANY (ARRAY['remove_property', 'add_tag', 'remove_tag',
			   'join_group', 'leave_group', 'extend_expires', 'record_event', 'sql']) THEN
			PERFORM taskflow._action_error(task_name, n, format('%s takes no "to"', verb),
				CASE WHEN verb OPERATOR(pg_catalog.=) 'extend_expires'
					 THEN 'To set the expiry to a date use {"set": "expires_at", "to": "2027-12-31"}; extend_expires only takes an interval.'
					 ELSE 'Only set and set_property take "to".' END);
		END IF;
		IF a OPERATOR(pg_catalog.?) 'detail'
		   AND verb OPERATOR(pg_catalog.=) ANY (ARRAY['set', 'set_property', 'remove_property', 'add_tag',
			   'remove_tag', 'join_group', 'leave_group', 'extend_expires', 'sql']) THEN
			PERFORM taskflow._action_error(task_name, n, format('%s takes no "detail"', verb),
				'Only record_event takes "detail".');
		END IF;
	END LOOP;
END
$$;

-- Actions: a NOT NULL column cannot be set to null; an unknown set_property names the task and action.
-- Compiles an actions array into SQL statements ($1 ids, $2 clock).
-- Raises on any malformed action; unknown groups, properties and event kinds
-- are reported here too, so a broken reference shows at save time and, if
-- something was dropped since, as a recorded error of the chain.
CREATE OR REPLACE FUNCTION taskflow._compile_actions(task_name text, actions jsonb)
RETURNS text[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a jsonb;
	n integer := 0;
	verb text;
	arg jsonb;
	col_type text;
	sets text[] := '{}';
	tags_expr text := 'member.tags';
	props_expr text := 'member.properties';
	expires_expr text := NULL;
	set_exprs jsonb := '{}';
	stmts text[] := '{}';
	tag_events text[] := '{}';
	gid integer;
	span interval;
	col text;
BEGIN
	IF actions IS NULL OR jsonb_typeof(actions) OPERATOR(pg_catalog.<>) 'array' THEN
		RAISE EXCEPTION 'actions of task "%" must be a JSON array', task_name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example ''[{"add_tag": "動画A"}, {"set": "status", "to": "paid"}]''.';
	END IF;
	FOR a IN SELECT value FROM jsonb_array_elements(actions) LOOP
		n := n OPERATOR(pg_catalog.+) 1;
		IF jsonb_typeof(a) OPERATOR(pg_catalog.<>) 'object' THEN
			PERFORM taskflow._action_error(task_name, n, 'an action must be a JSON object');
		END IF;
		SELECT k INTO verb FROM jsonb_object_keys(a) k
		 WHERE k OPERATOR(pg_catalog.<>) ALL (ARRAY['to', 'detail'])
		 ORDER BY k LIMIT 1;
		IF verb IS NULL THEN
			PERFORM taskflow._action_error(task_name, n, 'no action given');
		END IF;
		IF (SELECT count(*) FROM jsonb_object_keys(a) k
			 WHERE k OPERATOR(pg_catalog.<>) ALL (ARRAY['to', 'detail'])) OPERATOR(pg_catalog.>) 1 THEN
			PERFORM taskflow._action_error(task_name, n, 'one action per object',
				'Split it: [{"add_tag": "A"}, {"remove_tag": "B"}].');
		END IF;
		arg := a OPERATOR(pg_catalog.->) verb;
		IF verb OPERATOR(pg_catalog.=) 'set' THEN
			col := arg OPERATOR(pg_catalog.#>>) '{}';
			col_type := taskflow._settable_column_type(col);
			IF jsonb_typeof(arg) OPERATOR(pg_catalog.<>) 'string' OR col_type IS NULL THEN
				PERFORM taskflow._action_error(task_name, n, format('cannot set column %s', arg),
					'Settable columns: status, email, name, name_kana, joined_at, expires_at, birthday, last_message_at, unsubscribed_at. Use add_tag, set_property or extend_expires for the others.');
			END IF;
			IF NOT a OPERATOR(pg_catalog.?) 'to' THEN
				PERFORM taskflow._action_error(task_name, n, format('"set": "%s" needs "to"', col));
			END IF;
			IF col OPERATOR(pg_catalog.=) 'status' THEN
				PERFORM FROM taskflow.member_status s
				 WHERE s.status OPERATOR(pg_catalog.=) (a OPERATOR(pg_catalog.->>) 'to');
				IF NOT FOUND THEN
					PERFORM taskflow._action_error(task_name, n,
						format('unknown status %s', a OPERATOR(pg_catalog.->) 'to'),
						'Add it with taskflow.define_status().');
				END IF;
			ELSIF col OPERATOR(pg_catalog.=) 'email' AND NOT taskflow.is_valid_email(a OPERATOR(pg_catalog.->>) 'to') THEN
				PERFORM taskflow._action_error(task_name, n,
					format('%s is not an e-mail address', a OPERATOR(pg_catalog.->) 'to'));
			END IF;
			-- a NOT NULL column (joined_at) would fail for every member
			IF jsonb_typeof(a OPERATOR(pg_catalog.->) 'to') OPERATOR(pg_catalog.=) 'null'
			   AND (SELECT att.attnotnull FROM pg_catalog.pg_attribute att
					 WHERE att.attrelid OPERATOR(pg_catalog.=) 'taskflow.member'::pg_catalog.regclass
					   AND att.attname OPERATOR(pg_catalog.=) col) THEN
				PERFORM taskflow._action_error(task_name, n, format('column %s cannot be set to null', col),
					format('Every member has a %s; give "to" a value.', col));
			END IF;
			IF col OPERATOR(pg_catalog.=) 'expires_at' THEN
				expires_expr := format('%L::timestamptz', a OPERATOR(pg_catalog.->>) 'to');
			ELSE
				set_exprs := set_exprs OPERATOR(pg_catalog.||)
					jsonb_build_object(col, format('%L::%s', a OPERATOR(pg_catalog.->>) 'to', col_type));
			END IF;
			-- the value must convert to the column's type
			BEGIN
				EXECUTE format('SELECT %L::%s', a OPERATOR(pg_catalog.->>) 'to', col_type);
			EXCEPTION WHEN data_exception THEN
				PERFORM taskflow._action_error(task_name, n,
					format('%s is not a valid %s for column %s', a OPERATOR(pg_catalog.->) 'to', col_type, col));
			END;

		ELSIF verb OPERATOR(pg_catalog.=) 'set_property' THEN
			IF jsonb_typeof(arg) OPERATOR(pg_catalog.<>) 'string' OR NOT a OPERATOR(pg_catalog.?) 'to' THEN
				PERFORM taskflow._action_error(task_name, n, 'set_property needs a property name and "to"',
					'For example {"set_property": "plan", "to": "ゴールド"}.');
			END IF;
			PERFORM FROM taskflow.custom_property p WHERE p.name OPERATOR(pg_catalog.=) (arg OPERATOR(pg_catalog.#>>) '{}');
			IF NOT FOUND THEN
				PERFORM taskflow._action_error(task_name, n, format('unknown property %s', arg),
					'Define it first with taskflow.define_property().');
			END IF;
			PERFORM taskflow.check_property_value(arg OPERATOR(pg_catalog.#>>) '{}', a OPERATOR(pg_catalog.->) 'to');
			props_expr := format('(%s OPERATOR(pg_catalog.||) %L::jsonb)', props_expr,
								 jsonb_build_object(arg OPERATOR(pg_catalog.#>>) '{}', a OPERATOR(pg_catalog.->) 'to'));

		ELSIF verb OPERATOR(pg_catalog.=) 'remove_property' THEN
			IF jsonb_typeof(arg) OPERATOR(pg_catalog.<>) 'string' THEN
				PERFORM taskflow._action_error(task_name, n, 'remove_property needs a property name');
			END IF;
			PERFORM FROM taskflow.custom_property p WHERE p.name OPERATOR(pg_catalog.=) (arg OPERATOR(pg_catalog.#>>) '{}');
			IF NOT FOUND THEN
				PERFORM taskflow._action_error(task_name, n, format('unknown property %s', arg));
			END IF;
			props_expr := format('(%s OPERATOR(pg_catalog.-) %L::text)', props_expr, arg OPERATOR(pg_catalog.#>>) '{}');

		ELSIF verb OPERATOR(pg_catalog.=) ANY (ARRAY['add_tag', 'remove_tag']) THEN
			IF jsonb_typeof(arg) OPERATOR(pg_catalog.<>) 'string'
			   OR btrim(arg OPERATOR(pg_catalog.#>>) '{}') OPERATOR(pg_catalog.=) ''
			   OR length(arg OPERATOR(pg_catalog.#>>) '{}') OPERATOR(pg_catalog.>) 100
			   OR (arg OPERATOR(pg_catalog.#>>) '{}') OPERATOR(pg_catalog.~) '[[:cntrl:]]' THEN
				PERFORM taskflow._action_error(task_name, n, format('%s needs a tag of 1 to 100 characters', verb));
			END IF;
			tags_expr := CASE verb
				WHEN 'add_tag' THEN format('(%s OPERATOR(pg_catalog.||) %L::text)', tags_expr, btrim(arg OPERATOR(pg_catalog.#>>) '{}'))
				ELSE format('pg_catalog.array_remove(%s, %L::text)', tags_expr, btrim(arg OPERATOR(pg_catalog.#>>) '{}')) END;
			-- the timeline records the change for members it changes (run
			-- before the UPDATE, which is what changes them)
			tag_events := tag_events OPERATOR(pg_catalog.||) format(
				'INSERT INTO taskflow.event (member_id, kind, occurred_at, detail) '
				'SELECT member.member_id, %L, $2, %L::jsonb FROM taskflow.member AS member '
				'WHERE member.member_id OPERATOR(pg_catalog.=) ANY ($1) AND %s member.tags OPERATOR(pg_catalog.@>) ARRAY[%L::text]',
				CASE verb WHEN 'add_tag' THEN 'tag_added' ELSE 'tag_removed' END,
				jsonb_build_object('tag', btrim(arg OPERATOR(pg_catalog.#>>) '{}')),
				CASE verb WHEN 'add_tag' THEN 'NOT' ELSE '' END,
				btrim(arg OPERATOR(pg_catalog.#>>) '{}'));

		ELSIF verb OPERATOR(pg_catalog.=) 'extend_expires' THEN
			BEGIN
				span := (arg OPERATOR(pg_catalog.#>>) '{}')::interval;
			EXCEPTION WHEN data_exception THEN
				span := NULL;
			END;
			IF jsonb_typeof(arg) OPERATOR(pg_catalog.<>) 'string' OR span IS NULL THEN
				PERFORM taskflow._action_error(task_name, n, format('extend_expires needs an interval, not %s', arg),
					'For example "1 month", "30 days" or "-7 days" to shorten.');
			END IF;
			-- a longer one would overflow expires_at when the step runs
			IF span OPERATOR(pg_catalog.>) interval '100 years'
			   OR span OPERATOR(pg_catalog.<) interval '-100 years' THEN
				PERFORM taskflow._action_error(task_name, n, format('extend_expires %s is out of range', arg),
					'Extend or shorten by at most 100 years.');
			END IF;
			-- from the current expiry, or from the clock when there is none
			expires_expr := format('(COALESCE(%s, $2) OPERATOR(pg_catalog.+) %L::interval)',
								   coalesce(expires_expr, 'member.expires_at'), span);

		ELSIF verb OPERATOR(pg_catalog.=) ANY (ARRAY['join_group', 'leave_group']) THEN
			SELECT g.group_id INTO gid FROM taskflow.member_group g
			 WHERE g.name OPERATOR(pg_catalog.=) (arg OPERATOR(pg_catalog.#>>) '{}');
			IF NOT FOUND THEN
				PERFORM taskflow._action_error(task_name, n, format('group %s does not exist', arg),
					'Create it with taskflow.create_group().');
			END IF;
			stmts := stmts OPERATOR(pg_catalog.||) CASE verb
				WHEN 'join_group' THEN format(
					'WITH joined AS (INSERT INTO taskflow.group_membership (member_id, group_id, joined_at) '
					'SELECT m, %s, $2 FROM pg_catalog.unnest($1) AS m '
					'ON CONFLICT (member_id, group_id) WHERE left_at IS NULL DO NOTHING RETURNING member_id) '
					'INSERT INTO taskflow.event (member_id, kind, occurred_at, detail) '
					'SELECT member_id, ''group_joined'', $2, %L::jsonb FROM joined',
					gid, jsonb_build_object('group', arg))
				ELSE format(
					'WITH gone AS (UPDATE taskflow.group_membership gm SET left_at = GREATEST($2, gm.joined_at) '
					'WHERE gm.member_id OPERATOR(pg_catalog.=) ANY ($1) AND gm.group_id OPERATOR(pg_catalog.=) %s '
					'AND gm.left_at IS NULL RETURNING gm.member_id) '
					'INSERT INTO taskflow.event (member_id, kind, occurred_at, detail) '
					'SELECT member_id, ''group_left'', $2, %L::jsonb FROM gone',
					gid, jsonb_build_object('group', arg)) END;

		ELSIF verb OPERATOR(pg_catalog.=) 'record_event' THEN
			PERFORM FROM taskflow.event_kind k WHERE k.kind OPERATOR(pg_catalog.=) (arg OPERATOR(pg_catalog.#>>) '{}');
			IF jsonb_typeof(arg) OPERATOR(pg_catalog.<>) 'string' OR NOT FOUND THEN
				PERFORM taskflow._action_error(task_name, n, format('unknown event kind %s', arg),
					'Add it with taskflow.define_event_kind().');
			END IF;
			IF a OPERATOR(pg_catalog.?) 'detail'
			   AND jsonb_typeof(a OPERATOR(pg_catalog.->) 'detail') OPERATOR(pg_catalog.<>) 'object' THEN
				PERFORM taskflow._action_error(task_name, n, 'record_event "detail" must be a JSON object');
			END IF;
			stmts := stmts OPERATOR(pg_catalog.||) format(
				'INSERT INTO taskflow.event (member_id, kind, occurred_at, detail) '
				'SELECT m, %L, $2, %L::jsonb FROM pg_catalog.unnest($1) AS m',
				arg OPERATOR(pg_catalog.#>>) '{}', coalesce(a OPERATOR(pg_catalog.->) 'detail', '{}'));

		ELSIF verb OPERATOR(pg_catalog.=) 'sql' THEN
			IF jsonb_typeof(arg) OPERATOR(pg_catalog.<>) 'string'
			   OR btrim(arg OPERATOR(pg_catalog.#>>) '{}') OPERATOR(pg_catalog.=) '' THEN
				PERFORM taskflow._action_error(task_name, n, 'sql needs a statement',
					'For example "UPDATE app.page_access SET granted = true WHERE member_id = ANY($1)".');
			END IF;
			-- checked as one DML statement by taskflow._check_actions
			stmts := stmts OPERATOR(pg_catalog.||) (arg OPERATOR(pg_catalog.#>>) '{}');

		ELSE
			PERFORM taskflow._action_error(task_name, n, format('unknown action "%s"', verb),
				'The actions are set, set_property, remove_property, add_tag, remove_tag, join_group, leave_group, extend_expires, record_event and sql.');
		END IF;
	END LOOP;

	-- one UPDATE for every change to the member row
	FOR col IN SELECT key FROM jsonb_each_text(set_exprs) ORDER BY key LOOP
		sets := sets OPERATOR(pg_catalog.||) format('%I = %s', col, set_exprs OPERATOR(pg_catalog.->>) col);
	END LOOP;
	IF expires_expr IS NOT NULL THEN
		sets := sets OPERATOR(pg_catalog.||) format('expires_at = %s', expires_expr);
	END IF;
	IF tags_expr OPERATOR(pg_catalog.<>) 'member.tags' THEN
		sets := sets OPERATOR(pg_catalog.||) format('tags = %s', tags_expr);
	END IF;
	IF props_expr OPERATOR(pg_catalog.<>) 'member.properties' THEN
		sets := sets OPERATOR(pg_catalog.||) format('properties = %s', props_expr);
	END IF;
	IF cardinality(sets) OPERATOR(pg_catalog.>) 0 THEN
		stmts := format('UPDATE taskflow.member AS member SET %s WHERE member.member_id OPERATOR(pg_catalog.=) ANY ($1)',
						array_to_string(sets, ', ')) OPERATOR(pg_catalog.||) stmts;
	END IF;
	RETURN tag_events OPERATOR(pg_catalog.||) stmts;
END
$$;

-- _check_task(): calls _check_action_keys (src/sql/30_tasks.sql).
-- Checks a task definition and returns the ids it refers to; raises on
-- anything wrong, naming the task and the problem.
CREATE OR REPLACE FUNCTION taskflow._check_task(caller regrole, task_name text, mode text,
									 criteria text, actions jsonb, template text,
									 assignee text, priority integer, on_mismatch text,
									 OUT criteria_id integer, OUT template_id integer)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c record;
BEGIN
	IF task_name IS NULL OR btrim(task_name) OPERATOR(pg_catalog.=) ''
	   OR length(task_name) OPERATOR(pg_catalog.>) 200
	   OR task_name OPERATOR(pg_catalog.~) '[[:cntrl:]]' THEN
		RAISE EXCEPTION 'invalid task name %', coalesce(to_json(task_name)::text, 'NULL')
			USING ERRCODE = 'invalid_name',
				  HINT = 'A task name is 1 to 200 characters without control characters.';
	END IF;
	IF mode IS NULL OR NOT mode OPERATOR(pg_catalog.=) ANY (ARRAY['auto', 'manual', 'criteria_only']) THEN
		RAISE EXCEPTION 'invalid mode % for task "%"', coalesce(quote_literal(mode), 'NULL'), task_name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The modes are auto (全自動), manual (処理待ち) and criteria_only (検索条件のみ).';
	END IF;
	IF on_mismatch IS NULL OR NOT on_mismatch OPERATOR(pg_catalog.=) ANY (ARRAY['leave', 'wait']) THEN
		RAISE EXCEPTION 'invalid on_mismatch % for task "%"', coalesce(quote_literal(on_mismatch), 'NULL'), task_name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use leave (the member leaves the chain) or wait (the member waits until it matches).';
	END IF;
	IF priority IS NULL THEN
		RAISE EXCEPTION 'priority of task "%" cannot be null', task_name
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF assignee IS NOT NULL AND (btrim(assignee) OPERATOR(pg_catalog.=) ''
								 OR assignee OPERATOR(pg_catalog.~) '[[:cntrl:]]') THEN
		RAISE EXCEPTION 'invalid assignee % for task "%"', to_json(assignee), task_name
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	IF criteria IS NOT NULL THEN
		SELECT cr.criteria_id AS id, cr.owner INTO c
		  FROM taskflow.criteria cr WHERE cr.name OPERATOR(pg_catalog.=) criteria;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'criteria "%" of task "%" does not exist', criteria, task_name
				USING ERRCODE = 'undefined_object',
					  HINT = 'Save it first with taskflow.save_criteria().';
		END IF;
		IF NOT pg_has_role(caller, c.owner, 'USAGE') THEN
			RAISE EXCEPTION 'permission denied for criteria "%"', criteria
				USING ERRCODE = 'insufficient_privilege',
					  HINT = format('A task may only use criteria of roles you belong to (owner: %s).', c.owner);
		END IF;
		criteria_id := c.id;
	ELSIF mode OPERATOR(pg_catalog.=) 'criteria_only' THEN
		RAISE EXCEPTION 'criteria_only task "%" needs a criteria', task_name
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	IF template IS NOT NULL THEN
		PERFORM FROM taskflow.template t WHERE t.name OPERATOR(pg_catalog.=) template;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'template "%" of task "%" does not exist', template, task_name
				USING ERRCODE = 'undefined_object',
					  HINT = 'Create it first with taskflow.create_template().';
		END IF;
		-- only a template of a role the caller belongs to
		template_id := (taskflow._template_for(caller, template, false)).template_id;
	END IF;

	-- actions are compiled (and so checked) by the engine's own compiler,
	-- as the caller, so unknown tables or missing privileges show up now
	PERFORM taskflow._check_action_keys(task_name, actions);
	PERFORM taskflow._check_actions(caller, task_name, actions);
END
$$;

-- Chains: the default time zone is the session's TimeZone (refused when not a named zone); names in any letter case.
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

-- Chains: a '0 days at HH:MM' wait is refused.
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

-- create_chain(), add_step(), set_wait(): the two above.

CREATE OR REPLACE FUNCTION taskflow._create_chain(caller regrole, name text, tasks text[], waits text[],
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

-- Inserts a task into a chain at a position (shifting later steps), with
-- the wait before it.  Members keep waiting for the step they were waiting
-- for; those who finish the step before the new one go to the new one.
CREATE OR REPLACE FUNCTION taskflow._insert_step(caller regrole, c taskflow.chain, task_name text,
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

-- Changes the wait before a step.
CREATE OR REPLACE FUNCTION taskflow._set_wait(caller regrole, chain text, "position" integer, wait text)
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

-- alter_chain(): repeat_wait needs repeat, weekdays and every_day contradict each other (and the two above).
-- alter_chain: NULL leaves a setting unchanged.
CREATE OR REPLACE FUNCTION taskflow._alter_chain(caller regrole, name text, schedule text, weekdays text[],
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

REVOKE ALL ON FUNCTION taskflow._chain_time_zone(text), taskflow._parse_chain_wait(text),
	taskflow._check_action_keys(text, jsonb)
	FROM PUBLIC;

-- Day counts of an infinite date ('infinity': never expires) are NULL, not
-- an error that made every entry check of the chain fail (src/sql/13_predicates.sql).
CREATE OR REPLACE FUNCTION taskflow.days_since(ts timestamptz)
RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (CASE WHEN pg_catalog.isfinite(ts)
			 THEN taskflow.clock()::date OPERATOR(pg_catalog.-) ts::date END);
CREATE OR REPLACE FUNCTION taskflow.days_until(ts timestamptz)
RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (CASE WHEN pg_catalog.isfinite(ts)
			 THEN ts::date OPERATOR(pg_catalog.-) taskflow.clock()::date END);
CREATE OR REPLACE FUNCTION taskflow.days_until_anniversary(d date)
RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN pg_catalog.isfinite(d) THEN (
	SELECT CASE WHEN y.this_year OPERATOR(pg_catalog.>=) y.t
				THEN y.this_year OPERATOR(pg_catalog.-) y.t
				ELSE y.next_year OPERATOR(pg_catalog.-) y.t END
	  FROM (SELECT c.t,
				   (d OPERATOR(pg_catalog.+) make_interval(years => c.age))::date AS this_year,
				   (d OPERATOR(pg_catalog.+) make_interval(years => c.age OPERATOR(pg_catalog.+) 1))::date AS next_year
			  FROM (SELECT taskflow.clock()::date AS t,
						   (extract(year FROM taskflow.clock()::date)
							OPERATOR(pg_catalog.-) extract(year FROM d))::integer AS age) c) y) END;

-- A message the engine queues already cancelled (no e-mail address, or
-- unsubscribed before the step) leaves mail_cancelled on the member's
-- timeline, like one cancelled at claim time (src/sql/41_delivery.sql).
CREATE FUNCTION taskflow._outbox_cancelled()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	INSERT INTO taskflow.event (member_id, kind, occurred_at, detail, recorded_by)
	VALUES (NEW.member_id, 'mail_cancelled', NEW.created_at,
			jsonb_strip_nulls(jsonb_build_object('outbox_id', NEW.outbox_id, 'channel', NEW.channel,
				'subject', NEW.subject, 'recipient', NEW.recipient, 'reason', NEW.state_reason)),
			coalesce((SELECT h.actor FROM taskflow.history h
					   WHERE h.chain_id OPERATOR(pg_catalog.=) NEW.chain_id
						 AND h.member_id OPERATOR(pg_catalog.=) NEW.member_id
						 AND h.iteration OPERATOR(pg_catalog.=) NEW.iteration
						 AND h.step_id OPERATOR(pg_catalog.=) NEW.step_id
						 AND h.event OPERATOR(pg_catalog.=) 'applied'),
					 'taskflow'));
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION taskflow._outbox_cancelled() IS
	'Trigger: a message queued as cancelled leaves mail_cancelled on the member''s timeline';
CREATE TRIGGER outbox_cancelled AFTER INSERT ON taskflow.outbox
	FOR EACH ROW
	WHEN (NEW.state OPERATOR(pg_catalog.=) 'cancelled' AND NOT NEW.is_test)
	EXECUTE FUNCTION taskflow._outbox_cancelled();
REVOKE ALL ON FUNCTION taskflow._outbox_cancelled() FROM PUBLIC;

-- The claim reads each recipient again from the member row: a member who
-- corrected the address while the message waited gets it at the new one
-- (src/sql/41_delivery.sql).
CREATE FUNCTION taskflow._claim_recipients(ids bigint[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	UPDATE taskflow.outbox o
	   SET recipient = CASE WHEN o.original_recipient IS NOT NULL AND a.address IS NOT NULL
							THEN o.recipient ELSE a.address END,
		   original_recipient = CASE WHEN o.original_recipient IS NOT NULL THEN a.address END
	  FROM (SELECT x.outbox_id,
				   CASE WHEN ch.recipient_property IS NULL THEN m.email
						ELSE nullif(btrim(m.properties OPERATOR(pg_catalog.->>) ch.recipient_property), '')
						END AS address
			  FROM taskflow.outbox x
			  JOIN taskflow.member m ON m.member_id OPERATOR(pg_catalog.=) x.member_id
			  JOIN taskflow.channel ch ON ch.name OPERATOR(pg_catalog.=) x.channel
			 WHERE x.outbox_id OPERATOR(pg_catalog.=) ANY (ids)) a
	 WHERE o.outbox_id OPERATOR(pg_catalog.=) a.outbox_id
	   AND coalesce(o.original_recipient, o.recipient) IS DISTINCT FROM a.address;
END
$$;
REVOKE ALL ON FUNCTION taskflow._claim_recipients(bigint[]) FROM PUBLIC;

-- state_reason and the suppression list no longer repeat the reply code
-- the server's reply already starts with (src/sql/41_delivery.sql).
CREATE FUNCTION taskflow._reply_text(code integer, enhanced text, reply text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r text := btrim(reply);
BEGIN
	IF code IS NOT NULL AND (r OPERATOR(pg_catalog.=) code::text
							 OR left(r, 4) OPERATOR(pg_catalog.=) ANY
								(ARRAY[code::text OPERATOR(pg_catalog.||) ' ',
									   code::text OPERATOR(pg_catalog.||) '-'])) THEN
		r := ltrim(substr(r, 5));
	END IF;
	IF nullif(enhanced, '') IS NOT NULL
	   AND (r OPERATOR(pg_catalog.=) enhanced
			OR starts_with(r, enhanced OPERATOR(pg_catalog.||) ' ')) THEN
		r := ltrim(substr(r, length(enhanced) OPERATOR(pg_catalog.+) 2));
	END IF;
	RETURN nullif(concat_ws(' ', code, nullif(enhanced, ''), nullif(r, '')), '');
END
$$;
COMMENT ON FUNCTION taskflow._reply_text(integer, text, text) IS
	'A reply code, enhanced code and reply text as one text, without repeating what the reply starts with';
REVOKE ALL ON FUNCTION taskflow._reply_text(integer, text, text) FROM PUBLIC;
CREATE OR REPLACE FUNCTION taskflow.complete_messages(worker text, outbox_ids bigint[], outcomes text[],
										   smtp_codes integer[], enhanced_codes text[],
										   replies text[],
										   as_of timestamptz DEFAULT pg_catalog.now())
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n integer := coalesce(cardinality(outbox_ids), 0);
	bad text;
	done integer;
BEGIN
	PERFORM taskflow._check_worker(worker, as_of);
	IF coalesce(cardinality(outcomes), 0) OPERATOR(pg_catalog.<>) n
	   OR coalesce(cardinality(smtp_codes), n) OPERATOR(pg_catalog.<>) n
	   OR coalesce(cardinality(enhanced_codes), n) OPERATOR(pg_catalog.<>) n
	   OR coalesce(cardinality(replies), n) OPERATOR(pg_catalog.<>) n THEN
		RAISE EXCEPTION 'complete_messages needs one element per message in every array'
			USING ERRCODE = 'array_subscript_error',
				  DETAIL = format('outbox_ids %s, outcomes %s, smtp_codes %s, enhanced_codes %s, replies %s.',
								  n, coalesce(cardinality(outcomes), 0),
								  coalesce(cardinality(smtp_codes)::text, 'NULL'),
								  coalesce(cardinality(enhanced_codes)::text, 'NULL'),
								  coalesce(cardinality(replies)::text, 'NULL')),
				  HINT = 'smtp_codes, enhanced_codes and replies may be NULL as a whole.';
	END IF;
	IF n OPERATOR(pg_catalog.=) 0 THEN
		RETURN 0;
	END IF;
	SELECT x INTO bad FROM unnest(outcomes) x
	 WHERE x IS NULL OR NOT x OPERATOR(pg_catalog.=) ANY (ARRAY['sent', 'temporary', 'permanent'])
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'invalid outcome %', coalesce(quote_literal(bad), 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The outcomes are ''sent'', ''temporary'' (4xx, network error, timeout) and ''permanent'' (5xx).';
	END IF;

	WITH i AS (
		SELECT DISTINCT ON (x.id) x.id, x.outcome, x.code, x.enhanced, x.reply
		  FROM unnest(outbox_ids, outcomes, smtp_codes, enhanced_codes, replies)
			   WITH ORDINALITY AS x (id, outcome, code, enhanced, reply, ord)
		 WHERE x.id IS NOT NULL
		 ORDER BY x.id, x.ord),
	u AS (
		UPDATE taskflow.outbox o
		   SET state = CASE WHEN i.outcome OPERATOR(pg_catalog.=) 'sent' THEN 'sent'
							WHEN i.outcome OPERATOR(pg_catalog.=) 'temporary'
								 AND o.attempts OPERATOR(pg_catalog.<) ch.max_attempts THEN 'deferred'
							ELSE 'failed' END,
			   state_reason = CASE
					WHEN i.outcome OPERATOR(pg_catalog.=) 'sent' THEN NULL
					WHEN i.outcome OPERATOR(pg_catalog.=) 'permanent' THEN 'permanent failure'
					WHEN o.attempts OPERATOR(pg_catalog.<) ch.max_attempts THEN 'temporary failure'
					ELSE format('temporary failure %s times', o.attempts) END
					OPERATOR(pg_catalog.||)
					CASE WHEN i.outcome OPERATOR(pg_catalog.=) 'sent' THEN NULL
						 ELSE coalesce(': ' OPERATOR(pg_catalog.||)
									   taskflow._reply_text(i.code, i.enhanced, i.reply), '') END,
			   not_before = CASE WHEN i.outcome OPERATOR(pg_catalog.=) 'temporary'
									  AND o.attempts OPERATOR(pg_catalog.<) ch.max_attempts
								 THEN as_of OPERATOR(pg_catalog.+)
									  taskflow.retry_delay(o.outbox_id, o.attempts,
														   ch.backoff_base, ch.backoff_max)
								 ELSE o.not_before END,
			   sent_at = CASE WHEN i.outcome OPERATOR(pg_catalog.=) 'sent' THEN as_of ELSE o.sent_at END,
			   last_smtp_code = i.code, last_enhanced_code = i.enhanced, last_reply = i.reply,
			   lease_owner = NULL, lease_expires_at = NULL
		  FROM i, taskflow.channel ch
		 WHERE o.outbox_id OPERATOR(pg_catalog.=) i.id
		   AND ch.name OPERATOR(pg_catalog.=) o.channel
		   AND o.state OPERATOR(pg_catalog.=) 'sending'
		   AND o.lease_owner OPERATOR(pg_catalog.=) worker
		RETURNING o.outbox_id, o.member_id, o.channel, o.subject, o.recipient, o.is_test,
				  o.state, o.state_reason, o.attempts, o.not_before, i.outcome, i.code,
				  i.enhanced, i.reply),
	a AS (
		UPDATE taskflow.delivery_attempt a
		   SET finished_at = as_of, outcome = u.outcome, smtp_code = u.code,
			   enhanced_code = u.enhanced, reply = u.reply
		  FROM u
		 WHERE a.outbox_id OPERATOR(pg_catalog.=) u.outbox_id AND a.finished_at IS NULL),
	s AS (
		INSERT INTO taskflow.suppression AS s (address, reason, at, outbox_id)
		SELECT DISTINCT ON (lower(btrim(u.recipient))) lower(btrim(u.recipient)),
			   concat_ws(' ', 'bounce', taskflow._reply_text(u.code, u.enhanced, u.reply)),
			   as_of, u.outbox_id
		  FROM u
		 WHERE u.outcome OPERATOR(pg_catalog.=) 'permanent' AND NOT u.is_test
		   AND u.enhanced OPERATOR(pg_catalog.~) '^5\.1\.[0-9]{1,3}$'
		   AND u.recipient IS NOT NULL
		 ORDER BY lower(btrim(u.recipient)), u.outbox_id
		ON CONFLICT (address) DO NOTHING),
	e AS (
		INSERT INTO taskflow.event (member_id, kind, occurred_at, detail, recorded_by)
		SELECT u.member_id,
			   CASE u.state WHEN 'sent' THEN 'mail_sent' WHEN 'failed' THEN 'mail_failed'
							ELSE 'mail_deferred' END,
			   as_of,
			   jsonb_strip_nulls(jsonb_build_object('outbox_id', u.outbox_id, 'channel', u.channel,
					'subject', u.subject, 'recipient', u.recipient, 'attempt', u.attempts,
					'smtp_code', u.code, 'enhanced_code', u.enhanced, 'reply', u.reply,
					'retry_at', CASE WHEN u.state OPERATOR(pg_catalog.=) 'deferred'
									 THEN u.not_before END)),
			   worker
		  FROM u
		 WHERE NOT u.is_test)
	SELECT count(*) INTO done FROM u;
	RETURN done;
END
$$;

-- A test chain's mail carries no List-Unsubscribe: it goes to a tester,
-- and its link would unsubscribe the real member
-- (src/sql/45_delivery_worker.sql).
CREATE OR REPLACE FUNCTION taskflow._mime_messages(outbox_ids bigint[], as_of timestamptz)
RETURNS TABLE (outbox_id bigint, message text)
LANGUAGE sql STABLE
BEGIN ATOMIC
	SELECT o.outbox_id,
		   taskflow.mime_build(
			   from_name => o.sender_name,
			   from_address => o.sender_address,
			   to_address => o.recipient,
			   subject => o.subject,
			   body_text => o.body_text,
			   body_html => o.body_html,
			   message_id => coalesce(o.message_id,
					pg_catalog.format('<%s.%s@%s>', o.outbox_id, o.chain_id,
						coalesce(nullif(ch.message_id_domain, ''),
								 nullif(pg_catalog.split_part(o.sender_address, '@', 2), ''),
								 'localhost'))),
			   reply_to => o.reply_to,
			   list_id => ch.list_id,
			   unsubscribe_url => CASE WHEN NOT o.transactional AND NOT o.is_test THEN
					pg_catalog.replace(
						pg_catalog.replace(nullif(ch.unsubscribe_url, ''), '{{member_id}}',
										   o.member_id::text),
						'{{token}}',
						CASE WHEN pg_catalog.strpos(ch.unsubscribe_url, '{{token}}') OPERATOR(pg_catalog.>) 0
							 THEN taskflow.unsubscribe_token(o.member_id) ELSE '' END) END,
			   date => as_of,
			   time_zone => coalesce(o.time_zone,
					(SELECT c.time_zone FROM taskflow.chain c
					  WHERE c.chain_id OPERATOR(pg_catalog.=) o.chain_id)))
	  FROM pg_catalog.unnest(outbox_ids) WITH ORDINALITY AS i(id, n)
	  JOIN taskflow.outbox o ON o.outbox_id OPERATOR(pg_catalog.=) i.id
	  LEFT JOIN taskflow.channel ch ON ch.name OPERATOR(pg_catalog.=) o.channel
	 ORDER BY i.n;
END;

-- An infinite anchor date is no anchor (src/sql/36_anchor.sql).
CREATE OR REPLACE FUNCTION taskflow._anchor_sql(anchor text, tz text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT
RETURN format('(CASE WHEN pg_catalog.isfinite(%1$s) THEN %1$s END)', CASE
	WHEN anchor OPERATOR(pg_catalog.=) 'birthday' THEN
		format('((member.birthday OPERATOR(pg_catalog.+) time ''00:00'') AT TIME ZONE %L)', tz)
	WHEN anchor OPERATOR(pg_catalog.^@) 'properties.' THEN
		format('(((member.properties OPERATOR(pg_catalog.->>) %L)::date OPERATOR(pg_catalog.+) time ''00:00'') AT TIME ZONE %L)',
			   substr(anchor, 12), tz)
	ELSE format('member.%I', anchor)
	END);

-- Addresses are checked as the MIME builder and SMTP need them (plain
-- ASCII dot-atoms), and an e-mail template needs a sender address: both
-- failed only at send time before (src/sql/11_member_validation.sql,
-- src/sql/25_templates.sql).
CREATE OR REPLACE FUNCTION taskflow.is_valid_email(address text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN address OPERATOR(pg_catalog.~)
	('^[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+([.][A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+)*'
	 '@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?([.][A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$')
	AND pg_catalog.length(address) OPERATOR(pg_catalog.<=) 254;
COMMENT ON FUNCTION taskflow.is_valid_email(text) IS
	'True when the text is one plain ASCII e-mail address (local@domain.tld) that mail can be sent to';
CREATE OR REPLACE FUNCTION taskflow._check_template(t taskflow.template)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM taskflow._check_template_settings(t);
	PERFORM taskflow._check_template_header(t.name, 'subject', t.subject);
	PERFORM taskflow._check_template_header(t.name, 'sender name', t.sender_name);
	IF t.sender_address IS NOT NULL THEN
		PERFORM taskflow._check_template_address(t.name, 'sender address', t.sender_address);
	END IF;
	IF t.reply_to IS NOT NULL THEN
		PERFORM taskflow._check_template_address(t.name, 'reply-to address', t.reply_to);
	END IF;
	PERFORM taskflow._check_template_body(t.name, 'body_text', t.body_text);
	PERFORM taskflow._check_template_body(t.name, 'body_html', t.body_html);
	PERFORM taskflow._check_template_fields(t.name, 'subject', t.subject);
	PERFORM taskflow._check_template_fields(t.name, 'body_text', t.body_text);
	PERFORM taskflow._check_template_fields(t.name, 'body_html', t.body_html);
	IF t.sender_address IS NULL
	   AND taskflow.channel_kind(t.channel) OPERATOR(pg_catalog.=) 'smtp' THEN
		RAISE EXCEPTION 'template "%" needs a sender address: it is sent by e-mail (channel "%")',
						t.name, t.channel
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give sender_address => ''info@example.jp'' (and sender_name for the name shown).';
	END IF;
END
$$;

-- Raises unless a header value (subject, sender name or address, reply-to)
-- is one line without control characters (C0, DEL and the C1 range
-- U+0080-U+009F, which the MIME builder refuses too): a line break in a
-- header would let the text add headers of its own (header injection).
CREATE OR REPLACE FUNCTION taskflow._check_template_header(template_name text, what text, value text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	pos integer := regexp_instr(value, '[\x01-\x1f\x7f-\x9f]');
BEGIN
	IF pos OPERATOR(pg_catalog.>) 0 THEN
		RAISE EXCEPTION '% of template "%" contains a line break or control character (U+%) at character %',
			what, template_name,
			upper(lpad(to_hex(ascii(substr(value, pos, 1))), 4, '0')), pos
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A mail header is one line: line breaks and control characters are refused so no text can add headers.';
	END IF;
END
$$;

-- fc (review r5 F4, F6-F9): member and event validation — a role that sets
-- check_function_bodies = off is still checked (only a superuser's restore
-- skips the checks, src/member_write.c); an unknown status or event kind
-- is refused naming the member; a payment event written any way has a
-- finite amount >= 0 and a period, an event a finite occurred_at; text
-- property values are one line; add_tag/remove_tag trim U+3000 too
-- (src/sql/11_member_validation.sql, 12_member_functions.sql).
CREATE OR REPLACE FUNCTION taskflow.add_tag(member_id bigint, tag text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	UPDATE taskflow.member m
	   SET tags = m.tags OPERATOR(pg_catalog.||) add_tag.tag
	 WHERE m.member_id OPERATOR(pg_catalog.=) add_tag.member_id
	   AND NOT m.tags OPERATOR(pg_catalog.@>) ARRAY[btrim(add_tag.tag, E' \u3000')];
	IF FOUND THEN
		PERFORM taskflow.record_event(member_id, 'tag_added',
									  jsonb_build_object('tag', btrim(tag, E' \u3000')));
		RETURN true;
	END IF;
	PERFORM FROM taskflow.member m WHERE m.member_id OPERATOR(pg_catalog.=) add_tag.member_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'member % does not exist', member_id USING ERRCODE = 'no_data_found';
	END IF;
	RETURN false;
END
$$;
CREATE OR REPLACE FUNCTION taskflow.check_property_value(property_name text, value jsonb,
											 member_label text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	def taskflow.custom_property;
	v_type text := jsonb_typeof(value);
	v_text text;
	-- names the member in every message when the caller knows it
	whose text := CASE WHEN member_label IS NULL THEN ''
					   ELSE ' for member ' OPERATOR(pg_catalog.||) member_label END;
BEGIN
	SELECT * INTO def FROM taskflow.custom_property p
	 WHERE p.name OPERATOR(pg_catalog.=) property_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown property "%"%', property_name, whose
			USING ERRCODE = 'undefined_object',
				  HINT = 'Define it first with taskflow.define_property().';
	END IF;
	IF v_type OPERATOR(pg_catalog.=) 'null' THEN
		RAISE EXCEPTION 'property "%" cannot be set to null%', property_name, whose
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Remove the key (taskflow.remove_property()) to clear a value.';
	END IF;
	IF def.type OPERATOR(pg_catalog.=) 'number' THEN
		IF v_type OPERATOR(pg_catalog.<>) 'number' THEN
			RAISE EXCEPTION 'invalid value for number property "%"%: %',
				property_name, whose, value
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Give a JSON number, for example 3 or 12.5 (not a string).';
		END IF;
		RETURN;
	ELSIF def.type OPERATOR(pg_catalog.=) 'boolean' THEN
		IF v_type OPERATOR(pg_catalog.<>) 'boolean' THEN
			RAISE EXCEPTION 'invalid value for boolean property "%"%: %',
				property_name, whose, value
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Give JSON true or false.';
		END IF;
		RETURN;
	END IF;

	-- the remaining types are JSON strings
	IF v_type OPERATOR(pg_catalog.<>) 'string' THEN
		RAISE EXCEPTION 'invalid value for % property "%"%: %',
			def.type, property_name, whose, value
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give a JSON string.';
	END IF;
	v_text := value OPERATOR(pg_catalog.#>>) '{}';

	IF def.type OPERATOR(pg_catalog.=) 'text' THEN
		-- one line (テキスト(1行)): no line break or tab either, as tags
		IF v_text OPERATOR(pg_catalog.~) '[[:cntrl:]]' THEN
			RAISE EXCEPTION 'invalid value for text property "%"%: control characters are not allowed',
				property_name, whose
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'A text property is one line, without line breaks, tabs or other control characters.';
		END IF;
	ELSIF def.type OPERATOR(pg_catalog.=) 'email' THEN
		IF NOT taskflow.is_valid_email(v_text) THEN
			RAISE EXCEPTION 'invalid value for email property "%"%: % is not an e-mail address',
				property_name, whose, to_json(v_text)
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Give an address like name@example.jp, without spaces or line breaks.';
		END IF;
	ELSIF def.type OPERATOR(pg_catalog.=) 'list' THEN
		IF NOT v_text OPERATOR(pg_catalog.=) ANY (def.allowed_values) THEN
			RAISE EXCEPTION 'invalid value for list property "%"%: "%" is not one of the allowed values',
				property_name, whose, v_text
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('Allowed values: %s.',
									  array_to_string(def.allowed_values, ', '));
		END IF;
	ELSIF def.type OPERATOR(pg_catalog.=) 'date' THEN
		IF NOT v_text OPERATOR(pg_catalog.~) '^\d{4}-\d{2}-\d{2}$'
		   OR NOT taskflow.is_valid_date(v_text) THEN
			RAISE EXCEPTION 'invalid value for date property "%"%: "%" is not a date',
				property_name, whose, v_text
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Give a date as "YYYY-MM-DD", for example "2026-04-01".';
		END IF;
	END IF;
END
$$;
DROP TRIGGER member_before_update ON taskflow.member;
CREATE TRIGGER member_before_update
	BEFORE UPDATE ON taskflow.member
	FOR EACH ROW
	WHEN (OLD.email IS DISTINCT FROM NEW.email
		  OR OLD.status IS DISTINCT FROM NEW.status
		  OR OLD.properties IS DISTINCT FROM NEW.properties
		  OR OLD.tags IS DISTINCT FROM NEW.tags)
	EXECUTE FUNCTION taskflow.member_before_write();
CREATE FUNCTION taskflow.event_before_write()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_event_before_write';
REVOKE ALL ON FUNCTION taskflow.event_before_write() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION taskflow.event_before_write() TO taskflow_app, taskflow_operator;
CREATE TRIGGER event_before_insert
	BEFORE INSERT ON taskflow.event
	FOR EACH ROW EXECUTE FUNCTION taskflow.event_before_write();
-- every UPDATE that changes something: it writes recorded_by too
CREATE TRIGGER event_before_update
	BEFORE UPDATE ON taskflow.event
	FOR EACH ROW
	WHEN (OLD.* IS DISTINCT FROM NEW.*)
	EXECUTE FUNCTION taskflow.event_before_write();

-- Operators read every saved criteria: explain() names them (src/sql/20_criteria.sql).
CREATE OR REPLACE VIEW taskflow.criteria_list WITH (security_barrier) AS
SELECT c.criteria_id, c.name, c.description, c.expression, c.normalized,
	   c.properties, c.owner, c.created_at, c.updated_at
  FROM taskflow.criteria c
 WHERE pg_catalog.pg_has_role(CURRENT_USER, c.owner::pg_catalog.oid, 'USAGE')
	OR pg_catalog.pg_has_role(CURRENT_USER, 'taskflow_operator', 'USAGE');
COMMENT ON VIEW taskflow.criteria_list IS
	'Saved criteria the current user may use (owned by a role whose privileges they have), and every one for operators';

-- chain_summary counts the members skipped at a step (src/sql/34_engine.sql);
-- replacing a view resets its options: row security reads as the caller.
CREATE OR REPLACE VIEW taskflow.chain_summary AS
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
ALTER VIEW taskflow.chain_summary SET (security_invoker = true);

-- A channel may address its members by a custom property (a phone number
-- for an SMS gateway, a LINE id) instead of their e-mail address
-- (src/sql/40_channels.sql, src/step.c, taskflow._claim_recipients).
ALTER TABLE taskflow.channel ADD COLUMN recipient_property text;
COMMENT ON COLUMN taskflow.channel.recipient_property IS
	'The custom property holding each member''s address on this channel (a phone number, a LINE id); NULL: the e-mail address';
CREATE FUNCTION taskflow._check_channel_recipient(c taskflow.channel)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t text;
BEGIN
	IF c.recipient_property IS NULL THEN
		RETURN;
	END IF;
	SELECT p.type INTO t FROM taskflow.custom_property p
	 WHERE p.name OPERATOR(pg_catalog.=) c.recipient_property;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown property "%" for the recipients of channel "%"',
						c.recipient_property, c.name
			USING ERRCODE = 'undefined_object',
				  HINT = 'Define it first with taskflow.define_property(), for example (''phone'', ''text'').';
	END IF;
	IF t OPERATOR(pg_catalog.<>) ALL (CASE c.kind WHEN 'smtp' THEN ARRAY['email']
												  ELSE ARRAY['text', 'email'] END) THEN
		RAISE EXCEPTION 'property "%" of type % cannot hold the recipients of channel "%"',
						c.recipient_property, t, c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = CASE c.kind WHEN 'smtp' THEN 'An e-mail channel needs a property of type email.'
							  ELSE 'A webhook channel needs a property of type text or email.' END;
	END IF;
END
$$;
CREATE OR REPLACE FUNCTION taskflow._check_channel(c taskflow.channel)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF c.name IS NULL OR c.name OPERATOR(pg_catalog.!~) '^[a-z][a-z0-9_]{0,62}$' THEN
		RAISE EXCEPTION 'invalid channel name %', coalesce(to_json(c.name)::text, 'NULL')
			USING ERRCODE = 'invalid_name',
				  HINT = 'A channel name is lower-case letters, digits and _, starting with a letter (for example line or sms).';
	END IF;
	IF c.kind IS NULL OR NOT c.kind OPERATOR(pg_catalog.=) ANY (ARRAY['smtp', 'webhook']) THEN
		RAISE EXCEPTION 'invalid kind % for channel "%"', coalesce(quote_literal(c.kind), 'NULL'), c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The kinds are ''smtp'' (mail through an SMTP relay) and ''webhook'' (HTTP POST).';
	END IF;
	PERFORM taskflow._check_channel_url(c);
	IF c.username OPERATOR(pg_catalog.~) '[[:cntrl:]]' OR c.username OPERATOR(pg_catalog.=) '' THEN
		RAISE EXCEPTION 'invalid username for channel "%"', c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A user name is one line of text.';
	END IF;
	IF c.kind OPERATOR(pg_catalog.=) 'webhook'
	   AND (c.username IS NOT NULL OR c.password_file IS NOT NULL) THEN
		RAISE EXCEPTION 'username and password_file are for smtp channels; "%" is a webhook channel', c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A webhook signs its requests with the secret in webhook_secret_file.';
	END IF;
	IF c.kind OPERATOR(pg_catalog.=) 'smtp' AND c.webhook_secret_file IS NOT NULL THEN
		RAISE EXCEPTION 'webhook_secret_file is for webhook channels; "%" is an smtp channel', c.name
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF c.password_file IS NOT NULL THEN
		PERFORM taskflow._check_server_file(c.name, 'password_file', c.password_file);
	END IF;
	IF c.webhook_secret_file IS NOT NULL THEN
		PERFORM taskflow._check_server_file(c.name, 'webhook_secret_file', c.webhook_secret_file);
	END IF;
	IF c.kind OPERATOR(pg_catalog.=) 'webhook' AND c.url IS NOT NULL AND c.webhook_secret_file IS NULL THEN
		RAISE EXCEPTION 'webhook channel "%" needs webhook_secret_file', c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Every request is signed (X-Taskflow-Signature: sha256=HMAC of the body) with the secret in that server file.';
	END IF;
	PERFORM taskflow._check_channel_retries(c);
	PERFORM taskflow._check_channel_guardrails(c);
	PERFORM taskflow._check_channel_mail(c);
	PERFORM taskflow._check_channel_recipient(c);
END
$$;
CREATE OR REPLACE FUNCTION taskflow._channel_reset(c taskflow.channel, settings text[])
RETURNS taskflow.channel
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	d taskflow.channel := taskflow._channel_defaults();
	s text;
	resettable CONSTANT text[] := ARRAY['description', 'url', 'require_starttls', 'username',
		'password_file', 'webhook_secret_file', 'connect_timeout_ms', 'timeout_ms', 'connections',
		'rate_per_second', 'daily_quota', 'quota_time_zone', 'quiet_start', 'quiet_end',
		'max_per_member', 'per_member_window', 'max_attempts', 'backoff_base', 'backoff_max',
		'test_recipients', 'message_id_domain', 'list_id', 'unsubscribe_url', 'enabled',
		'recipient_property'];
BEGIN
	IF settings IS NULL OR cardinality(settings) OPERATOR(pg_catalog.=) 0 THEN
		RETURN c;
	END IF;
	FOREACH s IN ARRAY settings LOOP
		IF s IS NULL OR NOT s OPERATOR(pg_catalog.=) ANY (resettable) THEN
			RAISE EXCEPTION 'cannot reset % of channel "%"', coalesce(quote_literal(s), 'NULL'), c.name
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'reset names settings of configure_channel(): ' OPERATOR(pg_catalog.||)
							 array_to_string(resettable, ', ') OPERATOR(pg_catalog.||) '.';
		END IF;
	END LOOP;
	-- one assignment per setting: (jsonb_populate_record over the row)
	RETURN jsonb_populate_record(c, (SELECT jsonb_object_agg(k, to_jsonb(d) OPERATOR(pg_catalog.->) k)
									   FROM unnest(settings) k));
END
$$;
DROP FUNCTION taskflow.configure_channel(text, text, text, boolean, text, text, text, integer, integer,
	integer, integer, integer, text, time, time, integer, interval, integer, interval, interval,
	text[], text, text, text, boolean, text, text[]);
CREATE FUNCTION taskflow.configure_channel(name text,
										   kind text DEFAULT NULL,
										   url text DEFAULT NULL,
										   require_starttls boolean DEFAULT NULL,
										   username text DEFAULT NULL,
										   password_file text DEFAULT NULL,
										   webhook_secret_file text DEFAULT NULL,
										   connect_timeout_ms integer DEFAULT NULL,
										   timeout_ms integer DEFAULT NULL,
										   connections integer DEFAULT NULL,
										   rate_per_second integer DEFAULT NULL,
										   daily_quota integer DEFAULT NULL,
										   quota_time_zone text DEFAULT NULL,
										   quiet_start time DEFAULT NULL,
										   quiet_end time DEFAULT NULL,
										   max_per_member integer DEFAULT NULL,
										   per_member_window interval DEFAULT NULL,
										   max_attempts integer DEFAULT NULL,
										   backoff_base interval DEFAULT NULL,
										   backoff_max interval DEFAULT NULL,
										   test_recipients text[] DEFAULT NULL,
										   message_id_domain text DEFAULT NULL,
										   list_id text DEFAULT NULL,
										   unsubscribe_url text DEFAULT NULL,
										   enabled boolean DEFAULT NULL,
										   description text DEFAULT NULL,
										   reset text[] DEFAULT NULL,
										   recipient_property text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c taskflow.channel;
	old taskflow.channel;
	p jsonb;
BEGIN
	IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r
			 WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
		RAISE EXCEPTION 'only superusers can configure channels'
			USING ERRCODE = 'insufficient_privilege',
				  HINT = 'A channel names server files the delivery worker reads (password_file, webhook_secret_file); ask the DBA.';
	END IF;
	SELECT * INTO old FROM taskflow.channel x
	 WHERE x.name OPERATOR(pg_catalog.=) configure_channel.name FOR UPDATE;
	IF FOUND THEN
		c := old;
	ELSE
		c := taskflow._channel_defaults();
		c.name := configure_channel.name;
		c.kind := coalesce(kind, CASE WHEN url OPERATOR(pg_catalog.~*) '^smtps?://' THEN 'smtp'
									   WHEN url OPERATOR(pg_catalog.~*) '^https?://' THEN 'webhook' END);
		IF c.kind IS NULL AND url IS NOT NULL THEN
			RAISE EXCEPTION 'new channel % needs a kind', coalesce(to_json(c.name)::text, 'NULL')
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('The url %s does not tell it.', to_json(url)),
					  HINT = 'Give kind => ''smtp'' or ''webhook'', or a url starting with smtp://, smtps:// or https://.';
		ELSIF c.kind IS NULL THEN
			RAISE EXCEPTION 'new channel % needs a kind', coalesce(to_json(c.name)::text, 'NULL')
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Give kind => ''smtp'' or ''webhook'', or a url starting with smtp://, smtps:// or https://.';
		END IF;
	END IF;
	c := taskflow._channel_reset(c, reset);
	-- the given settings; '' clears an optional text
	p := jsonb_strip_nulls(jsonb_build_object(
		'kind', kind, 'url', url, 'require_starttls', require_starttls, 'username', username,
		'password_file', password_file, 'webhook_secret_file', webhook_secret_file,
		'connect_timeout_ms', connect_timeout_ms, 'timeout_ms', timeout_ms,
		'connections', connections, 'rate_per_second', rate_per_second,
		'daily_quota', daily_quota, 'quota_time_zone', quota_time_zone,
		'quiet_start', quiet_start, 'quiet_end', quiet_end, 'max_per_member', max_per_member,
		'per_member_window', per_member_window, 'max_attempts', max_attempts,
		'backoff_base', backoff_base, 'backoff_max', backoff_max,
		'test_recipients', test_recipients, 'message_id_domain', message_id_domain,
		'list_id', list_id, 'unsubscribe_url', unsubscribe_url, 'enabled', enabled,
		'description', description, 'recipient_property', recipient_property));
	c := jsonb_populate_record(c, p);
	c.url := nullif(c.url, '');
	c.username := nullif(c.username, '');
	c.password_file := nullif(c.password_file, '');
	c.webhook_secret_file := nullif(c.webhook_secret_file, '');
	c.message_id_domain := nullif(c.message_id_domain, '');
	c.list_id := nullif(c.list_id, '');
	c.unsubscribe_url := nullif(c.unsubscribe_url, '');
	c.description := nullif(c.description, '');
	c.recipient_property := nullif(btrim(c.recipient_property), '');
	PERFORM taskflow._check_channel(c);
	IF old.name IS NOT NULL AND c.kind OPERATOR(pg_catalog.<>) old.kind THEN
		PERFORM taskflow._refuse_kind_change(old);
	END IF;
	IF old.name IS NULL THEN
		INSERT INTO taskflow.channel SELECT (c).*;
	ELSE
		c.updated_at := pg_catalog.now();
		UPDATE taskflow.channel x SET (kind, description, url, require_starttls, username,
			password_file, webhook_secret_file, connect_timeout_ms, timeout_ms, connections,
			rate_per_second, daily_quota, quota_time_zone, quiet_start, quiet_end,
			max_per_member, per_member_window, max_attempts, backoff_base, backoff_max,
			test_recipients, message_id_domain, list_id, unsubscribe_url, enabled, updated_at,
			recipient_property)
		  = (c.kind, c.description, c.url, c.require_starttls, c.username,
			c.password_file, c.webhook_secret_file, c.connect_timeout_ms, c.timeout_ms, c.connections,
			c.rate_per_second, c.daily_quota, c.quota_time_zone, c.quiet_start, c.quiet_end,
			c.max_per_member, c.per_member_window, c.max_attempts, c.backoff_base, c.backoff_max,
			c.test_recipients, c.message_id_domain, c.list_id, c.unsubscribe_url, c.enabled,
			c.updated_at, c.recipient_property)
		 WHERE x.name OPERATOR(pg_catalog.=) c.name;
	END IF;
END
$$;
COMMENT ON FUNCTION taskflow.configure_channel IS
	'Creates or changes a delivery channel (superusers only); NULL leaves a setting, reset => ARRAY[...] restores defaults';
REVOKE ALL ON FUNCTION taskflow._check_channel_recipient(taskflow.channel),
	taskflow.configure_channel(text, text, text, boolean, text, text, text, integer, integer,
							   integer, integer, integer, text, time, time, integer, interval,
							   integer, interval, interval, text[], text, text, text, boolean,
							   text, text[], text)
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	taskflow.configure_channel(text, text, text, boolean, text, text, text, integer, integer,
							   integer, integer, integer, text, time, time, integer, interval,
							   integer, interval, interval, text[], text, text, text, boolean,
							   text, text[], text)
	TO taskflow_app, taskflow_operator;

-- Adds (or re-describes) a member status; a NULL description keeps the
-- one it has.
CREATE OR REPLACE FUNCTION taskflow.define_status(status text, description text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF status IS NULL OR status OPERATOR(pg_catalog.!~) '^[a-z][a-z0-9_]{0,62}$' THEN
		RAISE EXCEPTION 'invalid status name %', coalesce(quote_literal(status), 'NULL')
			USING ERRCODE = 'invalid_name',
				  HINT = 'A status name is lower-case ASCII letters, digits and underscores, starting with a letter.';
	END IF;
	INSERT INTO taskflow.member_status AS s (status, description)
	VALUES (define_status.status, define_status.description)
	ON CONFLICT ON CONSTRAINT member_status_pkey
	DO UPDATE SET description = coalesce(EXCLUDED.description, s.description);
END
$$;
-- Adds (or re-describes) a kind of timeline event; a NULL description
-- keeps the one it has.
CREATE OR REPLACE FUNCTION taskflow.define_event_kind(kind text, description text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF kind IS NULL OR kind OPERATOR(pg_catalog.!~) '^[a-z][a-z0-9_]{0,62}$' THEN
		RAISE EXCEPTION 'invalid event kind %', coalesce(quote_literal(kind), 'NULL')
			USING ERRCODE = 'invalid_name',
				  HINT = 'An event kind is lower-case ASCII letters, digits and underscores, starting with a letter.';
	END IF;
	INSERT INTO taskflow.event_kind AS k (kind, description)
	VALUES (define_event_kind.kind, define_event_kind.description)
	ON CONFLICT ON CONSTRAINT event_kind_pkey
	DO UPDATE SET description = coalesce(EXCLUDED.description, k.description);
END
$$;

-- 0.2 records the custom properties a criteria reads with @>, <@ or a
-- subscript (properties['plan']), so that they cannot be dropped or retyped
-- under it.  Record them for the criteria saved by 0.1; a criteria that 0.2
-- would refuse keeps what it had and runs as before, named in a warning.
DO $$
DECLARE
	r record;
	props text[];
BEGIN
	FOR r IN SELECT c.criteria_id, c.name, c.owner, c.expression, c.properties
			   FROM taskflow.criteria c ORDER BY c.criteria_id LOOP
		BEGIN
			SELECT v.properties INTO props
			  FROM taskflow._criteria_validate(r.owner, r.expression, r.name) v;
			IF props IS DISTINCT FROM r.properties THEN
				UPDATE taskflow.criteria SET properties = props
				 WHERE criteria_id OPERATOR(pg_catalog.=) r.criteria_id;
			END IF;
		EXCEPTION WHEN OTHERS THEN
			RAISE WARNING '%', SQLERRM
				USING DETAIL = 'The criteria was saved by taskflow 0.1; it runs as before.',
					  HINT = 'Correct it with taskflow.save_criteria().';
		END;
	END LOOP;
END
$$;

-- mf (review r5 F1, F5, group stays): a new property type, fewer list
-- values or a dropped property wait for open transactions that write
-- members (src/sql/12_member_functions.sql); recorded_by is the writing
-- role for everyone but a superuser or the extension owner, its default
-- the login role (src/member_write.c, src/sql/10_members.sql); stays of a
-- member in a group cannot overlap however they are written
-- (src/sql/11_member_validation.sql).
ALTER TABLE taskflow.event ALTER COLUMN recorded_by SET DEFAULT SESSION_USER;

-- Before a change of property definitions checks or removes the values
-- members hold: waits for the transactions writing members to end, and
-- keeps new member writes waiting until this transaction ends, so that a
-- member written by a transaction still open cannot keep a value the check
-- never saw.  The check must then see those members, so it needs READ
-- COMMITTED, where each statement sees what committed before it (in
-- REPEATABLE READ the snapshot was taken before the wait).  SHARE ROW
-- EXCLUSIVE rather than SHARE: it conflicts with itself, so two such
-- changes in transactions that go on to write members take turns instead
-- of deadlocking.  Readers are not held up.  Called by define_property()
-- and drop_property() (SECURITY DEFINER: it runs as the extension owner).
CREATE FUNCTION taskflow._lock_member_values(action text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
		RAISE EXCEPTION 'cannot % in a % transaction', action,
			upper(current_setting('transaction_isolation'))
			USING ERRCODE = 'invalid_transaction_state',
				  DETAIL = 'The check of the members'' values must see the members written by the transactions it waits for; this transaction''s snapshot is older.',
				  HINT = 'Run it in a READ COMMITTED transaction (the default).';
	END IF;
	LOCK TABLE taskflow.member IN SHARE ROW EXCLUSIVE MODE;
END
$$;
REVOKE ALL ON FUNCTION taskflow._lock_member_values(text) FROM PUBLIC;

-- Drops a custom property; members' values are removed only when asked.
-- Waits for open transactions that write members (_lock_member_values).
CREATE OR REPLACE FUNCTION taskflow.drop_property(name text, remove_values boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	holders bigint;
	user_name text;
BEGIN
	PERFORM FROM taskflow.custom_property p WHERE p.name OPERATOR(pg_catalog.=) drop_property.name FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'property "%" does not exist', name
			USING ERRCODE = 'undefined_object';
	END IF;
	user_name := taskflow.property_used_by(name);
	IF user_name IS NOT NULL THEN
		RAISE EXCEPTION 'property "%" is used by %', name, user_name
			USING ERRCODE = 'dependent_objects_still_exist',
				  HINT = 'Change or drop what uses it first.';
	END IF;
	-- a member written by a transaction still open could keep a value of
	-- the property dropped: wait for them (and count their values too);
	-- the definition's row is locked first, in define_property()'s order
	PERFORM taskflow._lock_member_values(format('drop property "%s"', name));
	SELECT count(*) INTO holders FROM taskflow.member m
	 WHERE m.properties OPERATOR(pg_catalog.?) drop_property.name;
	IF holders OPERATOR(pg_catalog.>) 0 AND NOT remove_values THEN
		RAISE EXCEPTION 'property "%" has values on % members', name, holders
			USING ERRCODE = 'dependent_objects_still_exist',
				  HINT = 'Pass remove_values => true to remove the values too.';
	END IF;
	UPDATE taskflow.member m SET properties = m.properties OPERATOR(pg_catalog.-) drop_property.name
	 WHERE m.properties OPERATOR(pg_catalog.?) drop_property.name;
	DELETE FROM taskflow.custom_property p WHERE p.name OPERATOR(pg_catalog.=) drop_property.name;
END
$$;

-- Refuses a stay of a member in a group that overlaps another stay of the
-- same member in the same group, whatever writes it (join_group(), the
-- engine's join_group action, INSERT, COPY, UPDATE): in_group() and the
-- group predicates read one stay at an instant.  Stays are half-open,
-- [joined_at, left_at); the next may start the instant one ends.  A second
-- open stay is left to the unique index group_membership_open_idx (so
-- INSERT ... ON CONFLICT DO NOTHING stays a no-op for a member already in
-- the group).  Writes of a group's stays take turns on the group's row, so
-- two transactions cannot each add a stay the other does not see.  In C
-- (src/member_write.c), skipped in a superuser's restore like
-- member_before_write.
CREATE FUNCTION taskflow.group_membership_before_write()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_group_membership_before_write';

REVOKE ALL ON FUNCTION taskflow.group_membership_before_write() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION taskflow.group_membership_before_write() TO taskflow_app, taskflow_operator;

CREATE TRIGGER group_membership_before_insert
	BEFORE INSERT ON taskflow.group_membership
	FOR EACH ROW EXECUTE FUNCTION taskflow.group_membership_before_write();
CREATE TRIGGER group_membership_before_update
	BEFORE UPDATE ON taskflow.group_membership
	FOR EACH ROW
	WHEN (OLD.* IS DISTINCT FROM NEW.*)
	EXECUTE FUNCTION taskflow.group_membership_before_write();

-- 0.2: a chain may use only tasks and criteria whose owners have the
-- privileges of the chain's owner (review r8 F4)
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
REVOKE ALL ON FUNCTION taskflow._check_runs_as(taskflow.chain, taskflow.task, integer) FROM PUBLIC;

-- alter_task: NULL arguments leave a setting unchanged; clear_criteria /
-- clear_template remove them.  A mode change takes effect on the next run;
-- members already pending stay pending until processed.
CREATE OR REPLACE FUNCTION taskflow._alter_task(caller regrole, name text, mode text,
									 criteria text, actions jsonb, template text,
									 description text, show_on_dashboard boolean,
									 assignee text, priority integer, on_mismatch text,
									 clear_criteria boolean, clear_template boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t taskflow.task := taskflow._task_for(caller, name, true);
	crit_name text;
	tmpl_name text;
	ids record;
BEGIN
	SELECT c.name INTO crit_name FROM taskflow.criteria c
	 WHERE c.criteria_id OPERATOR(pg_catalog.=) t.criteria_id;
	SELECT tm.name INTO tmpl_name FROM taskflow.template tm
	 WHERE tm.template_id OPERATOR(pg_catalog.=) t.template_id;
	crit_name := CASE WHEN clear_criteria THEN NULL ELSE coalesce(criteria, crit_name) END;
	tmpl_name := CASE WHEN clear_template THEN NULL ELSE coalesce(template, tmpl_name) END;
	t.mode := coalesce(mode, t.mode);
	t.actions := coalesce(actions, t.actions);
	t.description := coalesce(description, t.description);
	t.show_on_dashboard := coalesce(show_on_dashboard, t.show_on_dashboard);
	t.assignee := coalesce(assignee, t.assignee);
	t.priority := coalesce(priority, t.priority);
	t.on_mismatch := coalesce(on_mismatch, t.on_mismatch);
	-- checked as the task's owner, whose privileges the task keeps: its
	-- actions' trial run must not run a role's SQL with the privileges of
	-- whoever changes the task (a superuser changing its priority)
	ids := taskflow._check_task(t.owner, t.name, t.mode, crit_name, t.actions, tmpl_name,
								t.assignee, t.priority, t.on_mismatch);
	IF t.mode OPERATOR(pg_catalog.=) 'criteria_only' THEN
		PERFORM taskflow._refuse_if_in_chain(t.task_id, t.name);
	END IF;
	-- a new criteria must suit every chain that uses the task
	PERFORM taskflow._check_runs_as(c, t, ids.criteria_id)
	   FROM taskflow.chain c
	  WHERE c.chain_id OPERATOR(pg_catalog.=) ANY (SELECT s.chain_id FROM taskflow.chain_step s
													 WHERE s.task_id OPERATOR(pg_catalog.=) t.task_id);
	UPDATE taskflow.task AS u
	   SET mode = t.mode, criteria_id = ids.criteria_id, actions = t.actions,
		   template_id = ids.template_id, description = t.description,
		   show_on_dashboard = t.show_on_dashboard, assignee = t.assignee,
		   priority = t.priority, on_mismatch = t.on_mismatch, updated_at = pg_catalog.now()
	 WHERE u.task_id OPERATOR(pg_catalog.=) t.task_id;
END
$$;

-- Chains built by 0.1 from another role's task or criteria whose owner
-- lacks the chain owner's privileges pause at their next run, saying why:
-- name them now.
DO $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT DISTINCT c.name AS chain, c.owner AS chain_owner, t.name AS task, t.owner AS task_owner
			   FROM taskflow.chain c
			   JOIN taskflow.chain_step s ON s.chain_id OPERATOR(pg_catalog.=) c.chain_id
			   JOIN taskflow.task t ON t.task_id OPERATOR(pg_catalog.=) s.task_id
			   LEFT JOIN taskflow.criteria cr ON cr.criteria_id OPERATOR(pg_catalog.=) t.criteria_id
			  WHERE NOT pg_catalog.pg_has_role(t.owner, c.owner, 'USAGE')
				 OR NOT pg_catalog.pg_has_role(coalesce(cr.owner, c.owner), c.owner, 'USAGE')
			  ORDER BY 1, 3 LOOP
		RAISE WARNING 'chain "%" of role % uses task "%" of role %, which lacks its privileges: the chain will pause',
			r.chain, r.chain_owner, r.task, r.task_owner
			USING HINT = 'Rebuild the chain as the role that owns its tasks and criteria.';
	END LOOP;
END
$$;
