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
