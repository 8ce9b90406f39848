-- demo.sql — sample data and queries for scripts/demo.sh.
--
-- Runs in a fresh database where CREATE EXTENSION taskflow has just been
-- done.  Everything is relative to one fixed instant, :'demo_at', so the
-- demo shows the same thing whatever day it is run.  Each section starts
-- with a numbered heading.  demo.sh passes :smtp_url, the local SMTP
-- server the last section sends the chain's mail to.

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

-- ======================================================== 3. the worker at work
-- From here on the real clock: the background worker (started because
-- taskflow is in shared_preload_libraries) applies what is due by itself.
RESET taskflow.as_of;
\echo
\echo '3. A chain run by the background worker: welcome mail (auto), then printed material (manual, 処理待ち), then a follow-up 3 days later at 10:00'

SELECT taskflow.save_criteria('新規トライアル',
	'status = ''trial'' AND within_last(joined_at, ''1 day'')',
	'この1日に体験を始めた会員') \g /dev/null
SELECT taskflow.create_template('ようこそ',
	'【会員サイト】{{name}}様、無料体験へようこそ',
	E'{{name}}様\n\n無料体験のお申し込みありがとうございます。\nプラン: {{properties.plan|ブロンズ}}\n',
	sender_name => '会員サイト事務局', sender_address => 'info@example.jp') \g /dev/null
SELECT taskflow.create_template('資料到着確認',
	'【会員サイト】資料は届きましたか？',
	E'{{name}}様\n\n先日お送りした資料は届きましたでしょうか。\n',
	sender_name => '会員サイト事務局', sender_address => 'info@example.jp') \g /dev/null
SELECT taskflow.create_task('ウェルカムメール', mode => 'auto', criteria => '新規トライアル',
	template => 'ようこそ', actions => '[{"add_tag": "ウェルカム済"}]') \g /dev/null
SELECT taskflow.create_task('資料発送', mode => 'manual', assignee => '発送担当', priority => 5,
	description => '印刷物を郵送し、発送済みにする') \g /dev/null
SELECT taskflow.create_task('到着確認メール', mode => 'auto', template => '資料到着確認') \g /dev/null

INSERT INTO taskflow.member (external_id, email, name, name_kana, status, joined_at)
VALUES ('M0101', 'ito@example.jp', '伊藤健太', 'イトウケンタ', 'trial', now()),
	   ('M0102', 'watanabe@example.jp', '渡辺さくら', 'ワタナベサクラ', 'trial', now());

-- creating the chain wakes the worker: its first task applies at once
SELECT taskflow.create_chain('体験フォロー',
	tasks => ARRAY['ウェルカムメール', '資料発送', '到着確認メール'],
	waits => ARRAY[NULL, '1 hours', '3 days at 10:00'],
	schedule => 'always', time_zone => 'Asia/Tokyo') \g /dev/null

-- wait (at most 10 s) until the worker has applied the welcome step
DO $wait$
BEGIN
	FOR i IN 1 .. 100 LOOP
		EXIT WHEN (SELECT count(*) FROM taskflow.history
				   WHERE event = 'applied' AND task_name = 'ウェルカムメール') >= 2;
		PERFORM pg_sleep(0.1);
	END LOOP;
END
$wait$;

\echo 'Messages the worker wrote to the outbox (rendered when the step was applied):'
SELECT m.name AS "氏名", o.recipient, o.subject, o.state
  FROM taskflow.outbox o JOIN taskflow.member m USING (member_id)
 ORDER BY o.outbox_id;

\echo 'Where the members are now (taskflow.member_state):'
SELECT member_name AS "氏名", chain, position AS step, task, state,
	   to_char(due_at, 'YYYY-MM-DD HH24:MI') AS due
  FROM taskflow.member_state WHERE chain = '体験フォロー' ORDER BY member_id;

-- make the material step due now, as if an hour had passed
UPDATE taskflow.chain_member SET due_at = now()
 WHERE chain_id = (SELECT chain_id FROM taskflow.chain WHERE name = '体験フォロー');
DO $wait$
BEGIN
	FOR i IN 1 .. 100 LOOP
		EXIT WHEN (SELECT count(*) FROM taskflow.pending_tasks) >= 2;
		PERFORM pg_sleep(0.1);
	END LOOP;
END
$wait$;

\echo 'An hour later: the operator''s dashboard (処理待ちタスク):'
SELECT task, member_name AS "氏名", assignee, priority,
	   to_char(pending_since, 'YYYY-MM-DD HH24:MI') AS since
  FROM taskflow.dashboard;

\echo 'The operator posts the material to 伊藤健太 and marks it done:'
SELECT taskflow.process('資料発送',
	ARRAY[(SELECT member_id FROM taskflow.member WHERE external_id = 'M0101')]) AS processed;

\echo 'Why each member is where they are (taskflow.explain):'
SELECT m.name AS "氏名", e.chain, e.state, e.reason
  FROM taskflow.member m, taskflow.explain(m.member_id) e
 WHERE m.external_id IN ('M0101', 'M0102') AND e.chain = '体験フォロー'
 ORDER BY m.external_id;

\echo 'The scheduler of this database (taskflow.worker_status):'
SELECT database, state, runs, last_applied, last_pending,
	   to_char(next_wakeup_at AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD HH24:MI') AS next_wakeup
  FROM taskflow.worker_status;

-- ======================================================== 4. mail to a local SMTP server
\echo
\echo '4. Delivery: the ''email'' channel is pointed at the demo''s local SMTP server,' :smtp_url
\echo 'and the delivery worker sends the mails the chain queued'

-- a superuser names the server (a real one would use STARTTLS and a password file)
SELECT taskflow.configure_channel('email', url => :'smtp_url', require_starttls => false,
	message_id_domain => 'mail.example.jp',
	list_id => '会員サイトのお知らせ <news.example.jp>') \g /dev/null

-- configuring the channel wakes the delivery worker; wait (at most 10 s)
-- until the welcome mails are sent
DO $wait$
BEGIN
	FOR i IN 1 .. 100 LOOP
		EXIT WHEN NOT EXISTS (SELECT FROM taskflow.outbox
							   WHERE state IN ('pending', 'sending'));
		PERFORM pg_sleep(0.1);
	END LOOP;
END
$wait$;

\echo 'The outbox now (sent by the delivery worker, with the SMTP server''s reply):'
SELECT m.name AS "氏名", o.recipient, o.state, o.message_id, o.last_reply
  FROM taskflow.outbox o JOIN taskflow.member m USING (member_id)
 ORDER BY o.outbox_id;

\echo 'The delivery worker (taskflow.delivery_status):'
SELECT worker, state, batches, sent, temporary_failures, permanent_failures, last_error
  FROM taskflow.delivery_status;
