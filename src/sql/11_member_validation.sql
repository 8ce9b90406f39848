-- taskflow install script, part 11: validation of member data on write.
--
-- Whatever writes a member or an event (SQL, COPY, the engine) goes
-- through these triggers, so a bad e-mail address, status, tag, property
-- value, event kind or payment is refused with an error that names the
-- member, the property and the value.

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
COMMENT ON FUNCTION taskflow.check_property_value(text, jsonb, text) IS
	'Raises a clear error unless value is valid for the named custom property';

-- True when text is one plain ASCII address, local@domain.tld: dot-atoms
-- of RFC 5322 (no spaces, quotes, brackets, empty or leading/trailing
-- dots), domain labels of letters, digits and inner hyphens (xn-- for
-- international names).  Exactly what the MIME builder (src/mime.c) and
-- SMTP can send to, so an address accepted here never fails at send time.
CREATE FUNCTION taskflow.is_valid_email(address text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN address OPERATOR(pg_catalog.~)
	('^[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+([.][A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+)*'
	 '@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?([.][A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$')
	AND pg_catalog.length(address) OPERATOR(pg_catalog.<=) 254;
COMMENT ON FUNCTION taskflow.is_valid_email(text) IS
	'True when the text is one plain ASCII e-mail address (local@domain.tld) that mail can be sent to';

-- True when a text is exactly YYYY-MM-DD and a real calendar date; false
-- (never an error) for anything else, NULL included.
CREATE FUNCTION taskflow.is_valid_date(value text)
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

-- Validates and normalises a member row before it is written: on INSERT
-- every column, on UPDATE the columns whose value changes — the e-mail
-- address, the status (named in the error, where the foreign key would
-- name neither the member nor the COPY line), each custom property
-- (check_property_value), the tags (trimmed of spaces and U+3000, unique,
-- sorted; no empty, over-long or control characters).  In C
-- (src/member_write.c): it runs for every member an engine step changes.
--
-- Like CREATE FUNCTION, it skips its checks while check_function_bodies is
-- off — pg_dump sets that while restoring, and restores the data of
-- extension tables in an order that may load members before the property
-- definitions they are checked against — but only for a superuser (only
-- a superuser can create the extension a dump restores; any role can set
-- check_function_bodies).  The rows were checked when first written.
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
		  OR OLD.status IS DISTINCT FROM NEW.status
		  OR OLD.properties IS DISTINCT FROM NEW.properties
		  OR OLD.tags IS DISTINCT FROM NEW.tags)
	EXECUTE FUNCTION taskflow.member_before_write();

-- Validates a timeline event before it is written, whatever writes it
-- (record_event, INSERT, COPY): the kind exists (named in the error with
-- the member), occurred_at is finite, and a payment has what
-- record_payment() requires — a finite amount of 0 or more and a period
-- of finite dates — so paid_count() and the other payment predicates never
-- count a refund, a NaN or a payment for no dates.  recorded_by is the
-- role that wrote the event: for any role but a superuser or the extension
-- owner (which taskflow's own code runs as, naming the writer itself) the
-- trigger writes that role's name there, whatever the statement gave.  In
-- C (src/member_write.c), skipped in a superuser's restore like
-- member_before_write.
CREATE FUNCTION taskflow.event_before_write()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_event_before_write';

CREATE TRIGGER event_before_insert
	BEFORE INSERT ON taskflow.event
	FOR EACH ROW EXECUTE FUNCTION taskflow.event_before_write();
-- every UPDATE that changes something: it writes recorded_by too
CREATE TRIGGER event_before_update
	BEFORE UPDATE ON taskflow.event
	FOR EACH ROW
	WHEN (OLD.* IS DISTINCT FROM NEW.*)
	EXECUTE FUNCTION taskflow.event_before_write();

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

CREATE TRIGGER group_membership_before_insert
	BEFORE INSERT ON taskflow.group_membership
	FOR EACH ROW EXECUTE FUNCTION taskflow.group_membership_before_write();
CREATE TRIGGER group_membership_before_update
	BEFORE UPDATE ON taskflow.group_membership
	FOR EACH ROW
	WHEN (OLD.* IS DISTINCT FROM NEW.*)
	EXECUTE FUNCTION taskflow.group_membership_before_write();
