-- Working a pending list safely: process() checks the manual task's
-- criteria again (a cancelled bank-transfer order is not "confirmed"), a
-- task in two chains is worked in the chain named, and a role that may
-- not work a chain learns nothing about who is pending there.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
DROP ROLE IF EXISTS manual_checks_app;
DROP ROLE IF EXISTS manual_checks_op;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
SET taskflow.as_of = '2026-04-01 09:00+09';

SELECT taskflow.define_status('awaiting_payment', '入金待ち');
SELECT taskflow.save_criteria('振込待ち', $$status = 'awaiting_payment'$$);
SELECT taskflow.create_template('入会完了', '{{name}}様 ご入金を確認しました', '{{name}}様',
	sender_address => 'info@example.jp');
SELECT taskflow.create_task('入金確認', 'manual', criteria => '振込待ち',
	actions => '[{"set": "status", "to": "paid"}, {"extend_expires": "1 month"}]',
	template => '入会完了');
SELECT taskflow.create_chain('銀行振込', ARRAY['入金確認'], schedule => 'always',
	time_zone => 'Asia/Tokyo');
INSERT INTO taskflow.member (external_id, email, name, status) VALUES
	('b1', 'yamada@example.jp', '山田太郎', 'awaiting_payment'),
	('b2', 'sato@example.jp', '佐藤花子', 'awaiting_payment'),
	('b3', 'suzuki@example.jp', '鈴木一郎', 'awaiting_payment');
SELECT * FROM taskflow.run('2026-04-01 10:00+09');
CREATE FUNCTION pg_temp.mid(ext text) RETURNS bigint LANGUAGE sql
	RETURN (SELECT member_id FROM taskflow.member WHERE external_id = ext);

---------------------------------------------------------------- criteria checked again
-- 佐藤 cancels her order before the clerk gets to it
UPDATE taskflow.member SET status = 'cancelled' WHERE external_id = 'b2';
-- explain says so
SELECT chain, state, reason FROM taskflow.explain(pg_temp.mid('b2'), '2026-04-02 15:00+09');
-- chosen by name: refused, nothing processed
SELECT taskflow.process('入金確認', ARRAY[pg_temp.mid('b1'), pg_temp.mid('b2')],
	'2026-04-02 15:00+09');
SELECT name, status FROM taskflow.member ORDER BY member_id;
-- all pending: 山田 and 鈴木 are processed; 佐藤 leaves the chain (the
-- task's on_mismatch is 'leave'), unprocessed and not mailed
SELECT taskflow.process('入金確認', NULL, '2026-04-02 15:00+09');
SELECT name, status, to_char(expires_at, 'MM-DD') AS expires FROM taskflow.member ORDER BY member_id;
SELECT recipient, subject FROM taskflow.outbox ORDER BY outbox_id;
SELECT m.name, h.event, h.detail FROM taskflow.history h JOIN taskflow.member m USING (member_id)
 WHERE h.at = '2026-04-02 15:00+09' ORDER BY h.history_id;

---------------------------------------------------------------- a task in two chains
SELECT taskflow.create_template('更新完了', '{{name}}様 更新を承りました', '{{name}}様',
	sender_address => 'info@example.jp');
SELECT taskflow.save_criteria('振込待ち2', $$has_tag(tags, '振込待ち')$$);
SELECT taskflow.create_task('振込確認', 'manual', criteria => '振込待ち2',
	actions => '[{"remove_tag": "振込待ち"}]', template => '更新完了');
SELECT taskflow.create_chain('新規入会', ARRAY['振込確認'], time_zone => 'Asia/Tokyo');
SELECT taskflow.create_chain('更新', ARRAY['振込確認'], time_zone => 'Asia/Tokyo');
INSERT INTO taskflow.member (external_id, email, name, tags) VALUES
	('k1', 'kimura@example.jp', '木村拓', '{振込待ち}'),
	('k2', 'kubo@example.jp', '久保葵', '{振込待ち}');
SELECT * FROM taskflow.run('2026-04-03 10:00+09') ORDER BY chain;
SELECT chain, member_name FROM taskflow.pending_tasks WHERE task = '振込確認' ORDER BY chain, member_name;
-- pending in both chains: which one must be said
SELECT taskflow.process('振込確認', ARRAY[pg_temp.mid('k1')], '2026-04-03 15:00+09');
SELECT taskflow.process('振込確認', NULL, '2026-04-03 15:00+09');
SELECT taskflow.process('振込確認', ARRAY[pg_temp.mid('k1')], '2026-04-03 15:00+09', chain => '新規');
SELECT taskflow.process('振込確認', ARRAY[pg_temp.mid('k1')], '2026-04-03 15:00+09', chain => '銀行振込');
SELECT taskflow.process('振込確認', ARRAY[pg_temp.mid('k1')], '2026-04-03 15:00+09', chain => '新規入会');
SELECT count(*) AS mails FROM taskflow.outbox WHERE recipient = 'kimura@example.jp';
-- 木村 no longer has the tag: in 更新 he no longer matches and leaves
SELECT taskflow.cancel('振込確認', ARRAY[pg_temp.mid('k2')], '2026-04-03 15:00+09', chain => '更新');
SELECT taskflow.process('振込確認', NULL, '2026-04-03 15:05+09');
SELECT chain, member_name, state FROM taskflow.member_state
 WHERE member_name IN ('木村拓', '久保葵') ORDER BY chain, member_name;

---------------------------------------------------------------- who may work it
-- an application role that does not own the chains is refused before
-- anything is said about the members (pending or not, since when)
CREATE ROLE manual_checks_app IN ROLE taskflow_app;
INSERT INTO taskflow.member (external_id, email, name, status) VALUES
	('b4', 'ueda@example.jp', '上田明', 'awaiting_payment');
SELECT * FROM taskflow.run('2026-04-04 10:00+09', '銀行振込');
SET ROLE manual_checks_app;
SELECT taskflow.process('入金確認', ARRAY[pg_temp.mid('b4'), 999], '2026-04-04 12:00+09');
SELECT taskflow.process('入金確認', ARRAY[pg_temp.mid('b4')], '2026-04-04 09:00+09');
SELECT taskflow.cancel('入金確認', NULL, '2026-04-04 12:00+09');
RESET ROLE;
SELECT member_name FROM taskflow.pending_tasks WHERE task = '入金確認';

-- an operator reads every saved criteria: explain() names them
CREATE ROLE manual_checks_op IN ROLE taskflow_operator;
SET ROLE manual_checks_op;
SELECT name, expression FROM taskflow.criteria_list ORDER BY name;
RESET ROLE;

---------------------------------------------------------------- a disabled chain
-- nothing of it runs, its pending members included; cancel() takes them out
SELECT taskflow.disable_chain('銀行振込');
SELECT taskflow.process('入金確認', NULL, '2026-04-04 13:00+09');
SELECT taskflow.skip('入金確認', NULL, '2026-04-04 13:00+09');
SELECT taskflow.cancel('入金確認', NULL, '2026-04-04 13:00+09');
SELECT member_name FROM taskflow.pending_tasks WHERE task = '入金確認';

DROP FUNCTION pg_temp.mid(text);
DROP EXTENSION taskflow CASCADE;
DROP ROLE manual_checks_app;
DROP ROLE manual_checks_op;
