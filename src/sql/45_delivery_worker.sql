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

REVOKE ALL ON FUNCTION taskflow._wake_delivery(), taskflow.delivery_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION taskflow.delivery_status() TO taskflow_app, taskflow_operator;
GRANT SELECT ON taskflow.delivery_status TO taskflow_app, taskflow_operator;
