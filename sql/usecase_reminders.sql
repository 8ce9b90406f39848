-- Use case 1 of the seeds (000_*, 001_*): the daily automatic work of a
-- membership site, run every morning at 09:00 Tokyo time.
--  (a) 有効期限リマインド: a paid member gets a mail 7 days before the
--      membership expires and a second one 3 days before;
--  (b) 督促メール: a paid member with no payment in the last 35 days gets a
--      dunning mail and a tag; once the payment arrives the tag goes and a
--      confirmation mail is sent; nobody is dunned twice for one arrear;
--  (c) 継続特典: a member in the 2nd paid month (paid_count = 2) gets 500
--      points, a tag, a timeline event and a mail, exactly once.
-- Everything runs as of explicit instants, day by day from 4/1 to 4/13
-- (2026), with no run on 4/9 (the server was down), then once on 5/3.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
-- the chains are set up on the afternoon of 3/31: their first daily slot
-- is 4/1 09:00
SET taskflow.as_of = '2026-03-31 15:00+09';

---------------------------------------------------------------- members
SELECT taskflow.define_property('points', 'number', NULL, 'ポイント残高');

INSERT INTO taskflow.member (external_id, email, name, status, joined_at, expires_at, properties) VALUES
	('m-1', 'yamada@example.jp',    '山田太郎',   'paid',  '2025-01-15 10:00+09', '2026-04-08 23:59+09', '{"points": 300}'),
	('m-2', 'sato@example.jp',      '佐藤花子',   'paid',  '2025-04-11 10:00+09', '2026-04-10 23:59+09', '{"points": 50}'),
	('m-3', 'suzuki@example.jp',    '鈴木一郎',   'paid',  '2025-10-20 10:00+09', '2026-04-05 23:59+09', '{}'),
	('m-4', 'tanaka@example.jp',    '田中健',     'paid',  '2025-12-20 10:00+09', '2026-06-30 23:59+09', '{}'),
	('m-5', 'ito@example.jp',       '伊藤さくら', 'paid',  '2026-01-01 10:00+09', '2026-07-31 23:59+09', '{}'),
	('m-6', 'takahashi@example.jp', '高橋美咲',   'paid',  '2026-03-03 10:00+09', '2026-09-02 23:59+09', '{"points": 100}'),
	('m-7', 'watanabe@example.jp',  '渡辺健太',   'paid',  '2026-02-08 10:00+09', '2027-02-07 23:59+09', '{"points": 0}'),
	('m-8', 'nakamura@example.jp',  '中村翔',     'paid',  '2025-11-25 10:00+09', '2026-04-16 23:59+09', '{}'),
	('m-9', 'kobayashi@example.jp', '小林直子',   'trial', '2026-03-23 10:00+09', '2026-04-06 23:59+09', '{}');

-- monthly payments (3,000 yen) so far; 田中 stopped paying after 2/20,
-- 伊藤's last payment was 3/1, 高橋 and 渡辺 are new members
SELECT count(taskflow.record_payment(m.member_id, 3000, p.paid::date, (p.paid + interval '1 month - 1 day')::date,
									 p.paid + interval '10 hours')) AS payments
  FROM (VALUES ('m-1', '2026-01-15'), ('m-1', '2026-02-15'), ('m-1', '2026-03-15'),
			   ('m-2', '2026-01-11'), ('m-2', '2026-02-11'), ('m-2', '2026-03-11'),
			   ('m-3', '2026-01-20'), ('m-3', '2026-02-20'), ('m-3', '2026-03-20'),
			   ('m-4', '2025-12-20'), ('m-4', '2026-01-20'), ('m-4', '2026-02-20'),
			   ('m-5', '2026-01-01'), ('m-5', '2026-02-01'), ('m-5', '2026-03-01'),
			   ('m-6', '2026-03-03'),
			   ('m-7', '2026-02-08'), ('m-7', '2026-03-08'),
			   ('m-8', '2026-01-25'), ('m-8', '2026-02-25'), ('m-8', '2026-03-25')) AS v(ext, day)
  JOIN taskflow.member m ON m.external_id = v.ext
 CROSS JOIN LATERAL (SELECT v.day::timestamptz AS paid) p;
SELECT m.member_id, m.name, m.status, m.expires_at, taskflow.paid_count(m.member_id) AS payments,
	   taskflow.last_payment_at(m.member_id) AS last_payment
  FROM taskflow.member m ORDER BY m.member_id;

---------------------------------------------------------------- criteria
-- The reminders use windows, not exact days: a member whose 7th day before
-- the expiry falls on a day without a run (or who is added later) still
-- gets the first reminder, and each chain's re-entry "rematch" makes a
-- member leave the window before the next reminder of the same kind.
SELECT taskflow.save_criteria('有効期限7日前', $$status = 'paid' AND days_until(expires_at) BETWEEN 4 AND 7$$,
							  '有効期限の7日前（から4日前まで）');
SELECT taskflow.save_criteria('有効期限3日前', $$status = 'paid' AND days_until(expires_at) BETWEEN 0 AND 3$$,
							  '有効期限の3日前（から当日まで）');
SELECT taskflow.save_criteria('入金35日なし', $$status = 'paid' AND NOT paid_within(member_id, '35 days')$$);
SELECT taskflow.save_criteria('入金35日以内', $$paid_within(member_id, '35 days')$$);
SELECT taskflow.save_criteria('有料2カ月目', $$status = 'paid' AND paid_count(member_id) = 2$$);

-- what each one finds on the first morning
SELECT c.name, (SELECT string_agg(m.name, ', ' ORDER BY m.member_id)
				  FROM taskflow.search(c.name, '2026-04-01 09:00+09') m) AS members_0401
  FROM taskflow.criteria_list c ORDER BY c.criteria_id;

---------------------------------------------------------------- templates
SELECT taskflow.create_template('期限7日前のご案内',
	'【会員サイト】{{name|お客様}}様、会員有効期限（{{expires_at}}）が近づいています',
	E'{{name|お客様}}様\n\nいつもご利用ありがとうございます。\n会員有効期限は {{expires_at}} です。\nマイページから更新のお手続きをお願いいたします。',
	sender_name => '会員サイト事務局', sender_address => 'info@example.jp');
SELECT taskflow.create_template('期限3日前のご案内',
	'【重要】{{name|お客様}}様、会員有効期限（{{expires_at}}）まで残りわずかです',
	E'{{name|お客様}}様\n\n会員有効期限（{{expires_at}}）まで残りわずかとなりました。\n期限を過ぎると会員ページがご覧いただけなくなります。',
	sender_name => '会員サイト事務局', sender_address => 'info@example.jp');
SELECT taskflow.create_template('督促',
	'【会員サイト】月会費のお支払いについてのお願い（{{name|お客様}}様）',
	E'{{name|お客様}}様\n\n月会費のお支払いが確認できておりません。\nお手数ですがお支払いをお願いいたします。',
	sender_name => '会員サイト事務局', sender_address => 'info@example.jp');
SELECT taskflow.create_template('入金確認',
	'【会員サイト】{{name|お客様}}様、お支払いを確認しました',
	E'{{name|お客様}}様\n\n月会費のお支払いを確認いたしました。ありがとうございました。',
	sender_name => '会員サイト事務局', sender_address => 'info@example.jp');
SELECT taskflow.create_template('継続特典',
	'【会員サイト】{{name|お客様}}様へ継続特典のお知らせ（ポイント残高 {{properties.points}}）',
	E'{{name|お客様}}様\n\n2カ月目のご継続ありがとうございます。\n継続特典として500ポイントを差し上げました。',
	sender_name => '会員サイト事務局', sender_address => 'info@example.jp');

---------------------------------------------------------------- tasks and chains
SELECT taskflow.create_task('7日前リマインド', 'auto', criteria => '有効期限7日前',
							template => '期限7日前のご案内');
SELECT taskflow.create_task('3日前リマインド', 'auto', criteria => '有効期限3日前',
							template => '期限3日前のご案内');
SELECT taskflow.create_task('督促メール', 'auto', criteria => '入金35日なし',
							actions => '[{"add_tag": "入金督促中"}]', template => '督促');
-- waits at step 2 (on_mismatch => wait) until the payment arrives
SELECT taskflow.create_task('督促解除', 'auto', criteria => '入金35日以内',
							actions => '[{"remove_tag": "入金督促中"}]', template => '入金確認',
							on_mismatch => 'wait');
-- points are added to the balance by a custom SQL action (set_property sets
-- a fixed value)
SELECT taskflow.create_task('継続特典', 'auto', criteria => '有料2カ月目',
	actions => $$[{"sql": "UPDATE taskflow.member SET properties = properties || jsonb_build_object('points', coalesce((properties ->> 'points')::numeric, 0) + 500) WHERE member_id = ANY ($1)"},
				  {"add_tag": "継続特典付与済"},
				  {"record_event": "automation", "detail": {"note": "継続特典 500ポイント"}}]$$,
	template => '継続特典');

-- rematch: a member gets a reminder again only after leaving its window,
-- i.e. for the next expiry; the same for a new arrear
SELECT taskflow.create_chain('期限7日前リマインド', ARRAY['7日前リマインド'],
							 schedule => 'daily at 09:00', time_zone => 'Asia/Tokyo', reentry => 'rematch');
SELECT taskflow.create_chain('期限3日前リマインド', ARRAY['3日前リマインド'],
							 schedule => 'daily at 09:00', time_zone => 'Asia/Tokyo', reentry => 'rematch');
SELECT taskflow.create_chain('月額督促', ARRAY['督促メール', '督促解除'], ARRAY[NULL, '1 days at 09:00'],
							 schedule => 'daily at 09:00', time_zone => 'Asia/Tokyo', reentry => 'rematch');
-- never: the bonus is given once in a membership
SELECT taskflow.create_chain('継続特典', ARRAY['継続特典'],
							 schedule => 'daily at 09:00', time_zone => 'Asia/Tokyo');
SELECT chain, position, task, mode, chain_state FROM taskflow.chain_summary ORDER BY chain, position;

-- before the first slot nothing runs
SELECT * FROM taskflow.run('2026-04-01 08:59+09') ORDER BY chain;

---------------------------------------------------------------- 4/1 - 4/3
SELECT to_char(d, 'MM-DD HH24:MI') AS run_at, r.chain, r.entered, r.applied, r.pending, r."left", r.errors
  FROM unnest(ARRAY['2026-04-01 09:00+09', '2026-04-02 09:00+09', '2026-04-03 09:00+09']::timestamptz[]) d,
	   LATERAL taskflow.run(d) r
 WHERE r.entered + r.applied + r.pending + r."left" + r.errors > 0
 ORDER BY d, r.chain;

-- 山田 got the first reminder on 4/1 and is still in its window: he gets
-- it again only for a later expiry, after leaving the window
SELECT chain, state, reason FROM taskflow.explain(1, '2026-04-02 12:00+09') WHERE chain = '期限7日前リマインド';

-- running the same instant again, or later the same day, changes nothing
SELECT count(*) AS outbox_before FROM taskflow.outbox;
SELECT * FROM taskflow.run('2026-04-03 09:00+09') ORDER BY chain;
SELECT * FROM taskflow.run('2026-04-03 18:30+09') ORDER BY chain;
SELECT count(*) AS outbox_after FROM taskflow.outbox;

-- 4/3 afternoon: 高橋's 2nd monthly payment arrives (paid_count becomes 2);
-- 4/4 afternoon: 佐藤 renews for a month
SELECT taskflow.record_payment(6, 3000, '2026-04-03', '2026-05-02', '2026-04-03 14:00+09');
-- as of the next morning both 渡辺 (given the bonus on 4/1) and 高橋 match
SELECT member_id, name FROM taskflow.search('有料2カ月目', '2026-04-04 09:00+09') ORDER BY member_id;

---------------------------------------------------------------- 4/4
SELECT * FROM taskflow.run('2026-04-04 09:00+09') ORDER BY chain;
SELECT taskflow.record_payment(2, 3000, '2026-04-11', '2026-05-10', '2026-04-04 16:00+09');
UPDATE taskflow.member SET expires_at = '2026-05-10 23:59+09' WHERE member_id = 2;

---------------------------------------------------------------- 4/5 - 4/6
SELECT to_char(d, 'MM-DD HH24:MI') AS run_at, r.chain, r.entered, r.applied, r.pending, r."left", r.errors
  FROM unnest(ARRAY['2026-04-05 09:00+09', '2026-04-06 09:00+09']::timestamptz[]) d,
	   LATERAL taskflow.run(d) r
 WHERE r.entered + r.applied + r.pending + r."left" + r.errors > 0
 ORDER BY d, r.chain;
-- 鈴木 did not renew: the application ends his membership
UPDATE taskflow.member SET status = 'cancelled' WHERE member_id = 3;

-- 伊藤 was dunned this morning; the tag shows on her record
SELECT member_id, name, tags FROM taskflow.member WHERE member_id IN (4, 5) ORDER BY member_id;

---------------------------------------------------------------- 4/7 - 4/13 (no run on 4/9)
-- 伊藤's step 2 (督促解除) is due this morning but she has not paid: she
-- waits, and is not dunned again
SELECT * FROM taskflow.run('2026-04-07 09:00+09') ORDER BY chain;
SELECT * FROM taskflow.explain(5, '2026-04-07 09:00+09') WHERE chain = '月額督促';
-- 4/8 early morning: 渡辺's 3rd payment and, at 08:30, 伊藤's overdue one;
-- the 09:00 run sees both
SELECT taskflow.record_payment(7, 3000, '2026-04-08', '2026-05-07', '2026-04-08 08:00+09'),
	   taskflow.record_payment(5, 3000, '2026-04-01', '2026-04-30', '2026-04-08 08:30+09');
SELECT to_char(d, 'MM-DD HH24:MI') AS run_at, r.chain, r.entered, r.applied, r.pending, r."left", r.errors
  FROM unnest(ARRAY['2026-04-08 09:00+09', '2026-04-10 09:00+09', '2026-04-11 09:00+09',
					'2026-04-12 09:00+09', '2026-04-13 09:00+09']::timestamptz[]) d,
	   LATERAL taskflow.run(d) r
 WHERE r.entered + r.applied + r.pending + r."left" + r.errors > 0
 ORDER BY d, r.chain;

---------------------------------------------------------------- what the members got
-- every message, by day: who got which mail
SELECT to_char(o.created_at, 'MM-DD HH24:MI') AS at, o.recipient, o.subject, o.iteration, o.state
  FROM taskflow.outbox o ORDER BY o.created_at, o.member_id, o.outbox_id;

-- nobody got the same message twice for the same step and iteration
SELECT member_id, step_id, iteration, count(*) FROM taskflow.outbox
 GROUP BY member_id, step_id, iteration HAVING count(*) > 1;

-- a rendered body, as it goes out
SELECT recipient, sender_name, sender_address, subject, body_text
  FROM taskflow.outbox WHERE member_id = 1 ORDER BY outbox_id LIMIT 1;

-- the history a user reads per member
SELECT h.member_id, m.name, h.chain_name, h.task_name, h.event, h.iteration,
	   to_char(h.at, 'MM-DD HH24:MI') AS at
  FROM taskflow.history h JOIN taskflow.member m USING (member_id)
 ORDER BY h.member_id, h.history_id;

-- the data changes: 伊藤's tag came and went, 田中 still has it; the bonus
-- was paid once to 高橋 and 渡辺
SELECT member_id, name, status, tags, properties ->> 'points' AS points
  FROM taskflow.member ORDER BY member_id;
SELECT e.member_id, e.kind, e.detail, to_char(e.occurred_at, 'MM-DD HH24:MI') AS at
  FROM taskflow.event e
 WHERE e.kind IN ('tag_added', 'tag_removed', 'automation')
 ORDER BY e.member_id, e.occurred_at, e.event_id;

---------------------------------------------------------------- explain
-- 田中 has not paid: dunned once on 4/1 and waiting for the payment
SELECT * FROM taskflow.explain(4, '2026-04-13 12:00+09') ORDER BY chain;
-- 高橋 still has paid_count = 2 but got the bonus already
SELECT * FROM taskflow.explain(6, '2026-04-13 12:00+09') ORDER BY chain;

---------------------------------------------------------------- a month later
-- April's other payments arrive; 佐藤's renewed membership (until 5/10)
-- is 7 days from expiry on 5/3: the first reminder again, as iteration 2.
-- 田中 is still waiting at 督促解除 and is not dunned a second time.
SELECT taskflow.record_payment(1, 3000, '2026-04-15', '2026-05-14', '2026-04-15 10:00+09'),
	   taskflow.record_payment(8, 3000, '2026-04-25', '2026-05-24', '2026-04-25 10:00+09');
-- on the evening of 5/2 佐藤 is 8 days from her new expiry; the next
-- morning explain sees her in the window again, and she may re-enter
SELECT * FROM taskflow.explain(2, '2026-05-02 20:00+09') ORDER BY chain;
SELECT * FROM taskflow.explain(2, '2026-05-03 08:00+09') ORDER BY chain;
SELECT * FROM taskflow.run('2026-05-03 09:00+09') ORDER BY chain;
SELECT to_char(o.created_at, 'MM-DD HH24:MI') AS at, o.recipient, o.subject, o.iteration
  FROM taskflow.outbox o WHERE o.created_at >= '2026-05-01' ORDER BY o.outbox_id;
SELECT h.member_id, h.chain_name, h.task_name, h.event, h.iteration, to_char(h.at, 'MM-DD HH24:MI') AS at
  FROM taskflow.history h WHERE h.at >= '2026-05-01' ORDER BY h.history_id;
SELECT chain, position, task, waiting, pending, applied, left_here, chain_done, errors
  FROM taskflow.chain_summary ORDER BY chain, position;
SELECT count(*) AS chain_errors FROM taskflow.chain_error;
