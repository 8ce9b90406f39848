-- taskflow install script, part 36: chains anchored on a member date
-- (ステップ配信): steps run at "anchor + N days at HH:MM" in the chain's time
-- zone, where the anchor is a date of each member — joined_at, birthday,
-- last_message_at, expires_at or a custom date property — optionally
-- recurring every year (birthdays, anniversaries).

-- Parses an anchor name; returns it normalized or raises.
CREATE FUNCTION taskflow._parse_anchor(anchor text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	prop text;
	prop_type text;
BEGIN
	IF anchor IS NULL THEN
		RETURN NULL;
	END IF;
	IF btrim(anchor) OPERATOR(pg_catalog.=) ANY (ARRAY['joined_at', 'birthday', 'last_message_at', 'expires_at']) THEN
		RETURN btrim(anchor);
	END IF;
	prop := substring(btrim(anchor) FROM '^properties\.([a-z][a-z0-9_]*)$');
	IF prop IS NOT NULL THEN
		SELECT p.type INTO prop_type FROM taskflow.custom_property p WHERE p.name OPERATOR(pg_catalog.=) prop;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'unknown property "%" for the anchor', prop
				USING ERRCODE = 'undefined_object',
					  HINT = 'Define it with taskflow.define_property(name, ''date'').';
		END IF;
		IF prop_type OPERATOR(pg_catalog.<>) 'date' THEN
			RAISE EXCEPTION 'property "%" is %, not date: it cannot be an anchor', prop, prop_type
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		RETURN 'properties.' OPERATOR(pg_catalog.||) prop;
	END IF;
	RAISE EXCEPTION 'invalid anchor %', quote_literal(anchor)
		USING ERRCODE = 'invalid_parameter_value',
			  HINT = 'Use joined_at, birthday, last_message_at, expires_at or properties.<a date property>.';
END
$$;

-- The anchor of a member as a SQL expression over "member" (timestamptz;
-- dates are local midnight in the chain's time zone).  An infinite date
-- ('infinity': never expires) is no anchor: NULL, as a missing one.
CREATE FUNCTION taskflow._anchor_sql(anchor text, tz text)
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

-- When a step at "days" days (at local time "at", or the anchor's own time
-- of day when NULL) from an anchor occurrence is due, in zone tz.
-- (C, src/anchor_dates.c: called for every member an anchor chain places
-- or moves on.)
CREATE FUNCTION taskflow.anchor_due(anchor_at timestamptz, days integer, at time, tz text)
RETURNS timestamptz
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'taskflow_anchor_due';

-- The occurrence of an anchor a member follows: the anchor itself, or for a
-- yearly chain the first anniversary whose last step (last_days, last_at)
-- is not before not_before.  A 29 February anchor falls on 28 February in
-- common years.
CREATE FUNCTION taskflow.anchor_occurrence(base timestamptz, yearly boolean, last_days integer,
										   last_at time, tz text, not_before timestamptz)
RETURNS timestamptz
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'taskflow_anchor_occurrence';

-- The earliest due time a step may have to be run when a member enters an
-- anchor chain: the start of the local day, or the last entry check when
-- that was earlier.  Older steps are skipped: a member who enters late is
-- not sent every past step at once.
CREATE FUNCTION taskflow.anchor_entry_floor(as_of timestamptz, grace interval, tz text)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
RETURN LEAST(pg_catalog.date_trunc('day', as_of AT TIME ZONE tz) AT TIME ZONE tz,
			 as_of OPERATOR(pg_catalog.-) grace);

-- Parses an anchor offset: 'immediately' (at the anchor), '[+-]N days'
-- (the anchor's time of day) or '[+-]N days at HH:MM' (local time).
CREATE FUNCTION taskflow._parse_offset(offset_text text, OUT days integer, OUT at time)
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	m text[];
BEGIN
	IF offset_text IS NULL THEN
		RAISE EXCEPTION 'an anchor chain needs an offset for every task'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example offsets => ARRAY[''immediately'', ''2 days at 10:00'', ''-3 days at 09:00''].';
	END IF;
	IF lower(btrim(offset_text)) OPERATOR(pg_catalog.=) 'immediately' THEN
		days := 0;
		RETURN;
	END IF;
	m := regexp_match(lower(btrim(offset_text)), '^([+-]?\d{1,4}) days?(?: at (\d{1,2}):(\d{2}))?$');
	IF m IS NULL OR (m[2] IS NOT NULL AND (m[2]::int OPERATOR(pg_catalog.>) 23 OR m[3]::int OPERATOR(pg_catalog.>) 59)) THEN
		RAISE EXCEPTION 'invalid anchor offset %', quote_literal(offset_text)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Write ''immediately'', ''2 days'', ''7 days at 10:00'' or ''-3 days at 09:00'' (three days before the anchor).';
	END IF;
	days := m[1]::int;
	IF m[2] IS NOT NULL THEN
		at := make_time(m[2]::int, m[3]::int, 0);
	END IF;
END
$$;

-- Anchor steps must come in time order: each not before the previous.
CREATE FUNCTION taskflow._check_anchor_order(c taskflow.chain)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	bad record;
BEGIN
	SELECT s.position, t.name INTO bad
	  FROM taskflow.chain_step s JOIN taskflow.task t USING (task_id)
	 WHERE s.chain_id OPERATOR(pg_catalog.=) c.chain_id
	   AND EXISTS (SELECT FROM taskflow.chain_step p
				  WHERE p.chain_id OPERATOR(pg_catalog.=) c.chain_id
					AND p.position OPERATOR(pg_catalog.<) s.position
					AND (p.wait_days, COALESCE(p.wait_at, time '00:00'))
						OPERATOR(pg_catalog.>) (s.wait_days, COALESCE(s.wait_at, time '00:00')))
	 ORDER BY s.position LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'task "%" at position % of anchor chain "%" would run before the task before it',
			bad.name, bad.position, c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give the tasks of an anchor chain in time order of their offsets.';
	END IF;
END
$$;

-- Where a member who is not in an anchor chain would enter it at an entry
-- check as of an instant (for taskflow.explain): its anchor; from when an
-- activation "new" chain takes anchors (a date anchor from the day it was
-- enabled); and the step it would be placed at with its due time (none
-- when every step is past).  The audience criteria are not looked at.
-- All NULL for a chain that is not an anchor chain (or none).
CREATE FUNCTION taskflow._anchor_entry(chain_id integer, member_id bigint, as_of timestamptz,
									   OUT base timestamptz, OUT new_from timestamptz,
									   OUT "position" integer, OUT task text, OUT due_at timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c taskflow.chain;
	entry_floor timestamptz;
	occ timestamptz;
	l taskflow.chain_step;
BEGIN
	SELECT * INTO c FROM taskflow.chain ch WHERE ch.chain_id OPERATOR(pg_catalog.=) _anchor_entry.chain_id;
	IF c.anchor IS NULL THEN
		RETURN;
	END IF;
	EXECUTE format('SELECT %s FROM taskflow.member AS member WHERE member.member_id OPERATOR(pg_catalog.=) $1',
				   taskflow._anchor_sql(c.anchor, c.time_zone))
	   INTO base USING member_id;
	IF c.activation OPERATOR(pg_catalog.=) 'new' AND NOT c.anchor_yearly THEN
		new_from := CASE WHEN c.anchor OPERATOR(pg_catalog.=) 'birthday' OR c.anchor OPERATOR(pg_catalog.^@) 'properties.'
						 THEN date_trunc('day', c.enabled_at AT TIME ZONE c.time_zone) AT TIME ZONE c.time_zone
						 ELSE c.enabled_at END;
	END IF;
	IF base IS NULL OR base OPERATOR(pg_catalog.<) new_from THEN
		RETURN;
	END IF;
	entry_floor := taskflow.anchor_entry_floor(as_of,
		coalesce(c.entry_interval, current_setting('taskflow.entry_interval')::interval), c.time_zone);
	SELECT * INTO l FROM taskflow.chain_step s
	 WHERE s.chain_id OPERATOR(pg_catalog.=) c.chain_id ORDER BY s.position DESC LIMIT 1;
	occ := taskflow.anchor_occurrence(base, c.anchor_yearly, l.wait_days, l.wait_at, c.time_zone, entry_floor);
	SELECT s.position, t.name, taskflow.anchor_due(occ, s.wait_days, s.wait_at, c.time_zone)
	  INTO "position", task, due_at
	  FROM taskflow.chain_step s JOIN taskflow.task t ON t.task_id OPERATOR(pg_catalog.=) s.task_id
	 WHERE s.chain_id OPERATOR(pg_catalog.=) c.chain_id
	   AND taskflow.anchor_due(occ, s.wait_days, s.wait_at, c.time_zone) OPERATOR(pg_catalog.>=) entry_floor
	 ORDER BY s.position LIMIT 1;
END
$$;

REVOKE ALL ON FUNCTION taskflow._anchor_entry(integer, bigint, timestamptz),
	taskflow._parse_anchor(text), taskflow._anchor_sql(text, text),
	taskflow._parse_offset(text), taskflow._check_anchor_order(taskflow.chain),
	taskflow.anchor_due(timestamptz, integer, time, text),
	taskflow.anchor_occurrence(timestamptz, boolean, integer, time, text, timestamptz),
	taskflow.anchor_entry_floor(timestamptz, interval, text)
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION taskflow.anchor_due(timestamptz, integer, time, text),
	taskflow.anchor_occurrence(timestamptz, boolean, integer, time, text, timestamptz),
	taskflow.anchor_entry_floor(timestamptz, interval, text)
	TO taskflow_app, taskflow_operator;

-- Adds the hypothetical member of a preview (member_id -1) from values given
-- as JSON; columns not given take their defaults, except joined_at: the
-- start of the preview (the member joins when the simulation starts).
CREATE FUNCTION taskflow._insert_hypothetical_member(member_values jsonb, at timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	cols text;
	bad text;
BEGIN
	IF member_values IS NULL OR jsonb_typeof(member_values) OPERATOR(pg_catalog.<>) 'object' THEN
		RAISE EXCEPTION 'a hypothetical member is a JSON object of member columns'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example ''{"name": "山田太郎", "status": "trial", "joined_at": "2026-04-01 10:00+09"}''.';
	END IF;
	SELECT k INTO bad FROM jsonb_object_keys(member_values) k
	 WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
					   WHERE a.attrelid OPERATOR(pg_catalog.=) 'taskflow.member'::regclass
						 AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
						 AND a.attname OPERATOR(pg_catalog.=) k)
		OR k OPERATOR(pg_catalog.=) ANY (ARRAY['member_id', 'created_at'])
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'a hypothetical member cannot have "%"', bad
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give member columns such as name, email, status, joined_at, birthday, tags, properties.';
	END IF;
	member_values := jsonb_build_object('joined_at', at) OPERATOR(pg_catalog.||) member_values;
	SELECT string_agg(', ' OPERATOR(pg_catalog.||) quote_ident(k), '') INTO cols
	  FROM jsonb_object_keys(member_values) k WHERE k OPERATOR(pg_catalog.<>) 'external_id';
	EXECUTE format('INSERT INTO taskflow.member (member_id, external_id, created_at%s) '
				   'SELECT -1, COALESCE($1 OPERATOR(pg_catalog.->>) ''external_id'', ''(preview)''), $2%s '
				   'FROM pg_catalog.jsonb_populate_record(NULL::taskflow.member, $1) AS r',
				   coalesce(cols, ''), coalesce(replace(cols, ', ', ', r.'), ''))
	USING member_values, at;
	RETURN -1;
END
$$;
REVOKE ALL ON FUNCTION taskflow._insert_hypothetical_member(jsonb, timestamptz) FROM PUBLIC;

-- The timeline the engine would produce from from_at to to_at — when,
-- which member, which task, what happened (entered, applied with the
-- task's data changes, pending, left …) and the subject of any message —
-- by running the real engine at every due instant inside a subtransaction
-- that is rolled back: nothing is left behind, sequences included.
-- member_ids limits the rows shown; hypothetical adds a member given as
-- values for the preview only (member_id -1).
CREATE FUNCTION taskflow.preview(from_at timestamptz, to_at timestamptz,
								 chain text DEFAULT NULL, member_ids bigint[] DEFAULT NULL,
								 hypothetical jsonb DEFAULT NULL,
								 entry_step interval DEFAULT '1 day')
RETURNS TABLE (at timestamptz, chain text, member_id bigint, member_name text,
			   task text, event text, changes jsonb, subject text)
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_preview';
COMMENT ON FUNCTION taskflow.preview(timestamptz, timestamptz, text, bigint[], jsonb, interval) IS
	'What the engine would do over a date range (rolled back: no side effects)';
REVOKE ALL ON FUNCTION taskflow.preview(timestamptz, timestamptz, text, bigint[], jsonb, interval) FROM PUBLIC;
-- like run(): superusers preview every chain, others the chains of roles
-- they belong to
GRANT EXECUTE ON FUNCTION taskflow.preview(timestamptz, timestamptz, text, bigint[], jsonb, interval)
	TO taskflow_app;
