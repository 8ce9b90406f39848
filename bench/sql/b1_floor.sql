-- bench/sql/b1_floor.sql — benchmark 1, baseline (a): the writes the engine
-- makes for step 2 of chain b1, hand-written as set-based SQL in one
-- transaction (the floor): the tag's timeline rows, one UPDATE of the
-- members, the history rows, the rendered outbox rows, and the members
-- moved on to step 3.  The outbox text is concatenated, not rendered from
-- the template: the cheapest way to write the same rows.
SELECT c.chain_id AS chain, s2.step_id AS step2, s3.step_id AS step3, t.template_id AS tpl
  FROM taskflow.chain c
  JOIN taskflow.chain_step s2 ON s2.chain_id = c.chain_id AND s2.position = 2
  JOIN taskflow.chain_step s3 ON s3.chain_id = c.chain_id AND s3.position = 3,
       taskflow.template t
 WHERE c.name = 'b1' AND t.name = 'b1:案内' \gset
BEGIN;
CREATE TEMP TABLE due ON COMMIT DROP AS
SELECT cm.member_id, cm.iteration FROM taskflow.chain_member cm
 WHERE cm.chain_id = :chain AND cm.step_id = :step2 AND cm.state = 'waiting'
   AND cm.due_at <= :'t0';
INSERT INTO taskflow.event (member_id, kind, occurred_at, detail)
SELECT m.member_id, 'tag_added', :'t0', '{"tag": "本会員"}'
  FROM taskflow.member m JOIN due USING (member_id)
 WHERE NOT m.tags @> ARRAY['本会員'];
UPDATE taskflow.member m SET status = 'paid', tags = m.tags || '本会員'::text
  FROM due WHERE due.member_id = m.member_id;
INSERT INTO taskflow.history (chain_id, chain_name, member_id, step_id, task_name,
                              iteration, event, at, actor, detail)
SELECT :chain, 'b1', due.member_id, :step2, 'b1:本会員', due.iteration, 'applied', :'t0',
       'taskflow', '{}' FROM due;
INSERT INTO taskflow.outbox (chain_id, step_id, member_id, iteration, template_id, channel,
       recipient, sender_name, sender_address, subject, body_text, state, created_at,
       not_before, time_zone)
SELECT :chain, :step2, m.member_id, due.iteration, :tpl, 'email', m.email,
       '会員事務局', 'info@example.jp', m.name || '様、本会員へのご案内',
       m.name || E'様\n\n本会員へのご登録ありがとうございます。\nご不明な点はお問い合わせください。',
       'pending', :'t0', :'t0', 'Asia/Tokyo'
  FROM taskflow.member m JOIN due USING (member_id);
UPDATE taskflow.chain_member cm SET step_id = :step3, waiting_since = :'t0', checked_at = NULL,
       due_at = (((:'t0'::timestamptz AT TIME ZONE 'Asia/Tokyo')::date + 1) + time '10:00')
                AT TIME ZONE 'Asia/Tokyo'
  FROM due WHERE cm.chain_id = :chain AND cm.member_id = due.member_id;
COMMIT;
