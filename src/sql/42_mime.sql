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
-- messages and for test chains' messages, which go to a tester: the link
-- would unsubscribe the real member), the Message-ID outbox.message_id or else
-- '<outbox_id.chain_id@domain>' with the channel's message_id_domain or the
-- sender's domain (a resend of the row carries the same id), the Date in
-- the chain's time zone.  The row is checked here, then built by
-- taskflow._mime_messages() (src/sql/45_delivery_worker.sql), which the
-- delivery workers call for a whole batch at once.  mime_message() on
-- behalf of caller: a relay, an operator, or a role with the privileges
-- of the message's chain owner.
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
CREATE FUNCTION taskflow.mime_message(outbox_id bigint,
									  as_of timestamptz DEFAULT pg_catalog.now())
RETURNS text
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'taskflow_api_call';
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
