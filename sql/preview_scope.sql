-- A preview of a few members (member_ids, or a hypothetical member)
-- simulates only them when nothing in the chains previewed can make one
-- member's timeline depend on another's: every criteria reads only its
-- member's own data (its row, the clock, its groups, events and payments),
-- no task has an "sql" action and no later task waits for its criteria
-- (src/preview_scope.c).  Otherwise it
-- simulates everyone.  Either way the rows shown are exactly those of the
-- whole preview for those members.  How much was simulated is read from
-- the history rows the (rolled back) simulation inserted.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
SET taskflow.as_of = '2027-03-31 12:00+09';

-- a task with its template, and its criteria (an expression) saved under its name
CREATE FUNCTION pg_temp.task(name text, subject text, criteria text DEFAULT NULL,
							 actions jsonb DEFAULT '[]')
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM taskflow.create_template(name, subject, '{{name}}様' || E'\n\n' || subject,
									 sender_name => '会員サイト事務局', sender_address => 'info@example.jp');
	IF criteria IS NOT NULL THEN
		PERFORM taskflow.save_criteria(name, criteria);
	END IF;
	PERFORM taskflow.create_task(name, 'auto', criteria => CASE WHEN criteria IS NOT NULL THEN name END,
								 template => name, actions => actions);
END
$$;

-- Previews April and May for the members given (NULL: everyone), or for
-- a hypothetical member; returns the rows shown and the history rows the
-- simulation wrote (for everyone it simulated).
CREATE FUNCTION pg_temp.previewed(members bigint[], hypothetical jsonb DEFAULT NULL,
								  OUT shown bigint, OUT simulated bigint)
LANGUAGE plpgsql AS $$
DECLARE
	before bigint := (SELECT n_tup_ins FROM pg_stat_xact_user_tables
					   WHERE relid = 'taskflow.history'::regclass);
BEGIN
	DROP TABLE IF EXISTS previewed;
	CREATE TEMP TABLE previewed AS
		SELECT * FROM taskflow.preview('2027-04-01 00:00+09', '2027-06-01 00:00+09',
									   member_ids => members, hypothetical => hypothetical);
	shown := (SELECT count(*) FROM previewed);
	simulated := (SELECT n_tup_ins FROM pg_stat_xact_user_tables
				   WHERE relid = 'taskflow.history'::regclass) - before;
END
$$;

-- the rows of the whole preview, for the members given, that differ from
-- previewed's, both ways
CREATE FUNCTION pg_temp.differences(members bigint[]) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
	RETURN (WITH everyone AS (
				SELECT * FROM taskflow.preview('2027-04-01 00:00+09', '2027-06-01 00:00+09')
				 WHERE member_id = ANY (members) OR member_id IS NULL)
			SELECT count(*) FROM ((TABLE everyone EXCEPT ALL TABLE previewed)
								  UNION ALL (TABLE previewed EXCEPT ALL TABLE everyone)) d);
END
$$;

-- 30 members: trial and paid, joined over March, birthdays over the year;
-- the paid ones in the online salon
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, birthday, tags)
SELECT 's-' || i, 'member' || i || '@example.jp',
	   (ARRAY['山田', '佐藤', '鈴木', '高橋', '田中', '伊藤'])[1 + i % 6]
		 || (ARRAY['花子', '太郎', '陽子', '一郎', '美咲'])[1 + i % 5],
	   CASE WHEN i % 3 = 0 THEN 'paid' ELSE 'trial' END,
	   timestamptz '2027-03-01 10:00+09' + (i || ' days')::interval,
	   date '1990-04-03' + i * 11, '{}'
  FROM generate_series(1, 30) i;
SELECT taskflow.create_group('オンラインサロン');
SELECT count(taskflow.join_group(member_id, 'オンラインサロン'))
  FROM taskflow.member WHERE status = 'paid';
SELECT taskflow.define_event_kind('login');
SELECT count(taskflow.record_event(member_id, 'login', occurred_at => '2027-03-30 20:00+09'))
  FROM taskflow.member WHERE member_id % 4 = 0;

-- 1. chains that read only each member's own data: a trial follow-up
--    (its group, its events, the clock) whose action puts the member in the
--    salon, and a birthday mail
SELECT pg_temp.task('体験フォロー', '{{name}}様、体験はいかがですか',
	$$status = 'trial' AND days_since(joined_at) >= 14 AND NOT in_group(member_id, 'オンラインサロン')
	  AND event_count(member_id, 'login', '30 days') = 0$$,
	'[{"join_group": "オンラインサロン"}, {"add_tag": "体験フォロー済"}]');
SELECT pg_temp.task('サロン案内', '{{name}}様、オンラインサロンのご案内', $$in_group(member_id, 'オンラインサロン')$$);
SELECT taskflow.create_chain('体験フォロー', ARRAY['体験フォロー', 'サロン案内'], ARRAY[NULL, '3 days at 10:00'],
	schedule => 'daily at 09:00', time_zone => 'Asia/Tokyo');
SELECT pg_temp.task('お誕生日', '{{name}}様、お誕生日おめでとうございます');
SELECT taskflow.create_chain('誕生日', ARRAY['お誕生日'], anchor => 'birthday', yearly => true,
	offsets => ARRAY['0 days at 09:00'], activation => 'existing', time_zone => 'Asia/Tokyo');

-- two members: only they are simulated, and they see what the whole
-- preview shows them
SELECT shown, simulated, shown = simulated AS only_them FROM pg_temp.previewed(ARRAY[4, 5]::bigint[]);
SELECT pg_temp.differences(ARRAY[4, 5]::bigint[]) AS differences;
SELECT to_char(at, 'MM-DD HH24:MI') AS at, chain, member_name, task, event, subject
  FROM previewed ORDER BY at, member_id, event;
-- everyone, for comparison
SELECT shown, simulated, shown = simulated AS all_shown FROM pg_temp.previewed(NULL);
-- a hypothetical member: only it is simulated
SELECT shown, simulated, shown = simulated AS only_it
  FROM pg_temp.previewed(NULL, '{"name": "見込み客", "status": "trial", "birthday": "1985-05-10", "joined_at": "2027-03-20 10:00+09"}');
SELECT to_char(at, 'MM-DD HH24:MI') AS at, chain, member_name, task, event, subject
  FROM previewed ORDER BY at, event;

-- 2. a criteria reading another member: a referral thank-you once the
--    referrer (a property) has had its own welcome.  A member's timeline
--    now depends on its referrer's: everyone is simulated, and member 7
--    gets it once member 8, who logged in on 3/30, has had the trial
--    follow-up (on 4/30, when that login is 30 days old)
SELECT taskflow.define_property('referrer', 'number', NULL, '紹介者');
UPDATE taskflow.member SET properties = jsonb_build_object('referrer', member_id + 1)
 WHERE member_id IN (7, 10);
SELECT pg_temp.task('紹介者へのお礼', '{{name}}様、ご紹介ありがとうございます',
	$$EXISTS (SELECT FROM taskflow.member r
			   WHERE r.member_id = prop_number(member.properties, 'referrer')
				 AND has_tag(r.tags, '体験フォロー済'))$$);
SELECT taskflow.create_chain('紹介', ARRAY['紹介者へのお礼'], schedule => 'daily at 12:00',
	time_zone => 'Asia/Tokyo');
SELECT shown, simulated, shown < simulated AS everyone FROM pg_temp.previewed(ARRAY[7]::bigint[]);
SELECT pg_temp.differences(ARRAY[7]::bigint[]) AS differences;
SELECT to_char(at, 'MM-DD HH24:MI') AS at, chain, member_name, task, event
  FROM previewed WHERE chain = '紹介' ORDER BY at;
SELECT taskflow.drop_chain('紹介');

-- 3. an "sql" action may change any row: everyone is simulated
CREATE TABLE public.preview_scope_log (member_id bigint, noted text);
SELECT pg_temp.task('記録', '{{name}}様、ご確認ください', $$status = 'paid'$$,
	'[{"sql": "INSERT INTO public.preview_scope_log SELECT m, ''確認'' FROM unnest($1) AS m"}]');
SELECT taskflow.create_chain('記録', ARRAY['記録'], schedule => 'daily at 13:00', time_zone => 'Asia/Tokyo');
SELECT shown, simulated, shown < simulated AS everyone FROM pg_temp.previewed(ARRAY[3]::bigint[]);
SELECT pg_temp.differences(ARRAY[3]::bigint[]) AS differences;
SELECT taskflow.drop_chain('記録');

-- 3b. a later task that waits for its criteria (on_mismatch 'wait'): a
--     waiting member is looked at whenever the engine runs, which the
--     other members' steps decide: everyone is simulated
SELECT pg_temp.task('待機1', '{{name}}様、ご登録ありがとうございます', $$status = 'paid'$$);
SELECT pg_temp.task('待機2', '{{name}}様、入会40日のご案内', $$days_since(joined_at) >= 40$$);
SELECT taskflow.alter_task('待機2', on_mismatch => 'wait');
SELECT taskflow.create_chain('待機', ARRAY['待機1', '待機2'], waits => ARRAY[NULL, '1 hours'],
	time_zone => 'Asia/Tokyo');
SELECT shown, simulated, shown < simulated AS everyone FROM pg_temp.previewed(ARRAY[3]::bigint[]);
SELECT pg_temp.differences(ARRAY[3]::bigint[]) AS differences;
SELECT taskflow.drop_chain('待機');

-- 4. a predicate given another member's id reads that member's data:
--    everyone is simulated
SELECT pg_temp.task('サロン仲間', '{{name}}様、サロンに仲間が増えました', $$in_group(1, 'オンラインサロン')$$);
SELECT taskflow.create_chain('サロン仲間', ARRAY['サロン仲間'], schedule => 'daily at 14:00',
	time_zone => 'Asia/Tokyo');
SELECT shown, simulated, shown < simulated AS everyone FROM pg_temp.previewed(ARRAY[5]::bigint[]);
SELECT pg_temp.differences(ARRAY[5]::bigint[]) AS differences;
SELECT taskflow.drop_chain('サロン仲間');

-- 5. a criteria that no longer works (the function it calls was dropped):
--    the preview is not refused, it simulates everyone and shows the
--    chain's errors, as the engine would record them
CREATE FUNCTION public.preview_scope_vip(id bigint) RETURNS boolean
LANGUAGE sql IMMUTABLE RETURN id % 2 = 0;
SELECT pg_temp.task('VIP案内', '{{name}}様、VIP特典のご案内', $$public.preview_scope_vip(member_id)$$);
SELECT taskflow.create_chain('VIP', ARRAY['VIP案内'], schedule => 'daily at 15:00', time_zone => 'Asia/Tokyo');
DROP FUNCTION public.preview_scope_vip(bigint);
SELECT shown, simulated FROM pg_temp.previewed(ARRAY[4]::bigint[]);
SELECT to_char(at, 'MM-DD HH24:MI') AS at, chain, member_name, event, changes->>'sqlstate' AS sqlstate
  FROM previewed WHERE chain = 'VIP' ORDER BY at LIMIT 3;
SELECT taskflow.drop_chain('VIP');

-- nothing was left behind
SELECT count(*) AS history, (SELECT count(*) FROM taskflow.outbox) AS outbox,
	   (SELECT count(*) FROM taskflow.chain_member) AS chain_member,
	   (SELECT count(*) FROM preview_scope_log) AS log
  FROM taskflow.history;
