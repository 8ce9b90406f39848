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

-- The mail an outbox row is sent as, dated as_of.  Reads the row and, once
-- src/sql/40_channels.sql has created taskflow.channel, its channel
-- (list_id, unsubscribe_url, message_id_domain, and sender_address for a
-- template without one); columns that do not exist (yet) count as NULL, so
-- this works before and after the channel and outbox additions of delivery.  The Message-ID is outbox.message_id when
-- that column is there, else '<outbox_id.chain_id@domain>' with the
-- channel's message_id_domain or the sender's domain: a resend of the row
-- carries the same id.  The Date is in the chain's time zone.  The
-- unsubscribe URL gets {{member_id}} (and {{token}}, from
-- taskflow.unsubscribe_token(bigint) when that function exists) filled in
-- and is left out for transactional messages.
CREATE FUNCTION taskflow.mime_message(outbox_id bigint,
									  as_of timestamptz DEFAULT pg_catalog.now())
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	o		jsonb;
	ch		jsonb;
	kind	text;
	zone	text;
	domain	text;
	unsub	text;
	token	text;
BEGIN
	SELECT to_jsonb(x) INTO o
	  FROM taskflow.outbox x
	 WHERE x.outbox_id OPERATOR(pg_catalog.=) mime_message.outbox_id;
	IF o IS NULL THEN
		RAISE EXCEPTION 'outbox row % does not exist', mime_message.outbox_id
			USING ERRCODE = 'no_data_found';
	END IF;

	IF to_regclass('taskflow.channel') IS NOT NULL THEN
		EXECUTE 'SELECT to_jsonb(c) FROM taskflow.channel c'
				' WHERE c.name OPERATOR(pg_catalog.=) $1'
		   INTO ch USING o OPERATOR(pg_catalog.->>) 'channel';
	END IF;
	kind := coalesce(ch OPERATOR(pg_catalog.->>) 'kind',
					 CASE WHEN o OPERATOR(pg_catalog.->>) 'channel' OPERATOR(pg_catalog.=) 'webhook'
						  THEN 'webhook' ELSE 'smtp' END);
	IF kind OPERATOR(pg_catalog.<>) 'smtp' THEN
		RAISE EXCEPTION 'outbox row % is for channel "%" (%), which does not send mail',
			mime_message.outbox_id, o OPERATOR(pg_catalog.->>) 'channel', kind
			USING ERRCODE = 'wrong_object_type';
	END IF;

	zone := coalesce(o OPERATOR(pg_catalog.->>) 'time_zone',
					 (SELECT c.time_zone FROM taskflow.chain c
					   WHERE c.chain_id OPERATOR(pg_catalog.=)
							 (o OPERATOR(pg_catalog.->>) 'chain_id')::integer));
	domain := coalesce(nullif(ch OPERATOR(pg_catalog.->>) 'message_id_domain', ''),
					   nullif(split_part(coalesce(o OPERATOR(pg_catalog.->>) 'sender_address',
												  ch OPERATOR(pg_catalog.->>) 'sender_address'),
										 '@', 2), ''),
					   'localhost');

	IF NOT (o OPERATOR(pg_catalog.->>) 'transactional')::boolean THEN
		unsub := nullif(ch OPERATOR(pg_catalog.->>) 'unsubscribe_url', '');
	END IF;
	IF unsub IS NOT NULL THEN
		unsub := replace(unsub, '{{member_id}}', o OPERATOR(pg_catalog.->>) 'member_id');
		IF strpos(unsub, '{{token}}') OPERATOR(pg_catalog.>) 0 THEN
			IF to_regprocedure('taskflow.unsubscribe_token(bigint)') IS NULL THEN
				RAISE EXCEPTION 'the unsubscribe_url of channel "%" uses {{token}}, but taskflow.unsubscribe_token(bigint) does not exist',
					o OPERATOR(pg_catalog.->>) 'channel'
					USING ERRCODE = 'undefined_function';
			END IF;
			EXECUTE 'SELECT taskflow.unsubscribe_token($1)'
			   INTO token USING (o OPERATOR(pg_catalog.->>) 'member_id')::bigint;
			unsub := replace(unsub, '{{token}}', token);
		END IF;
	END IF;

	RETURN taskflow.mime_build(
		from_name => o OPERATOR(pg_catalog.->>) 'sender_name',
		from_address => coalesce(o OPERATOR(pg_catalog.->>) 'sender_address',
								 ch OPERATOR(pg_catalog.->>) 'sender_address'),
		to_address => o OPERATOR(pg_catalog.->>) 'recipient',
		subject => o OPERATOR(pg_catalog.->>) 'subject',
		body_text => o OPERATOR(pg_catalog.->>) 'body_text',
		body_html => o OPERATOR(pg_catalog.->>) 'body_html',
		message_id => coalesce(o OPERATOR(pg_catalog.->>) 'message_id',
							   format('<%s.%s@%s>', o OPERATOR(pg_catalog.->>) 'outbox_id',
									  o OPERATOR(pg_catalog.->>) 'chain_id', domain)),
		reply_to => o OPERATOR(pg_catalog.->>) 'reply_to',
		list_id => ch OPERATOR(pg_catalog.->>) 'list_id',
		unsubscribe_url => unsub,
		date => as_of,
		time_zone => zone);
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
