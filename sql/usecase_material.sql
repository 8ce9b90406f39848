-- Use case 5 (seed 000, 5): a manual step in the middle.  Sign-up by form →
-- 3 hours later a thank-you mail → staff post the printed material and mark
-- those members done (manual task 資料発送, on the dashboard until
-- processed), which sends a "material sent" mail → 3, 5, 6, 7 and 8 days
-- after that processing (not after the sign-up) automatic follow-up mails.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
DROP ROLE IF EXISTS usecase_material_staff;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
SET taskflow.as_of = '2026-04-01 09:00+09';

-- the staff member who posts the material works as an operator
CREATE ROLE usecase_material_staff IN ROLE taskflow_operator;

---------------------------------------------------------------- the set-up
-- the request form tags the member 資料請求
SELECT taskflow.save_criteria('資料請求者', $$has_tag(tags, '資料請求')$$, '資料請求フォームから登録した人');

SELECT taskflow.create_template('登録ありがとう', '【ABCスクール】{{name}}様、ご登録ありがとうございます',
	E'{{name}}様\n\n資料請求ありがとうございます。準備ができ次第、郵送いたします。',
	sender_name => 'ABCスクール事務局', sender_address => 'info@example.jp');
SELECT taskflow.create_template('資料送りました', '【ABCスクール】資料を発送しました',
	E'{{name}}様\n\n本日、資料を郵送いたしました。2〜3日でお手元に届きます。',
	sender_name => 'ABCスクール事務局', sender_address => 'info@example.jp');
SELECT taskflow.create_template('届きましたか', '【ABCスクール】資料は届きましたか？',
	E'{{name}}様\n\n先日お送りした資料は届きましたでしょうか。',
	sender_name => 'ABCスクール事務局', sender_address => 'info@example.jp');
SELECT taskflow.create_template('無料メール講座', '【ABCスクール】無料メール講座にご登録ください',
	E'{{name}}様\n\n資料と合わせて、無料メール講座もご活用ください。',
	sender_name => 'ABCスクール事務局', sender_address => 'info@example.jp');
SELECT taskflow.create_template('ステップメール1', '【無料メール講座】第1回 はじめに',
	E'{{name}}様\n\n第1回の講座をお届けします。', sender_name => 'ABCスクール事務局',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('ステップメール2', '【無料メール講座】第2回 基本の考え方',
	E'{{name}}様\n\n第2回の講座をお届けします。', sender_name => 'ABCスクール事務局',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('ステップメール3', '【無料メール講座】第3回 実践編',
	E'{{name}}様\n\n第3回の講座をお届けします。', sender_name => 'ABCスクール事務局',
	sender_address => 'info@example.jp');

SELECT taskflow.create_task('資料請求受付', 'auto', criteria => '資料請求者',
	description => '資料請求フォームから登録した人を受け付ける');
SELECT taskflow.create_task('登録お礼', 'auto', template => '登録ありがとう',
	description => '登録から3時間後にお礼メール');
SELECT taskflow.create_task('資料発送', 'manual', template => '資料送りました',
	actions => '[{"add_tag": "資料送付済"}]',
	show_on_dashboard => true, assignee => '発送担当', priority => 5,
	description => '資料を郵送したら、送った人を処理する（資料送りましたメールが出る）');
SELECT taskflow.create_task('到着確認', 'auto', template => '届きましたか');
SELECT taskflow.create_task('メール講座案内', 'auto', template => '無料メール講座');
SELECT taskflow.create_task('講座1通目', 'auto', template => 'ステップメール1');
SELECT taskflow.create_task('講座2通目', 'auto', template => 'ステップメール2');
SELECT taskflow.create_task('講座3通目', 'auto', template => 'ステップメール3');

-- waits count from the previous task: after 資料発送 from when staff
-- processed it, so the follow-ups are 3, 5, 6, 7 and 8 days after posting
SELECT taskflow.create_chain('資料請求フォロー',
	tasks => ARRAY['資料請求受付', '登録お礼', '資料発送', '到着確認', 'メール講座案内',
				   '講座1通目', '講座2通目', '講座3通目'],
	waits => ARRAY[NULL, '3 hours', '1 minutes', '3 days at 10:00', '2 days at 10:00',
				   '1 days at 10:00', '1 days at 10:00', '1 days at 10:00'],
	schedule => 'always', time_zone => 'Asia/Tokyo');
SELECT chain, position, task, mode FROM taskflow.chain_summary ORDER BY chain, position;

-- runs the engine at each instant given; shows only runs that did something
CREATE FUNCTION pg_temp.run_at(VARIADIC instants timestamptz[])
RETURNS TABLE (run_at timestamptz, entered bigint, applied bigint, pending bigint,
			   "left" bigint, errors bigint)
LANGUAGE plpgsql AS $$
DECLARE
	t timestamptz;
BEGIN
	FOREACH t IN ARRAY instants LOOP
		RETURN QUERY
			SELECT t, r.entered, r.applied, r.pending, r."left", r.errors
			  FROM taskflow.run(t) r
			 WHERE r.entered + r.applied + r.pending + r."left" + r.errors > 0;
	END LOOP;
END
$$;

---------------------------------------------------------------- 4/1: sign-ups
-- the engine runs a few minutes after each sign-up; 加藤 registers without
-- asking for material
INSERT INTO taskflow.member (external_id, email, name, tags, joined_at) VALUES
	('mt-1', 'yamada@example.jp', '山田太郎', '{資料請求}', '2026-04-01 10:00+09'),
	('mt-2', 'sato@example.jp', '佐藤花子', '{資料請求}', '2026-04-01 10:00+09');
SELECT * FROM pg_temp.run_at('2026-04-01 10:05+09');
INSERT INTO taskflow.member (external_id, email, name, tags, joined_at) VALUES
	('mt-3', 'suzuki@example.jp', '鈴木一郎', '{資料請求}', '2026-04-01 11:00+09'),
	('mt-4', 'takahashi@example.jp', '高橋美咲', '{資料請求}', '2026-04-01 11:00+09');
SELECT * FROM pg_temp.run_at('2026-04-01 11:05+09');
INSERT INTO taskflow.member (external_id, email, name, tags, joined_at) VALUES
	('mt-5', 'tanaka@example.jp', '田中健', '{資料請求}', '2026-04-01 13:00+09'),
	('mt-6', 'ito@example.jp', '伊藤さくら', '{資料請求}', '2026-04-01 13:00+09'),
	('mt-7', 'watanabe@example.jp', '渡辺翔', '{資料請求}', '2026-04-01 13:00+09'),
	('mt-8', 'kato@example.jp', '加藤恵', '{}', '2026-04-01 13:00+09');
-- thank-you mails 3 hours after each entry; 1 minute later on the pending list
SELECT * FROM pg_temp.run_at('2026-04-01 13:05+09', '2026-04-01 14:05+09', '2026-04-01 15:05+09',
							 '2026-04-01 16:05+09', '2026-04-01 16:10+09', '2026-04-01 17:00+09');

SELECT o.member_id, o.recipient, o.subject, o.created_at
  FROM taskflow.outbox o ORDER BY o.created_at, o.member_id;

---------------------------------------------------------------- the dashboard
-- staff look at the dashboard the next morning: everyone who asked, oldest first
SET ROLE usecase_material_staff;
SELECT task, chain, member_id, external_id, member_name, email, pending_since, assignee, priority
  FROM taskflow.dashboard;
-- why is 鈴木 there?  and why is 加藤 not?
SELECT chain, state, task, since, due_at, reason FROM taskflow.explain(3, '2026-04-02 09:00+09');
SELECT chain, state, task, since, due_at, reason FROM taskflow.explain(8, '2026-04-02 09:00+09');
RESET ROLE;

-- the engine's morning run leaves pending members alone
SELECT * FROM pg_temp.run_at('2026-04-02 10:00+09');

---------------------------------------------------------------- 4/2 15:00
-- material posted to 山田, 佐藤 and 鈴木; the others stay on the list
SET ROLE usecase_material_staff;
SELECT taskflow.process('資料発送', ARRAY[1, 2, 3]::bigint[], '2026-04-02 15:00+09');
SELECT member_id, member_name, pending_since FROM taskflow.dashboard;
SELECT chain, state, task, since, due_at, reason FROM taskflow.explain(1, '2026-04-02 15:00+09');
RESET ROLE;
SELECT o.member_id, o.subject, o.created_at, o.body_text
  FROM taskflow.outbox o WHERE o.created_at = '2026-04-02 15:00+09' ORDER BY o.member_id;
SELECT member_id, name, tags FROM taskflow.member ORDER BY member_id;

---------------------------------------------------------------- 4/3
SELECT (SELECT count(*) FROM taskflow.history) AS history_rows,
	   (SELECT count(*) FROM taskflow.outbox) AS outbox_rows;
SET ROLE usecase_material_staff;
-- processing is all or none: 山田 was processed yesterday, so nothing happens
-- to 高橋 either; 加藤 never was on the list
SELECT taskflow.process('資料発送', ARRAY[4, 1]::bigint[], '2026-04-03 10:00+09');
SELECT taskflow.process('資料発送', ARRAY[8]::bigint[], '2026-04-03 10:00+09');
-- a misspelt task, and a task that is not manual
SELECT taskflow.process('資料送付', ARRAY[4]::bigint[], '2026-04-03 10:00+09');
SELECT taskflow.process('到着確認', ARRAY[1]::bigint[], '2026-04-03 10:00+09');
SELECT taskflow.skip('資料発送', ARRAY[4, 2]::bigint[], '2026-04-03 10:00+09');
SELECT taskflow.cancel('資料発送', ARRAY[1]::bigint[], '2026-04-03 10:00+09');
-- nothing changed: the same list, the same history and outbox, no tag
SELECT member_id, member_name FROM taskflow.dashboard;
SELECT (SELECT count(*) FROM taskflow.history) AS history_rows,
	   (SELECT count(*) FROM taskflow.outbox) AS outbox_rows,
	   (SELECT tags FROM taskflow.member WHERE member_id = 4) AS tags_of_4;

-- 田中 came to the office and took the material with him: skipped (no
-- "material sent" mail, the follow-ups still come, counted from the skip)
SELECT taskflow.skip('資料発送', ARRAY[5]::bigint[], '2026-04-03 10:30+09');
-- 伊藤 withdrew her request: cancelled, out of the chain
SELECT taskflow.cancel('資料発送', ARRAY[6]::bigint[], '2026-04-03 10:30+09');
-- the rest (高橋, 渡辺) posted at 11:00: all pending members
SELECT taskflow.process('資料発送', NULL, '2026-04-03 11:00+09');
SELECT count(*) AS still_on_dashboard FROM taskflow.dashboard;
-- nothing left to process
SELECT taskflow.process('資料発送', NULL, '2026-04-03 11:30+09');
RESET ROLE;

SELECT member_name, task, state, waiting_since, due_at, left_reason
  FROM taskflow.member_state ORDER BY member_id;

---------------------------------------------------------------- follow-ups
-- the engine every morning at 10:00 until 4/12
SELECT * FROM pg_temp.run_at(VARIADIC ARRAY(
	SELECT (d::date + time '10:00') AT TIME ZONE 'Asia/Tokyo'
	  FROM generate_series(date '2026-04-03', date '2026-04-12', interval '1 day') d));

-- every mail: the follow-ups are 3, 5, 6, 7 and 8 days after each member's
-- own processing (4/2 15:00 or 4/3 11:00), whatever the sign-up time
SELECT o.member_id, m.name, o.subject, o.created_at
  FROM taskflow.outbox o JOIN taskflow.member m USING (member_id)
 ORDER BY o.member_id, o.created_at;
SELECT m.name, count(*) AS mails,
	   min(o.created_at) FILTER (WHERE o.subject LIKE '%届きましたか%') AS arrived_check,
	   max(o.created_at) AS last_mail
  FROM taskflow.outbox o JOIN taskflow.member m USING (member_id)
 GROUP BY o.member_id, m.name ORDER BY o.member_id;

-- the whole history: who did what, when
SELECT h.member_id, m.name, h.event, h.task_name, h.at, h.actor, h.detail
  FROM taskflow.history h JOIN taskflow.member m USING (member_id)
 ORDER BY h.member_id, h.history_id;

SELECT member_name, state, finished_at, left_reason
  FROM taskflow.member_state ORDER BY member_id;
SELECT chain, position, task, waiting, pending, applied, left_here, chain_done, errors
  FROM taskflow.chain_summary ORDER BY chain, position;
SELECT count(*) AS still_on_dashboard FROM taskflow.dashboard;

DROP ROLE usecase_material_staff;
