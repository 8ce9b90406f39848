-- taskflow install script, part 31: data-change actions (STEP3).
--
-- A task's actions are a JSON array; each element is one action:
--   {"set": "status", "to": "newsletter"}         a core column
--   {"set_property": "plan", "to": "ゴールド"}     a custom property
--   {"remove_property": "plan"}
--   {"add_tag": "動画A"}   {"remove_tag": "体験中"}
--   {"join_group": "オンラインサロン"}   {"leave_group": "オンラインサロン"}
--   {"extend_expires": "1 month"}   {"extend_expires": "-7 days"}
--   {"record_event": "automation", "detail": {"note": "継続特典"}}
--   {"sql": "UPDATE app.page_access SET granted = true WHERE member_id = ANY($1)"}
-- _compile_actions turns the array into a few set-based statements, each
-- taking $1 = the batch's member ids (bigint[]) and $2 = the engine's clock.
-- All member-row changes become ONE UPDATE, so a batch costs a fixed number
-- of statements whatever its size.

-- Core columns an action may set, with their types.
CREATE FUNCTION taskflow._settable_column_type(column_name text)
RETURNS text
LANGUAGE sql IMMUTABLE
RETURN CASE column_name
	WHEN 'status' THEN 'text'
	WHEN 'email' THEN 'text'
	WHEN 'name' THEN 'text'
	WHEN 'name_kana' THEN 'text'
	WHEN 'joined_at' THEN 'timestamptz'
	WHEN 'expires_at' THEN 'timestamptz'
	WHEN 'birthday' THEN 'date'
	WHEN 'last_message_at' THEN 'timestamptz'
	WHEN 'unsubscribed_at' THEN 'timestamptz'
	END;

-- Raises a clear error for action number n of task task_name.
CREATE FUNCTION taskflow._action_error(task_name text, n integer, message text,
									   hint text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'invalid action % of task "%": %', n, task_name, message
		USING ERRCODE = 'invalid_parameter_value',
			  HINT = coalesce(hint, 'See doc/tasks.md for the action forms.');
END
$$;

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

-- Compiles an actions array into SQL statements ($1 ids, $2 clock).
-- Raises on any malformed action; unknown groups, properties and event kinds
-- are reported here too, so a broken reference shows at save time and, if
-- something was dropped since, as a recorded error of the chain.
CREATE FUNCTION taskflow._compile_actions(task_name text, actions jsonb)
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
