-- bench/preview.sql — issue 6's figure: taskflow.preview() of one year for
-- :n members (default 10,000) across 5 chains.
--
--   psql -X -d <scratch database, taskflow preloaded> -v n=10000 -f bench/preview.sql
--
-- It drops and recreates the extension in that database.  The 5 chains are
-- the seeds' kinds: three anchor chains (a yearly birthday, 3 steps; the
-- expiry, 3 steps of which 2 before it, activation 'existing'; a purchase
-- follow-up on a date property, 4 steps) and two daily criteria chains (the
-- 14-day trial, 2 steps; a mail 30 days after joining).  The members'
-- dates are spread evenly over the year, so every chain has work on most
-- days.  The preview runs the real engine at every due instant (about four
-- a day here) with a daily entry check, and rolls everything back.  Prints
-- the time of the preview, what it found, and that nothing was left behind.
\if :{?n}
\else
\set n 10000
\endif
\set t0 '2027-04-01 00:00+09'
\set QUIET on
\o /dev/null
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET taskflow.as_of = :'t0';
SELECT taskflow.define_property('purchased_on', 'date', NULL, '購入日');

-- :n members: 20% on a trial that started within the last 20 days, the
-- others paid; a birthday, an expiry within the coming year, and for one
-- in three a purchase date within it
SET session_replication_role = replica;
INSERT INTO taskflow.member (member_id, external_id, email, name, status, joined_at, expires_at,
                             birthday, tags, properties, created_at)
SELECT i, 'm' || i, 'member' || i || '@example.jp', '会員' || i,
       CASE WHEN i % 5 = 0 THEN 'trial' ELSE 'paid' END,
       CASE WHEN i % 5 = 0 THEN :'t0'::timestamptz - (i % 20) * interval '1 day' + interval '10 hours'
            ELSE :'t0'::timestamptz - (i % 700) * interval '1 day' + interval '10 hours' END,
       :'t0'::timestamptz + (i % 365) * interval '1 day' + interval '23 hours 59 minutes',
       date '1960-01-01' + (i * 37 % 365) + (i % 40) * 365,
       ARRAY['メルマガ'],
       CASE WHEN i % 3 = 0
            THEN pg_catalog.jsonb_build_object('purchased_on', (date '2027-04-01' + (i * 7 % 365))::text)
            ELSE '{}' END,
       :'t0'::timestamptz - interval '1 year'
  FROM generate_series(1, :n) i;
SELECT pg_catalog.setval('taskflow.member_member_id_seq', :n);
RESET session_replication_role;
ANALYZE taskflow.member;

CREATE FUNCTION pg_temp.task(name text, subject text, criteria text DEFAULT NULL,
                             actions jsonb DEFAULT '[]')
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM taskflow.create_template(name, subject, '{{name}}様' || E'\n\n' || subject || E'\n有効期限: {{expires_at}}',
	                                 sender_name => '会員事務局', sender_address => 'info@example.jp');
	PERFORM taskflow.create_task(name, 'auto', criteria => criteria, template => name, actions => actions);
END
$$;
SELECT taskflow.save_criteria('メルマガ購読者', $$has_tag(tags, 'メルマガ')$$);
SELECT taskflow.save_criteria('有料会員', $$status = 'paid'$$);
SELECT taskflow.save_criteria('体験12日目', $$status = 'trial' AND days_since(joined_at) = 12$$);
SELECT taskflow.save_criteria('体験中', $$status = 'trial'$$);
SELECT taskflow.save_criteria('入会30日', $$status = 'paid' AND days_since(joined_at) = 30$$);
-- 1. birthday, every year
SELECT pg_temp.task('誕生日予告', '{{name}}様、もうすぐお誕生日です', 'メルマガ購読者');
SELECT pg_temp.task('誕生日', '{{name}}様、お誕生日おめでとうございます', actions => '[{"add_tag": "誕生日祝い済"}]');
SELECT pg_temp.task('誕生日クーポン期限', '{{name}}様、クーポンの期限が近づいています');
SELECT taskflow.create_chain('誕生日', ARRAY['誕生日予告', '誕生日', '誕生日クーポン期限'],
	anchor => 'birthday', yearly => true, offsets => ARRAY['-3 days at 09:00', '0 days at 09:00', '3 days at 09:00'],
	time_zone => 'Asia/Tokyo');
-- 2. before the expiry
SELECT pg_temp.task('期限7日前', '{{name}}様、有効期限の7日前です', '有料会員');
SELECT pg_temp.task('期限3日前', '{{name}}様、有効期限まであと3日です');
SELECT pg_temp.task('期限切れ', '{{name}}様、有効期限が切れました', actions => '[{"add_tag": "期限切れ"}]');
SELECT taskflow.create_chain('期限前のご案内', ARRAY['期限7日前', '期限3日前', '期限切れ'],
	anchor => 'expires_at', offsets => ARRAY['-7 days at 09:00', '-3 days at 09:00', '1 days at 09:00'],
	activation => 'existing', time_zone => 'Asia/Tokyo');
-- 3. after a purchase
SELECT pg_temp.task('サンクス', '{{name}}様、ご購入ありがとうございます', 'メルマガ購読者');
SELECT pg_temp.task('使い方', '{{name}}様、効果的な使い方', actions => '[{"add_tag": "使い方案内済"}]');
SELECT pg_temp.task('愛用者の声', '{{name}}様、愛用者の声');
SELECT pg_temp.task('おすすめ', '{{name}}様、おすすめの商品');
SELECT taskflow.create_chain('購入後フォロー', ARRAY['サンクス', '使い方', '愛用者の声', 'おすすめ'],
	anchor => 'properties.purchased_on',
	offsets => ARRAY['immediately', '1 days at 10:00', '6 days at 10:00', '29 days at 10:00'], time_zone => 'Asia/Tokyo');
-- 4. the trial
SELECT pg_temp.task('体験終了前', '{{name}}様、無料体験は残り2日です', '体験12日目');
SELECT pg_temp.task('メルマガ移行', '{{name}}様、無料体験が終了しました', '体験中',
	'[{"set": "status", "to": "newsletter"}, {"add_tag": "体験終了"}]');
SELECT taskflow.create_chain('無料体験', ARRAY['体験終了前', 'メルマガ移行'], ARRAY[NULL, '2 days at 09:00'],
	schedule => 'daily at 09:00', time_zone => 'Asia/Tokyo');
-- 5. 30 days after joining
SELECT pg_temp.task('入会30日', '{{name}}様、ご入会から30日が経ちました', '入会30日');
SELECT taskflow.create_chain('入会30日', ARRAY['入会30日'], schedule => 'daily at 10:00', time_zone => 'Asia/Tokyo');

-- the state a preview must leave as it is
CREATE TEMP TABLE before AS
SELECT (SELECT count(*) FROM taskflow.member) AS members,
       (SELECT md5(string_agg(m::text, '' ORDER BY member_id)) FROM taskflow.member m) AS members_md5,
       (SELECT count(*) FROM taskflow.chain_member) AS chain_members,
       (SELECT count(*) FROM taskflow.history) AS history,
       (SELECT count(*) FROM taskflow.outbox) AS outbox,
       (SELECT string_agg(sequencename || '=' || coalesce(last_value::text, '-'), ' ' ORDER BY sequencename)
          FROM pg_sequences WHERE schemaname = 'taskflow') AS sequences;

\o
\set QUIET off
\echo preview of one year, :n members, 5 chains:
\timing on
CREATE TEMP TABLE previewed AS
SELECT * FROM taskflow.preview(:'t0', :'t0'::timestamptz + interval '1 year');
\timing off
SELECT chain, event, count(*) AS rows, count(DISTINCT member_id) AS members,
       count(DISTINCT at) AS instants
  FROM previewed GROUP BY ROLLUP (chain, event) ORDER BY chain NULLS LAST, event NULLS LAST;
SELECT count(DISTINCT at) AS instants_with_rows, count(*) FILTER (WHERE subject IS NOT NULL) AS messages
  FROM previewed;
-- nothing left behind
SELECT b.* IS NOT DISTINCT FROM a.* AS unchanged
  FROM before b,
       (SELECT (SELECT count(*) FROM taskflow.member) AS members,
               (SELECT md5(string_agg(m::text, '' ORDER BY member_id)) FROM taskflow.member m) AS members_md5,
               (SELECT count(*) FROM taskflow.chain_member) AS chain_members,
               (SELECT count(*) FROM taskflow.history) AS history,
               (SELECT count(*) FROM taskflow.outbox) AS outbox,
               (SELECT string_agg(sequencename || '=' || coalesce(last_value::text, '-'), ' ' ORDER BY sequencename)
                  FROM pg_sequences WHERE schemaname = 'taskflow') AS sequences) a;
