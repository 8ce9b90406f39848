-- taskflow install script, part 00: schema and roles.
--
-- The script is built from src/sql/*.sql in file-name order.  Every name is
-- schema-qualified, every operator written OPERATOR(pg_catalog.x), and every
-- function pins search_path, so objects a user creates elsewhere can never be
-- picked up by the extension.

\echo Use "CREATE EXTENSION taskflow" to load this file. \quit

-- Fails cleanly ("schema already exists") if someone created it beforehand.
CREATE SCHEMA taskflow;
COMMENT ON SCHEMA taskflow IS 'taskflow: members, criteria, tasks, chains, outbox';

REVOKE ALL ON SCHEMA taskflow FROM PUBLIC;

-- Roles are cluster-wide and may already exist from another database where
-- taskflow is installed; they are created only when missing.
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles
				   WHERE rolname OPERATOR(pg_catalog.=) 'taskflow_app') THEN
		CREATE ROLE taskflow_app NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles
				   WHERE rolname OPERATOR(pg_catalog.=) 'taskflow_operator') THEN
		CREATE ROLE taskflow_operator NOLOGIN;
	END IF;
END
$roles$;

-- (No COMMENT ON ROLE: it would lock the shared role and make two
-- databases' CREATE EXTENSION wait for each other; see doc/reference.md.)

GRANT USAGE ON SCHEMA taskflow TO taskflow_app, taskflow_operator;
-- taskflow install script, part 01: the engine's clock.

-- The instant the engine runs as: the setting taskflow.as_of when set (by
-- the engine, a search "as of" an instant, or the preview), else now().
CREATE FUNCTION taskflow.clock()
RETURNS timestamptz
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'taskflow_clock';
COMMENT ON FUNCTION taskflow.clock() IS
	'The instant taskflow runs as (taskflow.as_of when set, else now()); use it instead of now() in criteria';
-- taskflow install script, part 10: the member data model.
--
-- Members with core columns, typed custom properties (stored in one jsonb
-- column, validated on write against taskflow.custom_property), tags (a text[]
-- column with a GIN index), membership groups with dates, and an event
-- timeline.  Statuses and event kinds are data, so users can add their own.

-- Member statuses.  Built-in rows are recreated by CREATE EXTENSION, so
-- pg_dump keeps only the ones users added.
CREATE TABLE taskflow.member_status (
	status		text PRIMARY KEY
				CHECK (status OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]{0,62}$'),
	description text,
	builtin		boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE taskflow.member_status IS
	'Allowed member statuses; add your own with taskflow.define_status()';

INSERT INTO taskflow.member_status (status, description, builtin) VALUES
	('trial', 'On a free trial', true),
	('paid', 'Paying member', true),
	('newsletter', 'Newsletter list only, not a member', true),
	('suspended', 'Membership suspended (for example unpaid)', true),
	('cancelled', 'Membership ended', true);

-- Event kinds of the timeline.
CREATE TABLE taskflow.event_kind (
	kind		text PRIMARY KEY
				CHECK (kind OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]{0,62}$'),
	description text,
	builtin		boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE taskflow.event_kind IS
	'Kinds of timeline events; add your own with taskflow.define_event_kind()';

INSERT INTO taskflow.event_kind (kind, description, builtin) VALUES
	('payment', 'A payment; amount and the period it pays for', true),
	('purchase', 'A purchase', true),
	('booking', 'A booking or reservation', true),
	('form', 'A form entry', true),
	('mail_sent', 'A message was sent', true),
	('mail_opened', 'A message was opened', true),
	('mail_failed', 'A message could not be delivered', true),
	('tag_added', 'A tag was added', true),
	('tag_removed', 'A tag was removed', true),
	('group_joined', 'Joined a membership group', true),
	('group_left', 'Left a membership group', true),
	('unsubscribed', 'Unsubscribed from marketing messages', true),
	('resubscribed', 'Subscribed again', true),
	('note', 'A memo written by staff', true),
	('automation', 'Something taskflow did', true);

-- Typed custom properties.
CREATE TABLE taskflow.custom_property (
	name		text PRIMARY KEY
				CHECK (name OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]{0,62}$'),
	type		text NOT NULL
				CHECK (type OPERATOR(pg_catalog.=) ANY
					   (ARRAY['text', 'email', 'number', 'boolean', 'date', 'list'])),
	allowed_values text[]
				CHECK ((type OPERATOR(pg_catalog.=) 'list')
					   OPERATOR(pg_catalog.=) (allowed_values IS NOT NULL)),
	description text,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE taskflow.custom_property IS
	'Custom member properties and their types; see taskflow.define_property()';

CREATE TABLE taskflow.member (
	member_id	bigserial PRIMARY KEY,
	external_id text UNIQUE,
	email		text,
	name		text,
	name_kana	text,
	status		text NOT NULL DEFAULT 'trial'
				REFERENCES taskflow.member_status (status) ON UPDATE CASCADE,
	joined_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	expires_at	timestamptz,
	birthday	date,
	last_message_at timestamptz,
	unsubscribed_at timestamptz,
	tags		text[] NOT NULL DEFAULT '{}',
	properties	jsonb NOT NULL DEFAULT '{}',
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE taskflow.member IS
	'Members: core columns, tags and typed custom properties';
COMMENT ON COLUMN taskflow.member.external_id IS
	'The application''s own key for the member';
COMMENT ON COLUMN taskflow.member.properties IS
	'Custom property values, keyed by taskflow.custom_property.name';

CREATE INDEX member_tags_idx ON taskflow.member USING gin (tags);
CREATE INDEX member_email_idx ON taskflow.member (pg_catalog.lower(email));
CREATE INDEX member_status_idx ON taskflow.member (status);
CREATE INDEX member_expires_at_idx ON taskflow.member (expires_at);
CREATE INDEX member_joined_at_idx ON taskflow.member (joined_at);

-- Membership groups (会員グループ) and who is in them, with dates.
CREATE TABLE taskflow.member_group (
	group_id	serial PRIMARY KEY,
	name		text NOT NULL UNIQUE
				CHECK (pg_catalog.length(name) OPERATOR(pg_catalog.>) 0),
	description text,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE taskflow.member_group IS 'Membership groups';

CREATE TABLE taskflow.group_membership (
	member_id	bigint NOT NULL
				REFERENCES taskflow.member (member_id) ON DELETE CASCADE,
	group_id	integer NOT NULL
				REFERENCES taskflow.member_group (group_id) ON DELETE CASCADE,
	joined_at	timestamptz NOT NULL,
	left_at		timestamptz,
	PRIMARY KEY (member_id, group_id, joined_at),
	-- named for what it requires: a COPY of a bad row reports the name
	CONSTRAINT group_membership_left_at_not_before_joined_at
		CHECK (left_at IS NULL OR left_at OPERATOR(pg_catalog.>=) joined_at)
);
COMMENT ON TABLE taskflow.group_membership IS
	'Who is or was in which group, from joined_at until left_at';
-- At most one open membership per member and group.
CREATE UNIQUE INDEX group_membership_open_idx
	ON taskflow.group_membership (member_id, group_id) WHERE left_at IS NULL;
CREATE INDEX group_membership_group_idx
	ON taskflow.group_membership (group_id, member_id);

-- The timeline: one row per thing that happened to a member.
CREATE TABLE taskflow.event (
	event_id	bigserial PRIMARY KEY,
	member_id	bigint NOT NULL
				REFERENCES taskflow.member (member_id) ON DELETE CASCADE,
	kind		text NOT NULL REFERENCES taskflow.event_kind (kind),
	occurred_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	amount		numeric,
	period		daterange,
	detail		jsonb NOT NULL DEFAULT '{}',
	recorded_by text NOT NULL DEFAULT CURRENT_USER,
	recorded_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	-- named for what it requires: a COPY of a bad row reports the name
	CONSTRAINT event_detail_must_be_a_json_object
		CHECK (pg_catalog.jsonb_typeof(detail) OPERATOR(pg_catalog.=) 'object')
);
COMMENT ON TABLE taskflow.event IS
	'Member timeline: payments, purchases, forms, mail, tags, notes, automation';
COMMENT ON COLUMN taskflow.event.period IS
	'For payments: the dates the payment pays for';
CREATE INDEX event_member_time_idx ON taskflow.event (member_id, occurred_at);
CREATE INDEX event_kind_time_idx ON taskflow.event (kind, occurred_at);

-- pg_dump keeps user data (CREATE EXTENSION recreates built-in rows).
SELECT pg_catalog.pg_extension_config_dump('taskflow.member_status', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('taskflow.event_kind', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('taskflow.custom_property', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.member', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.member_member_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.member_group', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.member_group_group_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.group_membership', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.event', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.event_event_id_seq', '');
-- taskflow install script, part 11: validation of member data on write.
--
-- Whatever writes a member (SQL, COPY, the engine) goes through these
-- triggers, so a bad e-mail address, tag or property value is refused with
-- an error that names the member, the property and the value.

-- Checks one custom property value against its definition; raises otherwise.
CREATE FUNCTION taskflow.check_property_value(property_name text, value jsonb,
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
		IF v_text OPERATOR(pg_catalog.~) '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]' THEN
			RAISE EXCEPTION 'invalid value for text property "%"%: control characters are not allowed',
				property_name, whose
				USING ERRCODE = 'invalid_parameter_value';
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
COMMENT ON FUNCTION taskflow.check_property_value(text, jsonb, text) IS
	'Raises a clear error unless value is valid for the named custom property';

-- True when text is a plausible single e-mail address (no spaces, no CR/LF).
CREATE FUNCTION taskflow.is_valid_email(address text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN address OPERATOR(pg_catalog.~)
	'^[^@[:space:][:cntrl:]<>(),;:"]+@[^@[:space:][:cntrl:]<>(),;:"]+\.[^@[:space:][:cntrl:]<>(),;:".]+$'
	AND pg_catalog.length(address) OPERATOR(pg_catalog.<=) 254;
COMMENT ON FUNCTION taskflow.is_valid_email(text) IS
	'True when the text is one e-mail address without spaces or control characters';

-- True when a YYYY-MM-DD text is a real calendar date.
CREATE FUNCTION taskflow.is_valid_date(value text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN make_date(substr(value, 1, 4)::int, substr(value, 6, 2)::int,
					 substr(value, 9, 2)::int) IS NOT NULL;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
	RETURN false;
END
$$;

-- Validates and normalises a member row before it is written: on INSERT
-- every column, on UPDATE the columns whose value changes — the e-mail
-- address, each custom property (check_property_value), the tags (trimmed,
-- unique, sorted; no empty, over-long or control characters).  In C
-- (src/member_write.c): it runs for every member an engine step changes.
--
-- Like CREATE FUNCTION, it skips its checks while check_function_bodies is
-- off: pg_dump sets that while restoring, and restores the data of
-- extension tables in an order that may load members before the property
-- definitions they are checked against.  The rows were checked when they
-- were first written.
CREATE FUNCTION taskflow.member_before_write()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_member_before_write';

CREATE TRIGGER member_before_insert
	BEFORE INSERT ON taskflow.member
	FOR EACH ROW EXECUTE FUNCTION taskflow.member_before_write();
CREATE TRIGGER member_before_update
	BEFORE UPDATE ON taskflow.member
	FOR EACH ROW
	WHEN (OLD.email IS DISTINCT FROM NEW.email
		  OR OLD.properties IS DISTINCT FROM NEW.properties
		  OR OLD.tags IS DISTINCT FROM NEW.tags)
	EXECUTE FUNCTION taskflow.member_before_write();
-- taskflow install script, part 12: functions to manage members.
--
-- Definitions (statuses, event kinds, properties, groups) are changed only
-- through SECURITY DEFINER functions granted to taskflow_app.  Member data
-- can be written with plain SQL too; the helpers below exist so common
-- changes need no jsonb or array juggling, and are SECURITY INVOKER (the
-- caller needs the table privileges, as with plain SQL).

-- Adds (or re-describes) a member status.
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
	DO UPDATE SET description = EXCLUDED.description;
END
$$;

-- Adds (or re-describes) a kind of timeline event.
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
	DO UPDATE SET description = EXCLUDED.description;
END
$$;

-- Defines a typed custom property.  Changing the type of a property some
-- members already have is refused when any of their values would not fit.
CREATE FUNCTION taskflow.define_property(name text, type text,
										 allowed_values text[] DEFAULT NULL,
										 description text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	bad record;
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
	   AND (allowed_values IS NULL OR cardinality(allowed_values) OPERATOR(pg_catalog.=) 0
			OR array_position(allowed_values, NULL) IS NOT NULL) THEN
		RAISE EXCEPTION 'list property "%" needs a non-empty array of allowed values', name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example ARRAY[''ブロンズ'', ''シルバー'', ''ゴールド''].';
	END IF;
	IF type OPERATOR(pg_catalog.<>) 'list' AND allowed_values IS NOT NULL THEN
		RAISE EXCEPTION 'only list properties take allowed values ("%" is %)', name, type
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	INSERT INTO taskflow.custom_property AS p (name, type, allowed_values, description)
	VALUES (define_property.name, define_property.type,
			define_property.allowed_values, define_property.description)
	ON CONFLICT ON CONSTRAINT custom_property_pkey
	DO UPDATE SET type = EXCLUDED.type, allowed_values = EXCLUDED.allowed_values,
				  description = EXCLUDED.description;

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
CREATE FUNCTION taskflow.drop_property(name text, remove_values boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	holders bigint;
	user_name text;
BEGIN
	PERFORM FROM taskflow.custom_property p WHERE p.name OPERATOR(pg_catalog.=) drop_property.name;
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
END
$$;

-- Tag changes made with add_tag / remove_tag (and by the engine's tag
-- actions) are written to the timeline; a plain UPDATE of member.tags is
-- not, so bulk loads and restores stay plain.

-- Adds a tag to a member; returns false when the member already had it.
CREATE FUNCTION taskflow.add_tag(member_id bigint, tag text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	UPDATE taskflow.member m
	   SET tags = m.tags OPERATOR(pg_catalog.||) add_tag.tag
	 WHERE m.member_id OPERATOR(pg_catalog.=) add_tag.member_id
	   AND NOT m.tags OPERATOR(pg_catalog.@>) ARRAY[btrim(add_tag.tag)];
	IF FOUND THEN
		PERFORM taskflow.record_event(member_id, 'tag_added',
									  jsonb_build_object('tag', btrim(tag)));
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
CREATE FUNCTION taskflow.remove_tag(member_id bigint, tag text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	UPDATE taskflow.member m
	   SET tags = array_remove(m.tags, remove_tag.tag)
	 WHERE m.member_id OPERATOR(pg_catalog.=) remove_tag.member_id
	   AND m.tags OPERATOR(pg_catalog.@>) ARRAY[remove_tag.tag];
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM taskflow.record_event(member_id, 'tag_removed', jsonb_build_object('tag', tag));
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
	INSERT INTO taskflow.member_group (name, description)
	VALUES (btrim(name), description) RETURNING group_id INTO new_id;
	RETURN new_id;
EXCEPTION WHEN unique_violation THEN
	RAISE EXCEPTION 'group "%" already exists', name USING ERRCODE = 'duplicate_object';
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
-- Returns false when the member is already in the group.
CREATE FUNCTION taskflow.join_group(member_id bigint, group_name text,
									at timestamptz DEFAULT taskflow.clock())
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	gid integer := taskflow.group_id(group_name);
BEGIN
	-- a NULL would fail as a bare "null value" error, or be ignored
	IF member_id IS NULL OR at IS NULL THEN
		RAISE EXCEPTION '% cannot be NULL', CASE WHEN member_id IS NULL THEN 'member_id' ELSE 'at' END
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Leave "at" out for taskflow.clock().';
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
CREATE FUNCTION taskflow.leave_group(member_id bigint, group_name text,
									 at timestamptz DEFAULT taskflow.clock())
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	gid integer := taskflow.group_id(group_name);
BEGIN
	-- a NULL would fail as a bare "null value" error, or be ignored
	IF member_id IS NULL OR at IS NULL THEN
		RAISE EXCEPTION '% cannot be NULL', CASE WHEN member_id IS NULL THEN 'member_id' ELSE 'at' END
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Leave "at" out for taskflow.clock().';
	END IF;
	UPDATE taskflow.group_membership gm SET left_at = greatest(at, gm.joined_at)
	 WHERE gm.member_id OPERATOR(pg_catalog.=) leave_group.member_id
	   AND gm.group_id OPERATOR(pg_catalog.=) gid AND gm.left_at IS NULL;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
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
-- taskflow install script, part 13: helper predicates for criteria.
--
-- Criteria are SQL boolean expressions over a member row.  These helpers
-- cover the common questions so users rarely write subqueries; every one is
-- "as of" taskflow.clock(), so a search as of an instant is exact: events
-- recorded after that instant do not count yet.  Day counts are calendar
-- days in the session's TimeZone (the engine sets the chain's zone).
-- The simple ones are plain SQL expressions the planner inlines, so
-- indexes on the member columns still apply.

-- Calendar days from the day of ts to today (negative when ts is later).
CREATE FUNCTION taskflow.days_since(ts timestamptz)
RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (taskflow.clock()::date OPERATOR(pg_catalog.-) ts::date);

-- Calendar days from today to the day of ts (negative when ts is past).
CREATE FUNCTION taskflow.days_until(ts timestamptz)
RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (ts::date OPERATOR(pg_catalog.-) taskflow.clock()::date);

-- Calendar days from today to the next anniversary of a date (birthday).
-- A 29 February anniversary falls on 28 February in common years.
CREATE FUNCTION taskflow.days_until_anniversary(d date)
RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (
	SELECT CASE WHEN y.this_year OPERATOR(pg_catalog.>=) y.t
				THEN y.this_year OPERATOR(pg_catalog.-) y.t
				ELSE y.next_year OPERATOR(pg_catalog.-) y.t END
	  FROM (SELECT c.t,
				   (d OPERATOR(pg_catalog.+) make_interval(years => c.age))::date AS this_year,
				   (d OPERATOR(pg_catalog.+) make_interval(years => c.age OPERATOR(pg_catalog.+) 1))::date AS next_year
			  FROM (SELECT taskflow.clock()::date AS t,
						   (extract(year FROM taskflow.clock()::date)
							OPERATOR(pg_catalog.-) extract(year FROM d))::integer AS age) c) y);

-- True when ts lies in [clock, clock + span).
CREATE FUNCTION taskflow.within_next(ts timestamptz, span interval)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN ts OPERATOR(pg_catalog.>=) taskflow.clock()
	AND ts OPERATOR(pg_catalog.<) (taskflow.clock() OPERATOR(pg_catalog.+) span);

-- True when ts lies in (clock - span, clock].
CREATE FUNCTION taskflow.within_last(ts timestamptz, span interval)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN ts OPERATOR(pg_catalog.<=) taskflow.clock()
	AND ts OPERATOR(pg_catalog.>) (taskflow.clock() OPERATOR(pg_catalog.-) span);

-- Tag tests on the member's tags column (GIN-indexed).
CREATE FUNCTION taskflow.has_tag(tags text[], tag text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN tags OPERATOR(pg_catalog.@>) ARRAY[tag];

CREATE FUNCTION taskflow.has_any_tag(tags text[], wanted text[])
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN tags OPERATOR(pg_catalog.&&) wanted;

CREATE FUNCTION taskflow.has_all_tags(tags text[], wanted text[])
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN tags OPERATOR(pg_catalog.@>) wanted;

-- Typed reads of custom properties (NULL when the member has no value).
-- Criteria validation checks that the property exists and has that type.
CREATE FUNCTION taskflow.prop_text(properties jsonb, name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN properties OPERATOR(pg_catalog.->>) name;

CREATE FUNCTION taskflow.prop_number(properties jsonb, name text)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (properties OPERATOR(pg_catalog.->>) name)::numeric;

CREATE FUNCTION taskflow.prop_bool(properties jsonb, name text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (properties OPERATOR(pg_catalog.->>) name)::boolean;

CREATE FUNCTION taskflow.prop_date(properties jsonb, name text)
RETURNS date
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (properties OPERATOR(pg_catalog.->>) name)::date;

-- True when the member is in the named group as of the clock.
CREATE FUNCTION taskflow.in_group(member_id bigint, group_name text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN EXISTS (
	SELECT FROM taskflow.group_membership gm
	  JOIN taskflow.member_group g ON g.group_id OPERATOR(pg_catalog.=) gm.group_id
	 WHERE gm.member_id OPERATOR(pg_catalog.=) in_group.member_id
	   AND g.name OPERATOR(pg_catalog.=) in_group.group_name
	   AND gm.joined_at OPERATOR(pg_catalog.<=) taskflow.clock()
	   AND (gm.left_at IS NULL OR gm.left_at OPERATOR(pg_catalog.>) taskflow.clock()));

-- Number of events of a kind, optionally only those within the last span.
CREATE FUNCTION taskflow.event_count(member_id bigint, kind text,
									 within interval DEFAULT NULL)
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (
	SELECT count(*) FROM taskflow.event e
	 WHERE e.member_id OPERATOR(pg_catalog.=) event_count.member_id
	   AND e.kind OPERATOR(pg_catalog.=) event_count.kind
	   AND e.occurred_at OPERATOR(pg_catalog.<=) taskflow.clock()
	   AND (within IS NULL OR e.occurred_at OPERATOR(pg_catalog.>)
							  (taskflow.clock() OPERATOR(pg_catalog.-) within)));

-- When the member's latest event of a kind happened (NULL: never).
CREATE FUNCTION taskflow.last_event_at(member_id bigint, kind text)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (
	SELECT max(e.occurred_at) FROM taskflow.event e
	 WHERE e.member_id OPERATOR(pg_catalog.=) last_event_at.member_id
	   AND e.kind OPERATOR(pg_catalog.=) last_event_at.kind
	   AND e.occurred_at OPERATOR(pg_catalog.<=) taskflow.clock());

-- Number of payments the member has made (有料契約 N カ月目: paid_count = N).
CREATE FUNCTION taskflow.paid_count(member_id bigint)
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
RETURN taskflow.event_count(member_id, 'payment');

-- When the member last paid (NULL: never).
CREATE FUNCTION taskflow.last_payment_at(member_id bigint)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
RETURN taskflow.last_event_at(member_id, 'payment');

-- True when a payment made within the last span exists.
CREATE FUNCTION taskflow.paid_within(member_id bigint, span interval)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN taskflow.event_count(member_id, 'payment', span) OPERATOR(pg_catalog.>) 0;

-- True when a payment covering the given day has arrived.
CREATE FUNCTION taskflow.paid_for(member_id bigint, day date)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN EXISTS (
	SELECT FROM taskflow.event e
	 WHERE e.member_id OPERATOR(pg_catalog.=) paid_for.member_id
	   AND e.kind OPERATOR(pg_catalog.=) 'payment'
	   AND e.period OPERATOR(pg_catalog.@>) paid_for.day
	   AND e.occurred_at OPERATOR(pg_catalog.<=) taskflow.clock());

-- True when the payment for the member's month n (month 1 starts on the
-- join date) has arrived.
CREATE FUNCTION taskflow.paid_for_month(member_id bigint, n integer)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (
	SELECT taskflow.paid_for(m.member_id,
							 (m.joined_at::date OPERATOR(pg_catalog.+)
							  make_interval(months => n OPERATOR(pg_catalog.-) 1))::date)
	  FROM taskflow.member m
	 WHERE m.member_id OPERATOR(pg_catalog.=) paid_for_month.member_id);
-- taskflow install script, part 20: saved search criteria.
--
-- A criteria is a named SQL boolean expression over one member row, for
-- example  status = 'trial' AND days_since(joined_at) = 14.  It is validated
-- when saved (src/criteria.c) and stored twice: as written, and normalized
-- (deparsed with every name schema-qualified), which is what runs.  It runs
-- as its owner, the role that saved it, so it never sees more than that role
-- may read.  Users never write taskflow.criteria: save_criteria() and
-- drop_criteria() are C dispatchers (src/privileges.c) that call the
-- internal functions below as the extension owner, passing the caller.

CREATE TABLE taskflow.criteria (
	criteria_id serial PRIMARY KEY,
	name		text NOT NULL UNIQUE
				CHECK (pg_catalog.char_length(name) OPERATOR(pg_catalog.<=) 63
					   AND name OPERATOR(pg_catalog.!~) '^\s|\s$|^$|[[:cntrl:]]'),
	description text,
	expression	text NOT NULL,
	normalized	text NOT NULL,
	properties	text[] NOT NULL DEFAULT '{}',
	owner		regrole NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at	timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE taskflow.criteria IS
	'Saved search criteria; written only by taskflow.save_criteria() and taskflow.drop_criteria()';
COMMENT ON COLUMN taskflow.criteria.expression IS 'The expression as the user wrote it';
COMMENT ON COLUMN taskflow.criteria.normalized IS
	'The validated expression with every name schema-qualified: what actually runs';
COMMENT ON COLUMN taskflow.criteria.properties IS 'Custom properties the criteria reads';
COMMENT ON COLUMN taskflow.criteria.owner IS 'The role the criteria runs as';

SELECT pg_catalog.pg_extension_config_dump('taskflow.criteria', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.criteria_criteria_id_seq', '');
REVOKE ALL ON taskflow.criteria FROM PUBLIC;
REVOKE ALL ON SEQUENCE taskflow.criteria_criteria_id_seq FROM PUBLIC;

-- The criteria the current user may use: those of roles whose privileges
-- they have.  security_barrier, so a leaky function in a user's WHERE
-- clause cannot see the other rows.
CREATE VIEW taskflow.criteria_list WITH (security_barrier) AS
SELECT c.criteria_id, c.name, c.description, c.expression, c.normalized,
	   c.properties, c.owner, c.created_at, c.updated_at
  FROM taskflow.criteria c
 WHERE pg_catalog.pg_has_role(CURRENT_USER, c.owner::pg_catalog.oid, 'USAGE');
COMMENT ON VIEW taskflow.criteria_list IS
	'Saved criteria the current user may use (owned by a role whose privileges they have)';

-- Internal: validates expression for a criteria that will run as owner;
-- returns the normalized form and the custom properties it reads.
CREATE FUNCTION taskflow._criteria_validate(owner regrole, expression text,
											criteria_name text,
											OUT normalized text,
											OUT properties text[])
RETURNS record
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'taskflow_criteria_validate';

-- Internal, called by taskflow.save_criteria() as the extension owner.
-- Replacing a criteria needs the privileges of its owner, and keeps that
-- owner: what runs for the chains using it keeps the same privileges.  Only
-- when the owning role has been dropped does the caller (then necessarily a
-- superuser) take it over.  The expression is validated as the owner.
CREATE FUNCTION taskflow._save_criteria(caller regrole, criteria_name text,
										criteria_expression text,
										criteria_description text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	existing taskflow.criteria;
	run_as regrole := caller;
	checked record;
	saved_id integer;
BEGIN
	IF criteria_name IS NULL OR btrim(criteria_name) OPERATOR(pg_catalog.=) '' THEN
		RAISE EXCEPTION 'a criteria needs a name'
			USING ERRCODE = 'invalid_name';
	END IF;
	IF char_length(criteria_name) OPERATOR(pg_catalog.>) 63 THEN
		RAISE EXCEPTION 'criteria name "%" is too long', criteria_name
			USING ERRCODE = 'invalid_name',
				  HINT = 'A criteria name is 1 to 63 characters.';
	END IF;
	IF criteria_name OPERATOR(pg_catalog.~) '[[:cntrl:]]' THEN
		RAISE EXCEPTION 'a criteria name cannot contain control characters'
			USING ERRCODE = 'invalid_name';
	END IF;
	IF criteria_name OPERATOR(pg_catalog.~) '^\s|\s$' THEN
		RAISE EXCEPTION 'a criteria name cannot begin or end with white space'
			USING ERRCODE = 'invalid_name',
				  DETAIL = format('The name was %s.', quote_literal(criteria_name));
	END IF;

	SELECT * INTO existing FROM taskflow.criteria c
	 WHERE c.name OPERATOR(pg_catalog.=) criteria_name
	   FOR UPDATE;
	IF FOUND THEN
		IF NOT pg_has_role(caller::oid, existing.owner::oid, 'USAGE') THEN
			RAISE EXCEPTION 'permission denied for criteria "%"', criteria_name
				USING ERRCODE = 'insufficient_privilege',
					  DETAIL = format('It belongs to role "%s", whose privileges role "%s" does not have.',
									  pg_get_userbyid(existing.owner), pg_get_userbyid(caller)),
					  HINT = 'Only the owning role and its members can replace it; choose another name.';
		END IF;
		IF EXISTS (SELECT FROM pg_catalog.pg_roles r
				   WHERE r.oid OPERATOR(pg_catalog.=) existing.owner::oid) THEN
			run_as := existing.owner;
		END IF;
	END IF;

	SELECT * INTO STRICT checked
	  FROM taskflow._criteria_validate(run_as, criteria_expression, criteria_name);

	IF existing.criteria_id IS NULL THEN
		INSERT INTO taskflow.criteria (name, description, expression, normalized,
									   properties, owner)
		VALUES (criteria_name, criteria_description, criteria_expression,
				checked.normalized, checked.properties, run_as)
		RETURNING criteria_id INTO saved_id;
	ELSE
		UPDATE taskflow.criteria c
		   SET description = coalesce(criteria_description, c.description),
			   expression = criteria_expression,
			   normalized = checked.normalized,
			   properties = checked.properties,
			   owner = run_as,
			   updated_at = now()
		 WHERE c.criteria_id OPERATOR(pg_catalog.=) existing.criteria_id;
		saved_id := existing.criteria_id;
	END IF;
	RETURN saved_id;
END
$$;

-- Saves (creates or replaces) a criteria; returns its criteria_id.
CREATE FUNCTION taskflow.save_criteria(name text, expression text,
									   description text DEFAULT NULL)
RETURNS integer
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'taskflow_api_call';
COMMENT ON FUNCTION taskflow.save_criteria(text, text, text) IS
	'Validates and saves a criteria: taskflow.save_criteria(''有効期限7日前'', ''days_until(expires_at) = 7'')';

-- Internal, called by taskflow.drop_criteria() as the extension owner.
CREATE FUNCTION taskflow._drop_criteria(caller regrole, criteria_name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	existing taskflow.criteria;
	user_schema text;
	user_table text;
BEGIN
	SELECT * INTO existing FROM taskflow.criteria c
	 WHERE c.name OPERATOR(pg_catalog.=) criteria_name
	   FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'criteria "%" does not exist', criteria_name
			USING ERRCODE = 'undefined_object';
	END IF;
	IF NOT pg_has_role(caller::oid, existing.owner::oid, 'USAGE') THEN
		RAISE EXCEPTION 'permission denied for criteria "%"', criteria_name
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('It belongs to role "%s", whose privileges role "%s" does not have.',
								  pg_get_userbyid(existing.owner), pg_get_userbyid(caller)),
				  HINT = 'Only the owning role and its members can drop it.';
	END IF;

	-- Dependency check: what uses a criteria (tasks, chains) references
	-- taskflow.criteria with a foreign key without ON DELETE CASCADE, so
	-- deleting a criteria in use fails here and is reported with the table
	-- that uses it.  Modules may add a friendlier check before the DELETE.
	DELETE FROM taskflow.criteria c
	 WHERE c.criteria_id OPERATOR(pg_catalog.=) existing.criteria_id;
EXCEPTION WHEN foreign_key_violation THEN
	GET STACKED DIAGNOSTICS user_schema = SCHEMA_NAME, user_table = TABLE_NAME;
	RAISE EXCEPTION 'criteria "%" is still used by %', criteria_name,
		format('%I.%I', user_schema, user_table)
		USING ERRCODE = 'dependent_objects_still_exist',
			  HINT = 'Drop or change what uses it first.';
END
$$;

-- Drops a criteria (only its owning role and members of it may).
CREATE FUNCTION taskflow.drop_criteria(name text)
RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'taskflow_api_call';
COMMENT ON FUNCTION taskflow.drop_criteria(text) IS
	'Drops a criteria owned by a role whose privileges you have';

-- Validates an expression as the caller without saving it; returns the
-- normalized form, or raises the error save_criteria() would.
CREATE FUNCTION taskflow.check_criteria(expression text)
RETURNS text
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'taskflow_check_criteria';
COMMENT ON FUNCTION taskflow.check_criteria(text) IS
	'Validates a criteria expression without saving it and returns its normalized form';

-- The members a saved criteria matches as of an instant, by member_id.
CREATE FUNCTION taskflow.search(criteria text,
								as_of timestamptz DEFAULT taskflow.clock())
RETURNS SETOF taskflow.member
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'taskflow_search';
COMMENT ON FUNCTION taskflow.search(text, timestamptz) IS
	'Members a saved criteria matches as of an instant (default: taskflow.clock()), by member_id';

-- How many members a saved criteria matches as of an instant.
CREATE FUNCTION taskflow.count(criteria text,
							   as_of timestamptz DEFAULT taskflow.clock())
RETURNS bigint
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'taskflow_count';
COMMENT ON FUNCTION taskflow.count(text, timestamptz) IS
	'How many members a saved criteria matches as of an instant (default: taskflow.clock())';

-- An ad-hoc search: the expression is validated like a criteria and runs as
-- the caller.
CREATE FUNCTION taskflow.search_expression(expression text,
										   as_of timestamptz DEFAULT taskflow.clock())
RETURNS SETOF taskflow.member
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'taskflow_search_expression';
COMMENT ON FUNCTION taskflow.search_expression(text, timestamptz) IS
	'Members an unsaved criteria expression matches as of an instant, by member_id';

-- What uses a custom property, for taskflow.drop_property(): the first
-- criteria reading it, as 'criteria "name"', or NULL.
CREATE FUNCTION taskflow.property_used_by(property_name text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN (SELECT pg_catalog.format('criteria "%s"', c.name)
		  FROM taskflow.criteria c
		 WHERE property_name OPERATOR(pg_catalog.=) ANY (c.properties)
		 ORDER BY c.name
		 LIMIT 1);

REVOKE ALL ON FUNCTION
	taskflow._criteria_validate(regrole, text, text),
	taskflow._save_criteria(regrole, text, text, text),
	taskflow._drop_criteria(regrole, text),
	taskflow.property_used_by(text)
	FROM PUBLIC;
REVOKE ALL ON FUNCTION
	taskflow.save_criteria(text, text, text), taskflow.drop_criteria(text),
	taskflow.check_criteria(text),
	taskflow.search(text, timestamptz), taskflow.count(text, timestamptz),
	taskflow.search_expression(text, timestamptz)
	FROM PUBLIC;

GRANT SELECT ON taskflow.criteria_list TO taskflow_app, taskflow_operator;
GRANT EXECUTE ON FUNCTION
	taskflow.save_criteria(text, text, text), taskflow.drop_criteria(text)
	TO taskflow_app;
GRANT EXECUTE ON FUNCTION
	taskflow.check_criteria(text),
	taskflow.search(text, timestamptz), taskflow.count(text, timestamptz),
	taskflow.search_expression(text, timestamptz)
	TO taskflow_app, taskflow_operator;
-- taskflow install script, part 25: message templates (the "Templates" part
-- of delivery).
--
-- A template is the subject and bodies of a message with merge fields
-- ({{name}}, {{properties.plan}}, {{name|お客様}}).  Templates are validated
-- when saved (syntax, every field a member column or defined property,
-- header injection, addresses), so a bad one is refused at once and never
-- fails in the worker.  Rendering is in C (src/template.c) and reads member
-- rows directly; see doc/templates.md.  A template belongs to the role that
-- created it: only that role (and its members) may change or drop it, or
-- send it from a task.  create_template, alter_template and drop_template
-- are C dispatchers (src/privileges.c) that call the internal functions
-- below as the extension owner, passing the caller.

CREATE TABLE taskflow.template (
	template_id	serial PRIMARY KEY,
	name		text NOT NULL UNIQUE,
	-- a taskflow.channel; the foreign key is added by src/sql/40_channels.sql,
	-- which creates that table
	channel		text NOT NULL DEFAULT 'email',
	subject		text,
	body_text	text,
	body_html	text,
	sender_name text,
	sender_address text,
	reply_to	text,
	transactional boolean NOT NULL DEFAULT false,
	missing_field text NOT NULL DEFAULT 'empty'
				CHECK (missing_field OPERATOR(pg_catalog.=) ANY (ARRAY['empty', 'refuse'])),
	description text,
	owner		regrole NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at	timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE taskflow.template IS
	'Message templates with merge fields; write them with taskflow.create_template()';
COMMENT ON COLUMN taskflow.template.transactional IS
	'Transactional messages (receipts, password resets) are sent even to unsubscribed members';
COMMENT ON COLUMN taskflow.template.missing_field IS
	'A merge field without value or default: empty (render nothing) or refuse (no message)';
COMMENT ON COLUMN taskflow.template.owner IS
	'The role that created the template; only it and its members may change it or use it in a task';

SELECT pg_catalog.pg_extension_config_dump('taskflow.template', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.template_template_id_seq', '');

-- A rendered message; what taskflow.render_message() returns.
CREATE TYPE taskflow.rendered_message AS (
	subject		text,
	body_text	text,
	body_html	text
);

------------------------------------------------------------------ C renderer

-- The kind of a channel ('smtp' or 'webhook'), NULL for an unknown one.
-- PL/pgSQL because taskflow.channel is created later in the script
-- (src/sql/40_channels.sql).
CREATE FUNCTION taskflow.channel_kind(channel text)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN (SELECT c.kind FROM taskflow.channel c WHERE c.name OPERATOR(pg_catalog.=) channel);
END
$$;
COMMENT ON FUNCTION taskflow.channel_kind(text) IS
	'The kind of a channel: smtp or webhook (NULL when there is no such channel)';

-- The channels' names for a message: '''email'' and ''webhook'''.
CREATE FUNCTION taskflow._channel_list()
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	names text[] := ARRAY(SELECT quote_literal(c.name) FROM taskflow.channel c ORDER BY c.name);
	n integer := cardinality(names);
BEGIN
	IF n OPERATOR(pg_catalog.<=) 1 THEN
		RETURN coalesce(names[1], 'none');
	END IF;
	RETURN array_to_string(names[1:n OPERATOR(pg_catalog.-) 1], ', ')
		   OPERATOR(pg_catalog.||) ' and ' OPERATOR(pg_catalog.||) names[n];
END
$$;

-- The distinct merge fields of a template text; raises on a syntax error,
-- naming part (for example 'subject of template "x"') and the position.
CREATE FUNCTION taskflow.template_fields(template_text text, part text DEFAULT NULL)
RETURNS text[]
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'taskflow_template_fields';
COMMENT ON FUNCTION taskflow.template_fields(text, text) IS
	'Merge-field names of a template text, in order of first use; raises on a syntax error';

-- Renders a template with the values of a JSON object (to_jsonb() of a
-- member row).  STABLE, not IMMUTABLE: timestamps are written in the
-- session's TimeZone.
CREATE FUNCTION taskflow.render(template_text text, fields jsonb,
								html boolean DEFAULT false,
								refuse_missing boolean DEFAULT false)
RETURNS text
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'taskflow_render';
COMMENT ON FUNCTION taskflow.render(text, jsonb, boolean, boolean) IS
	'Renders a template with the fields of a JSON object; html escapes values';

-- Renders one part ('subject', 'text', 'html' or 'json') of a template for a
-- member row, read directly (no to_jsonb): the engine's per-row renderer.
CREATE FUNCTION taskflow.render_member(template_text text, m taskflow.member,
									   part text,
									   refuse_missing boolean DEFAULT false,
									   template_name text DEFAULT NULL)
RETURNS text
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'taskflow_render_member';
COMMENT ON FUNCTION taskflow.render_member(text, taskflow.member, text, boolean, text) IS
	'Renders one part (subject, text, html or json) of a template for a member row';

-- The subject and bodies of template t for member m, for a channel of the
-- given kind.  The text body of a template for a webhook channel is its
-- request body, usually JSON: values are escaped as JSON-string content
-- there, so no value can break out of its string.  A plain SQL function
-- so the planner inlines it: in "SELECT (taskflow.render_message(t, m)).*"
-- each output column becomes one render_member() call, and no row is
-- converted to jsonb.  It has no SET search_path because that would stop
-- the inlining; the body is parsed when created (SQL-standard body) and
-- every name in it is qualified, so the caller's search_path cannot matter.
-- The engine, which joins the channel row anyway, passes its kind (a
-- channel_kind() call per row was PL/pgSQL, the outbox INSERT's biggest
-- cost after the rows themselves).
CREATE FUNCTION taskflow._render_message(t taskflow.template, m taskflow.member, kind text)
RETURNS taskflow.rendered_message
LANGUAGE sql STABLE PARALLEL SAFE
RETURN ROW(
	taskflow.render_member(t.subject, m, 'subject',
						   t.missing_field OPERATOR(pg_catalog.=) 'refuse', t.name),
	taskflow.render_member(t.body_text, m,
						   CASE WHEN kind OPERATOR(pg_catalog.=) 'webhook'
								THEN 'json' ELSE 'text' END,
						   t.missing_field OPERATOR(pg_catalog.=) 'refuse', t.name),
	taskflow.render_member(t.body_html, m, 'html',
						   t.missing_field OPERATOR(pg_catalog.=) 'refuse', t.name)
)::taskflow.rendered_message;

-- The subject and bodies of template t for member m ('webhook', or any
-- channel of kind webhook, gets a JSON-escaped text body).
CREATE FUNCTION taskflow.render_message(t taskflow.template, m taskflow.member)
RETURNS taskflow.rendered_message
LANGUAGE sql STABLE PARALLEL SAFE
RETURN taskflow._render_message(t, m, taskflow.channel_kind(t.channel));
COMMENT ON FUNCTION taskflow.render_message(taskflow.template, taskflow.member) IS
	'Subject, text body and HTML body of a template rendered for a member';

------------------------------------------------------------------ validation

-- Raises unless every merge field of one part of a template is a member
-- column or properties.<a defined property>.
CREATE FUNCTION taskflow._check_template_fields(template_name text, part text,
												template_text text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	what text := format('%s of template "%s"', part, template_name);
	field text;
	columns text[];
BEGIN
	SELECT array_agg(a.attname::text ORDER BY a.attnum) INTO columns
	  FROM pg_catalog.pg_attribute a
	 WHERE a.attrelid OPERATOR(pg_catalog.=) 'taskflow.member'::pg_catalog.regclass
	   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
	   AND a.attname OPERATOR(pg_catalog.<>) 'properties';
	FOREACH field IN ARRAY coalesce(taskflow.template_fields(template_text, what), '{}') LOOP
		IF field OPERATOR(pg_catalog.^@) 'properties.' THEN
			IF NOT EXISTS (SELECT FROM taskflow.custom_property p
						   WHERE p.name OPERATOR(pg_catalog.=) substr(field, 12)) THEN
				RAISE EXCEPTION 'unknown property "%" in merge field {{%}} in %',
					substr(field, 12), field, what
					USING ERRCODE = 'undefined_object',
						  HINT = coalesce('Defined properties: ' OPERATOR(pg_catalog.||)
									(SELECT string_agg(p.name, ', ' ORDER BY p.name)
									   FROM taskflow.custom_property p) OPERATOR(pg_catalog.||) '.',
									'No property is defined yet; see taskflow.define_property().');
			END IF;
		ELSIF NOT field OPERATOR(pg_catalog.=) ANY (columns) THEN
			RAISE EXCEPTION 'unknown merge field {{%}} in %', field, what
				USING ERRCODE = 'undefined_column',
					  HINT = format('Merge fields are member columns (%s) or properties.<name> of a defined property.',
									array_to_string(columns, ', '));
		END IF;
	END LOOP;
END
$$;

-- Raises unless a header value (subject, sender name or address, reply-to)
-- is one line without control characters: a line break in a header would
-- let the text add headers of its own (header injection).
CREATE FUNCTION taskflow._check_template_header(template_name text, what text, value text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	pos integer := regexp_instr(value, '[\x01-\x1f\x7f]');
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

-- Raises unless an address of a template is one valid e-mail address.
CREATE FUNCTION taskflow._check_template_address(template_name text, what text, address text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM taskflow._check_template_header(template_name, what, address);
	IF NOT taskflow.is_valid_email(address) THEN
		RAISE EXCEPTION 'invalid % % for template "%"', what, to_json(address), template_name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give one address like info@example.jp, without a display name (set sender_name for that).';
	END IF;
END
$$;

-- Raises unless a body has no control characters other than tab and line
-- breaks.
CREATE FUNCTION taskflow._check_template_body(template_name text, what text, body text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	pos integer := regexp_instr(body, '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]');
BEGIN
	IF pos OPERATOR(pg_catalog.>) 0 THEN
		RAISE EXCEPTION '% of template "%" contains control character U+% at character %',
			what, template_name, upper(lpad(to_hex(ascii(substr(body, pos, 1))), 4, '0')), pos
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A body may contain tabs and line breaks, but no other control characters.';
	END IF;
END
$$;

-- Raises unless the settings of a template (everything but its merge
-- fields) are valid.
CREATE FUNCTION taskflow._check_template_settings(t taskflow.template)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF t.name IS NULL OR btrim(t.name) OPERATOR(pg_catalog.=) ''
	   OR t.name OPERATOR(pg_catalog.~) '[[:cntrl:]]' THEN
		RAISE EXCEPTION 'invalid template name %', coalesce(to_json(t.name)::text, 'NULL')
			USING ERRCODE = 'invalid_name',
				  HINT = 'A template name is not empty and has no control characters.';
	END IF;
	IF taskflow.channel_kind(t.channel) IS NULL THEN
		RAISE EXCEPTION 'invalid channel % for template "%"',
			coalesce(quote_literal(t.channel), 'NULL'), t.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The channels are ' OPERATOR(pg_catalog.||) taskflow._channel_list()
						 OPERATOR(pg_catalog.||) '; add one with taskflow.configure_channel().';
	END IF;
	IF t.missing_field IS NULL
	   OR NOT t.missing_field OPERATOR(pg_catalog.=) ANY (ARRAY['empty', 'refuse']) THEN
		RAISE EXCEPTION 'invalid missing_field % for template "%"',
			coalesce(quote_literal(t.missing_field), 'NULL'), t.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = '''empty'' renders a merge field without value as nothing; ''refuse'' sends no message to that member.';
	END IF;
	IF taskflow.channel_kind(t.channel) OPERATOR(pg_catalog.=) 'smtp'
	   AND (t.subject IS NULL OR btrim(t.subject) OPERATOR(pg_catalog.=) '') THEN
		RAISE EXCEPTION 'e-mail template "%" needs a subject', t.name
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF t.body_text IS NULL THEN
		RAISE EXCEPTION 'template "%" needs a text body (body_text)', t.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Every message has a plain-text body; an e-mail may add an HTML body (body_html).';
	END IF;
	IF octet_length(t.subject) OPERATOR(pg_catalog.>) 998 THEN
		RAISE EXCEPTION 'subject of template "%" is too long (% bytes)', t.name, octet_length(t.subject)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A subject may have at most 998 bytes; a Japanese character takes 3.';
	END IF;
END
$$;

-- Raises, with a clear message, unless a template is valid: its settings,
-- header injection, addresses, control characters and every merge field.
CREATE FUNCTION taskflow._check_template(t taskflow.template)
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
END
$$;

------------------------------------------------------------------ functions

-- What uses a template, for drop_template: 'task "<name>"', or NULL.  Tasks
-- live in taskflow.task, which a later part of the script creates.
CREATE FUNCTION taskflow.template_used_by(template_id integer)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	task_name text;
BEGIN
	IF to_regclass('taskflow.task') IS NULL THEN
		RETURN NULL;
	END IF;
	SELECT t.name INTO task_name FROM taskflow.task t
	 WHERE t.template_id OPERATOR(pg_catalog.=) template_used_by.template_id
	 ORDER BY t.name LIMIT 1;
	RETURN CASE WHEN task_name IS NULL THEN NULL
				ELSE format('task "%s"', task_name) END;
END
$$;
COMMENT ON FUNCTION taskflow.template_used_by(integer) IS
	'What uses a template (''task "<name>"''), or NULL when nothing does';

-- Resolves a template name for the caller, who must have the privileges
-- of its owner (a template whose owner was dropped: a superuser).
CREATE FUNCTION taskflow._template_for(caller regrole, template_name text, for_change boolean)
RETURNS taskflow.template
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t taskflow.template;
	allowed boolean;
BEGIN
	IF template_name IS NULL THEN
		RAISE EXCEPTION 'a template name is required'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO t FROM taskflow.template x WHERE x.name OPERATOR(pg_catalog.=) template_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'template "%" does not exist', template_name
			USING ERRCODE = 'undefined_object';
	END IF;
	-- the owner's privileges; when the owner was dropped, a superuser's
	IF EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) t.owner) THEN
		allowed := pg_has_role(caller, t.owner, 'USAGE');
	ELSE
		allowed := (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) caller);
	END IF;
	IF NOT allowed THEN
		RAISE EXCEPTION 'permission denied for template "%"', template_name
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('It belongs to role %s, whose privileges role %s does not have.', t.owner, caller),
				  HINT = CASE WHEN for_change THEN 'Only the owning role and its members can change or drop it.'
							  ELSE 'A task may only send templates of roles you belong to.' END;
	END IF;
	RETURN t;
END
$$;

-- create_template, as the extension owner on behalf of caller, who owns
-- the template.
CREATE FUNCTION taskflow._create_template(caller regrole, name text, subject text, body_text text,
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
	t.name := _create_template.name;
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

-- Creates a template owned by the caller; returns its template_id.  Empty
-- strings count as not given for the optional texts.
CREATE FUNCTION taskflow.create_template(name text,
										 subject text,
										 body_text text,
										 body_html text DEFAULT NULL,
										 sender_name text DEFAULT NULL,
										 sender_address text DEFAULT NULL,
										 reply_to text DEFAULT NULL,
										 channel text DEFAULT 'email',
										 transactional boolean DEFAULT false,
										 missing_field text DEFAULT 'empty',
										 description text DEFAULT NULL)
RETURNS integer
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_api_call';
COMMENT ON FUNCTION taskflow.create_template IS
	'Creates a message template (validated: syntax, merge fields, headers, addresses); returns its id';

-- alter_template, as the extension owner on behalf of caller.
CREATE FUNCTION taskflow._alter_template(caller regrole, name text, subject text, body_text text,
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
	t.name := coalesce(new_name, t.name);
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

-- Changes a template: NULL leaves a setting as it is, '' clears an optional
-- text (body_html, sender_name, sender_address, reply_to, description).
CREATE FUNCTION taskflow.alter_template(name text,
										subject text DEFAULT NULL,
										body_text text DEFAULT NULL,
										body_html text DEFAULT NULL,
										sender_name text DEFAULT NULL,
										sender_address text DEFAULT NULL,
										reply_to text DEFAULT NULL,
										channel text DEFAULT NULL,
										transactional boolean DEFAULT NULL,
										missing_field text DEFAULT NULL,
										description text DEFAULT NULL,
										new_name text DEFAULT NULL)
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_api_call';
COMMENT ON FUNCTION taskflow.alter_template IS
	'Changes a template; NULL leaves a setting as it is, '''' clears an optional text';

-- drop_template, as the extension owner on behalf of caller; refused while
-- something (a task) uses the template.
CREATE FUNCTION taskflow._drop_template(caller regrole, name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	id integer := (taskflow._template_for(caller, name, true)).template_id;
	used_by text;
BEGIN
	PERFORM FROM taskflow.template x WHERE x.template_id OPERATOR(pg_catalog.=) id FOR UPDATE;
	used_by := taskflow.template_used_by(id);
	IF used_by IS NOT NULL THEN
		RAISE EXCEPTION 'template "%" is used by %', _drop_template.name, used_by
			USING ERRCODE = 'dependent_objects_still_exist',
				  HINT = 'Give the task another template, or drop the task, first.';
	END IF;
	DELETE FROM taskflow.template x WHERE x.template_id OPERATOR(pg_catalog.=) id;
END
$$;

-- Drops a template (only its owning role and members of it may).
CREATE FUNCTION taskflow.drop_template(name text)
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_api_call';
COMMENT ON FUNCTION taskflow.drop_template(text) IS
	'Drops a template unless a task uses it';

-- What a member would receive from a template.
CREATE FUNCTION taskflow.preview_template(name text, member_id bigint)
RETURNS TABLE (subject text, body_text text, body_html text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t taskflow.template;
	m taskflow.member;
	r taskflow.rendered_message;
BEGIN
	SELECT * INTO t FROM taskflow.template x
	 WHERE x.name OPERATOR(pg_catalog.=) preview_template.name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'template "%" does not exist', preview_template.name
			USING ERRCODE = 'undefined_object';
	END IF;
	SELECT * INTO m FROM taskflow.member x
	 WHERE x.member_id OPERATOR(pg_catalog.=) preview_template.member_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'member % does not exist', preview_template.member_id
			USING ERRCODE = 'no_data_found';
	END IF;
	r := taskflow.render_message(t, m);
	RETURN QUERY SELECT r.subject, r.body_text, r.body_html;
END
$$;
COMMENT ON FUNCTION taskflow.preview_template(text, bigint) IS
	'The subject and bodies a member would receive from a template';

------------------------------------------------------------------ privileges

REVOKE ALL ON TABLE taskflow.template FROM PUBLIC;
REVOKE ALL ON SEQUENCE taskflow.template_template_id_seq FROM PUBLIC;
GRANT SELECT ON taskflow.template TO taskflow_app, taskflow_operator;

REVOKE ALL ON FUNCTION
	taskflow.channel_kind(text), taskflow._channel_list(),
	taskflow.template_fields(text, text),
	taskflow.render(text, jsonb, boolean, boolean),
	taskflow.render_member(text, taskflow.member, text, boolean, text),
	taskflow.render_message(taskflow.template, taskflow.member),
	taskflow._check_template_fields(text, text, text),
	taskflow._check_template_header(text, text, text),
	taskflow._check_template_address(text, text, text),
	taskflow._check_template_body(text, text, text),
	taskflow._check_template_settings(taskflow.template),
	taskflow._check_template(taskflow.template),
	taskflow.template_used_by(integer),
	taskflow._template_for(regrole, text, boolean),
	taskflow._create_template(regrole, text, text, text, text, text, text, text, text, boolean, text, text),
	taskflow._alter_template(regrole, text, text, text, text, text, text, text, text, boolean, text, text, text),
	taskflow._drop_template(regrole, text),
	taskflow.create_template(text, text, text, text, text, text, text, text, boolean, text, text),
	taskflow.alter_template(text, text, text, text, text, text, text, text, boolean, text, text, text),
	taskflow.drop_template(text),
	taskflow.preview_template(text, bigint)
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	taskflow.channel_kind(text),
	taskflow.template_fields(text, text),
	taskflow.render(text, jsonb, boolean, boolean),
	taskflow.render_member(text, taskflow.member, text, boolean, text),
	taskflow.render_message(taskflow.template, taskflow.member),
	taskflow.template_used_by(integer),
	taskflow.preview_template(text, bigint)
	TO taskflow_app, taskflow_operator;
GRANT EXECUTE ON FUNCTION
	taskflow.create_template(text, text, text, text, text, text, text, text, boolean, text, text),
	taskflow.alter_template(text, text, text, text, text, text, text, text, boolean, text, text, text),
	taskflow.drop_template(text)
	TO taskflow_app;
-- taskflow install script, part 30: tasks (タスク).
--
-- A task says what happens to a member: STEP1 a target criteria, STEP3 data
-- changes (actions), STEP4 an optional message from a template.  Its mode is
-- auto (全自動), manual (waits in the pending list for an operator) or
-- criteria_only (a saved search, never run).  Tasks are written only through
-- taskflow.create_task / alter_task / drop_task, which run as the extension
-- owner and record the calling role as the owner.

CREATE TABLE taskflow.task (
	task_id		serial PRIMARY KEY,
	name		text NOT NULL UNIQUE,
	description text,
	mode		text NOT NULL
				CHECK (mode OPERATOR(pg_catalog.=) ANY (ARRAY['auto', 'manual', 'criteria_only'])),
	criteria_id integer REFERENCES taskflow.criteria (criteria_id),
	actions		jsonb NOT NULL DEFAULT '[]',
	template_id integer REFERENCES taskflow.template (template_id),
	show_on_dashboard boolean NOT NULL DEFAULT true,
	assignee	text,
	priority	integer NOT NULL DEFAULT 0,
	on_mismatch text NOT NULL DEFAULT 'leave'
				CHECK (on_mismatch OPERATOR(pg_catalog.=) ANY (ARRAY['leave', 'wait'])),
	owner		regrole NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at	timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE taskflow.task IS
	'Tasks: target criteria (STEP1), actions (STEP3), message template (STEP4), mode';

SELECT pg_catalog.pg_extension_config_dump('taskflow.task', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.task_task_id_seq', '');

-- Resolves a task name for the caller, who must have the owner's privileges.
CREATE FUNCTION taskflow._task_for(caller regrole, task_name text, for_change boolean)
RETURNS taskflow.task
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t taskflow.task;
BEGIN
	IF task_name IS NULL THEN
		RAISE EXCEPTION 'a task name is required'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO t FROM taskflow.task WHERE name OPERATOR(pg_catalog.=) task_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'task "%" does not exist', task_name
			USING ERRCODE = 'undefined_object';
	END IF;
	IF NOT pg_has_role(caller, t.owner, 'USAGE') THEN
		RAISE EXCEPTION 'permission denied for task "%"', task_name
			USING ERRCODE = 'insufficient_privilege',
				  HINT = format('Only members of role %s may %s it.', t.owner,
								CASE WHEN for_change THEN 'change' ELSE 'use' END);
	END IF;
	RETURN t;
END
$$;

-- Checks a task definition and returns the ids it refers to; raises on
-- anything wrong, naming the task and the problem.
CREATE FUNCTION taskflow._check_task(caller regrole, task_name text, mode text,
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
	PERFORM taskflow._check_actions(caller, task_name, actions);
END
$$;

-- create_task, as the extension owner on behalf of caller.
CREATE FUNCTION taskflow._create_task(caller regrole, name text, mode text,
									  criteria text, actions jsonb, template text,
									  description text, show_on_dashboard boolean,
									  assignee text, priority integer, on_mismatch text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ids record;
	new_id integer;
BEGIN
	ids := taskflow._check_task(caller, name, mode, criteria, coalesce(actions, '[]'),
								template, assignee, priority, on_mismatch);
	INSERT INTO taskflow.task AS t (name, description, mode, criteria_id, actions, template_id,
									show_on_dashboard, assignee, priority, on_mismatch, owner)
	VALUES (btrim(_create_task.name), description, mode, ids.criteria_id,
			coalesce(actions, '[]'), ids.template_id, coalesce(show_on_dashboard, true),
			assignee, priority, on_mismatch, caller)
	RETURNING t.task_id INTO new_id;
	RETURN new_id;
EXCEPTION WHEN unique_violation THEN
	RAISE EXCEPTION 'task "%" already exists', name
		USING ERRCODE = 'duplicate_object',
			  HINT = 'Change it with taskflow.alter_task().';
END
$$;

CREATE FUNCTION taskflow.create_task(name text,
									 mode text,
									 criteria text DEFAULT NULL,
									 actions jsonb DEFAULT '[]',
									 template text DEFAULT NULL,
									 description text DEFAULT NULL,
									 show_on_dashboard boolean DEFAULT true,
									 assignee text DEFAULT NULL,
									 priority integer DEFAULT 0,
									 on_mismatch text DEFAULT 'leave')
RETURNS integer
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_api_call';
COMMENT ON FUNCTION taskflow.create_task IS
	'Creates a task: mode auto | manual | criteria_only, STEP1 criteria, STEP3 actions, STEP4 template';

-- alter_task: NULL arguments leave a setting unchanged; clear_criteria /
-- clear_template remove them.  A mode change takes effect on the next run;
-- members already pending stay pending until processed.
CREATE FUNCTION taskflow._alter_task(caller regrole, name text, mode text,
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
	ids := taskflow._check_task(caller, t.name, t.mode, crit_name, t.actions, tmpl_name,
								t.assignee, t.priority, t.on_mismatch);
	IF t.mode OPERATOR(pg_catalog.=) 'criteria_only' THEN
		PERFORM taskflow._refuse_if_in_chain(t.task_id, t.name);
	END IF;
	UPDATE taskflow.task AS u
	   SET mode = t.mode, criteria_id = ids.criteria_id, actions = t.actions,
		   template_id = ids.template_id, description = t.description,
		   show_on_dashboard = t.show_on_dashboard, assignee = t.assignee,
		   priority = t.priority, on_mismatch = t.on_mismatch, updated_at = pg_catalog.now()
	 WHERE u.task_id OPERATOR(pg_catalog.=) t.task_id;
END
$$;

CREATE FUNCTION taskflow.alter_task(name text,
									mode text DEFAULT NULL,
									criteria text DEFAULT NULL,
									actions jsonb DEFAULT NULL,
									template text DEFAULT NULL,
									description text DEFAULT NULL,
									show_on_dashboard boolean DEFAULT NULL,
									assignee text DEFAULT NULL,
									priority integer DEFAULT NULL,
									on_mismatch text DEFAULT NULL,
									clear_criteria boolean DEFAULT false,
									clear_template boolean DEFAULT false)
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_api_call';
COMMENT ON FUNCTION taskflow.alter_task IS
	'Changes a task; NULL leaves a setting as it is. A mode change applies from the next run';

-- drop_task: refused while a chain uses the task.
CREATE FUNCTION taskflow._drop_task(caller regrole, name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t taskflow.task := taskflow._task_for(caller, name, true);
BEGIN
	PERFORM taskflow._refuse_if_in_chain(t.task_id, t.name);
	DELETE FROM taskflow.task WHERE task_id OPERATOR(pg_catalog.=) t.task_id;
END
$$;

CREATE FUNCTION taskflow.drop_task(name text)
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_api_call';
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
	context		text
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
-- slot since the chain was enabled (a missed slot is caught up once).
CREATE FUNCTION taskflow._entry_slot(c taskflow.chain, as_of timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	slot timestamptz;
BEGIN
	IF c.schedule OPERATOR(pg_catalog.=) ANY (ARRAY['always', 'anchor']) THEN
		IF c.last_entry_at IS NULL
		   OR c.last_entry_at OPERATOR(pg_catalog.+)
			  coalesce(c.entry_interval, current_setting('taskflow.entry_interval')::interval)
			  OPERATOR(pg_catalog.<=) as_of THEN
			RETURN as_of;
		END IF;
		RETURN NULL;
	END IF;
	slot := taskflow.daily_slot_before(as_of, c.daily_at, c.weekdays, c.time_zone);
	IF slot IS NULL OR slot OPERATOR(pg_catalog.<) c.enabled_at
	   OR (c.last_entry_at IS NOT NULL AND slot OPERATOR(pg_catalog.<=) c.last_entry_at) THEN
		RETURN NULL;
	END IF;
	RETURN slot;
END
$$;

-- Keeps chain.next_slot_at: for a daily chain, the first slot at or after
-- enabled_at and after last_entry_at, i.e. the slot whose entries are due
-- next (it is due once as_of reaches it, as _entry_slot() decides; a slot
-- missed while nothing ran is caught up once, then the next one is after
-- that run); NULL for the other schedules.  The engine and next_wakeup()
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
	w := taskflow._parse_wait(repeat_wait);
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
	c.time_zone := coalesce(time_zone,
							(SELECT reset_val FROM pg_catalog.pg_settings
							  WHERE pg_settings.name OPERATOR(pg_catalog.=) 'TimeZone'));
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
	w := taskflow._parse_wait(wait);
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
	w := taskflow._parse_wait(wait);
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
	c.time_zone := coalesce(time_zone, c.time_zone);
	c.repeat := coalesce(repeat, c.repeat);
	IF repeat_wait IS NOT NULL THEN
		w := taskflow._parse_wait(repeat_wait);
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
-- the chosen members or none.  member_ids NULL means every pending member.
CREATE FUNCTION taskflow.process(task text, member_ids bigint[] DEFAULT NULL,
								 as_of timestamptz DEFAULT taskflow.clock())
RETURNS bigint
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_process';
COMMENT ON FUNCTION taskflow.process(text, bigint[], timestamptz) IS
	'Processes members pending at a manual task (all of the chosen or none); returns how many';

CREATE FUNCTION taskflow.skip(task text, member_ids bigint[] DEFAULT NULL,
							  as_of timestamptz DEFAULT taskflow.clock())
RETURNS bigint
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_skip';
COMMENT ON FUNCTION taskflow.skip(text, bigint[], timestamptz) IS
	'Moves members pending at a manual task on without applying it';

CREATE FUNCTION taskflow.cancel(task text, member_ids bigint[] DEFAULT NULL,
								as_of timestamptz DEFAULT taskflow.clock())
RETURNS bigint
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_cancel';
COMMENT ON FUNCTION taskflow.cancel(text, bigint[], timestamptz) IS
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
-- pending at, finished, left because …), as of an instant.
CREATE FUNCTION taskflow.explain(member_id bigint, as_of timestamptz DEFAULT taskflow.clock())
RETURNS TABLE (chain text, state text, task text, since timestamptz, due_at timestamptz,
			   reason text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r record;
	matches boolean;
	prefix text;
	next_entry timestamptz;
	off text;
	a record;
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
	PERFORM FROM taskflow.member m WHERE m.member_id OPERATOR(pg_catalog.=) explain.member_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'member % does not exist', explain.member_id USING ERRCODE = 'no_data_found';
	END IF;
	FOR r IN
		SELECT c.chain_id, c.name AS chain_name, c.enabled, c.paused_reason, c.time_zone,
			   c.schedule, c.daily_at, c.weekdays, c.reentry,
			   cm.state AS st, cm.step_id, cm.waiting_since, cm.due_at AS due, cm.left_reason,
			   cm.finished_at, cm.rearmed, c.reentry_cooldown, c.anchor, c.anchor_change,
			   s.position, t.name AS task_name,
			   t.mode, t.assignee,
			   t.on_mismatch, cr.name AS criteria_name,
			   (SELECT fcr.name FROM taskflow.chain_step fs
				  JOIN taskflow.task ft ON ft.task_id OPERATOR(pg_catalog.=) fs.task_id
				  LEFT JOIN taskflow.criteria fcr ON fcr.criteria_id OPERATOR(pg_catalog.=) ft.criteria_id
				 WHERE fs.chain_id OPERATOR(pg_catalog.=) c.chain_id AND fs.position OPERATOR(pg_catalog.=) 1) AS entry_criteria,
			   (SELECT lt.name FROM taskflow.history h
				  JOIN taskflow.chain_step ls ON ls.step_id OPERATOR(pg_catalog.=) h.step_id
				  JOIN taskflow.task lt ON lt.task_id OPERATOR(pg_catalog.=) ls.task_id
				 WHERE h.chain_id OPERATOR(pg_catalog.=) c.chain_id
				   AND h.member_id OPERATOR(pg_catalog.=) explain.member_id
				   AND h.event OPERATOR(pg_catalog.=) ANY (ARRAY['left', 'cancelled'])
				 ORDER BY h.history_id DESC LIMIT 1) AS left_task
		  FROM taskflow.chain c
		  LEFT JOIN taskflow.chain_member cm ON cm.chain_id OPERATOR(pg_catalog.=) c.chain_id
											AND cm.member_id OPERATOR(pg_catalog.=) explain.member_id
		  LEFT JOIN taskflow.chain_step s ON s.step_id OPERATOR(pg_catalog.=) cm.step_id
		  LEFT JOIN taskflow.task t ON t.task_id OPERATOR(pg_catalog.=) s.task_id
		  LEFT JOIN taskflow.criteria cr ON cr.criteria_id OPERATOR(pg_catalog.=) t.criteria_id
		 ORDER BY c.name
	LOOP
		chain := r.chain_name;
		state := coalesce(r.st, 'not entered');
		task := r.task_name;
		since := CASE WHEN r.st IN ('done', 'left') THEN r.finished_at ELSE r.waiting_since END;
		due_at := r.due;
		prefix := CASE WHEN r.paused_reason IS NOT NULL THEN 'chain paused (' OPERATOR(pg_catalog.||) r.paused_reason OPERATOR(pg_catalog.||) '); '
					   WHEN NOT r.enabled THEN 'chain disabled; ' ELSE '' END;
		-- a disabled or paused chain runs nothing until it is enabled
		off := CASE WHEN prefix OPERATOR(pg_catalog.<>) '' THEN ' once the chain is enabled' ELSE '' END;
		-- nothing of the previous chain's row may carry over to this one
		matches := NULL;
		next_entry := NULL;
		IF r.st IS NULL OR (r.st IN ('done', 'left') AND r.reentry OPERATOR(pg_catalog.<>) 'never') THEN
			matches := taskflow._member_matches(r.chain_id, NULL, explain.member_id, as_of);
		ELSIF r.st OPERATOR(pg_catalog.=) 'waiting' THEN
			matches := taskflow._member_matches(r.chain_id, r.step_id, explain.member_id, as_of);
		END IF;
		IF r.schedule OPERATOR(pg_catalog.=) 'daily' THEN
			next_entry := taskflow.daily_slot_after(as_of, r.daily_at, r.weekdays, r.time_zone);
		END IF;
		-- an anchor chain: the member's anchor decides whether it enters,
		-- and at which step
		SELECT * INTO a FROM taskflow._anchor_entry(NULL, NULL, NULL);
		IF r.anchor IS NOT NULL AND r.st IS NULL AND matches THEN
			SELECT * INTO a FROM taskflow._anchor_entry(r.chain_id, explain.member_id, as_of);
			task := a.task;
			due_at := a.due_at;
		END IF;
		reason := prefix OPERATOR(pg_catalog.||) CASE
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
			WHEN r.st IS NULL AND matches THEN
				format('matches the entry criteria %s; enters at the next entry check%s%s',
					   coalesce(quote_ident(r.entry_criteria), '(everyone)'), off,
					   CASE WHEN next_entry IS NOT NULL AND off OPERATOR(pg_catalog.=) ''
							THEN ' (' OPERATOR(pg_catalog.||) taskflow._local(next_entry, r.time_zone) OPERATOR(pg_catalog.||) ')' ELSE '' END)
			WHEN r.st IS NULL THEN
				format('does not match the entry criteria %s', quote_ident(r.entry_criteria))
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
			END;
		RETURN NEXT;
	END LOOP;
END
$$;
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
			WHEN c.enabled THEN 'enabled' ELSE 'disabled' END AS chain_state
  FROM taskflow.chain c
  JOIN taskflow.chain_step s ON s.chain_id OPERATOR(pg_catalog.=) c.chain_id
  JOIN taskflow.task t ON t.task_id OPERATOR(pg_catalog.=) s.task_id;
COMMENT ON VIEW taskflow.chain_summary IS
	'Per chain and step: waiting, pending, applied, left, done, errors, chain state';

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
	taskflow._member_matches(integer, integer, bigint, timestamptz)
	FROM PUBLIC;
REVOKE ALL ON FUNCTION taskflow.create_task, taskflow.alter_task, taskflow.drop_task,
	taskflow.create_chain, taskflow.add_step, taskflow.set_wait, taskflow.move_step,
	taskflow.remove_step, taskflow.alter_chain, taskflow.enable_chain,
	taskflow.disable_chain, taskflow.drop_chain, taskflow.run(timestamptz, text),
	taskflow.process(text, bigint[], timestamptz), taskflow.skip(text, bigint[], timestamptz),
	taskflow.cancel(text, bigint[], timestamptz), taskflow.explain(bigint, timestamptz),
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
GRANT EXECUTE ON FUNCTION taskflow.process(text, bigint[], timestamptz),
	taskflow.skip(text, bigint[], timestamptz), taskflow.cancel(text, bigint[], timestamptz),
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
-- taskflow install script, part 35: the background workers' SQL side.

-- taskflow runs its due work in background workers, which exist only when
-- it is preloaded: refuse to install it where they cannot run.
CREATE FUNCTION taskflow._check_preloaded()
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_check_preloaded';
SELECT taskflow._check_preloaded();

-- The next instant anything is due after "after": a member's next step, a
-- daily slot (chain.next_slot_at, kept by a trigger), an "always" chain's
-- next entry check.  NULL: nothing.
-- Members waiting for their criteria to match again (checked_at set) are
-- looked at when something changes, not on a timer.  A chain whose last run
-- failed is retried 10 seconds after the failure (at most 10 seconds after
-- "after"), not at once: what failed is still due, and retrying at once
-- would spin, writing an error each time, until the chain is paused.
-- PL/pgSQL with a generic plan, so that the scheduler's session plans the
-- query once (an SQL function with a subquery is not inlined, and was
-- planned at every call); no part of the plan depends on "after".
CREATE FUNCTION taskflow.next_wakeup(after timestamptz)
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
				AND EXISTS (SELECT FROM taskflow.chain c
							 WHERE c.chain_id OPERATOR(pg_catalog.=) cm.chain_id
							   AND c.enabled AND c.paused_reason IS NULL
							   AND c.consecutive_failures OPERATOR(pg_catalog.=) 0)
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
	taskflow.worker_status(), taskflow.next_wakeup(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION taskflow.worker_status(), taskflow.next_wakeup(timestamptz)
	TO taskflow_app, taskflow_operator;
GRANT SELECT ON taskflow.worker_status TO taskflow_app, taskflow_operator;
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
-- dates are local midnight in the chain's time zone).
CREATE FUNCTION taskflow._anchor_sql(anchor text, tz text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT
RETURN CASE
	WHEN anchor OPERATOR(pg_catalog.=) 'birthday' THEN
		format('((member.birthday OPERATOR(pg_catalog.+) time ''00:00'') AT TIME ZONE %L)', tz)
	WHEN anchor OPERATOR(pg_catalog.^@) 'properties.' THEN
		format('(((member.properties OPERATOR(pg_catalog.->>) %L)::date OPERATOR(pg_catalog.+) time ''00:00'') AT TIME ZONE %L)',
			   substr(anchor, 12), tz)
	ELSE format('member.%I', anchor)
	END;

-- When a step at "days" days (at local time "at", or the anchor's own time
-- of day when NULL) from an anchor occurrence is due, in zone tz.
CREATE FUNCTION taskflow.anchor_due(anchor_at timestamptz, days integer, at time, tz text)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN at IS NULL
	THEN ((anchor_at AT TIME ZONE tz) OPERATOR(pg_catalog.+) make_interval(days => days)) AT TIME ZONE tz
	ELSE (((anchor_at AT TIME ZONE tz)::date OPERATOR(pg_catalog.+) days) OPERATOR(pg_catalog.+) at) AT TIME ZONE tz
	END;

-- The occurrence of an anchor a member follows: the anchor itself, or for a
-- yearly chain the first anniversary whose last step (last_days, last_at)
-- is not before not_before.  A 29 February anchor falls on 28 February in
-- common years.
CREATE FUNCTION taskflow.anchor_occurrence(base timestamptz, yearly boolean, last_days integer,
										   last_at time, tz text, not_before timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN NOT yearly OR base IS NULL THEN base ELSE (
	SELECT o.occ FROM (
		SELECT ((base AT TIME ZONE tz) OPERATOR(pg_catalog.+)
				make_interval(years => (extract(year FROM not_before AT TIME ZONE tz)::integer
										OPERATOR(pg_catalog.-) extract(year FROM base AT TIME ZONE tz)::integer
										OPERATOR(pg_catalog.+) k))) AT TIME ZONE tz AS occ, k
		  FROM pg_catalog.generate_series(-1, 2) AS k) o
	 WHERE taskflow.anchor_due(o.occ, last_days, last_at, tz) OPERATOR(pg_catalog.>=) not_before
	 ORDER BY o.k LIMIT 1) END;

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
-- taskflow install script, part 37: a member's whole activity timeline
-- (アクティビティ): the events of the timeline (payments, purchases, forms,
-- mail, tags, groups, memos) together with what the automation did to the
-- member (entered a chain, a task applied, pending, left, finished).

CREATE VIEW taskflow.member_activity AS
SELECT e.member_id, e.occurred_at AS at, e.kind, e.detail, e.recorded_by AS actor,
	   'event'::text AS source, e.event_id AS source_id
  FROM taskflow.event e
UNION ALL
SELECT h.member_id, h.at, 'automation'::text,
	   pg_catalog.jsonb_build_object('chain', h.chain_name, 'task', h.task_name,
									 'event', h.event, 'iteration', h.iteration)
	   OPERATOR(pg_catalog.||) h.detail,
	   h.actor, 'history'::text, h.history_id
  FROM taskflow.history h;
COMMENT ON VIEW taskflow.member_activity IS
	'Per member: timeline events and automation history in one list (source: event or history)';

-- One member's activity, newest first.
CREATE FUNCTION taskflow.activity(member_id bigint)
RETURNS TABLE (at timestamptz, kind text, detail jsonb, actor text, source text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT a.at, a.kind, a.detail, a.actor, a.source
	  FROM taskflow.member_activity a
	 WHERE a.member_id OPERATOR(pg_catalog.=) activity.member_id
	 ORDER BY a.at DESC, a.source, a.source_id DESC;
END;
COMMENT ON FUNCTION taskflow.activity(bigint) IS
	'A member''s timeline events and automation history, newest first';

REVOKE ALL ON taskflow.member_activity FROM PUBLIC;
REVOKE ALL ON FUNCTION taskflow.activity(bigint) FROM PUBLIC;
GRANT SELECT ON taskflow.member_activity TO taskflow_app, taskflow_operator;
GRANT EXECUTE ON FUNCTION taskflow.activity(bigint) TO taskflow_app, taskflow_operator;
-- taskflow install script, part 40: delivery channels.
--
-- A channel is where messages go: an SMTP relay (kind smtp, url smtp://… or
-- smtps://…) or an HTTP endpoint such as a LINE or SMS gateway (kind
-- webhook, url https://…), with its guardrails (rate limit, daily quota,
-- quiet hours, frequency cap), its retry policy and its test recipients.
-- 'email' and 'webhook' exist from the start; users add more.  A channel
-- names server files (password_file, webhook_secret_file) the delivery
-- worker reads, so only superusers write channels, through
-- taskflow.configure_channel() and taskflow.drop_channel().  The state
-- machine that uses them is src/sql/41_delivery.sql; see doc/delivery.md.

-- External relays on other machines drain the outbox through
-- taskflow.claim_messages() / complete_messages() as a member of this role.
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles
				   WHERE rolname OPERATOR(pg_catalog.=) 'taskflow_relay') THEN
		CREATE ROLE taskflow_relay NOLOGIN;
	END IF;
END
$roles$;
GRANT USAGE ON SCHEMA taskflow TO taskflow_relay;

CREATE TABLE taskflow.channel (
	name		text PRIMARY KEY
				CHECK (name OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]{0,62}$'),
	kind		text NOT NULL
				CHECK (kind OPERATOR(pg_catalog.=) ANY (ARRAY['smtp', 'webhook'])),
	description text,
	url			text,
	require_starttls boolean NOT NULL DEFAULT true,
	username	text,
	password_file text,
	webhook_secret_file text,
	connect_timeout_ms integer NOT NULL DEFAULT 10000,
	timeout_ms	integer NOT NULL DEFAULT 60000,
	connections integer NOT NULL DEFAULT 4,
	rate_per_second integer,
	daily_quota integer,
	quota_time_zone text NOT NULL,
	quiet_start time,
	quiet_end	time,
	max_per_member integer,
	per_member_window interval,
	max_attempts integer NOT NULL DEFAULT 8,
	backoff_base interval NOT NULL DEFAULT '1 minute',
	backoff_max interval NOT NULL DEFAULT '6 hours',
	test_recipients text[],
	message_id_domain text,
	list_id		text,
	unsubscribe_url text,
	enabled		boolean NOT NULL DEFAULT true,
	builtin		boolean NOT NULL DEFAULT false,
	-- the rate limit's window: the second it counts and the claims in it
	rate_window_start timestamptz,
	rate_window_count integer NOT NULL DEFAULT 0,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CHECK ((quiet_start IS NULL) OPERATOR(pg_catalog.=) (quiet_end IS NULL)),
	CHECK ((max_per_member IS NULL) OPERATOR(pg_catalog.=) (per_member_window IS NULL))
);
COMMENT ON TABLE taskflow.channel IS
	'Delivery channels (SMTP relays, webhooks) with guardrails and retry policy; write them with taskflow.configure_channel()';
COMMENT ON COLUMN taskflow.channel.password_file IS
	'A server file holding the SMTP password, read by the delivery worker at connect time';
COMMENT ON COLUMN taskflow.channel.quiet_start IS
	'Quiet hours start, local time in the chain''s time zone; messages are deferred, never dropped';
COMMENT ON COLUMN taskflow.channel.test_recipients IS
	'Where messages of chains marked test go instead of to the member';

-- The built-in channels; configure them with taskflow.configure_channel().
-- The daily quota counts days in the server's time zone until configured.
INSERT INTO taskflow.channel (name, kind, description, quota_time_zone, builtin)
SELECT x.name, x.kind, x.description, s.reset_val, true
  FROM (VALUES ('email', 'smtp', 'E-mail through an SMTP relay'),
			   ('webhook', 'webhook', 'HTTP POST of a JSON body (LINE, SMS gateways)'))
	   AS x (name, kind, description),
	   pg_catalog.pg_settings s
 WHERE s.name OPERATOR(pg_catalog.=) 'TimeZone';

-- Templates name their channel.
ALTER TABLE taskflow.template
	ADD CONSTRAINT template_channel_fkey FOREIGN KEY (channel)
	REFERENCES taskflow.channel (name) ON UPDATE CASCADE;

-- pg_dump keeps every channel, the built-in ones too (their configuration
-- is user data).  CREATE EXTENSION in the restored database creates the
-- built-in rows first; the dumped row then replaces it.
CREATE FUNCTION taskflow._channel_restore()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NEW.builtin THEN
		DELETE FROM taskflow.channel c
		 WHERE c.name OPERATOR(pg_catalog.=) NEW.name AND c.builtin;
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER restore_builtin BEFORE INSERT ON taskflow.channel
	FOR EACH ROW EXECUTE FUNCTION taskflow._channel_restore();

SELECT pg_catalog.pg_extension_config_dump('taskflow.channel', '');

-- Event kinds of delivery outcomes on the member's timeline (mail_sent and
-- mail_failed are in part 10).
INSERT INTO taskflow.event_kind (kind, description, builtin) VALUES
	('mail_deferred', 'A message could not be delivered yet and will be retried', true),
	('mail_cancelled', 'A message was not sent (unsubscribed, suppressed, cancelled)', true);

---------------------------------------------------------------- validation

-- Raises unless a path names an existing regular file on the server.
CREATE FUNCTION taskflow._check_server_file(channel_name text, setting text, path text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	st record;
BEGIN
	IF path OPERATOR(pg_catalog.!~) '^/' OR path OPERATOR(pg_catalog.~) '[[:cntrl:]]' THEN
		RAISE EXCEPTION '% of channel "%" must be an absolute path, not %', setting, channel_name,
			to_json(path)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Name a file on the database server, for example /etc/taskflow/smtp-password; the delivery worker reads it.';
	END IF;
	SELECT * INTO st FROM pg_catalog.pg_stat_file(path, true);
	IF st.size IS NULL THEN
		RAISE EXCEPTION '% of channel "%": file "%" does not exist', setting, channel_name, path
			USING ERRCODE = 'undefined_file',
				  HINT = 'Create the file on the database server first, readable by the server''s operating-system user.';
	END IF;
	IF st.isdir THEN
		RAISE EXCEPTION '% of channel "%": "%" is a directory', setting, channel_name, path
			USING ERRCODE = 'wrong_object_type',
				  HINT = 'Name the file that holds the secret.';
	END IF;
END
$$;

-- Raises unless the URL fits the channel's kind: smtp://host[:port] or
-- smtps://host[:port] for smtp, http(s)://host[:port][/path] for webhook;
-- credentials never in the URL.
CREATE FUNCTION taskflow._check_channel_url(c taskflow.channel)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	m text[];
	scheme text := lower(substring(c.url FROM '^([A-Za-z][A-Za-z0-9+.-]*)://'));
BEGIN
	IF c.url IS NULL THEN
		RETURN;
	END IF;
	IF scheme IS NULL OR NOT scheme OPERATOR(pg_catalog.=) ANY
		(CASE c.kind WHEN 'smtp' THEN ARRAY['smtp', 'smtps'] ELSE ARRAY['http', 'https'] END) THEN
		RAISE EXCEPTION 'url % does not fit % channel "%"', to_json(c.url), c.kind, c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = CASE c.kind WHEN 'smtp'
							  THEN 'An smtp channel has url smtp://host:587 (STARTTLS) or smtps://host:465 (TLS).'
							  ELSE 'A webhook channel has url https://host/path.' END;
	END IF;
	-- before anything else: a line break would let the url add protocol lines
	IF c.url OPERATOR(pg_catalog.~) '[[:cntrl:][:space:]]' THEN
		RAISE EXCEPTION 'url % of channel "%" contains a line break, control character or space',
			to_json(c.url), c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A url is one word, for example smtp://mail.example.jp:587 or https://gateway.example.jp/send.';
	END IF;
	IF c.url OPERATOR(pg_catalog.~) '^[^/]*//[^/?#]*@' THEN
		RAISE EXCEPTION 'url of channel "%" contains credentials', c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give username => ... and password_file => ''/path/to/file''; a password never goes into a table.';
	END IF;
	m := regexp_match(c.url, CASE c.kind
		WHEN 'smtp' THEN '^[a-z]+://([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:([0-9]{1,5}))?/?$'
		ELSE '^[a-z]+://([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:([0-9]{1,5}))?(/[^[:space:][:cntrl:]#]*)?$' END, 'i');
	IF m IS NULL THEN
		RAISE EXCEPTION 'invalid url % for channel "%"', to_json(c.url), c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = CASE c.kind WHEN 'smtp'
							  THEN 'Write smtp://host[:port] or smtps://host[:port], without a path.'
							  ELSE 'Write https://host[:port]/path, without spaces.' END;
	END IF;
	IF m[4] IS NOT NULL AND (m[4]::integer OPERATOR(pg_catalog.<) 1
							 OR m[4]::integer OPERATOR(pg_catalog.>) 65535) THEN
		RAISE EXCEPTION 'port % in the url of channel "%" is out of range', m[4], c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A port is between 1 and 65535.';
	END IF;
END
$$;

-- Raises unless an optional integer setting is within [low, high].
CREATE FUNCTION taskflow._check_channel_range(channel_name text, setting text, value bigint,
											  low bigint, high bigint, hint text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF value OPERATOR(pg_catalog.<) low OR value OPERATOR(pg_catalog.>) high THEN
		RAISE EXCEPTION '% % of channel "%" is out of range (% to %)', setting, value, channel_name,
			low, high
			USING ERRCODE = 'invalid_parameter_value', HINT = hint;
	END IF;
END
$$;

-- Raises unless the guardrails of a channel are consistent: rate, quota,
-- quiet hours, frequency cap.
CREATE FUNCTION taskflow._check_channel_guardrails(c taskflow.channel)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM taskflow._check_channel_range(c.name, 'rate_per_second', c.rate_per_second, 1, 100000,
		'Messages per second the channel may start; reset it (reset => ARRAY[''rate_per_second'']) for no limit.');
	PERFORM taskflow._check_channel_range(c.name, 'daily_quota', c.daily_quota, 1, 100000000,
		'Messages per day (in quota_time_zone); reset it (reset => ARRAY[''daily_quota'']) for no quota.');
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_timezone_names z
				   WHERE z.name OPERATOR(pg_catalog.=) c.quota_time_zone) THEN
		RAISE EXCEPTION 'unknown time zone % for the daily quota of channel "%"',
			coalesce(quote_literal(c.quota_time_zone), 'NULL'), c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use a name from pg_timezone_names, for example Asia/Tokyo.';
	END IF;
	IF (c.quiet_start IS NULL) OPERATOR(pg_catalog.<>) (c.quiet_end IS NULL) THEN
		RAISE EXCEPTION 'quiet hours of channel "%" need both quiet_start and quiet_end', c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example quiet_start => ''21:00'', quiet_end => ''08:00'' (local time of each chain).';
	END IF;
	IF c.quiet_start OPERATOR(pg_catalog.=) c.quiet_end THEN
		RAISE EXCEPTION 'quiet hours of channel "%" start and end at the same time (%)', c.name,
			to_char(c.quiet_start, 'HH24:MI')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give a start and an end that differ; reset both for no quiet hours.';
	END IF;
	IF (c.max_per_member IS NULL) OPERATOR(pg_catalog.<>) (c.per_member_window IS NULL) THEN
		RAISE EXCEPTION 'the frequency cap of channel "%" needs both max_per_member and per_member_window', c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example max_per_member => 3, per_member_window => ''1 day''.';
	END IF;
	PERFORM taskflow._check_channel_range(c.name, 'max_per_member', c.max_per_member, 1, 10000,
		'How many marketing messages a member may get within per_member_window.');
	IF c.per_member_window OPERATOR(pg_catalog.<) interval '1 minute'
	   OR c.per_member_window OPERATOR(pg_catalog.>) interval '366 days' THEN
		RAISE EXCEPTION 'per_member_window % of channel "%" is out of range', c.per_member_window, c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use between 1 minute and 366 days, for example ''1 day'' or ''7 days''.';
	END IF;
END
$$;

-- Raises unless the retry policy and limits of a channel are sensible.
CREATE FUNCTION taskflow._check_channel_retries(c taskflow.channel)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM taskflow._check_channel_range(c.name, 'connect_timeout_ms', c.connect_timeout_ms, 100, 600000,
		'Milliseconds to wait for a connection, for example 10000.');
	PERFORM taskflow._check_channel_range(c.name, 'timeout_ms', c.timeout_ms, 100, 3600000,
		'Milliseconds one message may take in all, for example 60000.');
	IF c.timeout_ms OPERATOR(pg_catalog.<) c.connect_timeout_ms THEN
		RAISE EXCEPTION 'timeout_ms (%) of channel "%" is shorter than its connect_timeout_ms (%)',
			c.timeout_ms, c.name, c.connect_timeout_ms
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'timeout_ms covers the whole message, connecting included.';
	END IF;
	PERFORM taskflow._check_channel_range(c.name, 'connections', c.connections, 1, 64,
		'Parallel connections per delivery worker, for example 4.');
	PERFORM taskflow._check_channel_range(c.name, 'max_attempts', c.max_attempts, 1, 100,
		'Attempts before a temporarily failing message is given up (failed), for example 8.');
	IF c.backoff_base OPERATOR(pg_catalog.<) interval '1 second'
	   OR c.backoff_max OPERATOR(pg_catalog.>) interval '7 days'
	   OR c.backoff_max OPERATOR(pg_catalog.<) c.backoff_base THEN
		RAISE EXCEPTION 'backoff of channel "%" is out of range (base %, max %)', c.name,
			c.backoff_base, c.backoff_max
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'backoff_base is at least 1 second, backoff_max at least backoff_base and at most 7 days.';
	END IF;
END
$$;

-- Raises unless the texts a channel puts into mail are valid: test
-- recipients, Message-ID domain, List-Id, unsubscribe URL.
CREATE FUNCTION taskflow._check_channel_mail(c taskflow.channel)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	bad text;
BEGIN
	IF c.test_recipients IS NOT NULL THEN
		IF cardinality(c.test_recipients) OPERATOR(pg_catalog.=) 0 THEN
			RAISE EXCEPTION 'test_recipients of channel "%" is empty', c.name
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Give at least one address, or reset test_recipients: mail of test chains is then not sent at all.';
		END IF;
		SELECT r INTO bad FROM unnest(c.test_recipients) r
		 WHERE r IS NULL OR CASE c.kind WHEN 'smtp' THEN NOT taskflow.is_valid_email(r)
									 ELSE r OPERATOR(pg_catalog.~) '[[:cntrl:][:space:]]' OR r OPERATOR(pg_catalog.=) '' END
		 LIMIT 1;
		IF FOUND THEN
			RAISE EXCEPTION 'invalid test recipient % for channel "%"', coalesce(to_json(bad)::text, 'NULL'), c.name
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = CASE c.kind WHEN 'smtp' THEN 'Each test recipient is one address like staff@example.jp.'
								  ELSE 'Each test recipient is one recipient id, without spaces.' END;
		END IF;
	END IF;
	IF c.message_id_domain OPERATOR(pg_catalog.!~)
	   '^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$' THEN
		RAISE EXCEPTION 'invalid message_id_domain % for channel "%"', to_json(c.message_id_domain), c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A domain name like mail.example.jp; Message-IDs are <outbox_id.chain_id@domain>.';
	END IF;
	IF c.list_id OPERATOR(pg_catalog.~) '[[:cntrl:]]'
	   OR c.list_id OPERATOR(pg_catalog.!~) '^([^<>]*<)?[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+)+>?$'
	   OR (c.list_id OPERATOR(pg_catalog.~) '<') OPERATOR(pg_catalog.<>) (c.list_id OPERATOR(pg_catalog.~) '>$') THEN
		RAISE EXCEPTION 'invalid list_id % for channel "%"', to_json(c.list_id), c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A List-Id (RFC 2919) like ''会員サイトのお知らせ <news.example.jp>'' or ''news.example.jp'', on one line.';
	END IF;
	IF c.unsubscribe_url IS NOT NULL THEN
		IF c.unsubscribe_url OPERATOR(pg_catalog.!~) '^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^[:space:][:cntrl:]<>"]*)?$' THEN
			RAISE EXCEPTION 'invalid unsubscribe_url % for channel "%"', to_json(c.unsubscribe_url), c.name
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'An https:// URL without spaces, for example https://example.jp/unsubscribe?m={{member_id}}&t={{token}}.';
		END IF;
		SELECT x[1] INTO bad FROM regexp_matches(c.unsubscribe_url, '\{\{([^}]*)\}\}', 'g') x
		 WHERE NOT x[1] OPERATOR(pg_catalog.=) ANY (ARRAY['member_id', 'token']) LIMIT 1;
		IF FOUND THEN
			RAISE EXCEPTION 'unknown placeholder {{%}} in the unsubscribe_url of channel "%"', bad, c.name
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'The placeholders are {{member_id}} and {{token}}.';
		END IF;
	END IF;
END
$$;

-- Raises, with a clear message, unless a channel is valid.
CREATE FUNCTION taskflow._check_channel(c taskflow.channel)
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
END
$$;

---------------------------------------------------------------- functions

-- The settings configure_channel() can reset to their defaults.
CREATE FUNCTION taskflow._channel_defaults()
RETURNS taskflow.channel
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	d taskflow.channel;
BEGIN
	d.require_starttls := true;
	d.connect_timeout_ms := 10000;
	d.timeout_ms := 60000;
	d.connections := 4;
	d.quota_time_zone := (SELECT s.reset_val FROM pg_catalog.pg_settings s
						   WHERE s.name OPERATOR(pg_catalog.=) 'TimeZone');
	d.max_attempts := 8;
	d.backoff_base := interval '1 minute';
	d.backoff_max := interval '6 hours';
	d.enabled := true;
	d.builtin := false;
	d.rate_window_count := 0;
	d.created_at := pg_catalog.now();
	d.updated_at := pg_catalog.now();
	RETURN d;
END
$$;

-- Resets the named settings of a channel to their defaults (NULL for the
-- optional ones).
CREATE FUNCTION taskflow._channel_reset(c taskflow.channel, settings text[])
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
		'test_recipients', 'message_id_domain', 'list_id', 'unsubscribe_url', 'enabled'];
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

-- Creates or changes a channel.  NULL leaves a setting as it is (a new
-- channel gets the default); reset => ARRAY['quiet_start', 'quiet_end']
-- puts settings back to their default (no limit, for the guardrails).
-- Superusers only: a channel names server files the worker reads.
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
										   reset text[] DEFAULT NULL)
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
		'description', description));
	c := jsonb_populate_record(c, p);
	c.url := nullif(c.url, '');
	c.username := nullif(c.username, '');
	c.password_file := nullif(c.password_file, '');
	c.webhook_secret_file := nullif(c.webhook_secret_file, '');
	c.message_id_domain := nullif(c.message_id_domain, '');
	c.list_id := nullif(c.list_id, '');
	c.unsubscribe_url := nullif(c.unsubscribe_url, '');
	c.description := nullif(c.description, '');
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
			test_recipients, message_id_domain, list_id, unsubscribe_url, enabled, updated_at)
		  = (c.kind, c.description, c.url, c.require_starttls, c.username,
			c.password_file, c.webhook_secret_file, c.connect_timeout_ms, c.timeout_ms, c.connections,
			c.rate_per_second, c.daily_quota, c.quota_time_zone, c.quiet_start, c.quiet_end,
			c.max_per_member, c.per_member_window, c.max_attempts, c.backoff_base, c.backoff_max,
			c.test_recipients, c.message_id_domain, c.list_id, c.unsubscribe_url, c.enabled,
			c.updated_at)
		 WHERE x.name OPERATOR(pg_catalog.=) c.name;
	END IF;
END
$$;
COMMENT ON FUNCTION taskflow.configure_channel IS
	'Creates or changes a delivery channel (superusers only); NULL leaves a setting, reset => ARRAY[...] restores defaults';

-- Refuses to change the kind of a channel that is built in or in use: the
-- rendering of its templates (text or JSON) depends on the kind.
CREATE FUNCTION taskflow._refuse_kind_change(c taskflow.channel)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	used_by text;
BEGIN
	SELECT t.name INTO used_by FROM taskflow.template t
	 WHERE t.channel OPERATOR(pg_catalog.=) c.name ORDER BY t.name LIMIT 1;
	IF c.builtin OR used_by IS NOT NULL THEN
		RAISE EXCEPTION 'cannot change the kind of channel "%"', c.name
			USING ERRCODE = 'object_in_use',
				  DETAIL = CASE WHEN c.builtin THEN 'It is a built-in channel.'
								ELSE format('Template "%s" uses it.', used_by) END,
				  HINT = 'Create a new channel of the other kind instead.';
	END IF;
END
$$;

-- Drops a channel, refused for the built-in ones, while a template uses it
-- or while it has messages not yet sent.
CREATE FUNCTION taskflow.drop_channel(name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c taskflow.channel;
	used_by text;
	waiting bigint;
BEGIN
	IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r
			 WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
		RAISE EXCEPTION 'only superusers can drop channels'
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	SELECT * INTO c FROM taskflow.channel x WHERE x.name OPERATOR(pg_catalog.=) drop_channel.name FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'channel "%" does not exist', drop_channel.name
			USING ERRCODE = 'undefined_object';
	END IF;
	IF c.builtin THEN
		RAISE EXCEPTION 'channel "%" is built in and cannot be dropped', c.name
			USING ERRCODE = 'object_in_use',
				  HINT = 'Disable it instead: taskflow.configure_channel(''' OPERATOR(pg_catalog.||) c.name
						 OPERATOR(pg_catalog.||) ''', enabled => false).';
	END IF;
	SELECT t.name INTO used_by FROM taskflow.template t
	 WHERE t.channel OPERATOR(pg_catalog.=) c.name ORDER BY t.name LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'channel "%" is used by template "%"', c.name, used_by
			USING ERRCODE = 'dependent_objects_still_exist',
				  HINT = 'Give the template another channel (taskflow.alter_template()) or drop it first.';
	END IF;
	SELECT count(*) INTO waiting FROM taskflow.outbox o
	 WHERE o.channel OPERATOR(pg_catalog.=) c.name
	   AND o.state OPERATOR(pg_catalog.=) ANY (ARRAY['pending', 'deferred', 'sending']);
	IF waiting OPERATOR(pg_catalog.>) 0 THEN
		RAISE EXCEPTION 'channel "%" still has messages to send (%)', c.name, waiting
			USING ERRCODE = 'object_in_use',
				  HINT = 'Let them be sent, or cancel them with taskflow.cancel_message().';
	END IF;
	DELETE FROM taskflow.channel x WHERE x.name OPERATOR(pg_catalog.=) c.name;
END
$$;
COMMENT ON FUNCTION taskflow.drop_channel(text) IS
	'Drops a channel that is not built in, not used by a template and has nothing left to send';

------------------------------------------------------------------ privileges

REVOKE ALL ON TABLE taskflow.channel FROM PUBLIC;
GRANT SELECT ON taskflow.channel TO taskflow_app, taskflow_operator, taskflow_relay;

REVOKE ALL ON FUNCTION
	taskflow._channel_restore(),
	taskflow._check_server_file(text, text, text),
	taskflow._check_channel_url(taskflow.channel),
	taskflow._check_channel_range(text, text, bigint, bigint, bigint, text),
	taskflow._check_channel_guardrails(taskflow.channel),
	taskflow._check_channel_retries(taskflow.channel),
	taskflow._check_channel_mail(taskflow.channel),
	taskflow._check_channel(taskflow.channel),
	taskflow._channel_defaults(),
	taskflow._channel_reset(taskflow.channel, text[]),
	taskflow._refuse_kind_change(taskflow.channel),
	taskflow.configure_channel(text, text, text, boolean, text, text, text, integer, integer,
							   integer, integer, integer, text, time, time, integer, interval,
							   integer, interval, interval, text[], text, text, text, boolean,
							   text, text[]),
	taskflow.drop_channel(text)
	FROM PUBLIC;
-- everyone may call them and is told clearly that only superusers may
GRANT EXECUTE ON FUNCTION
	taskflow.configure_channel(text, text, text, boolean, text, text, text, integer, integer,
							   integer, integer, integer, text, time, time, integer, interval,
							   integer, interval, interval, text[], text, text, text, boolean,
							   text, text[]),
	taskflow.drop_channel(text)
	TO taskflow_app, taskflow_operator;
-- taskflow install script, part 41: the outbox state machine.
--
--   pending ──claim──▶ sending ──complete──▶ sent
--      ▲                 │  │                failed     (5xx; or 4xx max_attempts times)
--      │                 │  └──complete──▶ deferred   (4xx, network, timeout: backoff)
--      └── retry ────────┘ lease expired ─▶ deferred  (reclaimed; the next claim takes it)
--   pending/deferred ──claim──▶ cancelled (unsubscribed, suppressed) | deferred (guardrails)
--
-- Delivery workers, and external relays on other machines, drain the
-- outbox with two calls, each a short transaction of a few set-based
-- statements: taskflow.claim_messages() leases a batch (FOR UPDATE SKIP
-- LOCKED) after applying suppression and the guardrails, and
-- taskflow.complete_messages() writes back a whole batch of results.  Every
-- instant is a parameter, so tests and relays pass their own.  See
-- doc/delivery.md.

-- One row per delivery attempt: opened by the claim, closed by the
-- completion (or by the next claim, when the lease expired first).
CREATE TABLE taskflow.delivery_attempt (
	attempt_id	bigserial PRIMARY KEY,
	outbox_id	bigint NOT NULL REFERENCES taskflow.outbox (outbox_id) ON DELETE CASCADE,
	attempt		integer NOT NULL,
	worker		text NOT NULL,
	recipient	text,
	started_at	timestamptz NOT NULL,
	finished_at timestamptz,
	outcome		text
				CHECK (outcome OPERATOR(pg_catalog.=) ANY
					   (ARRAY['sent', 'temporary', 'permanent', 'cancelled', 'expired'])),
	smtp_code	integer,
	enhanced_code text,
	reply		text
);
COMMENT ON TABLE taskflow.delivery_attempt IS
	'Delivery attempts: worker, start, end, outcome (sent, temporary, permanent, expired lease), reply code and text';
COMMENT ON COLUMN taskflow.delivery_attempt.smtp_code IS
	'The SMTP reply code (or HTTP status for a webhook) of the attempt';
-- at most one attempt of a message is open at a time
CREATE UNIQUE INDEX delivery_attempt_open_idx ON taskflow.delivery_attempt (outbox_id)
	WHERE finished_at IS NULL;
CREATE INDEX delivery_attempt_outbox_idx ON taskflow.delivery_attempt (outbox_id, attempt_id);

-- Addresses never sent marketing mail again: hard bounces (5.1.x), and
-- what staff add (complaints).
CREATE TABLE taskflow.suppression (
	address		text PRIMARY KEY
				CHECK (address OPERATOR(pg_catalog.=) pg_catalog.lower(pg_catalog.btrim(address))),
	reason		text NOT NULL,
	at			timestamptz NOT NULL,
	outbox_id	bigint
);
COMMENT ON TABLE taskflow.suppression IS
	'Suppressed addresses (lower case): hard bounces and manual entries; no marketing mail goes to them';

SELECT pg_catalog.pg_extension_config_dump('taskflow.delivery_attempt', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.delivery_attempt_attempt_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.suppression', '');

------------------------------------------------------------------ policy

-- The wait before the next attempt after a temporary failure:
-- least(backoff_max, backoff_base * 2^(attempts-1)) * (1 + jitter), the
-- jitter in [0, 0.25) derived from hashint8(outbox_id + attempts), so that
-- retries of many messages spread out yet every run computes the same.
CREATE FUNCTION taskflow.retry_delay(outbox_id bigint, attempts integer,
									 backoff_base interval, backoff_max interval)
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN LEAST(backoff_max,
			 backoff_base OPERATOR(pg_catalog.*)
			 pg_catalog.power(2::float8,
							  LEAST(GREATEST(attempts OPERATOR(pg_catalog.-) 1, 0), 20)::float8))
	   OPERATOR(pg_catalog.*)
	   (1::float8 OPERATOR(pg_catalog.+)
		((pg_catalog.hashint8(outbox_id OPERATOR(pg_catalog.+) attempts)
		  OPERATOR(pg_catalog.&) 65535)::float8 OPERATOR(pg_catalog./) 262144::float8));
COMMENT ON FUNCTION taskflow.retry_delay(bigint, integer, interval, interval) IS
	'Backoff after a temporary failure: least(max, base * 2^(attempts-1)) plus a deterministic jitter of 0 to 25%';

-- When quiet hours that contain as_of end (the next quiet_end, local time
-- in tz), or NULL when as_of is outside them.  Quiet hours may span
-- midnight (21:00–08:00).
CREATE FUNCTION taskflow.quiet_hours_end(as_of timestamptz, quiet_start time, quiet_end time, tz text)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE
	WHEN quiet_start IS NULL OR quiet_end IS NULL THEN NULL
	WHEN CASE WHEN quiet_start OPERATOR(pg_catalog.<) quiet_end
			  THEN (as_of AT TIME ZONE tz)::time OPERATOR(pg_catalog.>=) quiet_start
				   AND (as_of AT TIME ZONE tz)::time OPERATOR(pg_catalog.<) quiet_end
			  ELSE (as_of AT TIME ZONE tz)::time OPERATOR(pg_catalog.>=) quiet_start
				   OR (as_of AT TIME ZONE tz)::time OPERATOR(pg_catalog.<) quiet_end END
	THEN (((as_of AT TIME ZONE tz)::date OPERATOR(pg_catalog.+)
		   CASE WHEN (as_of AT TIME ZONE tz)::time OPERATOR(pg_catalog.<) quiet_end THEN 0 ELSE 1 END)
		  OPERATOR(pg_catalog.+) quiet_end) AT TIME ZONE tz
	END;
COMMENT ON FUNCTION taskflow.quiet_hours_end(timestamptz, time, time, text) IS
	'End of the quiet hours containing an instant (local times in tz), or NULL outside them';

-- Raises unless the worker name and instant of a claim or completion are
-- given.
CREATE FUNCTION taskflow._check_worker(worker text, as_of timestamptz)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF worker IS NULL OR btrim(worker) OPERATOR(pg_catalog.=) ''
	   OR worker OPERATOR(pg_catalog.~) '[[:cntrl:]]' OR length(worker) OPERATOR(pg_catalog.>) 200 THEN
		RAISE EXCEPTION 'invalid worker name %', coalesce(to_json(worker)::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Name each worker or relay uniquely, for example ''relay-osaka-1'': only the worker holding a lease may complete it.';
	END IF;
	IF as_of IS NULL THEN
		RAISE EXCEPTION 'as_of cannot be NULL'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Leave it out for now().';
	END IF;
	-- an infinite instant would lease messages forever, or date them never
	IF NOT isfinite(as_of) THEN
		RAISE EXCEPTION 'as_of cannot be %', as_of
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Leave it out for now().';
	END IF;
END
$$;

------------------------------------------------------------------ claim

-- Step 1 of a claim: messages whose lease ended (the worker died or hung)
-- go back to the queue, or fail when they used up their attempts; the
-- open attempt is closed as 'expired'.
CREATE FUNCTION taskflow._reclaim_leases(ch taskflow.channel, worker text, as_of timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	WITH x AS (
		SELECT o.outbox_id, o.lease_owner FROM taskflow.outbox o
		 WHERE o.channel OPERATOR(pg_catalog.=) ch.name
		   AND o.state OPERATOR(pg_catalog.=) 'sending'
		   AND o.lease_expires_at OPERATOR(pg_catalog.<=) as_of
		 FOR UPDATE SKIP LOCKED),
	u AS (
		UPDATE taskflow.outbox o
		   SET state = CASE WHEN o.attempts OPERATOR(pg_catalog.>=) ch.max_attempts
							THEN 'failed' ELSE 'deferred' END,
			   state_reason = format('lease of worker %s expired', to_json(x.lease_owner))
							  OPERATOR(pg_catalog.||)
							  CASE WHEN o.attempts OPERATOR(pg_catalog.>=) ch.max_attempts
								   THEN format(' (attempt %s of %s)', o.attempts, ch.max_attempts)
								   ELSE '' END,
			   not_before = o.lease_expires_at, lease_owner = NULL, lease_expires_at = NULL
		  FROM x
		 WHERE o.outbox_id OPERATOR(pg_catalog.=) x.outbox_id
		RETURNING o.outbox_id, o.member_id, o.channel, o.subject, o.recipient, o.is_test,
				  o.state, o.state_reason, o.attempts),
	a AS (
		UPDATE taskflow.delivery_attempt a
		   SET finished_at = as_of, outcome = 'expired',
			   reply = 'no result before the lease expired'
		  FROM u
		 WHERE a.outbox_id OPERATOR(pg_catalog.=) u.outbox_id AND a.finished_at IS NULL)
	INSERT INTO taskflow.event (member_id, kind, occurred_at, detail, recorded_by)
	SELECT u.member_id, 'mail_failed', as_of,
		   jsonb_strip_nulls(jsonb_build_object('outbox_id', u.outbox_id, 'channel', u.channel,
				'subject', u.subject, 'recipient', u.recipient, 'attempt', u.attempts,
				'reason', u.state_reason)),
		   worker
	  FROM u
	 WHERE u.state OPERATOR(pg_catalog.=) 'failed' AND NOT u.is_test;
END
$$;

-- Step 2: messages that must not be sent are cancelled (and written to the
-- member's timeline): marketing mail to an unsubscribed member or a
-- suppressed address, a message without recipient, a test chain's message
-- when the channel has no test recipients.
CREATE FUNCTION taskflow._claim_cancel(ch taskflow.channel, worker text, ids bigint[],
									   as_of timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	WITH r AS (
		SELECT o.outbox_id,
			   CASE WHEN o.recipient IS NULL OR btrim(o.recipient) OPERATOR(pg_catalog.=) ''
					THEN 'no recipient'
					WHEN NOT o.transactional AND m.unsubscribed_at IS NOT NULL
					THEN 'member unsubscribed'
					WHEN NOT o.transactional AND s.address IS NOT NULL
					THEN format('address suppressed (%s)', s.reason)
					WHEN o.is_test AND ch.test_recipients IS NULL
					THEN format('test chain, and channel "%s" has no test recipients', ch.name)
			   END AS reason
		  FROM taskflow.outbox o
		  JOIN taskflow.member m ON m.member_id OPERATOR(pg_catalog.=) o.member_id
		  LEFT JOIN taskflow.suppression s
				 ON s.address OPERATOR(pg_catalog.=)
					lower(btrim(coalesce(o.original_recipient, o.recipient)))
		 WHERE o.outbox_id OPERATOR(pg_catalog.=) ANY (ids)),
	c AS (
		UPDATE taskflow.outbox o SET state = 'cancelled', state_reason = r.reason
		  FROM r
		 WHERE o.outbox_id OPERATOR(pg_catalog.=) r.outbox_id AND r.reason IS NOT NULL
		RETURNING o.outbox_id, o.member_id, o.channel, o.subject, o.recipient, o.is_test,
				  o.state_reason)
	INSERT INTO taskflow.event (member_id, kind, occurred_at, detail, recorded_by)
	SELECT c.member_id, 'mail_cancelled', as_of,
		   jsonb_strip_nulls(jsonb_build_object('outbox_id', c.outbox_id, 'channel', c.channel,
				'subject', c.subject, 'recipient', c.recipient, 'reason', c.state_reason)),
		   worker
	  FROM c
	 WHERE NOT c.is_test;
END
$$;

-- Step 3: the guardrails that defer marketing mail to a member: quiet
-- hours (in the chain's time zone) and the frequency cap.  Transactional
-- messages pass.  Test and production mail are counted apart.
CREATE FUNCTION taskflow._claim_member_guardrails(ch taskflow.channel, ids bigint[],
												  as_of timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF ch.quiet_start IS NOT NULL THEN
		UPDATE taskflow.outbox o
		   SET state = 'deferred', not_before = q.quiet_end,
			   state_reason = format('quiet hours %s-%s (%s)', to_char(ch.quiet_start, 'HH24:MI'),
									 to_char(ch.quiet_end, 'HH24:MI'), q.tz)
		  FROM (SELECT x.outbox_id, z.tz,
					   taskflow.quiet_hours_end(as_of, ch.quiet_start, ch.quiet_end, z.tz) AS quiet_end
				  FROM taskflow.outbox x
				 CROSS JOIN LATERAL (SELECT coalesce(x.time_zone, ch.quota_time_zone) AS tz) z
				 WHERE x.outbox_id OPERATOR(pg_catalog.=) ANY (ids)) q
		 WHERE o.outbox_id OPERATOR(pg_catalog.=) q.outbox_id AND q.quiet_end IS NOT NULL
		   AND o.state OPERATOR(pg_catalog.=) ANY (ARRAY['pending', 'deferred'])
		   AND NOT o.transactional;
	END IF;
	IF ch.max_per_member IS NOT NULL THEN
		UPDATE taskflow.outbox o
		   SET state = 'deferred',
			   not_before = coalesce(w.oldest, as_of) OPERATOR(pg_catalog.+) ch.per_member_window,
			   state_reason = format('frequency cap: %s per %s', ch.max_per_member, ch.per_member_window)
		  FROM (SELECT c.outbox_id, c.n, u.used, u.oldest
				  FROM (SELECT x.outbox_id, x.member_id, x.is_test,
							   row_number() OVER (PARTITION BY x.member_id, x.is_test
												  ORDER BY x.not_before, x.outbox_id) AS n
						  FROM taskflow.outbox x
						 WHERE x.outbox_id OPERATOR(pg_catalog.=) ANY (ids)
						   AND x.state OPERATOR(pg_catalog.=) ANY (ARRAY['pending', 'deferred'])
						   AND x.not_before OPERATOR(pg_catalog.<=) as_of
						   AND NOT x.transactional) c
				 CROSS JOIN LATERAL (
					SELECT count(*) AS used, min(y.sent_at) AS oldest
					  FROM taskflow.outbox y
					 WHERE y.member_id OPERATOR(pg_catalog.=) c.member_id
					   AND y.channel OPERATOR(pg_catalog.=) ch.name
					   AND y.is_test OPERATOR(pg_catalog.=) c.is_test
					   AND NOT y.transactional
					   AND ((y.state OPERATOR(pg_catalog.=) 'sent'
							 AND y.sent_at OPERATOR(pg_catalog.>) (as_of OPERATOR(pg_catalog.-) ch.per_member_window))
							OR y.state OPERATOR(pg_catalog.=) 'sending')) u) w
		 WHERE o.outbox_id OPERATOR(pg_catalog.=) w.outbox_id
		   AND (w.used OPERATOR(pg_catalog.+) w.n) OPERATOR(pg_catalog.>) ch.max_per_member;
	END IF;
END
$$;

-- Step 4: the daily quota of the channel (per-message billing): messages
-- sent today (in quota_time_zone) and in flight count; the rest of the
-- batch waits for the next day.
CREATE FUNCTION taskflow._claim_quota(ch taskflow.channel, ids bigint[], as_of timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	today date := (as_of AT TIME ZONE ch.quota_time_zone)::date;
	used bigint;
BEGIN
	IF ch.daily_quota IS NULL THEN
		RETURN;
	END IF;
	-- two counts, each over its partial index
	used := (SELECT count(*) FROM taskflow.outbox o
			  WHERE o.channel OPERATOR(pg_catalog.=) ch.name AND o.state OPERATOR(pg_catalog.=) 'sent'
				AND o.sent_at OPERATOR(pg_catalog.>=) (today::timestamp AT TIME ZONE ch.quota_time_zone))
			OPERATOR(pg_catalog.+)
			(SELECT count(*) FROM taskflow.outbox o
			  WHERE o.channel OPERATOR(pg_catalog.=) ch.name AND o.state OPERATOR(pg_catalog.=) 'sending');
	UPDATE taskflow.outbox o
	   SET state = 'deferred',
		   not_before = (today OPERATOR(pg_catalog.+) 1)::timestamp AT TIME ZONE ch.quota_time_zone,
		   state_reason = format('daily quota of %s reached', ch.daily_quota)
	  FROM (SELECT x.outbox_id, row_number() OVER (ORDER BY x.not_before, x.outbox_id) AS n
			  FROM taskflow.outbox x
			 WHERE x.outbox_id OPERATOR(pg_catalog.=) ANY (ids)
			   AND x.state OPERATOR(pg_catalog.=) ANY (ARRAY['pending', 'deferred'])
			   AND x.not_before OPERATOR(pg_catalog.<=) as_of) r
	 WHERE o.outbox_id OPERATOR(pg_catalog.=) r.outbox_id
	   AND (used OPERATOR(pg_catalog.+) r.n) OPERATOR(pg_catalog.>) ch.daily_quota;
END
$$;

-- How many messages the channel's rate limit still allows in the second
-- of as_of (at most max).
CREATE FUNCTION taskflow._rate_budget(ch taskflow.channel, max integer, as_of timestamptz)
RETURNS integer
LANGUAGE sql STABLE
RETURN CASE
	WHEN ch.rate_per_second IS NULL THEN max
	WHEN ch.rate_window_start OPERATOR(pg_catalog.=)
		 pg_catalog.to_timestamp(pg_catalog.floor(EXTRACT(epoch FROM as_of))::float8)
	THEN LEAST(max, GREATEST(ch.rate_per_second OPERATOR(pg_catalog.-) ch.rate_window_count, 0))
	ELSE LEAST(max, ch.rate_per_second) END;

-- Leases up to max ready messages of a channel to a worker for lease, as of
-- an instant, and returns them ('sending', attempts counted, recipient
-- rewritten for test chains, Message-ID set).  In order: expired leases
-- are reclaimed; unsubscribed members and suppressed addresses cancelled
-- (marketing mail); quiet hours and the frequency cap defer (marketing
-- mail); the daily quota defers to the next day; the rate limit leaves the
-- rest for the next second.  Rows another claim holds are skipped.
CREATE FUNCTION taskflow.claim_messages(channel text, worker text, max integer,
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
	IF NOT ch.enabled THEN
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
COMMENT ON FUNCTION taskflow.claim_messages(text, text, integer, interval, timestamptz) IS
	'Leases up to max ready messages of a channel to a worker (suppression, guardrails, test routing applied); returns them';

------------------------------------------------------------------ complete

-- Writes back what became of a batch of claimed messages, one array
-- element per message: outcome 'sent', 'temporary' (4xx, network error,
-- timeout: retried after retry_delay(), failed after max_attempts) or
-- 'permanent' (5xx: failed; an enhanced code 5.1.x also suppresses the
-- address).  Closes each attempt and writes the member's timeline.  Only
-- messages leased by this worker and still 'sending' are changed, so a
-- worker whose lease was reclaimed cannot overwrite, and a repeated call
-- changes nothing.  Returns how many messages it completed.
CREATE FUNCTION taskflow.complete_messages(worker text, outbox_ids bigint[], outcomes text[],
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
									   nullif(concat_ws(' ', i.code, i.enhanced, i.reply), ''), '') END,
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
			   concat_ws(' ', 'bounce', u.code, u.enhanced, u.reply), as_of, u.outbox_id
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
COMMENT ON FUNCTION taskflow.complete_messages(text, bigint[], text[], integer[], text[], text[], timestamptz) IS
	'Writes back a batch of results (sent, temporary, permanent) for messages this worker leased; returns how many it completed';

-- When the next message of a channel is ready (a ready one: as_of; a
-- lease to reclaim: its expiry), for the worker's sleep.  NULL: nothing
-- to do, or the channel is disabled.
CREATE FUNCTION taskflow.next_delivery_at(channel text,
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
	IF NOT ch.enabled OR as_of IS NULL THEN
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
COMMENT ON FUNCTION taskflow.next_delivery_at(text, timestamptz) IS
	'When the next message of a channel is ready (as_of when one is ready now); NULL when none';

------------------------------------------------------------------ operators

-- Raises unless caller may cancel or retry a message: operators
-- (taskflow_operator), and members of the role that owns the chain that
-- wrote it; another application role may not touch its messages.
CREATE FUNCTION taskflow._check_message_caller(caller regrole, o taskflow.outbox)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	chain_owner oid;
BEGIN
	IF pg_has_role(caller, 'taskflow_operator', 'USAGE') THEN
		RETURN;
	END IF;
	SELECT c.owner INTO chain_owner FROM taskflow.chain c
	 WHERE c.chain_id OPERATOR(pg_catalog.=) o.chain_id;
	IF EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) chain_owner)
	   AND pg_has_role(caller, chain_owner, 'USAGE') THEN
		RETURN;
	END IF;
	RAISE EXCEPTION 'permission denied for message %', o.outbox_id
		USING ERRCODE = 'insufficient_privilege',
			  DETAIL = CASE WHEN chain_owner IS NULL THEN 'Its chain was dropped.'
							ELSE format('Its chain belongs to role %s.', chain_owner::regrole) END,
			  HINT = 'Operators (taskflow_operator) and members of the role that owns the chain may cancel or retry its messages.';
END
$$;

-- Cancels a message that is not sent yet; returns false when it was
-- already cancelled.  (Like the chain API, the public function is the C
-- dispatcher, which calls this one as the extension owner with the
-- calling role as caller.)
CREATE FUNCTION taskflow._cancel_message(caller regrole, outbox_id bigint, reason text,
										 as_of timestamptz)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	o taskflow.outbox;
	why text := concat_ws(': ', format('cancelled by %s', caller), nullif(reason, ''));
BEGIN
	SELECT * INTO o FROM taskflow.outbox x
	 WHERE x.outbox_id OPERATOR(pg_catalog.=) _cancel_message.outbox_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'message % does not exist', _cancel_message.outbox_id
			USING ERRCODE = 'no_data_found';
	END IF;
	PERFORM taskflow._check_message_caller(caller, o);
	IF as_of IS NULL OR NOT isfinite(as_of) THEN
		RAISE EXCEPTION 'as_of cannot be %', coalesce(as_of::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Leave it out for taskflow.clock().';
	END IF;
	IF o.state OPERATOR(pg_catalog.=) 'cancelled' THEN
		RETURN false;
	END IF;
	IF o.state OPERATOR(pg_catalog.=) 'sending' THEN
		RAISE EXCEPTION 'message % is being sent by worker %', o.outbox_id, to_json(o.lease_owner)
			USING ERRCODE = 'object_in_use',
				  HINT = format('Its result comes back by %s at the latest; cancel it then if it was not sent.',
								o.lease_expires_at);
	END IF;
	IF o.state OPERATOR(pg_catalog.<>) ALL (ARRAY['pending', 'deferred']) THEN
		RAISE EXCEPTION 'message % was already %', o.outbox_id, o.state
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	UPDATE taskflow.outbox x SET state = 'cancelled', state_reason = why
	 WHERE x.outbox_id OPERATOR(pg_catalog.=) o.outbox_id;
	IF NOT o.is_test THEN
		INSERT INTO taskflow.event (member_id, kind, occurred_at, detail, recorded_by)
		VALUES (o.member_id, 'mail_cancelled', as_of,
				jsonb_strip_nulls(jsonb_build_object('outbox_id', o.outbox_id, 'channel', o.channel,
					'subject', o.subject, 'recipient', o.recipient, 'reason', why)),
				caller::text);
	END IF;
	RETURN true;
END
$$;

CREATE FUNCTION taskflow.cancel_message(outbox_id bigint, reason text DEFAULT NULL,
										as_of timestamptz DEFAULT taskflow.clock())
RETURNS boolean
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_api_call';
COMMENT ON FUNCTION taskflow.cancel_message(bigint, text, timestamptz) IS
	'Cancels a message not yet sent (pending or deferred); false when it was already cancelled';

-- Queues a deferred, failed or cancelled message again, as of an instant,
-- with a fresh count of attempts; returns false when it is already
-- pending.  The claim checks suppression and the guardrails again.
CREATE FUNCTION taskflow._retry_message(caller regrole, outbox_id bigint, as_of timestamptz)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	o taskflow.outbox;
BEGIN
	SELECT * INTO o FROM taskflow.outbox x
	 WHERE x.outbox_id OPERATOR(pg_catalog.=) _retry_message.outbox_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'message % does not exist', _retry_message.outbox_id
			USING ERRCODE = 'no_data_found';
	END IF;
	PERFORM taskflow._check_message_caller(caller, o);
	IF as_of IS NULL OR NOT isfinite(as_of) THEN
		RAISE EXCEPTION 'as_of cannot be %', coalesce(as_of::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Leave it out for taskflow.clock().';
	END IF;
	IF o.state OPERATOR(pg_catalog.=) 'pending' THEN
		RETURN false;
	END IF;
	IF o.state OPERATOR(pg_catalog.=) 'sending' THEN
		RAISE EXCEPTION 'message % is being sent by worker %', o.outbox_id, to_json(o.lease_owner)
			USING ERRCODE = 'object_in_use';
	END IF;
	IF o.state OPERATOR(pg_catalog.=) 'sent' THEN
		RAISE EXCEPTION 'message % was already sent', o.outbox_id
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A sent message is not sent again.';
	END IF;
	UPDATE taskflow.outbox x
	   SET state = 'pending', not_before = as_of, attempts = 0,
		   state_reason = format('retried by %s (was %s)', caller, o.state)
	 WHERE x.outbox_id OPERATOR(pg_catalog.=) o.outbox_id;
	RETURN true;
END
$$;

CREATE FUNCTION taskflow.retry_message(outbox_id bigint,
									   as_of timestamptz DEFAULT taskflow.clock())
RETURNS boolean
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_api_call';
COMMENT ON FUNCTION taskflow.retry_message(bigint, timestamptz) IS
	'Queues a deferred, failed or cancelled message again with fresh attempts; false when already pending';

-- Adds an address to the suppression list; false when it was there.
CREATE FUNCTION taskflow.suppress(address text, reason text DEFAULT 'manual',
								  at timestamptz DEFAULT taskflow.clock())
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF address IS NULL OR btrim(address) OPERATOR(pg_catalog.=) ''
	   OR address OPERATOR(pg_catalog.~) '[[:cntrl:]]' THEN
		RAISE EXCEPTION 'invalid address %', coalesce(to_json(address)::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- no address is longer (and a much longer key would not fit the index)
	IF length(btrim(address)) OPERATOR(pg_catalog.>) 254 THEN
		RAISE EXCEPTION 'address "%…" is too long (% characters)', left(btrim(address), 20),
			length(btrim(address))
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'An address or recipient id has at most 254 characters.';
	END IF;
	INSERT INTO taskflow.suppression AS s (address, reason, at)
	VALUES (lower(btrim(address)), coalesce(nullif(reason, ''), 'manual'), coalesce(at, taskflow.clock()))
	ON CONFLICT ON CONSTRAINT suppression_pkey DO NOTHING;
	RETURN FOUND;
END
$$;
COMMENT ON FUNCTION taskflow.suppress(text, text, timestamptz) IS
	'Suppresses an address (no marketing mail to it); false when it already was';

-- Removes an address from the suppression list; false when it was not there.
CREATE FUNCTION taskflow.unsuppress(address text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM taskflow.suppression s
	 WHERE s.address OPERATOR(pg_catalog.=) lower(btrim(unsuppress.address));
	RETURN FOUND;
END
$$;
COMMENT ON FUNCTION taskflow.unsuppress(text) IS
	'Lifts the suppression of an address; false when it was not suppressed';

------------------------------------------------------------------ privileges

REVOKE ALL ON TABLE taskflow.delivery_attempt, taskflow.suppression FROM PUBLIC;
REVOKE ALL ON SEQUENCE taskflow.delivery_attempt_attempt_id_seq FROM PUBLIC;
GRANT SELECT ON taskflow.delivery_attempt, taskflow.suppression
	TO taskflow_app, taskflow_operator, taskflow_relay;

REVOKE ALL ON FUNCTION
	taskflow.retry_delay(bigint, integer, interval, interval),
	taskflow.quiet_hours_end(timestamptz, time, time, text),
	taskflow._check_worker(text, timestamptz),
	taskflow._reclaim_leases(taskflow.channel, text, timestamptz),
	taskflow._claim_cancel(taskflow.channel, text, bigint[], timestamptz),
	taskflow._claim_member_guardrails(taskflow.channel, bigint[], timestamptz),
	taskflow._claim_quota(taskflow.channel, bigint[], timestamptz),
	taskflow._rate_budget(taskflow.channel, integer, timestamptz),
	taskflow.claim_messages(text, text, integer, interval, timestamptz),
	taskflow.complete_messages(text, bigint[], text[], integer[], text[], text[], timestamptz),
	taskflow.next_delivery_at(text, timestamptz),
	taskflow._check_message_caller(regrole, taskflow.outbox),
	taskflow._cancel_message(regrole, bigint, text, timestamptz),
	taskflow.cancel_message(bigint, text, timestamptz),
	taskflow._retry_message(regrole, bigint, timestamptz),
	taskflow.retry_message(bigint, timestamptz),
	taskflow.suppress(text, text, timestamptz),
	taskflow.unsuppress(text)
	FROM PUBLIC;
-- delivery workers run as the extension owner; relays elsewhere use this role
GRANT EXECUTE ON FUNCTION
	taskflow.claim_messages(text, text, integer, interval, timestamptz),
	taskflow.complete_messages(text, bigint[], text[], integer[], text[], text[], timestamptz),
	taskflow.next_delivery_at(text, timestamptz)
	TO taskflow_relay;
GRANT EXECUTE ON FUNCTION
	taskflow.retry_delay(bigint, integer, interval, interval),
	taskflow.quiet_hours_end(timestamptz, time, time, text),
	taskflow.next_delivery_at(text, timestamptz),
	taskflow.cancel_message(bigint, text, timestamptz),
	taskflow.retry_message(bigint, timestamptz),
	taskflow.suppress(text, text, timestamptz),
	taskflow.unsuppress(text)
	TO taskflow_app, taskflow_operator;
-- relays read the rows they claimed (and the channel settings)
GRANT SELECT ON taskflow.outbox TO taskflow_relay;
-- taskflow install script, part 42: the mail format (the "Mail format" part
-- of delivery).
--
-- The MIME builder is in C (src/mime.c): the delivery worker calls
-- MimeBuildMessage() for each claimed row; these functions expose it to
-- SQL, for tests, previews and external relays.  See doc/mail_format.md.

-- A whole mail (headers, blank line, base64 body) from its parts: CRLF line
-- endings, header lines of at most 76 characters, Japanese (any non-ASCII)
-- subjects and display names as RFC 2047 B encoded-words of whole UTF-8
-- characters, multipart/alternative (text, then HTML) when body_html is
-- given.  Raises, naming the header, on a line break or control character
-- in a header value.  Pure: the same arguments give the same bytes.
CREATE FUNCTION taskflow.mime_build(from_name text, from_address text, to_address text,
									subject text, body_text text,
									body_html text DEFAULT NULL,
									message_id text DEFAULT NULL,
									reply_to text DEFAULT NULL,
									list_id text DEFAULT NULL,
									unsubscribe_url text DEFAULT NULL,
									date timestamptz DEFAULT pg_catalog.now(),
									unsubscribe_mailto text DEFAULT NULL,
									time_zone text DEFAULT NULL)
RETURNS text
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'taskflow_mime_build';
COMMENT ON FUNCTION taskflow.mime_build(text, text, text, text, text, text, text, text,
										text, text, timestamptz, text, text) IS
	'A MIME mail (UTF-8, RFC 2047 headers, base64 bodies, CRLF) built from its parts';

-- The mail an outbox row is sent as, dated as_of: the channel's list_id and
-- unsubscribe_url ({{member_id}} and {{token}}, from
-- taskflow.unsubscribe_token(bigint), filled in; left out for transactional
-- messages), the Message-ID outbox.message_id or else
-- '<outbox_id.chain_id@domain>' with the channel's message_id_domain or the
-- sender's domain (a resend of the row carries the same id), the Date in
-- the chain's time zone.  The row is checked here, then built by
-- taskflow._mime_messages() (src/sql/45_delivery_worker.sql), which the
-- delivery workers call for a whole batch at once.
CREATE FUNCTION taskflow.mime_message(outbox_id bigint,
									  as_of timestamptz DEFAULT pg_catalog.now())
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	o_channel text;
	o_transactional boolean;
	kind	text;
	unsub	text;
BEGIN
	SELECT x.channel, x.transactional, c.kind, c.unsubscribe_url
	  INTO o_channel, o_transactional, kind, unsub
	  FROM taskflow.outbox x
	  LEFT JOIN taskflow.channel c ON c.name OPERATOR(pg_catalog.=) x.channel
	 WHERE x.outbox_id OPERATOR(pg_catalog.=) mime_message.outbox_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'outbox row % does not exist', mime_message.outbox_id
			USING ERRCODE = 'no_data_found';
	END IF;
	kind := coalesce(kind, CASE WHEN o_channel OPERATOR(pg_catalog.=) 'webhook'
								THEN 'webhook' ELSE 'smtp' END);
	IF kind OPERATOR(pg_catalog.<>) 'smtp' THEN
		RAISE EXCEPTION 'outbox row % is for channel "%" (%), which does not send mail',
			mime_message.outbox_id, o_channel, kind
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
	RETURN (SELECT m.message FROM taskflow._mime_messages(ARRAY[mime_message.outbox_id], as_of) m);
END
$$;
COMMENT ON FUNCTION taskflow.mime_message(bigint, timestamptz) IS
	'The MIME mail an outbox row is sent as, dated as_of (same Message-ID on every resend)';

GRANT EXECUTE ON FUNCTION
	taskflow.mime_build(text, text, text, text, text, text, text, text,
						text, text, timestamptz, text, text),
	taskflow.mime_message(bigint, timestamptz)
	TO taskflow_app, taskflow_operator;

-- External relays (the role delivery creates in src/sql/4x) build the mail
-- of the rows they claimed with mime_message().
DO $grant$
BEGIN
	IF EXISTS (SELECT FROM pg_catalog.pg_roles
			   WHERE rolname OPERATOR(pg_catalog.=) 'taskflow_relay') THEN
		GRANT EXECUTE ON FUNCTION taskflow.mime_message(bigint, timestamptz),
			taskflow.mime_build(text, text, text, text, text, text, text, text,
								text, text, timestamptz, text, text)
			TO taskflow_relay;
	END IF;
END
$grant$;
-- taskflow install script, part 43: unsubscribe tokens for the
-- List-Unsubscribe link ({{token}} in a channel's unsubscribe_url).
--
-- A token is a keyed SHA-256 of the member id with a random secret made on
-- first use and readable only by the extension owner, so a link cannot
-- be forged for another member.  The application's unsubscribe endpoint
-- checks it with taskflow.unsubscribe_with_token().

CREATE TABLE taskflow.unsubscribe_secret (
	id			boolean PRIMARY KEY DEFAULT true CHECK (id),	/* one row */
	secret		text NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE taskflow.unsubscribe_secret IS
	'The key of unsubscribe tokens (one row, made on first use; rotate with taskflow.rotate_unsubscribe_secret())';
-- dumped so links already sent still work after a restore; the row is made
-- on first use, not by CREATE EXTENSION, so a restore brings back the old one
SELECT pg_catalog.pg_extension_config_dump('taskflow.unsubscribe_secret', '');
REVOKE ALL ON taskflow.unsubscribe_secret FROM PUBLIC;

-- A new random secret.
CREATE FUNCTION taskflow._new_unsubscribe_secret()
RETURNS text
LANGUAGE sql VOLATILE
RETURN pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
	pg_catalog.gen_random_uuid()::text OPERATOR(pg_catalog.||) pg_catalog.gen_random_uuid()::text
	OPERATOR(pg_catalog.||) pg_catalog.clock_timestamp()::text, 'UTF8')), 'hex');

-- The unsubscribe token of a member.
CREATE FUNCTION taskflow.unsubscribe_token(member_id bigint)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	key text;
BEGIN
	SELECT s.secret INTO key FROM taskflow.unsubscribe_secret s;
	IF NOT FOUND THEN
		INSERT INTO taskflow.unsubscribe_secret AS s (secret)
		VALUES (taskflow._new_unsubscribe_secret())
		ON CONFLICT (id) DO NOTHING;
		SELECT s.secret INTO key FROM taskflow.unsubscribe_secret s;
	END IF;
	RETURN encode(sha256(convert_to(key OPERATOR(pg_catalog.||) ':'
									OPERATOR(pg_catalog.||) unsubscribe_token.member_id::text, 'UTF8')), 'hex');
END
$$;
COMMENT ON FUNCTION taskflow.unsubscribe_token(bigint) IS
	'The token that proves an unsubscribe link was sent to this member';

-- Unsubscribes the member when the token is theirs; false (nothing done)
-- when it is not, or the member was already unsubscribed.
CREATE FUNCTION taskflow.unsubscribe_with_token(member_id bigint, token text,
												reason text DEFAULT 'unsubscribe link')
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF token IS NULL OR token OPERATOR(pg_catalog.<>) taskflow.unsubscribe_token(member_id) THEN
		RETURN false;
	END IF;
	RETURN taskflow.unsubscribe(member_id, taskflow.clock(), reason);
END
$$;
COMMENT ON FUNCTION taskflow.unsubscribe_with_token(bigint, text, text) IS
	'For the unsubscribe endpoint: unsubscribes when the token is the member''s (RFC 8058 one-click)';

-- Makes a new secret: links sent before stop working.
CREATE FUNCTION taskflow.rotate_unsubscribe_secret()
RETURNS void
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	INSERT INTO taskflow.unsubscribe_secret AS s (secret) VALUES (taskflow._new_unsubscribe_secret())
	ON CONFLICT (id) DO UPDATE SET secret = EXCLUDED.secret, created_at = pg_catalog.now();
END;

REVOKE ALL ON FUNCTION taskflow._new_unsubscribe_secret(), taskflow.unsubscribe_token(bigint),
	taskflow.unsubscribe_with_token(bigint, text, text),
	taskflow.rotate_unsubscribe_secret() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION taskflow.unsubscribe_token(bigint),
	taskflow.unsubscribe_with_token(bigint, text, text) TO taskflow_app;
-- taskflow install script, part 45: the delivery workers' SQL side.
--
-- taskflow.delivery_workers background workers per database send the
-- outbox (see src/delivery.c and doc/delivery.md).  They sleep until the
-- next message is ready (taskflow.next_delivery_at) and are woken at
-- commit by any statement that writes the outbox or a channel.

CREATE FUNCTION taskflow._wake_delivery()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_wake_delivery';

CREATE TRIGGER wake_delivery AFTER INSERT OR UPDATE ON taskflow.outbox
	FOR EACH STATEMENT EXECUTE FUNCTION taskflow._wake_delivery();
CREATE TRIGGER wake_delivery AFTER INSERT OR UPDATE OR DELETE ON taskflow.channel
	FOR EACH STATEMENT EXECUTE FUNCTION taskflow._wake_delivery();

-- The mail of each outbox row of outbox_ids, dated as_of, in that order:
-- what taskflow.mime_message() returns for one row (which checks the row
-- and then calls this), set-based for a delivery worker's batch: one
-- statement and one mime_build() call per message instead of a PL/pgSQL
-- call reading each row and its channel as JSON.  Rows that do not exist
-- are left out.
CREATE FUNCTION taskflow._mime_messages(outbox_ids bigint[], as_of timestamptz)
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
			   unsubscribe_url => CASE WHEN NOT o.transactional THEN
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

-- The delivery workers of this database: what they sent and their errors.
CREATE FUNCTION taskflow.delivery_status(
	OUT worker integer, OUT state text, OUT pid integer, OUT started_at timestamptz,
	OUT batches bigint, OUT sent bigint, OUT temporary_failures bigint,
	OUT permanent_failures bigint, OUT last_batch_at timestamptz,
	OUT last_batch_size integer, OUT last_batch_ms float8,
	OUT next_wakeup_at timestamptz, OUT last_error_at timestamptz, OUT last_error text)
RETURNS SETOF record
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_delivery_status';
CREATE VIEW taskflow.delivery_status AS SELECT * FROM taskflow.delivery_status() ORDER BY worker;
COMMENT ON VIEW taskflow.delivery_status IS
	'Per delivery worker of this database: pid, batches, outcomes, next wake-up, last error';

REVOKE ALL ON FUNCTION taskflow._wake_delivery(), taskflow.delivery_status(),
	taskflow._mime_messages(bigint[], timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION taskflow.delivery_status() TO taskflow_app, taskflow_operator;
GRANT SELECT ON taskflow.delivery_status TO taskflow_app, taskflow_operator;
-- taskflow install script, part 90: privileges.
--
-- PUBLIC gets nothing.  taskflow_app writes members and their events with
-- plain SQL and manages definitions through functions; taskflow_operator
-- reads.  Internal tables are written only through taskflow's functions.

REVOKE ALL ON ALL TABLES IN SCHEMA taskflow FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA taskflow FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA taskflow FROM PUBLIC;

-- member data: the application writes it, operators read it
GRANT SELECT, INSERT, UPDATE, DELETE
	ON taskflow.member, taskflow.event, taskflow.group_membership
	TO taskflow_app;
GRANT USAGE ON SEQUENCE taskflow.member_member_id_seq, taskflow.event_event_id_seq
	TO taskflow_app;
GRANT SELECT
	ON taskflow.member, taskflow.event, taskflow.group_membership,
	   taskflow.member_group, taskflow.custom_property, taskflow.member_status,
	   taskflow.event_kind, taskflow.tag_usage
	TO taskflow_app, taskflow_operator;

-- helpers usable in criteria and by both roles
GRANT EXECUTE ON FUNCTION
	taskflow.clock(),
	taskflow.days_since(timestamptz), taskflow.days_until(timestamptz),
	taskflow.days_until_anniversary(date),
	taskflow.within_next(timestamptz, interval), taskflow.within_last(timestamptz, interval),
	taskflow.has_tag(text[], text), taskflow.has_any_tag(text[], text[]),
	taskflow.has_all_tags(text[], text[]),
	taskflow.prop_text(jsonb, text), taskflow.prop_number(jsonb, text),
	taskflow.prop_bool(jsonb, text), taskflow.prop_date(jsonb, text),
	taskflow.in_group(bigint, text), taskflow.event_count(bigint, text, interval),
	taskflow.last_event_at(bigint, text), taskflow.paid_count(bigint),
	taskflow.last_payment_at(bigint), taskflow.paid_within(bigint, interval),
	taskflow.paid_for(bigint, date), taskflow.paid_for_month(bigint, integer),
	taskflow.is_valid_email(text), taskflow.is_valid_date(text),
	taskflow.check_property_value(text, jsonb, text), taskflow.group_id(text),
	taskflow.timeline(bigint)
	TO taskflow_app, taskflow_operator;

-- the trigger function runs as whoever writes the member
GRANT EXECUTE ON FUNCTION taskflow.member_before_write()
	TO taskflow_app, taskflow_operator;

-- writing member data and definitions
GRANT EXECUTE ON FUNCTION
	taskflow.define_status(text, text), taskflow.define_event_kind(text, text),
	taskflow.define_property(text, text, text[], text),
	taskflow.drop_property(text, boolean),
	taskflow.set_property(bigint, text, anyelement), taskflow.remove_property(bigint, text),
	taskflow.add_tag(bigint, text), taskflow.remove_tag(bigint, text),
	taskflow.create_group(text, text),
	taskflow.join_group(bigint, text, timestamptz), taskflow.leave_group(bigint, text, timestamptz),
	taskflow.record_event(bigint, text, jsonb, timestamptz, numeric, daterange),
	taskflow.record_payment(bigint, numeric, date, date, timestamptz, jsonb),
	taskflow.add_note(bigint, text, timestamptz),
	taskflow.unsubscribe(bigint, timestamptz, text), taskflow.resubscribe(bigint, timestamptz)
	TO taskflow_app;
-- operators write memos
GRANT EXECUTE ON FUNCTION taskflow.add_note(bigint, text, timestamptz),
	taskflow.record_event(bigint, text, jsonb, timestamptz, numeric, daterange)
	TO taskflow_operator;
GRANT INSERT ON taskflow.event TO taskflow_operator;
GRANT USAGE ON SEQUENCE taskflow.event_event_id_seq TO taskflow_operator;
