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
-- are left out.  Neither transactional mail nor a test chain's mail gets
-- the List-Unsubscribe link: a test chain's mail goes to a tester, and
-- its link would unsubscribe the real member.
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
			   unsubscribe_url => CASE WHEN NOT o.transactional AND NOT o.is_test THEN
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
