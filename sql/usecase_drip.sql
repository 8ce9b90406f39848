-- Use case 3 of the seeds (000_*, ケース1: ステップ配信): drip content.
-- From the join date, one video page a day is unlocked and a mail sent:
-- page A on the day after joining, B a day later, C a day later, each at
-- 10:00 Tokyo time.  Access is granted by a custom SQL action writing the
-- member site's own table drip_app.page_access.  Everything (the table, the
-- criteria, templates, tasks and the chain) belongs to a non-superuser
-- role, so the engine runs the chain as that role even when a superuser
-- (the worker) calls taskflow.run().
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
DROP SCHEMA IF EXISTS drip_app CASCADE;
DROP ROLE IF EXISTS usecase_drip_site;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
-- set up on 3/31, before the first daily slot (4/1 10:00)
SET taskflow.as_of = '2026-03-31 12:00+09';

---------------------------------------------------------------- the site's role and table
CREATE ROLE usecase_drip_site NOLOGIN IN ROLE taskflow_app;
CREATE SCHEMA drip_app AUTHORIZATION usecase_drip_site;
SET ROLE usecase_drip_site;
-- which member may see which video page; granted_by shows who wrote the row
CREATE TABLE drip_app.page_access (
	member_id	bigint NOT NULL,
	page		text NOT NULL,
	granted_at	timestamptz NOT NULL,
	granted_by	name NOT NULL DEFAULT current_user,
	PRIMARY KEY (member_id, page)
);

---------------------------------------------------------------- the chain, as the site's role
SELECT taskflow.save_criteria('入会翌日', $$status = 'paid' AND days_since(joined_at) = 1$$);
SELECT taskflow.save_criteria('有料会員', $$status = 'paid'$$);

SELECT taskflow.create_template('動画A公開', '【動画講座】{{name|お客様}}様、第1回「基本の姿勢」を公開しました',
	E'{{name|お客様}}様\n\nご入会ありがとうございます。\n本日より第1回の動画をご覧いただけます。\nhttps://example.jp/videos/a',
	sender_name => '動画講座事務局', sender_address => 'video@example.jp');
SELECT taskflow.create_template('動画B公開', '【動画講座】{{name|お客様}}様、第2回「呼吸法」を公開しました',
	E'{{name|お客様}}様\n\n本日より第2回の動画をご覧いただけます。\nhttps://example.jp/videos/b',
	sender_name => '動画講座事務局', sender_address => 'video@example.jp');
SELECT taskflow.create_template('動画C公開', '【動画講座】{{name|お客様}}様、第3回「応用編」を公開しました',
	E'{{name|お客様}}様\n\n本日より第3回の動画をご覧いただけます。\nhttps://example.jp/videos/c',
	sender_name => '動画講座事務局', sender_address => 'video@example.jp');

-- STEP3 as custom SQL: $1 the members' ids, $2 the engine's clock
SELECT taskflow.create_task('動画A公開', 'auto', criteria => '入会翌日', template => '動画A公開',
	actions => $$[{"sql": "INSERT INTO drip_app.page_access (member_id, page, granted_at) SELECT m, 'A', $2 FROM unnest($1) AS m"}]$$);
SELECT taskflow.create_task('動画B公開', 'auto', criteria => '有料会員', template => '動画B公開',
	actions => $$[{"sql": "INSERT INTO drip_app.page_access (member_id, page, granted_at) SELECT m, 'B', $2 FROM unnest($1) AS m"}]$$);
SELECT taskflow.create_task('動画C公開', 'auto', criteria => '有料会員', template => '動画C公開',
	actions => $$[{"sql": "INSERT INTO drip_app.page_access (member_id, page, granted_at) SELECT m, 'C', $2 FROM unnest($1) AS m"}]$$);
SELECT taskflow.create_chain('動画講座ステップ配信', ARRAY['動画A公開', '動画B公開', '動画C公開'],
							 ARRAY[NULL, '1 days at 10:00', '1 days at 10:00'],
							 schedule => 'daily at 10:00', time_zone => 'Asia/Tokyo');
RESET ROLE;
SELECT c.name, c.owner, c.schedule, c.daily_at, c.time_zone, s.position, t.name AS task, t.owner AS task_owner,
	   s.wait_kind, s.wait_days, s.wait_at
  FROM taskflow.chain c JOIN taskflow.chain_step s USING (chain_id) JOIN taskflow.task t USING (task_id)
 ORDER BY s.position;

---------------------------------------------------------------- members join on different days
-- 高橋 has been a member since last year: she is not "the day after
-- joining" on any day, so she never enters
INSERT INTO taskflow.member (external_id, email, name, status, joined_at) VALUES
	('d-4', 'takahashi@example.jp', '高橋美咲', 'paid', '2025-10-01 10:00+09');
-- 4/1: 山田 joins in the afternoon
INSERT INTO taskflow.member (external_id, email, name, status, joined_at) VALUES
	('d-1', 'yamada@example.jp', '山田太郎', 'paid', '2026-04-01 14:00+09');
SELECT * FROM taskflow.run('2026-04-01 10:00+09');
SELECT * FROM taskflow.run('2026-04-02 10:00+09');
-- 4/2 00:30 Tokyo time (4/1 in UTC): 佐藤 joins; her day 1 is 4/3 in Tokyo
INSERT INTO taskflow.member (external_id, email, name, status, joined_at) VALUES
	('d-2', 'sato@example.jp', '佐藤花子', 'paid', '2026-04-02 00:30+09');
SELECT * FROM taskflow.run('2026-04-02 10:00+09');
SELECT * FROM taskflow.explain(2, '2026-04-02 12:00+09');
-- 4/3 09:00: 鈴木 joins while 山田 is half-way through: he starts his own
-- sequence (page B for 山田 and page A for 佐藤 this morning, his A tomorrow)
INSERT INTO taskflow.member (external_id, email, name, status, joined_at) VALUES
	('d-3', 'suzuki@example.jp', '鈴木一郎', 'paid', '2026-04-03 09:00+09');
SELECT * FROM taskflow.run('2026-04-03 10:00+09');
SELECT * FROM taskflow.run('2026-04-04 10:00+09');
SELECT * FROM taskflow.run('2026-04-05 10:00+09');
-- 4/5 10:30: 田中 joins; on 4/6 evening he cancels after seeing page A
INSERT INTO taskflow.member (external_id, email, name, status, joined_at) VALUES
	('d-5', 'tanaka@example.jp', '田中健', 'paid', '2026-04-05 10:30+09');
SELECT * FROM taskflow.run('2026-04-06 10:00+09');
UPDATE taskflow.member SET status = 'cancelled' WHERE external_id = 'd-5';
-- running an instant again changes nothing
SELECT * FROM taskflow.run('2026-04-06 10:00+09');
SELECT to_char(d, 'MM-DD HH24:MI') AS run_at, r.chain, r.entered, r.applied, r."left", r.errors
  FROM generate_series('2026-04-07 10:00+09'::timestamptz, '2026-04-10 10:00+09', '1 day') d,
	   LATERAL taskflow.run(d) r
 ORDER BY d, r.chain;

---------------------------------------------------------------- results
-- the site's access table: one row per member and page, written as the
-- chain's owner, at 10:00 of the right day
SELECT a.member_id, m.name, a.page, to_char(a.granted_at, 'MM-DD HH24:MI') AS granted_at, a.granted_by
  FROM drip_app.page_access a JOIN taskflow.member m USING (member_id)
 ORDER BY a.granted_at, a.member_id, a.page;
-- the same, by member
SELECT m.member_id, m.name, to_char(m.joined_at, 'MM-DD HH24:MI') AS joined,
	   (SELECT string_agg(a.page || ' ' || to_char(a.granted_at, 'MM-DD'), ', ' ORDER BY a.page)
		  FROM drip_app.page_access a WHERE a.member_id = m.member_id) AS pages
  FROM taskflow.member m ORDER BY m.member_id;

-- the mails
SELECT to_char(o.created_at, 'MM-DD HH24:MI') AS at, o.recipient, o.subject
  FROM taskflow.outbox o ORDER BY o.created_at, o.member_id;
SELECT sender_name, sender_address, subject, body_text FROM taskflow.outbox
 WHERE member_id = 2 ORDER BY outbox_id LIMIT 1;

-- the history
SELECT h.member_id, m.name, h.task_name, h.event, to_char(h.at, 'MM-DD HH24:MI') AS at, h.detail
  FROM taskflow.history h JOIN taskflow.member m USING (member_id)
 ORDER BY h.member_id, h.history_id;

SELECT m.member_id, m.name, e.state, e.reason
  FROM taskflow.member m, LATERAL taskflow.explain(m.member_id, '2026-04-10 12:00+09') e
 ORDER BY m.member_id;
SELECT chain, position, task, waiting, applied, left_here, chain_done, errors
  FROM taskflow.chain_summary ORDER BY position;

---------------------------------------------------------------- the owner's privileges apply
-- the site's role gives up writing its own table: the next page cannot be
-- granted, the batch is rolled back (no mail, no history) and the error kept
INSERT INTO taskflow.member (external_id, email, name, status, joined_at) VALUES
	('d-6', 'ito@example.jp', '伊藤さくら', 'paid', '2026-04-10 15:00+09');
SET ROLE usecase_drip_site;
REVOKE INSERT ON drip_app.page_access FROM usecase_drip_site;
RESET ROLE;
SELECT * FROM taskflow.run('2026-04-11 10:00+09');
SELECT to_char(at, 'MM-DD HH24:MI') AS at, sqlstate, message FROM taskflow.chain_error ORDER BY error_id;
SELECT count(*) AS access_rows, (SELECT count(*) FROM taskflow.outbox WHERE member_id = 6) AS mails_to_ito,
	   (SELECT count(*) FROM taskflow.history WHERE member_id = 6) AS history_of_ito
  FROM drip_app.page_access;
-- given back, the next run grants page A to 伊藤
SET ROLE usecase_drip_site;
GRANT INSERT ON drip_app.page_access TO usecase_drip_site;
RESET ROLE;
SELECT * FROM taskflow.run('2026-04-11 10:05+09');
SELECT a.member_id, a.page, to_char(a.granted_at, 'MM-DD HH24:MI') AS granted_at, a.granted_by
  FROM drip_app.page_access a WHERE a.member_id = 6 ORDER BY a.page;

---------------------------------------------------------------- clean up
DROP SCHEMA drip_app CASCADE;
-- the site's chain, tasks, templates and criteria go with its other objects
REASSIGN OWNED BY usecase_drip_site TO CURRENT_USER;
DROP ROLE usecase_drip_site;
