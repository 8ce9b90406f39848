-- taskflow install script, part 12: functions to manage members.
--
-- Definitions (statuses, event kinds, properties, groups) are changed only
-- through SECURITY DEFINER functions granted to taskflow_app.  Member data
-- can be written with plain SQL too; the helpers below exist so common
-- changes need no jsonb or array juggling, and are SECURITY INVOKER (the
-- caller needs the table privileges, as with plain SQL).

-- Adds (or re-describes) a member status; a NULL description keeps the
-- one it has.
CREATE FUNCTION taskflow.define_status(status text, description text DEFAULT NULL)
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
CREATE FUNCTION taskflow.define_event_kind(kind text, description text DEFAULT NULL)
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

-- Defines a typed custom property.  Changing the type of a property some
-- members already have is refused when any of their values would not fit,
-- and while anything uses the property (taskflow.property_used_by());
-- removing a list value is refused while a task's action sets it.  List
-- values are trimmed of blanks (spaces, U+3000) like tags, and must be
-- non-empty, without control characters and distinct.  A NULL description
-- keeps the one there was.  A new type or fewer list values first waits
-- for open transactions that write members (_lock_member_values).
CREATE FUNCTION taskflow.define_property(name text, type text,
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

-- Drops a custom property; members' values are removed only when asked.
-- Waits for open transactions that write members (_lock_member_values).
CREATE FUNCTION taskflow.drop_property(name text, remove_values boolean DEFAULT false)
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

-- Sets one custom property of a member (validated by the member trigger).
CREATE FUNCTION taskflow.set_property(member_id bigint, name text, value anyelement)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM taskflow.check_property_value(set_property.name, to_jsonb(value));
	UPDATE taskflow.member m
	   SET properties = m.properties OPERATOR(pg_catalog.||)
						jsonb_build_object(set_property.name, to_jsonb(value))
	 WHERE m.member_id OPERATOR(pg_catalog.=) set_property.member_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'member % does not exist', member_id
			USING ERRCODE = 'no_data_found';
	END IF;
END
$$;
COMMENT ON FUNCTION taskflow.set_property(bigint, text, anyelement) IS
	'Sets a custom property: taskflow.set_property(42, ''plan'', ''ゴールド''::text)';

-- Removes one custom property value of a member.
CREATE FUNCTION taskflow.remove_property(member_id bigint, name text)
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

-- Tag changes made with add_tag / remove_tag (and by the engine's tag
-- actions) are written to the timeline; a plain UPDATE of member.tags is
-- not, so bulk loads and restores stay plain.

-- Adds a tag to a member; returns false when the member already had it.
-- The tag is trimmed of blanks (spaces and U+3000, the full-width space)
-- as the member trigger trims it.
CREATE FUNCTION taskflow.add_tag(member_id bigint, tag text)
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

-- Removes a tag from a member; returns false when the member did not have it.
-- The tag is trimmed as add_tag() trims it, so what add_tag() added can be
-- removed with the same argument.
CREATE FUNCTION taskflow.remove_tag(member_id bigint, tag text)
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

-- Tags in use, with how many members carry each.
CREATE VIEW taskflow.tag_usage AS
SELECT t.tag, count(*) AS members
  FROM taskflow.member m, unnest(m.tags) AS t(tag)
 GROUP BY t.tag;

-- Creates a membership group.
CREATE FUNCTION taskflow.create_group(name text, description text DEFAULT NULL)
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

-- Looks up a group by name; raises a clear error when there is none.
CREATE FUNCTION taskflow.group_id(group_name text)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	found_id integer;
BEGIN
	SELECT g.group_id INTO found_id FROM taskflow.member_group g
	 WHERE g.name OPERATOR(pg_catalog.=) group_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'group "%" does not exist', group_name
			USING ERRCODE = 'undefined_object',
				  HINT = 'Create it with taskflow.create_group().';
	END IF;
	RETURN found_id;
END
$$;

-- Puts a member into a group as of an instant (default: the engine's clock).
-- Returns false when the member is already in the group; refuses a stay
-- that would overlap an earlier one.
CREATE FUNCTION taskflow.join_group(member_id bigint, group_name text,
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

-- Takes a member out of a group; returns false when they were not in it,
-- refuses an instant before they joined.
CREATE FUNCTION taskflow.leave_group(member_id bigint, group_name text,
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

-- Records a timeline event and returns its id.
CREATE FUNCTION taskflow.record_event(member_id bigint, kind text,
									  detail jsonb DEFAULT '{}',
									  occurred_at timestamptz DEFAULT taskflow.clock(),
									  amount numeric DEFAULT NULL,
									  period daterange DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	new_id bigint;
BEGIN
	PERFORM FROM taskflow.event_kind k WHERE k.kind OPERATOR(pg_catalog.=) record_event.kind;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown event kind %', coalesce(quote_literal(kind), 'NULL')
			USING ERRCODE = 'undefined_object',
				  HINT = 'Define it first with taskflow.define_event_kind().';
	END IF;
	IF detail IS NOT NULL AND jsonb_typeof(detail) OPERATOR(pg_catalog.<>) 'object' THEN
		RAISE EXCEPTION 'event detail must be a JSON object, not %', jsonb_typeof(detail)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example ''{"item": "入門講座DVD"}''.';
	END IF;
	IF occurred_at IS NULL THEN
		RAISE EXCEPTION 'an event needs occurred_at' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF member_id IS NULL THEN
		RAISE EXCEPTION 'member_id cannot be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	INSERT INTO taskflow.event AS e (member_id, kind, occurred_at, amount, period, detail)
	VALUES (record_event.member_id, record_event.kind, record_event.occurred_at,
			record_event.amount, record_event.period,
			coalesce(record_event.detail, '{}'::jsonb))
	RETURNING e.event_id INTO new_id;
	RETURN new_id;
EXCEPTION WHEN foreign_key_violation THEN
	RAISE EXCEPTION 'member % does not exist', member_id USING ERRCODE = 'no_data_found';
END
$$;

-- Records a payment of amount for the dates [period_from, period_to].
CREATE FUNCTION taskflow.record_payment(member_id bigint, amount numeric,
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

-- Adds a staff memo (メモ) to a member's timeline.
CREATE FUNCTION taskflow.add_note(member_id bigint, note text,
								  occurred_at timestamptz DEFAULT taskflow.clock())
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF note IS NULL OR btrim(note) OPERATOR(pg_catalog.=) '' THEN
		RAISE EXCEPTION 'a note needs some text' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN taskflow.record_event(member_id, 'note', jsonb_build_object('text', note), occurred_at);
END
$$;

-- Unsubscribes a member from marketing messages (配信停止).
CREATE FUNCTION taskflow.unsubscribe(member_id bigint,
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
CREATE FUNCTION taskflow.resubscribe(member_id bigint,
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

-- A member's timeline, newest first.
CREATE FUNCTION taskflow.timeline(member_id bigint)
RETURNS SETOF taskflow.event
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT * FROM taskflow.event e
	 WHERE e.member_id OPERATOR(pg_catalog.=) timeline.member_id
	 ORDER BY e.occurred_at DESC, e.event_id DESC;
END;
