-- Use case 2 of the seeds (000_*: お試し14日間): a 14-day free trial
-- (無料体験).  One chain of two tasks, run every morning at 09:00 Tokyo time:
--   1. 体験終了前のご案内: on day 12 of the trial a mail ("2 days left");
--   2. メルマガ移行: 2 days later (day 14) members still on the trial are
--      moved to the newsletter list: status newsletter, a tag, out of the
--      trial group into the newsletter group, and a mail.
-- Members who sign up on different days each follow their own dates;
-- members who join (status paid) before day 12 never enter, and those who
-- join between day 12 and day 14 leave the chain at task 2.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
-- set up on 3/31, before the first sign-up and the first daily slot
SET taskflow.as_of = '2026-03-31 12:00+09';

---------------------------------------------------------------- the set-up
SELECT taskflow.create_group('無料体験', '14日間の無料体験中の方');
SELECT taskflow.create_group('メルマガ読者', 'メルマガのみ配信');

SELECT taskflow.save_criteria('無料体験12日目', $$status = 'trial' AND days_since(joined_at) BETWEEN 12 AND 13$$,
							  '体験12日目（実行されなかった日があれば13日目）');
SELECT taskflow.save_criteria('無料体験中', $$status = 'trial'$$);

SELECT taskflow.create_template('体験終了前のご案内',
	'【会員サイト】{{name|お客様}}様、無料体験は残り2日です',
	E'{{name|お客様}}様\n\n無料体験期間は残り2日となりました。\n引き続きご利用いただくには、マイページから本会員へお申し込みください。',
	sender_name => '会員サイト事務局', sender_address => 'info@example.jp');
SELECT taskflow.create_template('メルマガ移行のお知らせ',
	'【会員サイト】{{name|お客様}}様、無料体験期間が終了しました',
	E'{{name|お客様}}様\n\n無料体験期間が終了しました。\n今後はメルマガで最新情報をお届けします。',
	sender_name => '会員サイト事務局', sender_address => 'info@example.jp');

SELECT taskflow.create_task('体験終了前のご案内', 'auto', criteria => '無料体験12日目',
							template => '体験終了前のご案内',
							description => '体験12日目に本会員へのお申し込みをご案内');
SELECT taskflow.create_task('メルマガ移行', 'auto', criteria => '無料体験中',
	actions => '[{"set": "status", "to": "newsletter"},
				 {"add_tag": "体験終了"},
				 {"leave_group": "無料体験"},
				 {"join_group": "メルマガ読者"}]',
	template => 'メルマガ移行のお知らせ',
	description => '体験14日目に本会員になっていない方をメルマガ会員へ');
SELECT taskflow.create_chain('無料体験', ARRAY['体験終了前のご案内', 'メルマガ移行'],
							 ARRAY[NULL, '2 days at 09:00'],
							 schedule => 'daily at 09:00', time_zone => 'Asia/Tokyo');
SELECT chain, position, task, mode FROM taskflow.chain_summary ORDER BY chain, position;

---------------------------------------------------------------- sign-ups
-- the application registers trial members and puts them in the trial group
--   山田 4/1: never joins          -> mail day 12 (4/13), newsletter day 14 (4/15)
--   佐藤 4/2: joins on 4/10 (day 8) -> never enters the chain
--   鈴木 4/3: joins on 4/16 (day 13) -> mail 4/15, leaves at task 2 on 4/17
--   高橋 4/5 20:00, 田中 4/6 08:00: never join -> 4/17 and 4/18, 4/19 and 4/20
INSERT INTO taskflow.member (external_id, email, name, status, joined_at) VALUES
	('t-1', 'yamada@example.jp',    '山田太郎', 'trial', '2026-04-01 10:00+09'),
	('t-2', 'sato@example.jp',      '佐藤花子', 'trial', '2026-04-02 15:00+09'),
	('t-3', 'suzuki@example.jp',    '鈴木一郎', 'trial', '2026-04-03 11:00+09'),
	('t-4', 'takahashi@example.jp', '高橋美咲', 'trial', '2026-04-05 20:00+09'),
	('t-5', 'tanaka@example.jp',    '田中健',   'trial', '2026-04-06 08:00+09');
SELECT taskflow.join_group(member_id, '無料体験', joined_at) FROM taskflow.member ORDER BY member_id;

-- the application: 佐藤 becomes a paying member on 4/10, 鈴木 on 4/16
CREATE FUNCTION pg_temp.member_joins(id bigint, at timestamptz) RETURNS void
LANGUAGE sql AS $$
	UPDATE taskflow.member SET status = 'paid', expires_at = at + interval '1 month' WHERE member_id = id;
	SELECT taskflow.leave_group(id, '無料体験', at);
	SELECT taskflow.record_payment(id, 3000, at::date, (at + interval '1 month - 1 day')::date, at);
$$;

---------------------------------------------------------------- 4/1 - 4/12
-- nothing is due yet: the first members reach day 12 on 4/13
SELECT to_char(d, 'MM-DD HH24:MI') AS run_at, r.chain, r.entered, r.applied, r."left"
  FROM generate_series('2026-04-01 09:00+09'::timestamptz, '2026-04-10 09:00+09', '1 day') d,
	   LATERAL taskflow.run(d) r
 WHERE r.entered + r.applied + r.pending + r."left" + r.errors > 0
 ORDER BY d, r.chain;
-- 4/10 19:00, day 8 of her trial: 佐藤 becomes a paying member
SELECT pg_temp.member_joins(2, '2026-04-10 19:00+09');
SELECT to_char(d, 'MM-DD HH24:MI') AS run_at, r.chain, r.entered, r.applied, r."left"
  FROM generate_series('2026-04-11 09:00+09'::timestamptz, '2026-04-12 09:00+09', '1 day') d,
	   LATERAL taskflow.run(d) r
 WHERE r.entered + r.applied + r.pending + r."left" + r.errors > 0
 ORDER BY d, r.chain;

-- who the day-12 task will find on the next mornings (a preview, no side effects)
SELECT to_char(d, 'MM-DD') AS day,
	   (SELECT string_agg(m.name, ', ' ORDER BY m.member_id) FROM taskflow.search('無料体験12日目', d) m) AS day12
  FROM generate_series('2026-04-13 09:00+09'::timestamptz, '2026-04-19 09:00+09', '1 day') d
 ORDER BY d;

---------------------------------------------------------------- 4/13 - 4/15
SELECT * FROM taskflow.run('2026-04-13 09:00+09');
-- the same instant again, and later that day: nothing more
SELECT * FROM taskflow.run('2026-04-13 09:00+09');
SELECT * FROM taskflow.run('2026-04-13 17:00+09');
SELECT * FROM taskflow.explain(1, '2026-04-14 12:00+09');
SELECT * FROM taskflow.run('2026-04-14 09:00+09');
SELECT * FROM taskflow.run('2026-04-15 09:00+09');

---------------------------------------------------------------- 4/16: 鈴木 joins
SELECT * FROM taskflow.run('2026-04-16 09:00+09');
SELECT pg_temp.member_joins(3, '2026-04-16 14:00+09');
-- his step 2 is due tomorrow; he no longer matches, so he will leave there
SELECT * FROM taskflow.explain(3, '2026-04-16 20:00+09');
SELECT * FROM taskflow.explain(3, '2026-04-17 09:00+09');

---------------------------------------------------------------- 4/17 - 4/20
SELECT to_char(d, 'MM-DD HH24:MI') AS run_at, r.chain, r.entered, r.applied, r."left"
  FROM generate_series('2026-04-17 09:00+09'::timestamptz, '2026-04-25 09:00+09', '1 day') d,
	   LATERAL taskflow.run(d) r
 WHERE r.entered + r.applied + r.pending + r."left" + r.errors > 0
 ORDER BY d, r.chain;

---------------------------------------------------------------- results
-- the mails, by day
SELECT to_char(o.created_at, 'MM-DD HH24:MI') AS at, o.recipient, o.subject
  FROM taskflow.outbox o ORDER BY o.created_at, o.member_id;
SELECT subject, body_text FROM taskflow.outbox WHERE member_id = 1 ORDER BY outbox_id;

-- the history: entered, applied, left (鈴木, at task 2) and finished
SELECT h.member_id, m.name, h.task_name, h.event, to_char(h.at, 'MM-DD HH24:MI') AS at, h.detail
  FROM taskflow.history h JOIN taskflow.member m USING (member_id)
 ORDER BY h.member_id, h.history_id;

-- the members now: statuses, tags and groups
SELECT m.member_id, m.name, m.status, m.tags,
	   (SELECT string_agg(g.name, ', ' ORDER BY g.name)
		  FROM taskflow.group_membership gm JOIN taskflow.member_group g USING (group_id)
		 WHERE gm.member_id = m.member_id AND gm.left_at IS NULL) AS groups
  FROM taskflow.member m ORDER BY m.member_id;
SELECT gm.member_id, g.name AS group_name, to_char(gm.joined_at, 'MM-DD HH24:MI') AS joined,
	   to_char(gm.left_at, 'MM-DD HH24:MI') AS left_at
  FROM taskflow.group_membership gm JOIN taskflow.member_group g USING (group_id)
 ORDER BY gm.member_id, gm.joined_at, g.name;

-- 山田's timeline, newest first
SELECT kind, detail, to_char(occurred_at, 'MM-DD HH24:MI') AS at FROM taskflow.timeline(1);

-- why each member is where they are
SELECT m.member_id, m.name, e.state, e.task, to_char(e.since, 'MM-DD HH24:MI') AS since, e.reason
  FROM taskflow.member m, LATERAL taskflow.explain(m.member_id, '2026-04-25 12:00+09') e
 ORDER BY m.member_id;

SELECT member_id, member_name, task, state, to_char(finished_at, 'MM-DD HH24:MI') AS finished, left_reason
  FROM taskflow.member_state ORDER BY member_id;
SELECT chain, position, task, waiting, pending, applied, left_here, chain_done, errors
  FROM taskflow.chain_summary ORDER BY chain, position;
