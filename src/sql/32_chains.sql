-- taskflow install script, part 32: chains (連続タスク) and their schedules.
--
-- A chain is an ordered list of tasks (a single task is a chain of one).
-- Its first task is entered on a schedule: "always" (every entry interval,
-- for whoever matches) or "daily at HH:MM" (optionally on chosen weekdays).
-- Between tasks a wait: "N hours" (same day, N hours later) or "N days at
-- HH:MM" (N days later at HH:MM local time).  All local times are in the
-- chain's time zone.  Steps are identified by step_id, never by position,
-- so reordering or inserting tasks never moves a member by accident.

CREATE TABLE taskflow.chain (
	chain_id	serial PRIMARY KEY,
	name		text NOT NULL UNIQUE,
	description text,
	owner		regrole NOT NULL,
	owner_could_login boolean NOT NULL DEFAULT false,	/* pause if it loses LOGIN */
	enabled		boolean NOT NULL DEFAULT true,
	schedule	text NOT NULL
				CHECK (schedule OPERATOR(pg_catalog.=) ANY (ARRAY['always', 'daily', 'anchor'])),
	daily_at	time,
	-- anchor chains (ステップ配信): steps at "anchor + N days at HH:MM"
	anchor		text,			/* joined_at, birthday, …, properties.<date property> */
	anchor_yearly boolean NOT NULL DEFAULT false,
	anchor_change text NOT NULL DEFAULT 'restart'
				CHECK (anchor_change OPERATOR(pg_catalog.=) ANY (ARRAY['restart', 'follow', 'ignore'])),
	activation	text NOT NULL DEFAULT 'new'
				CHECK (activation OPERATOR(pg_catalog.=) ANY (ARRAY['new', 'existing'])),
	weekdays	integer[],
	entry_interval interval,
	time_zone	text NOT NULL,
	repeat		boolean NOT NULL DEFAULT false,
	repeat_wait_kind text,
	repeat_wait_after interval,
	repeat_wait_days integer,
	repeat_wait_at time,
	reentry		text NOT NULL DEFAULT 'never'
				CHECK (reentry OPERATOR(pg_catalog.=) ANY (ARRAY['never', 'rematch', 'cooldown'])),
	reentry_cooldown interval,
	pause_after_failures integer NOT NULL DEFAULT 3,
	enabled_at	timestamptz NOT NULL,
	last_entry_at timestamptz,
	next_slot_at timestamptz,	/* daily chains: the next slot to enter at (trigger) */
	last_run_at timestamptz,
	consecutive_failures integer NOT NULL DEFAULT 0,
	last_error	text,
	last_error_at timestamptz,
	paused_reason text,
	paused_at	timestamptz,
	is_test		boolean NOT NULL DEFAULT false,	/* mail goes to test recipients */
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CHECK ((schedule OPERATOR(pg_catalog.=) 'daily') OPERATOR(pg_catalog.=) (daily_at IS NOT NULL)),
	CHECK ((schedule OPERATOR(pg_catalog.=) 'anchor') OPERATOR(pg_catalog.=) (anchor IS NOT NULL))
);
COMMENT ON TABLE taskflow.chain IS
	'Chains of tasks: schedule of the first task, time zone, repeat, re-entry, pause state';
-- what a scheduler wake-up looks up (engine.c, next_wakeup()) instead of
-- reading every chain: daily chains by their next slot, the chains whose
-- entries come every entry interval, the chains that failed
CREATE INDEX chain_next_slot_idx ON taskflow.chain (next_slot_at)
	WHERE schedule OPERATOR(pg_catalog.=) 'daily';
CREATE INDEX chain_interval_idx ON taskflow.chain (chain_id)
	WHERE schedule OPERATOR(pg_catalog.<>) 'daily';
CREATE INDEX chain_failing_idx ON taskflow.chain (chain_id)
	WHERE consecutive_failures OPERATOR(pg_catalog.>) 0;

CREATE TABLE taskflow.chain_step (
	step_id		serial PRIMARY KEY,
	chain_id	integer NOT NULL REFERENCES taskflow.chain (chain_id) ON DELETE CASCADE,
	position	integer NOT NULL CHECK (position OPERATOR(pg_catalog.>=) 1),
	task_id		integer NOT NULL REFERENCES taskflow.task (task_id),
	wait_kind	text NOT NULL
				CHECK (wait_kind OPERATOR(pg_catalog.=) ANY (ARRAY['none', 'after', 'days_at', 'anchor'])),
	wait_after	interval,
	wait_days	integer,		/* anchor steps: days from the anchor (may be < 0) */
	wait_at		time,			/* anchor steps: local time (NULL: the anchor's) */
	UNIQUE (chain_id, position) DEFERRABLE INITIALLY DEFERRED
);
COMMENT ON TABLE taskflow.chain_step IS
	'The tasks of a chain in order, each with the wait before it';

-- Where each member is in each chain.
CREATE TABLE taskflow.chain_member (
	chain_id	integer NOT NULL REFERENCES taskflow.chain (chain_id) ON DELETE CASCADE,
	member_id	bigint NOT NULL REFERENCES taskflow.member (member_id) ON DELETE CASCADE,
	step_id		integer REFERENCES taskflow.chain_step (step_id) ON DELETE SET NULL,
	iteration	integer NOT NULL DEFAULT 1,
	state		text NOT NULL
				CHECK (state OPERATOR(pg_catalog.=) ANY (ARRAY['waiting', 'pending', 'done', 'left'])),
	entered_at	timestamptz NOT NULL,
	waiting_since timestamptz NOT NULL,
	due_at		timestamptz,
	checked_at	timestamptz,
	finished_at timestamptz,
	left_reason text,
	rearmed		boolean NOT NULL DEFAULT false,
	anchor_base timestamptz,	/* anchor chains: the member's anchor value */
	anchor_at	timestamptz,	/* and the occurrence this iteration follows */
	PRIMARY KEY (chain_id, member_id)
);
COMMENT ON TABLE taskflow.chain_member IS
	'Per member and chain: current step, state (waiting, pending, done, left), due time, iteration';
-- the engine's due batches: in (due_at, member_id) order, each batch
-- starting after the previous one's last entry
CREATE INDEX chain_member_due_idx ON taskflow.chain_member (chain_id, step_id, due_at, member_id)
	WHERE state OPERATOR(pg_catalog.=) 'waiting';
CREATE INDEX chain_member_next_due_idx ON taskflow.chain_member (due_at)
	WHERE state OPERATOR(pg_catalog.=) 'waiting';
CREATE INDEX chain_member_pending_idx ON taskflow.chain_member (step_id)
	WHERE state OPERATOR(pg_catalog.=) 'pending';
CREATE INDEX chain_member_finished_idx ON taskflow.chain_member (chain_id)
	WHERE state OPERATOR(pg_catalog.=) ANY (ARRAY['done', 'left']);
CREATE INDEX chain_member_member_idx ON taskflow.chain_member (member_id);

-- Every step applied, every entry, pending, exit and why.  Kept when a
-- chain is dropped (chain_name and task_name are copied for that reason).
CREATE TABLE taskflow.history (
	history_id	bigserial PRIMARY KEY,
	chain_id	integer NOT NULL,
	chain_name	text NOT NULL,
	member_id	bigint NOT NULL REFERENCES taskflow.member (member_id) ON DELETE CASCADE,
	step_id		integer,
	task_name	text,
	iteration	integer NOT NULL,
	event		text NOT NULL
				CHECK (event OPERATOR(pg_catalog.=) ANY
					   (ARRAY['entered', 'applied', 'pending', 'skipped', 'cancelled',
							  'left', 'finished', 'repeated'])),
	at			timestamptz NOT NULL,
	actor		text NOT NULL,
	detail		jsonb NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE taskflow.history IS
	'Automation history per member: entered, applied, pending, skipped, cancelled, left, finished, repeated';
-- A step is applied to a member at most once per iteration.
CREATE UNIQUE INDEX history_applied_once_idx
	ON taskflow.history (chain_id, member_id, iteration, step_id)
	WHERE event OPERATOR(pg_catalog.=) 'applied';
CREATE INDEX history_member_idx ON taskflow.history (member_id, at);
CREATE INDEX history_chain_idx ON taskflow.history (chain_id, at);

-- Messages written by steps (STEP4); delivery workers send them.
CREATE TABLE taskflow.outbox (
	outbox_id	bigserial PRIMARY KEY,
	chain_id	integer NOT NULL,
	step_id		integer NOT NULL,
	member_id	bigint NOT NULL REFERENCES taskflow.member (member_id) ON DELETE CASCADE,
	iteration	integer NOT NULL,
	template_id integer NOT NULL,
	channel		text NOT NULL,
	recipient	text,
	sender_name text,
	sender_address text,
	reply_to	text,
	subject		text,
	body_text	text,
	body_html	text,
	transactional boolean NOT NULL DEFAULT false,
	state		text NOT NULL DEFAULT 'pending'
				CHECK (state OPERATOR(pg_catalog.=) ANY
					   (ARRAY['pending', 'sending', 'sent', 'deferred', 'failed', 'cancelled'])),
	state_reason text,
	created_at	timestamptz NOT NULL,
	not_before	timestamptz NOT NULL,
	attempts	integer NOT NULL DEFAULT 0,
	sent_at		timestamptz,
	-- delivery (src/sql/41_delivery.sql): the chain's time zone (quiet
	-- hours), test routing, the lease of the worker sending it, the last
	-- reply, the Message-ID every resend carries
	time_zone	text,
	is_test		boolean NOT NULL DEFAULT false,
	original_recipient text,
	lease_owner text,
	lease_expires_at timestamptz,
	last_smtp_code integer,
	last_enhanced_code text,
	last_reply	text,
	message_id	text,
	-- the idempotency key: one message per member, step and iteration
	UNIQUE (chain_id, member_id, iteration, step_id)
);
COMMENT ON TABLE taskflow.outbox IS
	'Rendered messages waiting for delivery; one per member, step and iteration';
COMMENT ON COLUMN taskflow.outbox.state IS
	'pending → sending (leased) → sent | deferred (until not_before) | failed | cancelled';
COMMENT ON COLUMN taskflow.outbox.original_recipient IS
	'For a test chain: the member''s address; recipient is then a test recipient';
CREATE INDEX outbox_ready_idx ON taskflow.outbox (not_before)
	WHERE state OPERATOR(pg_catalog.=) ANY (ARRAY['pending', 'deferred']);
CREATE INDEX outbox_member_idx ON taskflow.outbox (member_id);
-- claim_messages: ready rows of a channel in order; leases to reclaim;
-- the day's count for the quota
CREATE INDEX outbox_claim_idx ON taskflow.outbox (channel, not_before, outbox_id)
	WHERE state OPERATOR(pg_catalog.=) ANY (ARRAY['pending', 'deferred']);
CREATE INDEX outbox_lease_idx ON taskflow.outbox (channel, lease_expires_at)
	WHERE state OPERATOR(pg_catalog.=) 'sending';
CREATE INDEX outbox_sent_idx ON taskflow.outbox (channel, sent_at)
	WHERE state OPERATOR(pg_catalog.=) 'sent';

-- Errors of chain runs: the batch was rolled back, the error kept here.
CREATE TABLE taskflow.chain_error (
	error_id	bigserial PRIMARY KEY,
	chain_id	integer NOT NULL REFERENCES taskflow.chain (chain_id) ON DELETE CASCADE,
	step_id		integer,
	at			timestamptz NOT NULL,
	sqlstate	text NOT NULL,
	message		text NOT NULL,
	detail		text,
	hint		text,
	context		text,
	member_id	bigint			/* a member's own failure; NULL: the chain's */
);
COMMENT ON TABLE taskflow.chain_error IS
	'Errors of chain runs; each rolled back only its own batch';
CREATE INDEX chain_error_chain_idx ON taskflow.chain_error (chain_id, at);

SELECT pg_catalog.pg_extension_config_dump('taskflow.chain', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.chain_chain_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.chain_step', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.chain_step_step_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.chain_member', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.history', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.history_history_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.outbox', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.outbox_outbox_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.chain_error', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.chain_error_error_id_seq', '');

---------------------------------------------------------------- time

-- Parses a wait: NULL / 'immediately', 'N hours' / 'N minutes' (same day,
-- that much later), or 'N days at HH:MM' (N days later at local HH:MM).
CREATE FUNCTION taskflow._parse_wait(wait text, OUT kind text, OUT after interval,
									 OUT days integer, OUT at time)
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	m text[];
BEGIN
	IF wait IS NULL OR lower(btrim(wait)) OPERATOR(pg_catalog.=) 'immediately' THEN
		kind := 'none';
		RETURN;
	END IF;
	m := regexp_match(lower(btrim(wait)), '^(\d{1,4}) days? (?:later )?at (\d{1,2}):(\d{2})$');
	IF m IS NOT NULL THEN
		IF m[2]::int OPERATOR(pg_catalog.>) 23 OR m[3]::int OPERATOR(pg_catalog.>) 59 THEN
			RAISE EXCEPTION 'invalid time of day in wait "%"', wait
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Use HH:MM between 00:00 and 23:59.';
		END IF;
		kind := 'days_at';
		days := m[1]::int;
		at := make_time(m[2]::int, m[3]::int, 0);
		RETURN;
	END IF;
	m := regexp_match(lower(btrim(wait)), '^(\d{1,5}) (hours?|minutes?)(?: later)?$');
	IF m IS NOT NULL THEN
		kind := 'after';
		after := (m[1] OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) m[2])::interval;
		IF after OPERATOR(pg_catalog.<) interval '0' OR after OPERATOR(pg_catalog.>) interval '24 hours' THEN
			RAISE EXCEPTION 'wait "%" is out of range', wait
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'A same-day wait is 0 to 24 hours (''0 hours'': right after the previous task); use ''N days at HH:MM'' for longer waits.';
		END IF;
		RETURN;
	END IF;
	RAISE EXCEPTION 'invalid wait "%"', wait
		USING ERRCODE = 'invalid_parameter_value',
			  HINT = 'Write ''3 hours'', ''90 minutes'' (same day, that much later) or ''5 days at 10:00'' (five days later at 10:00 local time).';
END
$$;

-- When a wait that starts at "finished" ends, in time zone tz.  Local
-- times that do not exist (a DST gap) resolve the way PostgreSQL's
-- "timestamp AT TIME ZONE" does: they are read with the offset before the
-- change, so 02:30 on a spring-forward night becomes 03:30 daylight time.
-- Ambiguous local times (the repeated hour) resolve to standard time.
CREATE FUNCTION taskflow.wait_until(finished timestamptz, kind text, after interval,
									days integer, at time, tz text)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE kind
	WHEN 'none' THEN finished
	WHEN 'after' THEN finished OPERATOR(pg_catalog.+) after
	WHEN 'days_at' THEN
		(((finished AT TIME ZONE tz)::date OPERATOR(pg_catalog.+) days) OPERATOR(pg_catalog.+) at)
		AT TIME ZONE tz
	END;

-- The latest daily slot (local HH:MM on an allowed ISO weekday) at or
-- before as_of, or NULL when there is none in the last 8 days.
CREATE FUNCTION taskflow.daily_slot_before(as_of timestamptz, at time, weekdays integer[], tz text)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (
	SELECT s.slot FROM (
		SELECT ((d.day OPERATOR(pg_catalog.+) at) AT TIME ZONE tz) AS slot, d.day
		  FROM (SELECT ((as_of AT TIME ZONE tz)::date OPERATOR(pg_catalog.-) k) AS day
				  FROM pg_catalog.generate_series(0, 8) AS k) d) s
	 WHERE (weekdays IS NULL
			OR extract(isodow FROM s.day)::integer OPERATOR(pg_catalog.=) ANY (weekdays))
	   AND s.slot OPERATOR(pg_catalog.<=) as_of
	 ORDER BY s.slot DESC LIMIT 1);

-- The first daily slot strictly after "after" (for the worker's sleep).
CREATE FUNCTION taskflow.daily_slot_after(after timestamptz, at time, weekdays integer[], tz text)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (
	SELECT s.slot FROM (
		SELECT ((d.day OPERATOR(pg_catalog.+) at) AT TIME ZONE tz) AS slot, d.day
		  FROM (SELECT ((after AT TIME ZONE tz)::date OPERATOR(pg_catalog.+) k) AS day
				  FROM pg_catalog.generate_series(0, 8) AS k) d) s
	 WHERE (weekdays IS NULL
			OR extract(isodow FROM s.day)::integer OPERATOR(pg_catalog.=) ANY (weekdays))
	   AND s.slot OPERATOR(pg_catalog.>) after
	 ORDER BY s.slot LIMIT 1);

-- The entry slot a chain should handle as of an instant, or NULL when its
-- first task is not due: "always" every entry interval, "daily" once per
-- slot since the chain was enabled.  A missed daily slot is caught up once,
-- and only on its own local day (or within the entry interval, so a run
-- just after midnight still takes a slot of just before): after that it
-- is dropped and the next slot awaited, so a weekday chain never runs on a
-- day not chosen — the rule a missed anchor step follows
-- (anchor_entry_floor).  The worker, run(), preview() and explain() all
-- decide with this function.
CREATE FUNCTION taskflow._entry_slot(c taskflow.chain, as_of timestamptz)
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

-- Keeps chain.next_slot_at: for a daily chain, the first slot at or after
-- enabled_at and after last_entry_at, i.e. the slot whose entries are due
-- next (it is due once as_of reaches it, as _entry_slot() decides; a slot
-- missed while nothing ran is caught up once on its own day, then the next
-- one is after that run); NULL for the other schedules.  The engine and next_wakeup()
-- read it instead of working slots out for every chain at every wake-up.
CREATE FUNCTION taskflow._chain_next_slot()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	NEW.next_slot_at := CASE WHEN NEW.schedule OPERATOR(pg_catalog.=) 'daily'
		THEN taskflow.daily_slot_after(GREATEST(NEW.enabled_at OPERATOR(pg_catalog.-) interval '1 microsecond',
												NEW.last_entry_at),
									   NEW.daily_at, NEW.weekdays, NEW.time_zone) END;
	RETURN NEW;
END
$$;
CREATE TRIGGER next_slot BEFORE INSERT OR UPDATE OF schedule, daily_at, weekdays, time_zone,
	enabled_at, last_entry_at, next_slot_at ON taskflow.chain
	FOR EACH ROW EXECUTE FUNCTION taskflow._chain_next_slot();

-- Parses weekdays given as names ('mon' … 'sun', '月' … '日') or ISO numbers.
CREATE FUNCTION taskflow._parse_weekdays(weekdays text[])
RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	w text;
	d integer;
	result integer[] := '{}';
BEGIN
	IF weekdays IS NULL THEN
		RETURN NULL;
	END IF;
	IF cardinality(weekdays) OPERATOR(pg_catalog.=) 0 THEN
		RAISE EXCEPTION 'weekdays cannot be empty'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Leave weekdays NULL to run every day.';
	END IF;
	FOREACH w IN ARRAY weekdays LOOP
		d := CASE lower(btrim(coalesce(w, '')))
			WHEN 'mon' THEN 1 WHEN 'tue' THEN 2 WHEN 'wed' THEN 3 WHEN 'thu' THEN 4
			WHEN 'fri' THEN 5 WHEN 'sat' THEN 6 WHEN 'sun' THEN 7
			WHEN '月' THEN 1 WHEN '火' THEN 2 WHEN '水' THEN 3 WHEN '木' THEN 4
			WHEN '金' THEN 5 WHEN '土' THEN 6 WHEN '日' THEN 7
			WHEN '1' THEN 1 WHEN '2' THEN 2 WHEN '3' THEN 3 WHEN '4' THEN 4
			WHEN '5' THEN 5 WHEN '6' THEN 6 WHEN '7' THEN 7 END;
		IF d IS NULL THEN
			RAISE EXCEPTION 'invalid weekday %', coalesce(quote_literal(w), 'NULL')
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Use mon, tue, wed, thu, fri, sat, sun (or 月 … 日, or ISO numbers 1 = Monday … 7 = Sunday).';
		END IF;
		IF NOT d OPERATOR(pg_catalog.=) ANY (result) THEN
			result := result OPERATOR(pg_catalog.||) d;
		END IF;
	END LOOP;
	RETURN ARRAY(SELECT x FROM unnest(result) x ORDER BY x);
END
$$;
