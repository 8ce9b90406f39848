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
-- they have; operators see every one (explain() names them).  security_barrier, so a leaky function in a user's WHERE
-- clause cannot see the other rows.
CREATE VIEW taskflow.criteria_list WITH (security_barrier) AS
SELECT c.criteria_id, c.name, c.description, c.expression, c.normalized,
	   c.properties, c.owner, c.created_at, c.updated_at
  FROM taskflow.criteria c
 WHERE pg_catalog.pg_has_role(CURRENT_USER, c.owner::pg_catalog.oid, 'USAGE')
	OR pg_catalog.pg_has_role(CURRENT_USER, 'taskflow_operator', 'USAGE');
COMMENT ON VIEW taskflow.criteria_list IS
	'Saved criteria the current user may use (owned by a role whose privileges they have), and every one for operators';

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

-- What uses a custom property, for taskflow.drop_property() and a change
-- of its type in taskflow.define_property(): the first saved criteria
-- reading it, anchor chain anchored on it, template with a merge field
-- {{properties.<name>}}, task whose actions set or remove it or channel
-- addressing its members by it, as 'criteria "name"', 'chain "name"',
-- 'template "name"', 'task "name"' or 'channel "name"';
-- NULL when nothing does.  PL/pgSQL: templates, tasks and chains are
-- created by later parts of the script.
CREATE FUNCTION taskflow.property_used_by(property_name text)
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
