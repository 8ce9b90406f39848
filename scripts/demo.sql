-- demo.sql — sample data and queries for scripts/demo.sh.
--
-- Runs in a fresh database where CREATE EXTENSION taskflow has just been
-- done.  Everything is relative to one fixed instant, :'demo_at', so the
-- demo shows the same thing whatever day it is run.  Each section starts
-- with a numbered heading; later demo steps (chains, mail to a local SMTP
-- server) are appended as new sections.

\set demo_at '2026-04-01 09:00:00+09'
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
-- the engine's clock: defaults and helpers (paid_count, event times) see
-- the demo instant too
SET taskflow.as_of = :'demo_at';
\pset null '-'
\pset footer on

-- ======================================================== 1. members
\echo
\echo '1. Members (会員), loaded with plain SQL; dates relative to' :demo_at

SELECT taskflow.define_property('plan', 'list',
	ARRAY['ブロンズ', 'シルバー', 'ゴールド'], '会員プラン') \g /dev/null

INSERT INTO taskflow.member
	(external_id, email, name, name_kana, status, joined_at, expires_at,
	 birthday, tags, properties)
VALUES
	('M0001', 'yamada@example.jp', '山田太郎', 'ヤマダタロウ', 'paid',
	 :'demo_at'::timestamptz - interval '6 months',
	 :'demo_at'::timestamptz + interval '3 days 15 hours',
	 '1980-05-05', '{優良会員}', '{"plan": "ゴールド"}'),
	('M0002', 'sato@example.jp', '佐藤花子', 'サトウハナコ', 'trial',
	 :'demo_at'::timestamptz - interval '14 days', NULL,
	 NULL, '{}', '{}'),
	('M0003', 'suzuki@example.jp', '鈴木一郎', 'スズキイチロウ', 'paid',
	 :'demo_at'::timestamptz - interval '2 months 17 days',
	 :'demo_at'::timestamptz + interval '6 days',
	 '1975-11-23', '{}', '{"plan": "シルバー"}'),
	('M0004', 'takahashi@example.jp', '高橋美咲', 'タカハシミサキ', 'trial',
	 :'demo_at'::timestamptz - interval '7 days', NULL,
	 NULL, '{}', '{}'),
	('M0005', 'tanaka@example.jp', '田中健太', 'タナカケンタ', 'paid',
	 :'demo_at'::timestamptz - interval '1 year',
	 :'demo_at'::timestamptz + interval '10 days',
	 '1988-04-10', '{}', '{"plan": "ブロンズ"}');

-- a tag added later, and a payment
SELECT taskflow.add_tag(member_id, '優良会員')
  FROM taskflow.member WHERE external_id = 'M0003' \g /dev/null
SELECT taskflow.record_payment(member_id, 5500,
		(:'demo_at'::timestamptz - interval '1 month')::date,
		(:'demo_at'::timestamptz - interval '1 day')::date,
		:'demo_at'::timestamptz - interval '1 month')
  FROM taskflow.member WHERE external_id = 'M0003' \g /dev/null

SELECT external_id AS "id", name AS "氏名", email, status,
	   to_char(joined_at, 'YYYY-MM-DD HH24:MI') AS joined,
	   to_char(expires_at, 'YYYY-MM-DD HH24:MI') AS expires,
	   array_to_string(tags, ',') AS tags,
	   taskflow.prop_text(properties, 'plan') AS plan,
	   taskflow.paid_count(member_id) AS payments
  FROM taskflow.member
 ORDER BY external_id;

-- ======================================================== 2. criteria
\echo
\echo '2. Saved criteria (検索条件): who is due, searched as of' :demo_at

SELECT taskflow.save_criteria('期限7日以内',
	'within_next(expires_at, ''7 days'')',
	'有効期限が7日以内に切れる会員（更新のご案内）') \g /dev/null
SELECT taskflow.save_criteria('トライアル14日目',
	'status = ''trial'' AND days_since(joined_at) = 14',
	'トライアル開始から14日目の会員') \g /dev/null

\echo
\echo 'Members whose membership expires within the next 7 days (criteria 期限7日以内), as of' :demo_at
SELECT external_id AS "id", name AS "氏名", email, status,
	   to_char(expires_at, 'YYYY-MM-DD HH24:MI') AS expires
  FROM taskflow.search('期限7日以内', :'demo_at')
 ORDER BY expires_at, external_id;

\echo 'Trial members on day 14 (criteria トライアル14日目), as of' :demo_at
SELECT external_id AS "id", name AS "氏名", email,
	   to_char(joined_at, 'YYYY-MM-DD HH24:MI') AS joined
  FROM taskflow.search('トライアル14日目', :'demo_at')
 ORDER BY external_id;

\echo 'How many members each criteria finds as of' :demo_at 'and a week later'
SELECT c.name AS criteria,
	   taskflow.count(c.name, :'demo_at') AS "now",
	   taskflow.count(c.name, :'demo_at'::timestamptz + interval '7 days') AS "in 7 days"
  FROM (VALUES ('期限7日以内'), ('トライアル14日目')) AS c(name);
