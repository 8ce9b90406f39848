-- bench/sql/b1_fixture.sql — benchmark 1 (engine step throughput): after
-- members.sql, every member waits at step 2 of a three-step chain, due an
-- hour before :'t0'.  Step 2 changes a column (status → paid), adds a tag,
-- writes its history row and renders an outbox row; step 3 is a day later.
-- Step 1 was applied a day before (its history rows exist, as they would).
-- Only members 1 .. :due are in the chain (benchmark 6's small case).
SET taskflow.as_of = :'t1';
SELECT taskflow.create_template('b1:案内', '{{name}}様、本会員へのご案内',
	E'{{name}}様\n\n本会員へのご登録ありがとうございます。\nご不明な点はお問い合わせください。',
	sender_name => '会員事務局', sender_address => 'info@example.jp');
SELECT taskflow.create_task('b1:開始', 'auto');
SELECT taskflow.create_task('b1:本会員', 'auto', template => 'b1:案内',
	actions => '[{"set": "status", "to": "paid"}, {"add_tag": "本会員"}]');
SELECT taskflow.create_task('b1:翌日', 'auto');
SELECT taskflow.create_chain('b1', tasks => ARRAY['b1:開始', 'b1:本会員', 'b1:翌日'],
	waits => ARRAY[NULL, '1 hours', '1 days at 10:00'], time_zone => 'Asia/Tokyo');
-- no entry check is due at :'t0' (entries are not what is measured here)
UPDATE taskflow.chain SET last_entry_at = :'t0' WHERE name = 'b1';

SET session_replication_role = replica;
INSERT INTO taskflow.chain_member (chain_id, member_id, step_id, iteration, state,
                                   entered_at, waiting_since, due_at)
SELECT c.chain_id, m.member_id, s.step_id, 1, 'waiting', :'t1', :'t1',
       :'t0'::timestamptz - interval '1 hour'
  FROM taskflow.member m, taskflow.chain c
  JOIN taskflow.chain_step s ON s.chain_id = c.chain_id AND s.position = 2
 WHERE c.name = 'b1' AND m.member_id <= :due;
INSERT INTO taskflow.history (chain_id, chain_name, member_id, step_id, task_name,
                              iteration, event, at, actor)
SELECT c.chain_id, 'b1', m.member_id, s.step_id, 'b1:開始', 1, e.event, :'t1', 'taskflow'
  FROM taskflow.member m, taskflow.chain c
  JOIN taskflow.chain_step s ON s.chain_id = c.chain_id AND s.position = 1,
       (VALUES ('entered'), ('applied')) e(event)
 WHERE c.name = 'b1' AND m.member_id <= :due
 ORDER BY m.member_id, e.event DESC;
RESET session_replication_role;
