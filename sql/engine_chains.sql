-- Engine features, chain by chain, with the clock passed explicitly:
-- weekday schedules and catch-up, "always" chains with an entry interval and
-- idempotent runs, repeat, re-entry policies, on_mismatch, daylight saving,
-- enable/disable, mode switches, changing the steps of a chain while members
-- are in it, the summary views, and batching.
--
-- Everything runs as an application role (a member of taskflow_app), as an
-- application would; every run names its chain, so the sections do not
-- disturb each other.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
-- chains are created as of this instant: daily slots before it never run
SET taskflow.as_of = '2027-02-28 00:00+09';
SET client_min_messages = warning;
DROP ROLE IF EXISTS engine_chains_app;
DROP VIEW IF EXISTS public.engine_chains_hist, public.engine_chains_state;
DROP FUNCTION IF EXISTS public.engine_chains_id(text);
RESET client_min_messages;
CREATE ROLE engine_chains_app IN ROLE taskflow_app;

-- test helpers: a member's id by external id, the history with names, and
-- everything a run can change (for the idempotence check)
CREATE FUNCTION public.engine_chains_id(text) RETURNS bigint
	LANGUAGE sql STABLE AS 'SELECT member_id FROM taskflow.member WHERE external_id = $1';
CREATE VIEW public.engine_chains_hist AS
SELECT h.chain_name AS chain, m.name AS member, h.event, h.task_name AS task,
	   h.iteration AS it, h.at, h.actor, h.detail ->> 'reason' AS reason,
	   h.member_id, h.history_id
  FROM taskflow.history h JOIN taskflow.member m USING (member_id);
CREATE VIEW public.engine_chains_state AS
SELECT 'member' AS tbl, to_jsonb(x) AS r FROM taskflow.member x
UNION ALL SELECT 'event', to_jsonb(x) - 'recorded_at' FROM taskflow.event x
UNION ALL SELECT 'chain_member', to_jsonb(x) FROM taskflow.chain_member x
UNION ALL SELECT 'history', to_jsonb(x) FROM taskflow.history x
UNION ALL SELECT 'outbox', to_jsonb(x) FROM taskflow.outbox x
UNION ALL SELECT 'chain', to_jsonb(x) FROM taskflow.chain x;
GRANT SELECT ON public.engine_chains_hist, public.engine_chains_state TO engine_chains_app;

SET ROLE engine_chains_app;

---------------------------------------------------------------- weekday schedule
-- 'daily at 09:00' on Monday, Wednesday and Friday only (2027-03-01 is a
-- Monday).  Re-entry "cooldown" of 0 lets the member enter at every entry
-- check, so the iteration number counts the entry checks that happened.
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, tags) VALUES
	('w-1', 'yamada@example.jp', '山田太郎', 'paid', '2027-01-10 10:00+09', '{曜日}'),
	('w-2', 'sato@example.jp', '佐藤花子', 'paid', '2027-01-10 10:00+09', '{}');
SELECT taskflow.save_criteria('曜日対象', $$has_tag(tags, '曜日')$$);
SELECT taskflow.create_template('曜日メール', '{{name}}様 今週のお知らせ', '{{name}}様、今週のお知らせです。',
	sender_address => 'info@example.jp');
SELECT taskflow.create_task('曜日お知らせ', 'auto', criteria => '曜日対象', template => '曜日メール');
SELECT taskflow.create_chain('曜日チェーン', ARRAY['曜日お知らせ'], schedule => 'daily at 09:00',
	weekdays => ARRAY['mon', 'wed', 'fri'], time_zone => 'Asia/Tokyo',
	reentry => 'cooldown', reentry_cooldown => '0');
SELECT name, schedule, daily_at, weekdays, time_zone, enabled_at FROM taskflow.chain WHERE name = '曜日チェーン';
-- Monday: one minute before the slot nothing happens; at 09:00 山田 enters;
-- the same instant again does nothing
SELECT * FROM taskflow.run('2027-03-01 08:59+09', '曜日チェーン');
SELECT * FROM taskflow.run('2027-03-01 09:00+09', '曜日チェーン');
SELECT * FROM taskflow.run('2027-03-01 09:00+09', '曜日チェーン');
-- 佐藤 gets the tag on Tuesday; Tuesday is not a chain day
UPDATE taskflow.member SET tags = '{曜日}' WHERE external_id = 'w-2';
SELECT * FROM taskflow.run('2027-03-02 09:00+09', '曜日チェーン');
SELECT chain, state, reason FROM taskflow.explain(engine_chains_id('w-2'), '2027-03-02 09:00+09')
 WHERE chain = '曜日チェーン';
-- Wednesday 08:59 nothing, 09:00 both enter
SELECT * FROM taskflow.run('2027-03-03 08:59+09', '曜日チェーン');
SELECT * FROM taskflow.run('2027-03-03 09:00+09', '曜日チェーン');
-- nothing runs from Thursday to Monday noon: the Friday 3/5 and Monday 3/8
-- slots are missed.  Friday's is dropped (a missed slot is caught up only
-- on its own day, so never on a day not chosen): on Monday at 12:00 only
-- Monday's is caught up, ONCE (one entry each, not one per missed slot);
-- an hour later nothing, nor on Tuesday
SELECT * FROM taskflow.run('2027-03-08 12:00+09', '曜日チェーン');
SELECT * FROM taskflow.run('2027-03-08 13:00+09', '曜日チェーン');
SELECT * FROM taskflow.run('2027-03-09 12:00+09', '曜日チェーン');
-- the rest of that week at 09:00: only Wednesday and Friday enter
SELECT * FROM taskflow.run('2027-03-10 09:00+09', '曜日チェーン');
SELECT * FROM taskflow.run('2027-03-11 09:00+09', '曜日チェーン');
SELECT * FROM taskflow.run('2027-03-12 09:00+09', '曜日チェーン');
SELECT * FROM taskflow.run('2027-03-13 09:00+09', '曜日チェーン');
SELECT * FROM taskflow.run('2027-03-14 09:00+09', '曜日チェーン');
SELECT member, event, task, it, at, to_char(at, 'Dy') AS dow, actor
  FROM engine_chains_hist WHERE chain = '曜日チェーン' ORDER BY at, member_id, history_id;
SELECT o.recipient, o.subject, o.iteration, o.created_at
  FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id)
 WHERE c.name = '曜日チェーン' ORDER BY o.created_at, o.recipient;
SELECT chain, state, since, reason FROM taskflow.explain(engine_chains_id('w-1'), '2027-03-14 10:00+09')
 WHERE chain = '曜日チェーン';

---------------------------------------------------------------- always + entry_interval
-- "always" chains look for members who match every entry interval (here 1
-- hour): at most one entry check per interval.
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, tags) VALUES
	('a-1', 'suzuki@example.jp', '鈴木一郎', 'trial', '2027-03-01 09:30+09', '{常時}'),
	('a-2', 'takahashi@example.jp', '高橋美咲', 'trial', '2027-03-01 09:30+09', '{}');
SELECT taskflow.save_criteria('常時対象', $$has_tag(tags, '常時')$$);
SELECT taskflow.create_template('ようこそ', '{{name}}様 ようこそ', 'ご登録ありがとうございます。',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('2時間後', '{{name}}様 その後いかがですか', '2時間後のご案内です。',
	sender_address => 'info@example.jp');
SELECT taskflow.define_property('plan', 'text');
SELECT taskflow.create_task('ようこそメール', 'auto', criteria => '常時対象', template => 'ようこそ',
	actions => '[{"add_tag": "ようこそ済"}, {"set_property": "plan", "to": "体験"}]');
SELECT taskflow.create_task('2時間後メール', 'auto', template => '2時間後');
SELECT taskflow.create_chain('常時チェーン', ARRAY['ようこそメール', '2時間後メール'],
	waits => ARRAY[NULL, '2 hours'], entry_interval => '1 hour', time_zone => 'Asia/Tokyo');
SELECT * FROM taskflow.run('2027-03-01 10:00+09', '常時チェーン');
-- 高橋 matches from 10:10; the check at 10:30 is within the interval
UPDATE taskflow.member SET tags = '{常時}' WHERE external_id = 'a-2';
SELECT * FROM taskflow.run('2027-03-01 10:30+09', '常時チェーン');
SELECT chain, state, reason FROM taskflow.explain(engine_chains_id('a-2'), '2027-03-01 10:30+09')
 WHERE chain = '常時チェーン';
SELECT * FROM taskflow.run('2027-03-01 10:59+09', '常時チェーン');
SELECT * FROM taskflow.run('2027-03-01 11:00+09', '常時チェーン');
-- 12:00: 鈴木's second mail is due
SELECT * FROM taskflow.run('2027-03-01 12:00+09', '常時チェーン');
-- 13:00: 高橋's second mail; then the same instant again must change nothing
SELECT * FROM taskflow.run('2027-03-01 13:00+09', '常時チェーン');
CREATE TEMP TABLE engine_chains_before AS SELECT * FROM engine_chains_state;
SELECT * FROM taskflow.run('2027-03-01 13:00+09', '常時チェーン');
SELECT tbl, count(*) AS rows_before,
	   (SELECT count(*) FROM engine_chains_state s WHERE s.tbl = b.tbl) AS rows_after
  FROM engine_chains_before b GROUP BY tbl ORDER BY tbl;
-- rows that differ between before and after (none)
(SELECT * FROM engine_chains_before EXCEPT SELECT * FROM engine_chains_state)
UNION ALL
(SELECT * FROM engine_chains_state EXCEPT SELECT * FROM engine_chains_before);
DROP TABLE engine_chains_before;
SELECT member, event, task, it, at FROM engine_chains_hist WHERE chain = '常時チェーン'
 ORDER BY at, member_id, history_id;
SELECT o.recipient, o.subject, o.created_at
  FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id)
 WHERE c.name = '常時チェーン' ORDER BY o.created_at, o.recipient;
SELECT name, tags, properties FROM taskflow.member WHERE external_id LIKE 'a-%' ORDER BY member_id;

---------------------------------------------------------------- repeat
-- After the last task the member goes back to task 1 in a new iteration,
-- repeat_wait after finishing (here 7 days later at 09:00).
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, tags) VALUES
	('r-1', 'tanaka@example.jp', '田中健', 'paid', '2027-02-01 10:00+09', '{定期}'),
	('r-2', 'ito@example.jp', '伊藤さくら', 'paid', '2027-02-01 10:00+09', '{定期}');
SELECT taskflow.save_criteria('定期対象', $$has_tag(tags, '定期')$$);
SELECT taskflow.create_template('定期1', '{{name}}様 定期便1', '定期便その1',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('定期2', '{{name}}様 定期便2', '定期便その2',
	sender_address => 'info@example.jp');
SELECT taskflow.create_task('定期便1', 'auto', criteria => '定期対象', template => '定期1',
	actions => '[{"record_event": "automation", "detail": {"note": "定期便1"}}]');
SELECT taskflow.create_task('定期便2', 'auto', template => '定期2');
SELECT taskflow.create_chain('定期チェーン', ARRAY['定期便1', '定期便2'],
	waits => ARRAY[NULL, '1 days at 10:00'], schedule => 'daily at 09:00', time_zone => 'Asia/Tokyo',
	repeat => true, repeat_wait => '7 days at 09:00');
SELECT * FROM taskflow.run('2027-03-01 09:00+09', '定期チェーン');
SELECT * FROM taskflow.run('2027-03-02 10:00+09', '定期チェーン');
-- both are back at task 1, iteration 2, due 3/9 09:00
SELECT member_name, position, task, state, iteration, waiting_since, due_at
  FROM taskflow.member_state WHERE chain = '定期チェーン' ORDER BY member_id;
-- daily entry checks meanwhile do not enter them again (they are in the chain)
SELECT * FROM taskflow.run('2027-03-08 09:00+09', '定期チェーン');
-- 伊藤 loses the tag: at task 1 of iteration 2 she no longer matches and leaves
UPDATE taskflow.member SET tags = '{}' WHERE external_id = 'r-2';
SELECT * FROM taskflow.run('2027-03-09 08:59+09', '定期チェーン');
SELECT * FROM taskflow.run('2027-03-09 09:00+09', '定期チェーン');
SELECT * FROM taskflow.run('2027-03-10 10:00+09', '定期チェーン');
SELECT member, event, task, it, at, reason FROM engine_chains_hist WHERE chain = '定期チェーン'
 ORDER BY at, member_id, history_id;
SELECT o.recipient, o.subject, o.iteration, o.created_at
  FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id)
 WHERE c.name = '定期チェーン' ORDER BY o.created_at, o.recipient;
SELECT chain, state, task, due_at, reason FROM taskflow.explain(engine_chains_id('r-1'), '2027-03-10 10:00+09')
 WHERE chain = '定期チェーン';
SELECT chain, state, task, reason FROM taskflow.explain(engine_chains_id('r-2'), '2027-03-10 10:00+09')
 WHERE chain = '定期チェーン';
-- iteration 3: 田中 gets 定期便1 on 3/17 and waits for 定期便2; that last
-- step is removed: he skips it and goes back to task 1 (iteration 4), 7 days
-- after the removal, as after the last task
SELECT * FROM taskflow.run('2027-03-17 09:00+09', '定期チェーン');
SET taskflow.as_of = '2027-03-17 12:00+09';
SELECT taskflow.remove_step('定期チェーン', 2);
SET taskflow.as_of = '2027-02-28 00:00+09';
SELECT member, event, task, it, at, actor, reason FROM engine_chains_hist
 WHERE chain = '定期チェーン' AND at >= '2027-03-17' ORDER BY at, member_id, history_id;
SELECT member_name, position, task, state, iteration, due_at
  FROM taskflow.member_state WHERE chain = '定期チェーン' ORDER BY member_id;

---------------------------------------------------------------- re-entry policies
-- Three one-task chains with the same entry criteria, daily at 09:00, differ
-- only in re-entry: never, rematch, cooldown (2 days).  One member, 渡辺,
-- matches, stops matching and matches again.
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, tags) VALUES
	('e-1', 'watanabe@example.jp', '渡辺翔', 'paid', '2027-02-01 10:00+09', '{再入}');
SELECT taskflow.save_criteria('再入対象', $$has_tag(tags, '再入')$$);
SELECT taskflow.create_task('再入タスク', 'auto', criteria => '再入対象',
	actions => '[{"record_event": "automation", "detail": {"note": "再入"}}]');
SELECT taskflow.create_chain('再入never', ARRAY['再入タスク'], schedule => 'daily at 09:00',
	time_zone => 'Asia/Tokyo', reentry => 'never');
SELECT taskflow.create_chain('再入rematch', ARRAY['再入タスク'], schedule => 'daily at 09:00',
	time_zone => 'Asia/Tokyo', reentry => 'rematch');
SELECT taskflow.create_chain('再入cooldown', ARRAY['再入タスク'], schedule => 'daily at 09:00',
	time_zone => 'Asia/Tokyo', reentry => 'cooldown', reentry_cooldown => '2 days');
-- one call per chain; the instants in order
CREATE TEMP TABLE engine_chains_reentry (at timestamptz, chain text, entered bigint);
CREATE FUNCTION pg_temp.run3(t timestamptz) RETURNS SETOF engine_chains_reentry
	LANGUAGE sql AS $$
	INSERT INTO engine_chains_reentry
	SELECT t, r.chain, r.entered
	  FROM unnest(ARRAY['再入never', '再入rematch', '再入cooldown']) WITH ORDINALITY AS c(name, n),
		   LATERAL taskflow.run(t, c.name) r
	 ORDER BY c.n
	RETURNING *$$;
-- 3/1: enters all three
SELECT * FROM pg_temp.run3('2027-03-01 09:00+09');
-- 3/2: still matches; nobody re-enters (cooldown: 1 day is not 2)
SELECT * FROM pg_temp.run3('2027-03-02 09:00+09');
-- 3/3: the cooldown has passed: cooldown re-enters; rematch has not seen
-- the member not matching, never never re-enters
SELECT * FROM pg_temp.run3('2027-03-03 09:00+09');
-- the tag goes at 12:00; the 3/4 check sees 渡辺 not matching (rematch re-arms)
UPDATE taskflow.member SET tags = '{}' WHERE external_id = 'e-1';
SELECT * FROM pg_temp.run3('2027-03-04 09:00+09');
SELECT c.name, cm.state, cm.iteration, cm.rearmed FROM taskflow.chain_member cm JOIN taskflow.chain c USING (chain_id)
 WHERE c.name LIKE '再入%' ORDER BY c.name;
-- back at 15:00; 3/5: rematch re-enters, cooldown too (2 days after 3/3)
UPDATE taskflow.member SET tags = '{再入}' WHERE external_id = 'e-1';
SELECT * FROM pg_temp.run3('2027-03-05 09:00+09');
-- the tag goes and comes back between two checks: no check saw the member
-- not matching, so rematch does not re-enter on 3/6; cooldown waits until 3/7
UPDATE taskflow.member SET tags = '{}' WHERE external_id = 'e-1';
UPDATE taskflow.member SET tags = '{再入}' WHERE external_id = 'e-1';
SELECT * FROM pg_temp.run3('2027-03-06 09:00+09');
SELECT * FROM pg_temp.run3('2027-03-07 09:00+09');
SELECT chain, event, it, at FROM engine_chains_hist WHERE chain LIKE '再入%' AND event = 'entered'
 ORDER BY chain, at;
SELECT chain, state, reason FROM taskflow.explain(engine_chains_id('e-1'), '2027-03-07 10:00+09')
 WHERE chain LIKE '再入%' ORDER BY chain;

---------------------------------------------------------------- on_mismatch
-- A later task whose criteria the member no longer matches when it is due:
-- on_mismatch 'leave' takes the member out; 'wait' keeps it waiting until
-- it matches again.  Both chains share their first task.
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, tags) VALUES
	('x-1', 'kobayashi@example.jp', '小林誠', 'trial', '2027-02-28 10:00+09', '{案内}');
SELECT taskflow.save_criteria('案内対象', $$has_tag(tags, '案内')$$);
SELECT taskflow.save_criteria('トライアル中', $$status = 'trial'$$);
SELECT taskflow.create_task('体験案内', 'auto', criteria => '案内対象');
SELECT taskflow.create_task('入会勧誘(離脱)', 'auto', criteria => 'トライアル中', on_mismatch => 'leave');
SELECT taskflow.create_task('入会勧誘(待機)', 'auto', criteria => 'トライアル中', on_mismatch => 'wait');
SELECT taskflow.create_chain('不一致leave', ARRAY['体験案内', '入会勧誘(離脱)'],
	waits => ARRAY[NULL, '1 days at 10:00'], schedule => 'daily at 09:00', time_zone => 'Asia/Tokyo');
SELECT taskflow.create_chain('不一致wait', ARRAY['体験案内', '入会勧誘(待機)'],
	waits => ARRAY[NULL, '1 days at 10:00'], schedule => 'daily at 09:00', time_zone => 'Asia/Tokyo');
SELECT * FROM taskflow.run('2027-03-01 09:00+09', '不一致leave');
SELECT * FROM taskflow.run('2027-03-01 09:00+09', '不一致wait');
-- 小林 becomes a paying member before the second task is due
UPDATE taskflow.member SET status = 'paid' WHERE external_id = 'x-1';
SELECT * FROM taskflow.run('2027-03-02 10:00+09', '不一致leave');
SELECT * FROM taskflow.run('2027-03-02 10:00+09', '不一致wait');
SELECT chain, state, task, since, due_at, reason FROM taskflow.explain(engine_chains_id('x-1'), '2027-03-02 10:00+09')
 WHERE chain LIKE '不一致%' ORDER BY chain;
-- checked again at later runs: still no match, nothing happens
SELECT * FROM taskflow.run('2027-03-03 10:00+09', '不一致wait');
-- back on trial (a refund): the waiting member proceeds at the next run
UPDATE taskflow.member SET status = 'trial' WHERE external_id = 'x-1';
SELECT * FROM taskflow.run('2027-03-03 13:00+09', '不一致wait');
SELECT * FROM taskflow.run('2027-03-03 13:00+09', '不一致leave');
SELECT chain, event, task, it, at, reason FROM engine_chains_hist WHERE chain LIKE '不一致%'
 ORDER BY chain, at, history_id;
SELECT chain, state, task, reason FROM taskflow.explain(engine_chains_id('x-1'), '2027-03-03 13:00+09')
 WHERE chain LIKE '不一致%' ORDER BY chain;

---------------------------------------------------------------- daylight saving
-- A chain in America/New_York, 'daily at 10:00' local, with '1 days at
-- 02:30' waits across the spring-forward night of 2027-03-14 (02:00 EST ->
-- 03:00 EDT), and one with '1 days at 01:30' across the fall-back night of
-- 2027-11-07 (02:00 EDT -> 01:00 EST).  The same chain in Asia/Tokyo (no
-- DST) for comparison.
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, tags) VALUES
	('d-1', 'nakamura@example.jp', '中村優', 'paid', '2027-02-01 10:00+09', '{DST}');
SELECT taskflow.save_criteria('DST対象', $$has_tag(tags, 'DST')$$);
SELECT taskflow.create_task('DST1', 'auto', criteria => 'DST対象');
SELECT taskflow.create_task('DST2', 'auto');
SELECT taskflow.create_task('DST3', 'auto');
SELECT taskflow.create_chain('NY春', ARRAY['DST1', 'DST2', 'DST3'],
	waits => ARRAY[NULL, '1 days at 02:30', '1 days at 02:30'],
	schedule => 'daily at 10:00', time_zone => 'America/New_York');
SELECT taskflow.create_chain('東京春', ARRAY['DST1', 'DST2', 'DST3'],
	waits => ARRAY[NULL, '1 days at 02:30', '1 days at 02:30'],
	schedule => 'daily at 10:00', time_zone => 'Asia/Tokyo');
SELECT taskflow.create_chain('NY秋', ARRAY['DST1', 'DST2'],
	waits => ARRAY[NULL, '1 days at 01:30'],
	schedule => 'daily at 10:00', time_zone => 'America/New_York', enabled => false);
-- Saturday 3/13 10:00 EST in New York (= 3/14 00:00 in Tokyo)
SELECT * FROM taskflow.run('2027-03-13 10:00-05', 'NY春');
-- Spring forward: "3/14 02:30" does not exist in New York.  PostgreSQL's
-- rule for "timestamp AT TIME ZONE" reads a time in the gap with the offset
-- before the change (EST, -05), so the wait ends at 07:30 UTC = 03:30 EDT.
SELECT member_name, task, due_at AT TIME ZONE 'UTC' AS due_utc,
	   due_at AT TIME ZONE 'America/New_York' AS due_new_york
  FROM taskflow.member_state WHERE chain = 'NY春';
SELECT chain, task, reason FROM taskflow.explain(engine_chains_id('d-1'), '2027-03-14 03:29-04')
 WHERE chain = 'NY春';
SELECT * FROM taskflow.run('2027-03-14 03:29-04', 'NY春');
SELECT * FROM taskflow.run('2027-03-14 03:30-04', 'NY春');
-- the next '1 days at 02:30' is an ordinary 02:30 EDT on 3/15
SELECT * FROM taskflow.run('2027-03-15 02:29-04', 'NY春');
SELECT * FROM taskflow.run('2027-03-15 02:30-04', 'NY春');
SELECT event, task, at AT TIME ZONE 'UTC' AS at_utc, at AT TIME ZONE 'America/New_York' AS at_new_york
  FROM engine_chains_hist WHERE chain = 'NY春' ORDER BY at, history_id;
-- Tokyo: entered 3/13 10:00 JST, then exactly 02:30 JST on 3/14 and 3/15
SELECT * FROM taskflow.run('2027-03-13 10:00+09', '東京春');
SELECT * FROM taskflow.run('2027-03-14 02:29+09', '東京春');
SELECT * FROM taskflow.run('2027-03-14 02:30+09', '東京春');
SELECT * FROM taskflow.run('2027-03-15 02:30+09', '東京春');
SELECT event, task, at FROM engine_chains_hist WHERE chain = '東京春' ORDER BY at, history_id;
-- Fall back: "11/7 01:30" happens twice in New York (01:30 EDT, then an hour
-- later 01:30 EST).  PostgreSQL reads the ambiguous time as standard time, so
-- the wait ends at the second 01:30 (06:30 UTC), not the first (05:30 UTC).
SET taskflow.as_of = '2027-11-01 00:00+09';
SELECT taskflow.enable_chain('NY秋');
SELECT * FROM taskflow.run('2027-11-06 10:00-04', 'NY秋');
SELECT member_name, task, due_at AT TIME ZONE 'UTC' AS due_utc,
	   due_at AT TIME ZONE 'America/New_York' AS due_new_york
  FROM taskflow.member_state WHERE chain = 'NY秋';
SELECT * FROM taskflow.run('2027-11-07 01:30-04', 'NY秋');
SELECT * FROM taskflow.run('2027-11-07 01:30-05', 'NY秋');
SELECT event, task, at AT TIME ZONE 'UTC' AS at_utc, at AT TIME ZONE 'America/New_York' AS at_new_york
  FROM engine_chains_hist WHERE chain = 'NY秋' ORDER BY at, history_id;
SET taskflow.as_of = '2027-02-28 00:00+09';

---------------------------------------------------------------- enable / disable
-- A disabled chain does nothing; when enabled again, steps that fell due
-- meanwhile run at the next run, but daily entry slots from before enabling
-- are not replayed.
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, tags) VALUES
	('n-1', 'kato@example.jp', '加藤大輔', 'paid', '2027-02-01 10:00+09', '{有効}'),
	('n-2', 'yoshida@example.jp', '吉田恵', 'paid', '2027-02-01 10:00+09', '{}');
SELECT taskflow.save_criteria('有効対象', $$has_tag(tags, '有効')$$);
SELECT taskflow.create_task('有効1', 'auto', criteria => '有効対象');
SELECT taskflow.create_task('有効2', 'auto');
SELECT taskflow.create_chain('有効無効', ARRAY['有効1', '有効2'], waits => ARRAY[NULL, '1 days at 09:00'],
	schedule => 'daily at 09:00', time_zone => 'Asia/Tokyo');
SELECT * FROM taskflow.run('2027-03-01 09:00+09', '有効無効');
SET taskflow.as_of = '2027-03-01 12:00+09';
SELECT taskflow.disable_chain('有効無効');
UPDATE taskflow.member SET tags = '{有効}' WHERE external_id = 'n-2';
-- disabled: run() does not run it at all (no row)
SELECT * FROM taskflow.run('2027-03-02 09:00+09', '有効無効');
SELECT * FROM taskflow.run('2027-03-03 09:00+09', '有効無効');
SELECT chain, state, task, reason FROM taskflow.explain(engine_chains_id('n-1'), '2027-03-03 09:30+09')
 WHERE chain = '有効無効';
SELECT chain, position, task, waiting, chain_state FROM taskflow.chain_summary WHERE chain = '有効無効' ORDER BY position;
-- enabled at 10:00 on 3/3: 加藤's overdue step runs; the 3/3 09:00 slot is
-- before enabling, so 吉田 does not enter until the 3/4 slot
SET taskflow.as_of = '2027-03-03 10:00+09';
SELECT taskflow.enable_chain('有効無効');
SELECT * FROM taskflow.run('2027-03-03 10:00+09', '有効無効');
SELECT * FROM taskflow.run('2027-03-03 23:00+09', '有効無効');
SELECT * FROM taskflow.run('2027-03-04 09:00+09', '有効無効');
-- 吉田 now waits for 有効2, the last step; it is removed: she skips it and
-- finishes the chain
SET taskflow.as_of = '2027-03-04 12:00+09';
SELECT taskflow.remove_step('有効無効', 2);
SELECT member, event, task, at, actor, reason FROM engine_chains_hist WHERE chain = '有効無効' ORDER BY at, member_id, history_id;
SELECT member_name, position, task, state, finished_at FROM taskflow.member_state WHERE chain = '有効無効' ORDER BY member_id;
SET taskflow.as_of = '2027-02-28 00:00+09';

---------------------------------------------------------------- mode switch
-- A task switched auto -> manual -> auto while a chain runs: members due
-- while it is manual wait on the pending list, and stay there after the
-- switch back until processed; members due after the switch back get it
-- automatically.
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, tags) VALUES
	('s-1', 'matsumoto@example.jp', '松本陽子', 'trial', '2027-02-01 10:00+09', '{モード}'),
	('s-2', 'inoue@example.jp', '井上直樹', 'trial', '2027-02-01 10:00+09', '{}'),
	('s-3', 'kimura@example.jp', '木村愛', 'trial', '2027-02-01 10:00+09', '{}');
SELECT taskflow.save_criteria('モード対象', $$has_tag(tags, 'モード')$$);
SELECT taskflow.create_task('モード受付', 'auto', criteria => 'モード対象');
SELECT taskflow.create_task('モード確認', 'auto', actions => '[{"add_tag": "確認済"}]',
	assignee => '確認担当', priority => 5);
SELECT taskflow.create_chain('モード切替', ARRAY['モード受付', 'モード確認'], waits => ARRAY[NULL, '1 hours'],
	entry_interval => '1 hour', time_zone => 'Asia/Tokyo');
SELECT * FROM taskflow.run('2027-03-01 09:00+09', 'モード切替');
UPDATE taskflow.member SET tags = '{モード}' WHERE external_id = 's-2';
-- 10:00: 松本's check is automatic; 井上 enters
SELECT * FROM taskflow.run('2027-03-01 10:00+09', 'モード切替');
SELECT taskflow.alter_task('モード確認', mode => 'manual');
UPDATE taskflow.member SET tags = '{モード}' WHERE external_id = 's-3';
-- 11:00: 井上 is due and goes to the pending list; 木村 enters
SELECT * FROM taskflow.run('2027-03-01 11:00+09', 'モード切替');
SELECT task, member_name, pending_since, assignee, priority FROM taskflow.dashboard;
SELECT taskflow.alter_task('モード確認', mode => 'auto');
-- 12:00: 木村 gets it automatically; 井上 is still pending
SELECT * FROM taskflow.run('2027-03-01 12:00+09', 'モード切替');
SELECT task, member_name, pending_since FROM taskflow.dashboard;
SELECT taskflow.process('モード確認', ARRAY[engine_chains_id('s-2')], '2027-03-01 12:30+09');
SELECT count(*) AS still_pending FROM taskflow.pending_tasks;
SELECT member, event, task, at, actor FROM engine_chains_hist WHERE chain = 'モード切替'
 ORDER BY at, member_id, history_id;
SELECT name, tags FROM taskflow.member WHERE external_id LIKE 's-%' ORDER BY member_id;

---------------------------------------------------------------- changing steps
-- Members are attached to a step, not to a position.  Chain 並べ替え:
-- R1 -> R2 -> R3 -> R4, each later task 1 day later at 10:00; 斎藤 enters
-- 3/1, 山口 3/2, 清水 3/3 (daily at 09:00).
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, tags) VALUES
	('c-1', 'saito@example.jp', '斎藤学', 'paid', '2027-02-01 10:00+09', '{並替}'),
	('c-2', 'yamaguchi@example.jp', '山口真司', 'paid', '2027-02-01 10:00+09', '{}'),
	('c-3', 'shimizu@example.jp', '清水彩', 'paid', '2027-02-01 10:00+09', '{}'),
	('c-4', 'mori@example.jp', '森拓也', 'paid', '2027-02-01 10:00+09', '{}');
SELECT taskflow.save_criteria('並替対象', $$has_tag(tags, '並替')$$);
SELECT taskflow.create_task('R1', 'auto', criteria => '並替対象');
SELECT taskflow.create_task('R2', 'auto');
SELECT taskflow.create_task('R3', 'auto');
SELECT taskflow.create_task('R4', 'auto');
SELECT taskflow.create_task('R新', 'auto');
SELECT taskflow.create_chain('並べ替え', ARRAY['R1', 'R2', 'R3', 'R4'],
	waits => ARRAY[NULL, '1 days at 10:00', '1 days at 10:00', '1 days at 10:00'],
	schedule => 'daily at 09:00', time_zone => 'Asia/Tokyo');
SELECT * FROM taskflow.run('2027-03-01 09:00+09', '並べ替え');
UPDATE taskflow.member SET tags = '{並替}' WHERE external_id = 'c-2';
SELECT * FROM taskflow.run('2027-03-02 09:00+09', '並べ替え');
SELECT * FROM taskflow.run('2027-03-02 10:00+09', '並べ替え');
UPDATE taskflow.member SET tags = '{並替}' WHERE external_id = 'c-3';
SELECT * FROM taskflow.run('2027-03-03 09:00+09', '並べ替え');
-- 3/3 09:30: 斎藤 waits for R3 (due 10:00 today), 山口 for R2 (due 10:00
-- today), 清水 for R2 (due 3/4 10:00)
SELECT member_name, position, task, state, due_at FROM taskflow.member_state
 WHERE chain = '並べ替え' ORDER BY member_id;
SET taskflow.as_of = '2027-03-03 09:30+09';
-- (1) insert R新 at position 2 (between R1 and R2), '3 hours' after R1
-- (12:00 the same day; '0 days at 12:00' is refused: it would be at once
-- after an R1 that ran after 12:00): 山口 and 清水 keep waiting for R2 with
-- the same due time, so they skip R新; only members who finish R1 from now
-- on get it
SELECT taskflow.add_step('並べ替え', 'R新', '0 days at 12:00', 2);
SELECT taskflow.add_step('並べ替え', 'R新', '3 hours', 2);
SELECT position, task FROM taskflow.chain_summary WHERE chain = '並べ替え' ORDER BY position;
SELECT member_name, position, task, state, due_at FROM taskflow.member_state
 WHERE chain = '並べ替え' ORDER BY member_id;
-- (2) remove R3 (now position 4), where 斎藤 waits: 斎藤 moves on to R4
-- keeping his due time (today 10:00); the history says 'skipped'
SELECT taskflow.remove_step('並べ替え', 4);
SELECT member_name, position, task, state, due_at FROM taskflow.member_state
 WHERE chain = '並べ替え' ORDER BY member_id;
SELECT member, event, task, at, actor, reason FROM engine_chains_hist
 WHERE chain = '並べ替え' AND event = 'skipped';
-- (3) move R4 (position 4) before R2 (position 3): the order is now R1, R新,
-- R4, R2.  Each step keeps the wait before it.  山口 and 清水 still wait for
-- R2, which is now last: after it they finish instead of going on to R4.
-- 斎藤 waits for R4: after it comes R2, which he already had in this
-- iteration; when R2 falls due he is moved past it ('skipped', not applied
-- twice) and finishes
SELECT taskflow.move_step('並べ替え', 4, 3);
SELECT position, task FROM taskflow.chain_summary WHERE chain = '並べ替え' ORDER BY position;
SELECT s.position, t.name AS task, s.wait_kind, s.wait_days, s.wait_at
  FROM taskflow.chain_step s JOIN taskflow.task t USING (task_id) JOIN taskflow.chain c USING (chain_id)
 WHERE c.name = '並べ替え' ORDER BY s.position;
-- (4) set_wait applies to members who reach the step from now on: R2 now
-- waits 2 days; 山口 and 清水, already waiting for R2, keep their due times
SELECT taskflow.set_wait('並べ替え', 4, '2 days at 10:00');
SELECT member_name, position, task, state, due_at FROM taskflow.member_state
 WHERE chain = '並べ替え' ORDER BY member_id;
-- 森 enters on 3/4 and goes R1 -> R新 (12:00 the same day) -> R4 (3/5) ->
-- R2 (two days later, 3/7)
UPDATE taskflow.member SET tags = '{並替}' WHERE external_id = 'c-4';
SELECT * FROM taskflow.run('2027-03-03 10:00+09', '並べ替え');
SELECT * FROM taskflow.run('2027-03-04 09:00+09', '並べ替え');
SELECT * FROM taskflow.run('2027-03-04 10:00+09', '並べ替え');
SELECT * FROM taskflow.run('2027-03-04 12:00+09', '並べ替え');
SELECT * FROM taskflow.run('2027-03-05 10:00+09', '並べ替え');
SELECT * FROM taskflow.run('2027-03-06 10:00+09', '並べ替え');
SELECT * FROM taskflow.run('2027-03-07 10:00+09', '並べ替え');
SELECT member, event, task, at, reason FROM engine_chains_hist WHERE chain = '並べ替え'
 ORDER BY member_id, at, history_id;
SET taskflow.as_of = '2027-02-28 00:00+09';

---------------------------------------------------------------- batches
-- taskflow.batch_size = 3: ten due members are still all handled in one run
-- (in batches of 3, 3, 3 and 1).
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, tags)
SELECT 'b-' || i, 'batch' || i || '@example.jp', '一括会員' || i, 'trial', '2027-02-01 10:00+09', '{一括}'
  FROM generate_series(1, 10) i;
SELECT taskflow.save_criteria('一括対象', $$has_tag(tags, '一括')$$);
SELECT taskflow.create_template('一括案内', '{{name}}様へのご案内', '一括のご案内です。',
	sender_address => 'info@example.jp');
SELECT taskflow.create_task('一括1', 'auto', criteria => '一括対象', template => '一括案内',
	actions => '[{"add_tag": "一括済"}]');
SELECT taskflow.create_task('一括2', 'auto', actions => '[{"set": "status", "to": "newsletter"}]');
SELECT taskflow.create_chain('一括チェーン', ARRAY['一括1', '一括2'], waits => ARRAY[NULL, '1 hours'],
	time_zone => 'Asia/Tokyo');
SET taskflow.batch_size = 3;
SELECT * FROM taskflow.run('2027-03-01 09:00+09', '一括チェーン');
SELECT * FROM taskflow.run('2027-03-01 10:00+09', '一括チェーン');
RESET taskflow.batch_size;
SELECT event, task, count(*) FROM engine_chains_hist WHERE chain = '一括チェーン'
 GROUP BY event, task ORDER BY min(history_id);
SELECT count(*) AS messages, count(DISTINCT recipient) AS recipients
  FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id) WHERE c.name = '一括チェーン';
SELECT status, tags, count(*) FROM taskflow.member WHERE external_id LIKE 'b-%' GROUP BY status, tags;

---------------------------------------------------------------- views
-- explain for a member in no chain yet, over every chain: 小川 matches the
-- entry criteria of NY春 (daily at 10:00 New York time) and of 一括チェーン
-- ("always", so no slot time)
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, tags) VALUES
	('v-1', 'ogawa@example.jp', '小川舞', 'trial', '2027-03-01 10:00+09', '{DST,一括}');
SELECT chain, state, reason FROM taskflow.explain(engine_chains_id('v-1'), '2027-03-20 12:00+09') ORDER BY chain;
-- per chain and step: members waiting / pending there, how often it was
-- applied, how many left there; members done with the chain; errors
SELECT * FROM taskflow.chain_summary ORDER BY chain, position;
SELECT member_name, chain, position, task, state, iteration, due_at, finished_at, left_reason
  FROM taskflow.member_state WHERE external_id NOT LIKE 'b-%' ORDER BY member_id, chain;
SELECT chain, state, count(*) FROM taskflow.member_state WHERE external_id LIKE 'b-%' GROUP BY chain, state;

---------------------------------------------------------------- clean up
RESET ROLE;
RESET taskflow.as_of;
DROP VIEW public.engine_chains_hist, public.engine_chains_state;
DROP FUNCTION public.engine_chains_id(text);
DROP FUNCTION pg_temp.run3(timestamptz);
DROP TABLE engine_chains_reentry;
DROP EXTENSION taskflow CASCADE;
DROP ROLE engine_chains_app;
