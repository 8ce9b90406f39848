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
-- is one line without control characters (C0, DEL and the C1 range
-- U+0080-U+009F, which the MIME builder refuses too): a line break in a
-- header would let the text add headers of its own (header injection).
CREATE FUNCTION taskflow._check_template_header(template_name text, what text, value text)
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
	IF t.sender_address IS NULL
	   AND taskflow.channel_kind(t.channel) OPERATOR(pg_catalog.=) 'smtp' THEN
		RAISE EXCEPTION 'template "%" needs a sender address: it is sent by e-mail (channel "%")',
						t.name, t.channel
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give sender_address => ''info@example.jp'' (and sender_name for the name shown).';
	END IF;
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
-- the template.  The name is trimmed of surrounding blanks, as task and
-- chain names are.
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

-- What a member would receive from a template: preview_template() on
-- behalf of caller, who must have the template owner's privileges or be an
-- operator.
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
CREATE FUNCTION taskflow.preview_template(name text, member_id bigint)
RETURNS TABLE (subject text, body_text text, body_html text)
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'taskflow_api_call_set';
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
	taskflow._preview_template(regrole, text, bigint),
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
