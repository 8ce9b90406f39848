-- Use case 4 (seed 000, ケース2): payment-gated content.  Each month the
-- members whose payment for month N has arrived get video page N unlocked
-- (a tag, and a row in the application's own access table written by a
-- custom SQL action) and a mail.  One chain of three tasks, one per month:
-- months 2 and 3 wait (on_mismatch => 'wait') until the payment arrives, so
-- a late payer gets the page the morning after paying, and a member who
-- never pays month 2 never sees page B or C.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
DROP SCHEMA IF EXISTS usecase_payment_unlock CASCADE;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
-- set up the day before the first daily slot (2026-04-01 09:00)
SET taskflow.as_of = '2026-03-31 12:00+09';

---------------------------------------------------------------- the site
-- the member site's own access table: which member may see which page
CREATE SCHEMA usecase_payment_unlock;
CREATE TABLE usecase_payment_unlock.page_access (
	member_id	bigint NOT NULL,
	page		text NOT NULL,
	granted_at	timestamptz NOT NULL,
	PRIMARY KEY (member_id, page)
);

-- members sign up on the site; month 1 starts on the join date
INSERT INTO taskflow.member (external_id, email, name, status, joined_at) VALUES
	('pu-1', 'yamada@example.jp', '山田太郎', 'paid', '2026-04-01 10:00+09'),   -- pays every month on time
	('pu-2', 'sato@example.jp', '佐藤花子', 'paid', '2026-04-01 11:00+09'),     -- pays month 2 late
	('pu-3', 'suzuki@example.jp', '鈴木一郎', 'paid', '2026-04-03 14:00+09'),   -- never pays month 2
	('pu-4', 'takahashi@example.jp', '高橋美咲', 'paid', '2026-04-02 10:00+09'), -- never pays at all
	('pu-5', 'tanaka@example.jp', '田中健', 'paid', '2026-04-02 12:00+09');     -- pays month 1 late
SELECT member_id, name, joined_at FROM taskflow.member ORDER BY member_id;

---------------------------------------------------------------- the set-up
-- STEP1: one criteria per month; STEP3: tag + access row; STEP4: a mail
SELECT taskflow.save_criteria('1カ月目入金済', 'paid_for_month(member_id, 1)');
SELECT taskflow.save_criteria('2カ月目入金済', 'paid_for_month(member_id, 2)');
SELECT taskflow.save_criteria('3カ月目入金済', 'paid_for_month(member_id, 3)');

SELECT taskflow.create_template('動画A公開メール',
	'【動画講座】{{name}}様、1カ月目の動画Aを公開しました',
	E'{{name}}様\n\n1カ月目のお支払いを確認しました。\nマイページで動画Aをご覧いただけます。',
	sender_name => '動画講座事務局', sender_address => 'info@example.jp');
SELECT taskflow.create_template('動画B公開メール',
	'【動画講座】{{name}}様、2カ月目の動画Bを公開しました',
	E'{{name}}様\n\n2カ月目のお支払いを確認しました。\nマイページで動画Bをご覧いただけます。',
	sender_name => '動画講座事務局', sender_address => 'info@example.jp');
SELECT taskflow.create_template('動画C公開メール',
	'【動画講座】{{name}}様、3カ月目の動画Cを公開しました',
	E'{{name}}様\n\n3カ月目のお支払いを確認しました。\nマイページで動画Cをご覧いただけます。',
	sender_name => '動画講座事務局', sender_address => 'info@example.jp');

SELECT taskflow.create_task('動画A公開', 'auto', criteria => '1カ月目入金済',
	actions => $$[{"add_tag": "動画A"},
	              {"sql": "INSERT INTO usecase_payment_unlock.page_access (member_id, page, granted_at) SELECT m, 'A', $2 FROM unnest($1) AS m ON CONFLICT DO NOTHING"}]$$,
	template => '動画A公開メール', description => '1カ月目の入金があった会員に動画ページAを公開');
SELECT taskflow.create_task('動画B公開', 'auto', criteria => '2カ月目入金済',
	actions => $$[{"add_tag": "動画B"},
	              {"sql": "INSERT INTO usecase_payment_unlock.page_access (member_id, page, granted_at) SELECT m, 'B', $2 FROM unnest($1) AS m ON CONFLICT DO NOTHING"}]$$,
	template => '動画B公開メール', on_mismatch => 'wait',
	description => '2カ月目の入金があった会員に動画ページBを公開（入金まで待つ）');
SELECT taskflow.create_task('動画C公開', 'auto', criteria => '3カ月目入金済',
	actions => $$[{"add_tag": "動画C"},
	              {"sql": "INSERT INTO usecase_payment_unlock.page_access (member_id, page, granted_at) SELECT m, 'C', $2 FROM unnest($1) AS m ON CONFLICT DO NOTHING"}]$$,
	template => '動画C公開メール', on_mismatch => 'wait',
	description => '3カ月目の入金があった会員に動画ページCを公開（入金まで待つ）');

-- checked once a day at 09:00; a month's page at the first check after the
-- payment, and never before the previous month's page
SELECT taskflow.create_chain('月額コンテンツ公開',
	tasks => ARRAY['動画A公開', '動画B公開', '動画C公開'],
	waits => ARRAY[NULL, '1 days at 09:00', '1 days at 09:00'],
	schedule => 'daily at 09:00', time_zone => 'Asia/Tokyo');
SELECT chain, position, task, mode FROM taskflow.chain_summary ORDER BY chain, position;

-- the engine as the worker would run it: every morning at 09:00 (only the
-- mornings on which something happened are shown)
CREATE FUNCTION pg_temp.run_mornings(first_day date, last_day date)
RETURNS TABLE (run_at timestamptz, chain text, entered bigint, applied bigint,
			   pending bigint, "left" bigint, errors bigint)
LANGUAGE plpgsql AS $$
DECLARE
	d date;
BEGIN
	FOR d IN SELECT g::date FROM generate_series(first_day, last_day, interval '1 day') g LOOP
		RETURN QUERY
			SELECT (d + time '09:00') AT TIME ZONE 'Asia/Tokyo', r.*
			  FROM taskflow.run((d + time '09:00') AT TIME ZONE 'Asia/Tokyo') r
			 WHERE r.entered + r.applied + r.pending + r."left" + r.errors > 0;
	END LOOP;
END
$$;

---------------------------------------------------------------- month 1
-- first payments: 山田, 佐藤 and 鈴木 pay on the day they join; 高橋 and
-- 田中 do not pay yet
SELECT taskflow.record_payment(1, 3000, '2026-04-01', '2026-04-30', '2026-04-01 10:00+09'),
	   taskflow.record_payment(2, 3000, '2026-04-01', '2026-04-30', '2026-04-01 11:00+09'),
	   taskflow.record_payment(3, 3000, '2026-04-03', '2026-05-02', '2026-04-03 14:00+09');
SELECT * FROM pg_temp.run_mornings('2026-04-01', '2026-04-08');

-- 田中 pays month 1 a week late, on 4/8 in the afternoon: page A next morning
SELECT taskflow.record_payment(5, 3000, '2026-04-02', '2026-05-01', '2026-04-08 16:00+09');
SELECT * FROM pg_temp.run_mornings('2026-04-09', '2026-04-30');

-- at the end of April: everyone who paid has page A and waits for month 2;
-- 高橋 (no payment) never entered
SELECT member_name, task, state, waiting_since, due_at
  FROM taskflow.member_state ORDER BY member_id;
SELECT chain, state, task, since, due_at, reason
  FROM taskflow.explain(4, '2026-04-30 12:00+09') ORDER BY chain;
SELECT chain, state, task, since, due_at, reason
  FROM taskflow.explain(1, '2026-04-30 12:00+09') ORDER BY chain;

---------------------------------------------------------------- month 2
-- 山田 pays month 2 the evening before it starts; 田中 at 08:30 on the day
-- his month 2 starts (5/2): the 09:00 run sees it (criteria read the run's
-- instant), so he gets page B that same morning
SELECT taskflow.record_payment(1, 3000, '2026-05-01', '2026-05-31', '2026-04-30 20:00+09'),
	   taskflow.record_payment(5, 3000, '2026-05-02', '2026-06-01', '2026-05-02 08:30+09');
SELECT * FROM pg_temp.run_mornings('2026-05-01', '2026-05-10');
-- 佐藤 has not paid month 2 yet: she waits at page B
SELECT chain, state, task, since, due_at, reason
  FROM taskflow.explain(2, '2026-05-10 12:00+09') ORDER BY chain;

-- 佐藤 pays month 2 ten days late, at 15:00: page B the next morning
SELECT taskflow.record_payment(2, 3000, '2026-05-01', '2026-05-31', '2026-05-10 15:00+09');
SELECT * FROM pg_temp.run_mornings('2026-05-11', '2026-05-31');

---------------------------------------------------------------- month 3
-- 山田 pays month 3 on time, 佐藤 on the morning it starts; 田中 and 鈴木 do not
SELECT taskflow.record_payment(1, 3000, '2026-06-01', '2026-06-30', '2026-05-31 20:00+09'),
	   taskflow.record_payment(2, 3000, '2026-06-01', '2026-06-30', '2026-06-01 08:00+09');
SELECT * FROM pg_temp.run_mornings('2026-06-01', '2026-06-05');
-- running the same morning again changes nothing
SELECT * FROM taskflow.run('2026-06-01 09:00+09');

---------------------------------------------------------------- the outcome
-- who sees which page, since when (the site's table and the tags agree)
SELECT m.name, a.page, a.granted_at
  FROM usecase_payment_unlock.page_access a JOIN taskflow.member m USING (member_id)
 ORDER BY a.member_id, a.page;
SELECT member_id, name, tags FROM taskflow.member ORDER BY member_id;

-- the mails, one per member and page
SELECT o.member_id, o.recipient, o.subject, o.created_at, o.state, o.sender_name
  FROM taskflow.outbox o ORDER BY o.member_id, o.created_at;
SELECT body_text FROM taskflow.outbox WHERE member_id = 2 ORDER BY created_at DESC LIMIT 1;

-- the whole history
SELECT h.member_id, m.name, h.event, h.task_name, h.at, h.actor
  FROM taskflow.history h JOIN taskflow.member m USING (member_id)
 ORDER BY h.member_id, h.history_id;

-- the tag changes are on each member's timeline
SELECT member_id, kind, occurred_at, detail
  FROM taskflow.event WHERE kind = 'tag_added' ORDER BY member_id, occurred_at;

-- where everyone is, and why those without page C do not have it
SELECT member_name, task, state, waiting_since, due_at, finished_at
  FROM taskflow.member_state ORDER BY member_id;
SELECT member_id, e.*
  FROM taskflow.member m, LATERAL taskflow.explain(m.member_id, '2026-06-05 12:00+09') e
 WHERE m.member_id IN (3, 5) ORDER BY member_id, e.chain;
SELECT chain, position, task, waiting, pending, applied, left_here, chain_done, errors
  FROM taskflow.chain_summary ORDER BY chain, position;

-- 田中 pays month 3 late; page C the next morning and he is done
SELECT taskflow.record_payment(5, 3000, '2026-06-02', '2026-07-01', '2026-06-07 19:00+09');
SELECT * FROM pg_temp.run_mornings('2026-06-06', '2026-06-09');
SELECT member_name, state, finished_at FROM taskflow.member_state WHERE member_id = 5;
SELECT subject, created_at FROM taskflow.outbox WHERE member_id = 5 ORDER BY created_at;

DROP SCHEMA usecase_payment_unlock CASCADE;
