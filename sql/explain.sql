-- taskflow.explain() says what the engine will do, and daily slots:
--  * a criteria or anchor that fails for this member is that chain's
--    answer; the other chains are still explained (other errors raise);
--  * a member whose anchor changed since it was placed: restart, follow,
--    ignore and a removed anchor, as the next entry check handles them;
--    explain and preview agree on the next step;
--  * a daily chain's entry criteria evaluated at the slot the engine will
--    enter at (a slot still owed today, else the next one);
--  * a missed daily slot is caught up only on its own local day (or within
--    the entry interval): weekday chains never run on a day not chosen.
-- Each section starts from a fresh extension.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
DROP FUNCTION IF EXISTS public.explain_refuse(bigint);
RESET client_min_messages;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never

---------------------------------------------------------------- failures of one member's data
CREATE EXTENSION taskflow;
SET taskflow.as_of = '2026-04-30 12:00+09';
SELECT taskflow.define_property('points', 'number');
SELECT taskflow.define_property('renew_on', 'date');
INSERT INTO taskflow.member (external_id, email, name, status, properties) VALUES
	('m-1', 'yamada@example.jp', '山田太郎', 'paid', '{"points": 10}'),
	('m-2', 'sato@example.jp', '佐藤花子', 'paid', '{"points": 5}');
SELECT taskflow.save_criteria('ポイント比', $$100 / prop_number(properties, 'points') > 1$$);
SELECT taskflow.create_task('ポイント案内', 'auto', criteria => 'ポイント比');
SELECT taskflow.create_task('ようこそ', 'auto');
SELECT taskflow.create_task('ポイント特典', 'auto', criteria => 'ポイント比');
SELECT taskflow.create_task('更新案内', 'auto');
SELECT taskflow.create_chain('ポイントチェーン', ARRAY['ポイント案内'], time_zone => 'Asia/Tokyo');
SELECT taskflow.create_chain('特典チェーン', ARRAY['ようこそ', 'ポイント特典'],
	waits => ARRAY[NULL, '1 days at 10:00'], time_zone => 'Asia/Tokyo');
SELECT taskflow.create_chain('更新前チェーン', ARRAY['更新案内'], anchor => 'properties.renew_on',
	offsets => ARRAY['-3 days at 09:00'], time_zone => 'Asia/Tokyo', activation => 'existing');
-- both enter 特典チェーン and wait for its second step
SELECT * FROM taskflow.run('2026-05-01 09:00+09', '特典チェーン');
-- 佐藤's points become 0 (100 / 0: division by zero), and a renewal date
-- that is not a date arrives through a path that bypasses validation
-- (logical replication, a restore)
SELECT taskflow.set_property(2, 'points', 0);
SET session_replication_role = replica;
UPDATE taskflow.member SET properties = properties || '{"renew_on": "未定"}' WHERE external_id = 'm-2';
RESET session_replication_role;
-- one row per chain all the same: the entry criteria, a later task's
-- criteria and the anchor each fail for this member only
SELECT chain, state, task, reason FROM taskflow.explain(2, '2026-05-01 12:00+09');
SELECT chain, state, task, reason FROM taskflow.explain(1, '2026-05-01 12:00+09');
-- an error that is not the member's data (here a permission refused by a
-- function of the owner's) is raised, not reported
CREATE FUNCTION public.explain_refuse(id bigint) RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
	IF id = 2 THEN
		RAISE EXCEPTION 'not allowed to look at member %', id USING ERRCODE = 'insufficient_privilege';
	END IF;
	RETURN false;
END
$$;
SELECT taskflow.save_criteria('確認', $$public.explain_refuse(member_id)$$);
SELECT taskflow.create_task('確認案内', 'auto', criteria => '確認');
SELECT taskflow.create_chain('確認チェーン', ARRAY['確認案内'], time_zone => 'Asia/Tokyo');
SELECT chain, state FROM taskflow.explain(2, '2026-05-01 12:00+09');
SELECT chain, state, reason FROM taskflow.explain(1, '2026-05-01 12:00+09') WHERE chain = '確認チェーン';
DROP EXTENSION taskflow CASCADE;
DROP FUNCTION public.explain_refuse(bigint);

---------------------------------------------------------------- anchor changes
CREATE EXTENSION taskflow;
SET taskflow.as_of = '2026-04-01 12:00+09';
SELECT taskflow.define_property('purchased_on', 'date', NULL, '購入日');
SELECT taskflow.create_template('c' || n, '【スタークス通信】' || s || ' {{name}}さん', 'b', sender_address => 'info@example.jp')
  FROM (VALUES (1, 'ご購入ありがとうございます'), (2, '使い方のコツ'), (3, '愛用者の声')) v(n, s);
SELECT taskflow.create_task('サンクス', 'auto', template => 'c1');
SELECT taskflow.create_task('使い方', 'auto', template => 'c2');
SELECT taskflow.create_task('声', 'auto', template => 'c3');
-- the same steps under the three policies
SELECT taskflow.create_chain('購入後フォロー', ARRAY['サンクス', '使い方', '声'], anchor => 'properties.purchased_on',
	offsets => ARRAY['immediately', '1 days at 10:00', '6 days at 10:00'], time_zone => 'Asia/Tokyo');
SELECT taskflow.create_chain('購入後フォロー(追従)', ARRAY['サンクス', '使い方', '声'], anchor => 'properties.purchased_on',
	offsets => ARRAY['immediately', '1 days at 10:00', '6 days at 10:00'], time_zone => 'Asia/Tokyo',
	anchor_change => 'follow');
SELECT taskflow.create_chain('購入後フォロー(無視)', ARRAY['サンクス', '使い方', '声'], anchor => 'properties.purchased_on',
	offsets => ARRAY['immediately', '1 days at 10:00', '6 days at 10:00'], time_zone => 'Asia/Tokyo',
	anchor_change => 'ignore');
INSERT INTO taskflow.member (external_id, email, name, properties) VALUES
	('c1', 'misaki@example.jp', '三崎綾', '{"purchased_on": "2026-04-01"}'),
	('c2', 'mori@example.jp', '森なつみ', '{"purchased_on": "2026-04-01"}');
SELECT chain, entered, applied FROM taskflow.run('2026-04-01 12:05+09') ORDER BY chain;
SELECT chain, entered, applied FROM taskflow.run('2026-04-02 10:00+09') ORDER BY chain;
-- 三崎 buys again (a new date); 森's purchase date is removed
UPDATE taskflow.member SET properties = properties || '{"purchased_on": "2026-04-05"}' WHERE external_id = 'c1';
UPDATE taskflow.member SET properties = properties - 'purchased_on' WHERE external_id = 'c2';
SELECT chain, state, task, due_at, reason FROM taskflow.explain(1, '2026-04-05 09:00+09');
SELECT chain, state, task, due_at, reason FROM taskflow.explain(2, '2026-04-05 09:00+09');
-- explain and preview agree: the next step explain reports is the first
-- step preview shows applied in each chain (and at that due time, when it
-- is still ahead)
CREATE TEMP TABLE previewed AS
SELECT p.*, row_number() OVER () AS n
  FROM taskflow.preview('2026-04-05 09:00+09', '2026-04-12 00:00+09', member_ids => ARRAY[1]::bigint[]) p;
SELECT to_char(at, 'MM-DD HH24:MI') AS at, chain, task, event, changes FROM previewed ORDER BY n;
SELECT e.chain, e.task AS explain_task, to_char(e.due_at, 'MM-DD HH24:MI') AS explain_due,
	   f.task AS preview_task, to_char(f.at, 'MM-DD HH24:MI') AS preview_at,
	   f.task = e.task AND f.at = GREATEST(e.due_at, '2026-04-05 09:00+09') AS agree
  FROM taskflow.explain(1, '2026-04-05 09:00+09') e
  LEFT JOIN LATERAL (SELECT p.task, p.at FROM previewed p
					  WHERE p.chain = e.chain AND p.event = 'applied' ORDER BY p.n LIMIT 1) f ON true
 ORDER BY e.chain;
-- and the engine does it
SELECT chain, entered, applied, "left" FROM taskflow.run('2026-04-05 09:00+09') ORDER BY chain;
SELECT chain_name, m.name, task_name, iteration, event, detail ->> 'reason' AS reason
  FROM taskflow.history h JOIN taskflow.member m USING (member_id)
 WHERE at = '2026-04-05 09:00+09' ORDER BY history_id;
-- now placed: explain says where, nothing about a change (ignore: still noted)
SELECT chain, state, task, due_at, reason FROM taskflow.explain(1, '2026-04-05 09:05+09');
-- a change seen only after the member's step: with an entry check once a
-- day (the last at 12:00), 三崎's step at 10:00 tomorrow comes first
SELECT chain, entered, applied FROM taskflow.run('2026-04-05 12:00+09', '購入後フォロー');
SELECT taskflow.alter_chain('購入後フォロー', entry_interval => '1 day');
UPDATE taskflow.member SET properties = properties || '{"purchased_on": "2026-04-03"}' WHERE external_id = 'c1';
SELECT chain, state, task, due_at, reason FROM taskflow.explain(1, '2026-04-05 12:30+09') WHERE chain = '購入後フォロー';
-- 森, who left the chains when her date was removed, gets one again: the
-- restart chain takes her back if a step of the new date is ahead
UPDATE taskflow.member SET properties = properties || '{"purchased_on": "2026-03-01"}' WHERE external_id = 'c2';
SELECT chain, state, task, reason FROM taskflow.explain(2, '2026-04-06 09:00+09');
UPDATE taskflow.member SET properties = properties || '{"purchased_on": "2026-04-06"}' WHERE external_id = 'c2';
SELECT chain, state, task, due_at, reason FROM taskflow.explain(2, '2026-04-06 09:00+09');
-- the engine: 三崎's step at 10:00 with the old date, then the entry check
-- at 12:00 places both as explain said
SELECT chain, entered, applied FROM taskflow.run('2026-04-06 10:00+09', '購入後フォロー');
SELECT chain, state, task, due_at, reason FROM taskflow.explain(1, '2026-04-06 11:00+09') WHERE chain = '購入後フォロー';
SELECT chain, entered, applied FROM taskflow.run('2026-04-06 12:00+09', '購入後フォロー');
SELECT m.name, h.task_name, h.iteration, h.event, h.detail ->> 'reason' AS reason, to_char(h.at, 'MM-DD HH24:MI') AS at
  FROM taskflow.history h JOIN taskflow.member m USING (member_id)
 WHERE h.chain_name = '購入後フォロー' AND h.at >= '2026-04-06' ORDER BY h.history_id;
SELECT m.name, t.name AS task, cm.due_at FROM taskflow.chain_member cm
  JOIN taskflow.member m USING (member_id) JOIN taskflow.chain_step s USING (step_id)
  JOIN taskflow.task t USING (task_id)
 WHERE cm.chain_id = 1 ORDER BY cm.member_id;
DROP EXTENSION taskflow CASCADE;

---------------------------------------------------------------- daily chains: criteria as of the slot
CREATE EXTENSION taskflow;
SET taskflow.as_of = '2026-03-31 15:00+09';
SELECT taskflow.save_criteria('有効期限7日前', $$status = 'paid' AND days_until(expires_at) = 7$$);
SELECT taskflow.create_template('期限案内', '{{name}}様 有効期限まであと7日です', 'b', sender_address => 'info@example.jp');
SELECT taskflow.create_task('7日前リマインド', 'auto', criteria => '有効期限7日前', template => '期限案内');
SELECT taskflow.create_chain('期限リマインド', ARRAY['7日前リマインド'], schedule => 'daily at 09:00', time_zone => 'Asia/Tokyo');
SELECT chain, entered FROM taskflow.run('2026-04-01 09:00+09');
-- added at 10:00: 小林 matches now (7 days left) but not at tomorrow's
-- slot (6 days); 中村 does not match now (8 days) but does tomorrow
INSERT INTO taskflow.member (external_id, email, name, status, expires_at) VALUES
	('r1', 'kobayashi@example.jp', '小林直子', 'paid', '2026-04-08 23:59+09'),
	('r2', 'nakamura@example.jp', '中村健', 'paid', '2026-04-09 23:59+09');
SELECT m.name, e.state, e.reason FROM taskflow.member m, taskflow.explain(m.member_id, '2026-04-01 12:00+09') e
 ORDER BY m.member_id;
SELECT to_char(at, 'MM-DD HH24:MI') AS at, member_name, event
  FROM taskflow.preview('2026-04-01 12:00+09', '2026-04-10 00:00+09') ORDER BY at, member_id, event;
-- a slot not run yet (the worker was down at 09:00): explain evaluates
-- the criteria as of the next run, which catches it up
SELECT m.name, e.reason FROM taskflow.member m, taskflow.explain(m.member_id, '2026-04-02 09:30+09') e
 ORDER BY m.member_id;
SELECT chain, entered FROM taskflow.run('2026-04-02 09:30+09');
SELECT m.name, h.event, h.at FROM taskflow.history h JOIN taskflow.member m USING (member_id) ORDER BY h.history_id;
DROP EXTENSION taskflow CASCADE;

---------------------------------------------------------------- missed daily slots
-- A missed slot is caught up once, on its own local day only.  2026-04-03
-- is a Friday.
CREATE EXTENSION taskflow;
SET taskflow.as_of = '2026-04-01 08:00+09';
SELECT taskflow.save_criteria('新規', $$has_tag(tags, '新規')$$);
SELECT taskflow.create_template('w', '平日のご案内 {{name}}様', 'b', sender_address => 'info@example.jp');
SELECT taskflow.create_task('平日案内', 'auto', criteria => '新規', template => 'w', actions => '[{"remove_tag": "新規"}]');
SELECT taskflow.create_chain('平日', ARRAY['平日案内'], schedule => 'daily at 09:00',
	weekdays => ARRAY['月', '火', '水', '木', '金'], time_zone => 'Asia/Tokyo');
SELECT * FROM taskflow.run('2026-04-02 09:00+09');
-- the server is down on Friday; 佐藤 is added meanwhile
INSERT INTO taskflow.member (external_id, email, name, tags) VALUES ('w2', 'sato@example.jp', '佐藤花子', '{新規}');
-- Saturday: Friday's slot is not caught up, the next is Monday's
SELECT chain, state, reason FROM taskflow.explain(1, '2026-04-04 12:00+09');
SELECT * FROM taskflow.run('2026-04-04 12:00+09');
SELECT taskflow.next_wakeup('2026-04-04 12:00+09');
SELECT * FROM taskflow.run('2026-04-06 08:59+09');
SELECT * FROM taskflow.run('2026-04-06 09:00+09');
SELECT to_char(at, 'Dy MM-DD HH24:MI') AS at, event FROM taskflow.history ORDER BY history_id;
SELECT taskflow.drop_chain('平日');

-- a chain of every day: Wednesday's slot ran; Thursday's is missed and is
-- not caught up on Friday morning; Friday's, missed at 09:00, is caught
-- up at 15:00 the same day, once
SELECT taskflow.create_chain('毎日', ARRAY['平日案内'], schedule => 'daily at 09:00', time_zone => 'Asia/Tokyo');
SELECT * FROM taskflow.run('2026-04-08 09:00+09');
INSERT INTO taskflow.member (external_id, email, name, tags) VALUES ('w3', 'ito@example.jp', '伊藤誠', '{新規}');
SELECT chain, state, reason FROM taskflow.explain(2, '2026-04-10 08:00+09');
SELECT * FROM taskflow.run('2026-04-10 08:00+09');
SELECT chain, state, reason FROM taskflow.explain(2, '2026-04-10 15:00+09');
SELECT * FROM taskflow.run('2026-04-10 15:00+09');
SELECT * FROM taskflow.run('2026-04-10 16:00+09');
SELECT name, to_char(h.at, 'Dy MM-DD HH24:MI') AS at, event
  FROM taskflow.history h JOIN taskflow.member m USING (member_id) WHERE chain_name = '毎日' ORDER BY history_id;
SELECT taskflow.drop_chain('毎日');

-- a slot just before midnight, run a minute after it: within the entry
-- interval (5 minutes), so it is still taken
SELECT taskflow.create_chain('深夜', ARRAY['平日案内'], schedule => 'daily at 23:58', time_zone => 'Asia/Tokyo');
INSERT INTO taskflow.member (external_id, email, name, tags) VALUES ('w4', 'kato@example.jp', '加藤恵', '{新規}');
SELECT * FROM taskflow.run('2026-04-11 00:01+09');
-- the next night the run comes 12 minutes after the slot: dropped
INSERT INTO taskflow.member (external_id, email, name, tags) VALUES ('w5', 'saito@example.jp', '斎藤翼', '{新規}');
SELECT * FROM taskflow.run('2026-04-12 00:10+09');
SELECT name, to_char(h.at, 'Dy MM-DD HH24:MI') AS at, event
  FROM taskflow.history h JOIN taskflow.member m USING (member_id) WHERE chain_name = '深夜' ORDER BY history_id;

RESET taskflow.as_of;
DROP EXTENSION taskflow CASCADE;
