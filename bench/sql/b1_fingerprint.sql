-- bench/sql/b1_fingerprint.sql — what benchmark 1 wrote for members
-- 1 .. :upto, as "rows hash": every member, timeline, history, outbox and
-- chain_member row (all columns but generated ids and now() defaults),
-- hashed and summed, so that runs writing the same rows in another order
-- give the same figure.
SELECT count(*) || ' ' || sum(hashtextextended(x, 0)::numeric) FROM (
	SELECT m::text AS x FROM taskflow.member m WHERE m.member_id <= :upto
	UNION ALL
	SELECT (e.member_id, e.kind, e.occurred_at, e.amount, e.period, e.detail, e.recorded_by)::text
	  FROM taskflow.event e WHERE e.member_id <= :upto
	UNION ALL
	SELECT (h.chain_id, h.chain_name, h.member_id, h.step_id, h.task_name, h.iteration,
			h.event, h.at, h.actor, h.detail)::text
	  FROM taskflow.history h WHERE h.member_id <= :upto
	UNION ALL
	SELECT (o.chain_id, o.step_id, o.member_id, o.iteration, o.template_id, o.channel,
			o.recipient, o.sender_name, o.sender_address, o.reply_to, o.subject, o.body_text,
			o.body_html, o.transactional, o.state, o.state_reason, o.created_at, o.not_before,
			o.attempts, o.sent_at, o.time_zone, o.is_test, o.original_recipient,
			o.message_id)::text
	  FROM taskflow.outbox o WHERE o.member_id <= :upto
	UNION ALL
	SELECT cm::text FROM taskflow.chain_member cm WHERE cm.member_id <= :upto) f;
