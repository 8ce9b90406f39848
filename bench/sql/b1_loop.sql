-- bench/sql/b1_loop.sql — benchmark 1, baseline (b): the writes of
-- b1_floor.sql made one member at a time by a PL/pgSQL loop (what a
-- row-at-a-time engine would do), in one transaction, for the first
-- :loop_n due members in the engine's order.
CREATE FUNCTION public.bench_loop(t0 timestamptz, n integer)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
	r record;
	v_email text;
	v_name text;
	done integer := 0;
	ch integer;
	s2 integer;
	s3 integer;
	tpl integer;
	next_due timestamptz := (((t0 AT TIME ZONE 'Asia/Tokyo')::date + 1) + time '10:00')
							AT TIME ZONE 'Asia/Tokyo';
BEGIN
	SELECT c.chain_id, a.step_id, b.step_id INTO ch, s2, s3
	  FROM taskflow.chain c
	  JOIN taskflow.chain_step a ON a.chain_id = c.chain_id AND a.position = 2
	  JOIN taskflow.chain_step b ON b.chain_id = c.chain_id AND b.position = 3
	 WHERE c.name = 'b1';
	SELECT t.template_id INTO tpl FROM taskflow.template t WHERE t.name = 'b1:案内';
	FOR r IN SELECT cm.member_id, cm.iteration FROM taskflow.chain_member cm
			  WHERE cm.chain_id = ch AND cm.step_id = s2 AND cm.state = 'waiting'
				AND cm.due_at <= t0
			  ORDER BY cm.due_at, cm.member_id LIMIT n LOOP
		INSERT INTO taskflow.event (member_id, kind, occurred_at, detail)
		SELECT m.member_id, 'tag_added', t0, '{"tag": "本会員"}' FROM taskflow.member m
		 WHERE m.member_id = r.member_id AND NOT m.tags @> ARRAY['本会員'];
		UPDATE taskflow.member m SET status = 'paid', tags = m.tags || '本会員'::text
		 WHERE m.member_id = r.member_id
		RETURNING m.email, m.name INTO v_email, v_name;
		INSERT INTO taskflow.history (chain_id, chain_name, member_id, step_id, task_name,
									  iteration, event, at, actor, detail)
		VALUES (ch, 'b1', r.member_id, s2, 'b1:本会員', r.iteration, 'applied', t0, 'taskflow', '{}');
		INSERT INTO taskflow.outbox (chain_id, step_id, member_id, iteration, template_id,
				channel, recipient, sender_name, sender_address, subject, body_text, state,
				created_at, not_before, time_zone)
		VALUES (ch, s2, r.member_id, r.iteration, tpl, 'email', v_email, '会員事務局',
				'info@example.jp', v_name || '様、本会員へのご案内',
				v_name || E'様\n\n本会員へのご登録ありがとうございます。\nご不明な点はお問い合わせください。',
				'pending', t0, t0, 'Asia/Tokyo');
		UPDATE taskflow.chain_member cm SET step_id = s3, waiting_since = t0, checked_at = NULL,
			   due_at = next_due
		 WHERE cm.chain_id = ch AND cm.member_id = r.member_id;
		done := done + 1;
	END LOOP;
	RETURN done;
END
$$;
