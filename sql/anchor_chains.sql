-- Anchor chains (ステップ配信, seed 003): steps at "anchor + N days at HH:MM"
-- where the anchor is a date of each member.  With explicit instants:
-- the CScloud purchase scenario on a custom date property (audience filter,
-- enabled/disabled); joined_at in Asia/Tokyo and in America/New_York across
-- the March 2027 DST change; birthdays every year (across a year end, and
-- on 29 February in 2027 and 2028); expires_at with negative offsets ("3
-- days before expiry") and a removed anchor; last_message_at; the three
-- anchor-change policies; the two activation types; a test chain; bad
-- definitions.
--
-- Everything runs as an application role, and every run names its chain,
-- so the sections do not disturb each other.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
DROP ROLE IF EXISTS anchor_chains_app;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
SET taskflow.as_of = '2027-03-31 09:00+09';
CREATE ROLE anchor_chains_app IN ROLE taskflow_app;
SET ROLE anchor_chains_app;

---------------------------------------------------------------- helpers
-- a template and an automatic task of the same name; the subject says which
CREATE FUNCTION pg_temp.step_task(name text, subject text, actions jsonb DEFAULT '[]',
								  criteria text DEFAULT NULL, channel text DEFAULT 'email')
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM taskflow.create_template(name, subject, '{{name}}様' || E'\n\n' || subject,
									 sender_name => 'スタークス通信', sender_address => 'info@example.jp',
									 channel => channel);
	PERFORM taskflow.create_task(name, 'auto', criteria => criteria, template => name, actions => actions);
END
$$;

-- runs one chain at each instant given; shows the runs that did something
CREATE FUNCTION pg_temp.run_at(chain text, VARIADIC instants timestamptz[])
RETURNS TABLE (run_at text, entered bigint, applied bigint, "left" bigint, errors bigint)
LANGUAGE plpgsql AS $$
DECLARE
	t timestamptz;
BEGIN
	FOREACH t IN ARRAY instants LOOP
		RETURN QUERY
			SELECT to_char(t, 'YYYY-MM-DD HH24:MI'), r.entered, r.applied, r."left", r.errors
			  FROM taskflow.run(t, chain) r
			 WHERE r.entered + r.applied + r.pending + r."left" + r.errors > 0;
	END LOOP;
END
$$;

-- a chain's history, in order (times in Tokyo)
CREATE FUNCTION pg_temp.history(chain text)
RETURNS TABLE (member text, event text, task text, it integer, at text, reason text)
LANGUAGE sql AS $$
	SELECT m.name, h.event, h.task_name, h.iteration, to_char(h.at, 'YYYY-MM-DD HH24:MI'),
		   h.detail ->> 'reason'
	  FROM taskflow.history h JOIN taskflow.member m USING (member_id)
	 WHERE h.chain_name = chain
	 ORDER BY h.at, h.member_id, h.history_id
$$;

-- a chain's messages, in order
CREATE FUNCTION pg_temp.mails(chain text)
RETURNS TABLE (created_at text, recipient text, subject text, it integer, is_test boolean)
LANGUAGE sql AS $$
	SELECT to_char(o.created_at, 'YYYY-MM-DD HH24:MI'), o.recipient, o.subject, o.iteration, o.is_test
	  FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id)
	 WHERE c.name = chain
	 ORDER BY o.created_at, o.member_id, o.outbox_id
$$;

-- where each member of a chain is
CREATE FUNCTION pg_temp.state(chain text)
RETURNS TABLE (member text, state text, task text, it integer, due_at text, anchor_at text)
LANGUAGE sql AS $$
	SELECT m.name, cm.state, t.name, cm.iteration, to_char(cm.due_at, 'YYYY-MM-DD HH24:MI'),
		   to_char(cm.anchor_at, 'YYYY-MM-DD HH24:MI')
	  FROM taskflow.chain_member cm JOIN taskflow.chain c USING (chain_id)
	  JOIN taskflow.member m USING (member_id)
	  LEFT JOIN taskflow.chain_step s ON s.step_id = cm.step_id
	  LEFT JOIN taskflow.task t ON t.task_id = s.task_id
	 WHERE c.name = chain
	 ORDER BY cm.member_id
$$;

---------------------------------------------------------------- CScloud: after a purchase
-- The shop's application sets the custom date property purchased_on when a
-- customer buys.  Audience: customers who receive the newsletter (tag
-- メルマガ).  Day 1 is the purchase day:
--   STEP 1 サンクスメッセージ   right after the purchase ('immediately': at the
--                               next entry check)
--   STEP 2 使い方のコツ         day 2 at 10:00, and tags the customer
--   STEP 3 愛用者の声           day 7 at 10:00
--   STEP 4 おすすめ商品         day 30 at 10:00
-- The chain is enabled on 4/1 at noon (activation 'new': purchases from
-- that day on; a purchase date is a date, so a purchase on 4/1 counts).
SET taskflow.as_of = '2027-04-01 12:00+09';
SELECT taskflow.define_property('purchased_on', 'date', NULL, '購入日');
SELECT taskflow.save_criteria('メルマガ購読者', $$has_tag(tags, 'メルマガ')$$);
SELECT pg_temp.step_task('サンクスメッセージ', '【スタークス通信】ご購入ありがとうございます',
						 criteria => 'メルマガ購読者');
SELECT pg_temp.step_task('使い方のコツ', '【スタークス通信】効果的な使い方のコツ',
						 actions => '[{"add_tag": "使い方案内済"}]');
SELECT pg_temp.step_task('愛用者の声', '【スタークス通信】愛用者の声をお届けします');
SELECT pg_temp.step_task('おすすめ商品', '【スタークス通信】あなたにおすすめの商品');
SELECT taskflow.create_chain('購入後フォロー',
	tasks => ARRAY['サンクスメッセージ', '使い方のコツ', '愛用者の声', 'おすすめ商品'],
	anchor => 'properties.purchased_on',
	offsets => ARRAY['immediately', '1 days at 10:00', '6 days at 10:00', '29 days at 10:00'],
	time_zone => 'Asia/Tokyo');
SELECT name, schedule, anchor, anchor_yearly, anchor_change, activation, time_zone, enabled_at
  FROM taskflow.chain WHERE name = '購入後フォロー';
SELECT s.position, t.name AS task, s.wait_kind, s.wait_days, s.wait_at
  FROM taskflow.chain_step s JOIN taskflow.chain c USING (chain_id) JOIN taskflow.task t USING (task_id)
 WHERE c.name = '購入後フォロー' ORDER BY s.position;

-- 三崎 and 石田 read the newsletter; 前田 does not; 森 bought before the
-- chain was enabled (activation 'new': she does not enter)
INSERT INTO taskflow.member (external_id, email, name, tags, properties) VALUES
	('cs-1', 'misaki@example.jp', '三崎綾', '{メルマガ}', '{}'),
	('cs-2', 'ishida@example.jp', '石田大輔', '{メルマガ}', '{}'),
	('cs-3', 'maeda@example.jp', '前田美穂', '{}', '{}'),
	('cs-4', 'mori@example.jp', '森なつみ', '{メルマガ}', '{"purchased_on": "2027-03-20"}');
-- 4/1 15:00 三崎 buys; the entry check a few minutes later sends the thanks
SELECT * FROM pg_temp.run_at('購入後フォロー', '2027-04-01 14:55+09');
UPDATE taskflow.member SET properties = properties || '{"purchased_on": "2027-04-01"}' WHERE external_id = 'cs-1';
SELECT * FROM pg_temp.run_at('購入後フォロー', '2027-04-01 15:05+09');
SELECT * FROM pg_temp.state('購入後フォロー');
SELECT chain, state, task, due_at, reason FROM taskflow.explain(1, '2027-04-01 15:05+09');
-- 4/2 09:59 nothing yet; 10:00 the tips, and the tag
SELECT * FROM pg_temp.run_at('購入後フォロー', '2027-04-02 09:59+09', '2027-04-02 10:00+09');
SELECT name, tags FROM taskflow.member WHERE external_id = 'cs-1';
-- 4/3 前田 and 石田 buy; 前田 is not in the audience
UPDATE taskflow.member SET properties = properties || '{"purchased_on": "2027-04-03"}'
 WHERE external_id IN ('cs-2', 'cs-3');
SELECT * FROM pg_temp.run_at('購入後フォロー', '2027-04-03 20:00+09', '2027-04-04 10:00+09');
-- the chain is disabled for a few days: 三崎's day 7 (4/7 10:00) waits,
-- and is sent when the chain is enabled again on 4/8
SELECT taskflow.disable_chain('購入後フォロー');
SELECT * FROM pg_temp.run_at('購入後フォロー', '2027-04-07 10:00+09', '2027-04-08 09:00+09');
SELECT chain, state, task, due_at, reason FROM taskflow.explain(1, '2027-04-08 09:00+09');
SET taskflow.as_of = '2027-04-08 11:30+09';
SELECT taskflow.enable_chain('購入後フォロー');
SELECT * FROM pg_temp.run_at('購入後フォロー', '2027-04-08 11:35+09', '2027-04-09 10:00+09',
							 '2027-04-30 10:00+09', '2027-05-02 10:00+09', '2027-05-03 10:00+09');
SELECT * FROM pg_temp.history('購入後フォロー');
SELECT * FROM pg_temp.mails('購入後フォロー');
SELECT * FROM pg_temp.state('購入後フォロー');
-- finished members enter again when they buy again; 森's purchase is
-- before the chain took new members (since it was enabled again on 4/8)
SELECT m.name, e.state, e.reason
  FROM taskflow.member m, LATERAL taskflow.explain(m.member_id, '2027-05-03 12:00+09') e
 WHERE m.external_id LIKE 'cs-%' AND e.chain = '購入後フォロー' ORDER BY m.member_id;

-- 三崎 buys again on 5/10: the anchor changed, and the chain restarts
-- (anchor_change 'restart', the default) from the thanks, as iteration 2
UPDATE taskflow.member SET properties = properties || '{"purchased_on": "2027-05-10"}' WHERE external_id = 'cs-1';
SELECT * FROM pg_temp.run_at('購入後フォロー', '2027-05-10 12:00+09', '2027-05-11 10:00+09');
SELECT * FROM pg_temp.history('購入後フォロー') WHERE at >= '2027-05-10';
SELECT * FROM pg_temp.state('購入後フォロー');

---------------------------------------------------------------- joined_at, in Tokyo and in New York
-- The same welcome sequence in two zones: at sign-up, the next day at 02:30
-- and at 09:00 local time, and two days later at the time of the sign-up
-- ('2 days': the anchor's own time of day).  Both members sign up on
-- Saturday 2027-03-13 at 10:00 local time; New York moves its clocks from
-- 02:00 EST to 03:00 EDT on Sunday 3/14, so there 02:30 does not exist
-- (the step runs at 03:30 EDT) and "2 days later at 10:00" is 47 hours
-- after the sign-up.  Tokyo has no DST: 48 hours.
SET taskflow.as_of = '2027-03-01 09:00+09';
SELECT taskflow.save_criteria('東京の会員', $$has_tag(tags, '東京')$$);
SELECT taskflow.save_criteria('NYの会員', $$has_tag(tags, 'NY')$$);
SELECT pg_temp.step_task('ようこそ（東京）', 'ようこそ', criteria => '東京の会員');
SELECT pg_temp.step_task('ようこそ（NY）', 'Welcome', criteria => 'NYの会員');
SELECT pg_temp.step_task('深夜のお知らせ', '深夜のお知らせ');
SELECT pg_temp.step_task('朝のご案内', '朝のご案内');
SELECT pg_temp.step_task('2日後のご案内', '2日後のご案内');
SELECT taskflow.create_chain('入会ステップ（東京）',
	tasks => ARRAY['ようこそ（東京）', '深夜のお知らせ', '朝のご案内', '2日後のご案内'],
	anchor => 'joined_at', offsets => ARRAY['immediately', '1 days at 02:30', '1 days at 09:00', '2 days'],
	time_zone => 'Asia/Tokyo');
SELECT taskflow.create_chain('入会ステップ（NY）',
	tasks => ARRAY['ようこそ（NY）', '深夜のお知らせ', '朝のご案内', '2日後のご案内'],
	anchor => 'joined_at', offsets => ARRAY['immediately', '1 days at 02:30', '1 days at 09:00', '2 days'],
	time_zone => 'America/New_York');
INSERT INTO taskflow.member (external_id, email, name, tags, joined_at) VALUES
	('tz-1', 'yamaguchi@example.jp', '山口健二', '{東京}', '2027-03-13 10:00 Asia/Tokyo'),
	('tz-2', 'smith@example.com', 'John Smith', '{NY}', '2027-03-13 10:00 America/New_York');
SELECT * FROM pg_temp.run_at('入会ステップ（東京）', '2027-03-13 10:05 Asia/Tokyo', '2027-03-14 02:29 Asia/Tokyo',
							 '2027-03-14 02:30 Asia/Tokyo', '2027-03-14 09:00 Asia/Tokyo',
							 '2027-03-15 09:59 Asia/Tokyo', '2027-03-15 10:00 Asia/Tokyo');
-- 01:59 EST is the last minute before the change; 03:30 EDT is 1h31m later
SELECT * FROM pg_temp.run_at('入会ステップ（NY）', '2027-03-13 10:05 America/New_York',
							 '2027-03-14 01:59 America/New_York', '2027-03-14 03:30 America/New_York',
							 '2027-03-14 09:00 America/New_York', '2027-03-15 09:59 America/New_York',
							 '2027-03-15 10:00 America/New_York');
-- each step in the chain's local time, in UTC, and the hours since the sign-up
SELECT c.name AS chain, h.event, h.task_name AS task,
	   to_char(h.at AT TIME ZONE c.time_zone, 'MM-DD HH24:MI') AS local_time,
	   to_char(h.at AT TIME ZONE 'UTC', 'MM-DD HH24:MI') AS utc,
	   (extract(epoch FROM h.at - m.joined_at) / 3600)::numeric(6, 2) AS hours_after_signup
  FROM taskflow.history h JOIN taskflow.chain c USING (chain_id) JOIN taskflow.member m USING (member_id)
 WHERE c.name LIKE '入会ステップ%'
 ORDER BY c.name, h.history_id;
SELECT o.recipient, o.subject, to_char(o.created_at AT TIME ZONE o.time_zone, 'MM-DD HH24:MI') AS local_time, o.time_zone
  FROM taskflow.outbox o JOIN taskflow.member m USING (member_id)
 WHERE m.external_id LIKE 'tz-%' ORDER BY o.member_id, o.outbox_id;

---------------------------------------------------------------- birthday, every year
-- A yearly chain on the birthday: a coupon notice 3 days before, the
-- greeting on the day, a reminder that the coupon expires 3 days after, at
-- 09:00 Tokyo time.  A birthday on 31 December runs across the year end;
-- one on 29 February falls on 28 February in common years (2027) and on
-- 29 February in leap years (2028).  Created on 2026-12-01: 岡田, whose
-- birthday is 12/02, enters at the greeting (the notice of 11/29 is past).
SET taskflow.as_of = '2026-12-01 09:00+09';
SELECT pg_temp.step_task('誕生日クーポン予告', '{{name}}様、もうすぐお誕生日です');
SELECT pg_temp.step_task('誕生日おめでとう', '{{name}}様、お誕生日おめでとうございます',
						 actions => '[{"add_tag": "誕生日祝い済"}]');
SELECT pg_temp.step_task('クーポン期限', '{{name}}様、誕生日クーポンの期限が近づいています');
SELECT taskflow.create_chain('誕生日', tasks => ARRAY['誕生日クーポン予告', '誕生日おめでとう', 'クーポン期限'],
	anchor => 'birthday', yearly => true,
	offsets => ARRAY['-3 days at 09:00', '0 days at 09:00', '3 days at 09:00'], time_zone => 'Asia/Tokyo');
INSERT INTO taskflow.member (external_id, email, name, birthday) VALUES
	('bd-1', 'oomisoka@example.jp', '大野晦', '1990-12-31'),
	('bd-2', 'uruu@example.jp', '瓜生閏', '2000-02-29'),
	('bd-3', 'okada@example.jp', '岡田誠', '1975-12-02'),
	('bd-4', 'nobd@example.jp', '野村未登録', NULL);
SELECT * FROM pg_temp.run_at('誕生日', '2026-12-01 09:05+09');
SELECT * FROM pg_temp.state('誕生日');
SELECT * FROM pg_temp.run_at('誕生日', '2026-12-02 09:00+09', '2026-12-05 09:00+09',
							 '2026-12-28 09:00+09', '2026-12-31 09:00+09', '2027-01-03 09:00+09');
SELECT * FROM pg_temp.state('誕生日');
-- 2027 is a common year: 瓜生's birthday is kept on 2/28 (not 3/1)
SELECT * FROM pg_temp.run_at('誕生日', '2027-02-25 09:00+09', '2027-02-28 09:00+09',
							 '2027-03-01 09:00+09', '2027-03-03 09:00+09');
SELECT * FROM pg_temp.state('誕生日');
-- the next year, and 2028 is a leap year: 2/29
SELECT * FROM pg_temp.run_at('誕生日', '2027-11-29 09:00+09', '2027-12-02 09:00+09', '2027-12-05 09:00+09',
							 '2027-12-28 09:00+09', '2027-12-31 09:00+09', '2028-01-03 09:00+09',
							 '2028-02-26 09:00+09', '2028-02-28 09:00+09', '2028-02-29 09:00+09',
							 '2028-03-03 09:00+09');
SELECT * FROM pg_temp.history('誕生日');
SELECT * FROM pg_temp.mails('誕生日');
SELECT * FROM pg_temp.state('誕生日');
SELECT m.name, e.state, e.task, e.due_at, e.reason
  FROM taskflow.member m, LATERAL taskflow.explain(m.member_id, '2028-03-04 12:00+09') e
 WHERE m.external_id LIKE 'bd-%' AND e.chain = '誕生日' ORDER BY m.member_id;

---------------------------------------------------------------- expires_at: before the expiry
-- Negative offsets: 7 days and 3 days before the membership expires, and
-- the day after it expired, at 09:00.  A renewal moves the expiry and the
-- chain restarts on the new date; a member whose expiry is removed (a
-- lifetime membership) leaves.  activation 'existing': members who are
-- already members enter too.
SET taskflow.as_of = '2027-04-01 09:00+09';
SELECT taskflow.define_status('expired', '有効期限切れ');
SELECT taskflow.save_criteria('有料会員', $$status = 'paid'$$);
SELECT pg_temp.step_task('期限7日前', '{{name}}様、有効期限（{{expires_at}}）の7日前です', criteria => '有料会員');
SELECT pg_temp.step_task('期限3日前', '{{name}}様、有効期限（{{expires_at}}）まであと3日です');
SELECT pg_temp.step_task('期限切れ', '{{name}}様、有効期限が切れました', actions => '[{"set": "status", "to": "expired"}]');
SELECT taskflow.create_chain('期限前のご案内', tasks => ARRAY['期限7日前', '期限3日前', '期限切れ'],
	anchor => 'expires_at', offsets => ARRAY['-7 days at 09:00', '-3 days at 09:00', '1 days at 09:00'],
	activation => 'existing', time_zone => 'Asia/Tokyo');
INSERT INTO taskflow.member (external_id, email, name, status, expires_at) VALUES
	('ex-1', 'takahashi@example.jp', '高橋美咲', 'paid', '2027-04-20 23:59+09'),
	('ex-2', 'nakamura@example.jp', '中村翔', 'paid', '2027-04-20 23:59+09'),
	('ex-3', 'kobayashi@example.jp', '小林直子', 'paid', '2027-04-25 23:59+09'),
	('ex-4', 'kato@example.jp', '加藤恵', 'trial', '2027-04-20 23:59+09'),
	('ex-5', 'endo@example.jp', '遠藤無期限', 'paid', 'infinity');
-- (遠藤's membership never expires: 'infinity' is no anchor, she never enters)
SELECT * FROM pg_temp.run_at('期限前のご案内', '2027-04-01 09:05+09', '2027-04-13 09:00+09', '2027-04-17 09:00+09');
-- 4/18 中村 renews for a month; 4/19 小林's membership becomes lifelong
UPDATE taskflow.member SET expires_at = '2027-05-20 23:59+09' WHERE external_id = 'ex-2';
SELECT * FROM pg_temp.run_at('期限前のご案内', '2027-04-18 12:00+09');
UPDATE taskflow.member SET expires_at = NULL WHERE external_id = 'ex-3';
SELECT * FROM pg_temp.run_at('期限前のご案内', '2027-04-19 12:00+09', '2027-04-21 09:00+09',
							 '2027-05-13 09:00+09', '2027-05-17 09:00+09', '2027-05-21 09:00+09');
SELECT * FROM pg_temp.history('期限前のご案内');
SELECT * FROM pg_temp.mails('期限前のご案内');
SELECT name, status, expires_at FROM taskflow.member WHERE external_id LIKE 'ex-%' ORDER BY member_id;

---------------------------------------------------------------- last_message_at
-- "From the last message received, 3 days later": a nudge 3 and 7 days
-- after the member's last message.  Each new message restarts it.
SET taskflow.as_of = '2027-04-01 09:00+09';
SELECT pg_temp.step_task('ご無沙汰1', '{{name}}様、その後いかがですか');
SELECT pg_temp.step_task('ご無沙汰2', '{{name}}様、お役立ち情報をお届けします');
SELECT taskflow.create_chain('最終受信フォロー', tasks => ARRAY['ご無沙汰1', 'ご無沙汰2'],
	anchor => 'last_message_at', offsets => ARRAY['3 days at 10:00', '7 days at 10:00'],
	time_zone => 'Asia/Tokyo');
INSERT INTO taskflow.member (external_id, email, name, last_message_at) VALUES
	('lm-1', 'fujita@example.jp', '藤田和也', NULL);
UPDATE taskflow.member SET last_message_at = '2027-04-01 13:00+09' WHERE external_id = 'lm-1';
SELECT * FROM pg_temp.run_at('最終受信フォロー', '2027-04-01 13:05+09', '2027-04-04 10:00+09');
UPDATE taskflow.member SET last_message_at = '2027-04-06 20:00+09' WHERE external_id = 'lm-1';
SELECT * FROM pg_temp.run_at('最終受信フォロー', '2027-04-06 20:05+09', '2027-04-08 10:00+09',
							 '2027-04-09 10:00+09', '2027-04-13 10:00+09');
SELECT * FROM pg_temp.history('最終受信フォロー');

---------------------------------------------------------------- when the anchor changes
-- Three chains on the same seminar date (a custom date property), one per
-- policy: the invitation 3 days before at 09:00, a reminder the evening
-- before at 18:00, thanks the day after at 10:00.  Changes are noticed at
-- the entry checks (every entry interval, here at each run).
--   西村: the seminar of 4/20 is moved to 4/27 on 4/18, after the invitation
--   南:   on 4/18 his date is corrected from 4/20 to 4/16 (already past)
--   東:   her seminar of 4/20 is cancelled on 4/18 (the date removed)
--   北川: finishes the chains for the seminar of 4/13, then on 4/20 books
--         another one on 5/11
CREATE FUNCTION pg_temp.run_all_at(chains text[], VARIADIC instants timestamptz[])
RETURNS TABLE (run_at text, chain text, entered bigint, applied bigint, "left" bigint, errors bigint)
LANGUAGE plpgsql AS $$
DECLARE
	t timestamptz;
	c text;
BEGIN
	FOREACH t IN ARRAY instants LOOP
		FOREACH c IN ARRAY chains LOOP
			RETURN QUERY
				SELECT to_char(t, 'YYYY-MM-DD HH24:MI'), c, r.entered, r.applied, r."left", r.errors
				  FROM taskflow.run(t, c) r
				 WHERE r.entered + r.applied + r.pending + r."left" + r.errors > 0;
		END LOOP;
	END LOOP;
END
$$;
SET taskflow.as_of = '2027-04-01 09:00+09';
SELECT taskflow.define_property('seminar_on', 'date', NULL, 'セミナー参加日');
SELECT pg_temp.step_task('セミナー案内', '{{name}}様、セミナーのご案内（{{properties.seminar_on}}）');
SELECT pg_temp.step_task('前日リマインド', '{{name}}様、明日はセミナーです（{{properties.seminar_on}}）');
SELECT pg_temp.step_task('参加お礼', '{{name}}様、ご参加ありがとうございました');
SELECT taskflow.create_chain('セミナー（' || p || '）', tasks => ARRAY['セミナー案内', '前日リマインド', '参加お礼'],
	anchor => 'properties.seminar_on', anchor_change => p,
	offsets => ARRAY['-3 days at 09:00', '-1 days at 18:00', '1 days at 10:00'], time_zone => 'Asia/Tokyo')
  FROM unnest(ARRAY['restart', 'follow', 'ignore']) p;
SELECT name, anchor, anchor_change FROM taskflow.chain WHERE name LIKE 'セミナー%' ORDER BY chain_id;
INSERT INTO taskflow.member (external_id, email, name, properties) VALUES
	('sem-1', 'nishimura@example.jp', '西村拓也', '{"seminar_on": "2027-04-20"}'),
	('sem-2', 'azuma@example.jp', '東優子', '{"seminar_on": "2027-04-20"}'),
	('sem-4', 'minami@example.jp', '南健太', '{"seminar_on": "2027-04-20"}'),
	('sem-3', 'kitagawa@example.jp', '北川修', '{"seminar_on": "2027-04-13"}');
SELECT * FROM pg_temp.run_all_at(ARRAY['セミナー（restart）', 'セミナー（follow）', 'セミナー（ignore）'],
	'2027-04-01 09:05+09', '2027-04-10 09:00+09', '2027-04-12 18:00+09', '2027-04-14 10:00+09',
	'2027-04-17 09:00+09');
-- 4/18 10:00: 西村's seminar moves to 4/27, 南's date is corrected, 東's
-- seminar is cancelled.  restart: 西村 starts again from the invitation
-- for 4/27; 南 has no step left for 4/16 and leaves.  follow: 西村 keeps
-- waiting for the reminder, now on 4/26; 南's reminder and thanks, now
-- due on 4/15 and 4/17, run at once.  ignore: both go on as before.  東
-- leaves all three chains.
UPDATE taskflow.member SET properties = properties || '{"seminar_on": "2027-04-27"}' WHERE external_id = 'sem-1';
UPDATE taskflow.member SET properties = properties || '{"seminar_on": "2027-04-16"}' WHERE external_id = 'sem-4';
UPDATE taskflow.member SET properties = properties - 'seminar_on' WHERE external_id = 'sem-2';
SELECT * FROM pg_temp.run_all_at(ARRAY['セミナー（restart）', 'セミナー（follow）', 'セミナー（ignore）'],
	'2027-04-18 12:00+09');
SELECT c.name AS chain, s.* FROM unnest(ARRAY['セミナー（restart）', 'セミナー（follow）', 'セミナー（ignore）']) c(name),
	   LATERAL pg_temp.state(c.name) s;
SELECT * FROM pg_temp.run_all_at(ARRAY['セミナー（restart）', 'セミナー（follow）', 'セミナー（ignore）'],
	'2027-04-19 18:00+09');
-- 4/20: 北川 books the seminar of 5/11: only the restart chain takes him
-- again, as iteration 2
UPDATE taskflow.member SET properties = properties || '{"seminar_on": "2027-05-11"}' WHERE external_id = 'sem-3';
SELECT * FROM pg_temp.run_all_at(ARRAY['セミナー（restart）', 'セミナー（follow）', 'セミナー（ignore）'],
	'2027-04-20 12:00+09', '2027-04-21 10:00+09', '2027-04-24 09:00+09',
	'2027-04-26 18:00+09', '2027-04-28 10:00+09', '2027-05-08 09:00+09', '2027-05-10 18:00+09',
	'2027-05-12 10:00+09');
SELECT * FROM pg_temp.history('セミナー（restart）');
SELECT * FROM pg_temp.history('セミナー（follow）');
SELECT * FROM pg_temp.history('セミナー（ignore）');
SELECT c.name AS chain, o.recipient, o.subject, o.iteration, to_char(o.created_at, 'MM-DD HH24:MI') AS at
  FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id)
 WHERE c.name LIKE 'セミナー%' ORDER BY c.chain_id, o.member_id, o.outbox_id;
SELECT m.name, e.chain, e.state, e.reason
  FROM taskflow.member m, LATERAL taskflow.explain(m.member_id, '2027-05-12 12:00+09') e
 WHERE m.external_id LIKE 'sem-%' AND e.chain LIKE 'セミナー%' ORDER BY m.member_id, e.chain;

---------------------------------------------------------------- activation: new or existing
-- Two chains on joined_at, created on 4/10 at 12:00: at sign-up, 2, 5 and
-- 10 days later at 10:00.  'new' takes only members who sign up after
-- that; 'existing' takes the members already there too, each at the first
-- step due that day or later — older steps are skipped, not sent at once.
--   小松 3/30 13:00: every step is past         -> in neither
--   今井 4/1:  the step of 4/11 is still ahead  -> existing: day 10 only
--   上田 4/9:  steps of 4/11, 4/14, 4/19 ahead  -> existing: from day 2
--   平野 4/10 09:00, the morning of the day     -> existing: the welcome at 12:05
--   松田 4/10 13:00, after the chain was created -> both
SET taskflow.as_of = '2027-04-10 12:00+09';
SELECT taskflow.save_criteria('お試し会員', $$has_tag(tags, 'お試し')$$);
SELECT pg_temp.step_task('お試し開始', '{{name}}様、お試しへようこそ', criteria => 'お試し会員');
SELECT pg_temp.step_task('お試し2日後', '{{name}}様、使ってみていかがですか');
SELECT pg_temp.step_task('お試し5日後', '{{name}}様、便利な機能のご紹介');
SELECT pg_temp.step_task('お試し10日後', '{{name}}様、本登録のご案内');
SELECT taskflow.create_chain('お試し（' || a || '）',
	tasks => ARRAY['お試し開始', 'お試し2日後', 'お試し5日後', 'お試し10日後'],
	anchor => 'joined_at', activation => a,
	offsets => ARRAY['immediately', '2 days at 10:00', '5 days at 10:00', '10 days at 10:00'], time_zone => 'Asia/Tokyo')
  FROM unnest(ARRAY['new', 'existing']) a;
INSERT INTO taskflow.member (external_id, email, name, tags, joined_at) VALUES
	('act-1', 'komatsu@example.jp', '小松茂', '{お試し}', '2027-03-30 13:00+09'),
	('act-2', 'imai@example.jp', '今井涼子', '{お試し}', '2027-04-01 10:00+09'),
	('act-3', 'ueda@example.jp', '上田陽介', '{お試し}', '2027-04-09 10:00+09'),
	('act-4', 'hirano@example.jp', '平野舞', '{お試し}', '2027-04-10 09:00+09');
SELECT * FROM pg_temp.run_all_at(ARRAY['お試し（new）', 'お試し（existing）'], '2027-04-10 12:05+09');
INSERT INTO taskflow.member (external_id, email, name, tags, joined_at) VALUES
	('act-5', 'matsuda@example.jp', '松田光', '{お試し}', '2027-04-10 13:00+09');
SELECT * FROM pg_temp.run_all_at(ARRAY['お試し（new）', 'お試し（existing）'],
	'2027-04-10 13:05+09', '2027-04-11 10:00+09', '2027-04-12 10:00+09', '2027-04-14 10:00+09',
	'2027-04-15 10:00+09', '2027-04-19 10:00+09', '2027-04-20 10:00+09');
SELECT * FROM pg_temp.history('お試し（new）');
SELECT * FROM pg_temp.history('お試し（existing）');
SELECT m.name, e.chain, e.state, e.reason
  FROM taskflow.member m, LATERAL taskflow.explain(m.member_id, '2027-04-20 12:00+09') e
 WHERE m.external_id LIKE 'act-%' AND e.chain LIKE 'お試し%' ORDER BY m.member_id, e.chain;

---------------------------------------------------------------- a test chain
-- The test channel: a chain marked test => true sends its messages to the
-- channel's test recipients instead of the members.  Created disabled: it
-- does nothing until it is enabled, and with activation 'new' it takes the
-- members who sign up after that (吉田 signed up while it was disabled).
RESET ROLE;
SELECT taskflow.configure_channel('mail_test', url => 'smtp://relay.example.jp',
	test_recipients => ARRAY['qa@example.jp']);
SET ROLE anchor_chains_app;
SET taskflow.as_of = '2027-06-01 09:00+09';
SELECT taskflow.save_criteria('検証対象', $$has_tag(tags, '検証')$$);
SELECT pg_temp.step_task('検証ようこそ', '{{name}}様、ようこそ（検証）', criteria => '検証対象', channel => 'mail_test');
SELECT pg_temp.step_task('検証翌日', '{{name}}様、2日目のご案内（検証）', channel => 'mail_test');
SELECT taskflow.create_chain('入会ステップ（検証）', tasks => ARRAY['検証ようこそ', '検証翌日'],
	anchor => 'joined_at', offsets => ARRAY['immediately', '1 days at 10:00'], time_zone => 'Asia/Tokyo',
	test => true, enabled => false);
INSERT INTO taskflow.member (external_id, email, name, tags, joined_at) VALUES
	('qa-1', 'yoshida@example.jp', '吉田京子', '{検証}', '2027-06-01 10:00+09');
SELECT * FROM pg_temp.run_at('入会ステップ（検証）', '2027-06-01 10:05+09');
SET taskflow.as_of = '2027-06-01 10:30+09';
SELECT taskflow.enable_chain('入会ステップ（検証）');
INSERT INTO taskflow.member (external_id, email, name, tags, joined_at) VALUES
	('qa-2', 'inoue@example.jp', '井上翼', '{検証}', '2027-06-01 11:00+09');
SELECT * FROM pg_temp.run_at('入会ステップ（検証）', '2027-06-01 11:05+09', '2027-06-02 10:00+09');
SELECT * FROM pg_temp.history('入会ステップ（検証）');
SELECT * FROM pg_temp.mails('入会ステップ（検証）');
RESET ROLE;
SELECT outbox_id, recipient, original_recipient, subject, is_test
  FROM taskflow.claim_messages('mail_test', 'w1', 10, as_of => '2027-06-02 10:00+09') ORDER BY outbox_id;
SET ROLE anchor_chains_app;

---------------------------------------------------------------- bad definitions
SELECT taskflow.define_property('plan', 'text', NULL, 'プラン');
SELECT taskflow.create_chain('x', ARRAY['セミナー案内'], anchor => 'purchase_date', offsets => ARRAY['1 days']);
SELECT taskflow.create_chain('x', ARRAY['セミナー案内'], anchor => 'properties.plan', offsets => ARRAY['1 days']);
SELECT taskflow.create_chain('x', ARRAY['セミナー案内'], anchor => 'properties.nothing', offsets => ARRAY['1 days']);
SELECT taskflow.create_chain('x', ARRAY['セミナー案内', '参加お礼'], anchor => 'birthday', offsets => ARRAY['1 days']);
SELECT taskflow.create_chain('x', ARRAY['セミナー案内', '参加お礼'], anchor => 'birthday',
	offsets => ARRAY['2 days at 09:00', '1 days at 10:00']);
SELECT taskflow.create_chain('x', ARRAY['セミナー案内'], anchor => 'birthday', offsets => ARRAY['3 weeks']);
SELECT taskflow.create_chain('x', ARRAY['セミナー案内'], anchor => 'birthday', offsets => ARRAY['1 days at 24:00']);
SELECT taskflow.create_chain('x', ARRAY['セミナー案内'], anchor => 'birthday', offsets => ARRAY[NULL]);
SELECT taskflow.create_chain('x', ARRAY['セミナー案内'], anchor => 'birthday', offsets => ARRAY['1 days'],
	schedule => 'daily at 09:00');
SELECT taskflow.create_chain('x', ARRAY['セミナー案内'], anchor => 'birthday', offsets => ARRAY['1 days'],
	repeat => true, repeat_wait => '1 days at 09:00');
SELECT taskflow.create_chain('x', ARRAY['セミナー案内'], anchor => 'birthday', waits => ARRAY[NULL]);
SELECT taskflow.create_chain('x', ARRAY['セミナー案内'], offsets => ARRAY['1 days']);
SELECT taskflow.create_chain('x', ARRAY['セミナー案内'], yearly => true);
SELECT taskflow.create_chain('x', ARRAY['セミナー案内'], anchor => 'birthday', offsets => ARRAY['1 days'],
	anchor_change => 'reset');
SELECT taskflow.create_chain('x', ARRAY['セミナー案内'], anchor => 'birthday', offsets => ARRAY['1 days'],
	activation => 'all');
-- a step added to an anchor chain takes an offset, in time order
SELECT taskflow.add_step('誕生日', '参加お礼', '-5 days at 09:00', 3);
SELECT taskflow.add_step('誕生日', '参加お礼', '5 days at 09:00', 2);
SELECT count(*) AS chains_named_x FROM taskflow.chain WHERE name = 'x';

---------------------------------------------------------------- clean up
RESET ROLE;
RESET taskflow.as_of;
DROP FUNCTION pg_temp.step_task(text, text, jsonb, text, text), pg_temp.run_at(text, timestamptz[]),
	pg_temp.run_all_at(text[], timestamptz[]), pg_temp.history(text), pg_temp.mails(text), pg_temp.state(text);
DROP EXTENSION taskflow CASCADE;
DROP ROLE anchor_chains_app;
