-- Use case 6 (seed 001): bank transfer (銀行振込).  An order paid by bank
-- transfer puts the member on the manual task 入金確認; a person checks the
-- bank account and processes the member, and everything after runs by
-- itself: status paid, expiry extended by a month, a welcome mail, a guide
-- mail the next morning.  Later the shop imports its bank statements, and
-- the operator switches the task to full-auto: new orders are then handled
-- by the engine, while members already pending stay pending until processed.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
DROP ROLE IF EXISTS usecase_bank_transfer_staff;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
SET taskflow.as_of = '2026-04-01 09:00+09';

-- the accounting clerk is an operator
CREATE ROLE usecase_bank_transfer_staff IN ROLE taskflow_operator;

---------------------------------------------------------------- the set-up
SELECT taskflow.define_status('awaiting_payment', '銀行振込の入金待ち');
SELECT taskflow.define_property('payment_method', 'list', ARRAY['銀行振込', 'クレジットカード'], '支払方法');
SELECT taskflow.save_criteria('銀行振込の入金待ち',
	$$status = 'awaiting_payment' AND prop_text(properties, 'payment_method') = '銀行振込'$$);

SELECT taskflow.create_template('入会完了',
	'【オンラインサロン】{{name}}様、ご入金を確認しました',
	E'{{name}}様\n\nお振込みを確認しました。会員ページをご利用いただけます。\n有効期限: {{expires_at}}',
	sender_name => 'オンラインサロン事務局', sender_address => 'salon@example.jp');
SELECT taskflow.create_template('ご利用ガイド',
	'【オンラインサロン】ご利用ガイド',
	E'{{name}}様\n\n会員ページの使い方をご案内します。',
	sender_name => 'オンラインサロン事務局', sender_address => 'salon@example.jp');

-- created in manual mode first, as the manual advises
SELECT taskflow.create_task('入金確認', 'manual', criteria => '銀行振込の入金待ち',
	actions => '[{"set": "status", "to": "paid"}, {"extend_expires": "1 month"}]',
	template => '入会完了', show_on_dashboard => true, assignee => '経理担当', priority => 10,
	description => '通帳で振込を確認したら処理する');
SELECT taskflow.create_task('利用ガイド送付', 'auto', template => 'ご利用ガイド');
SELECT taskflow.create_chain('銀行振込入会', tasks => ARRAY['入金確認', '利用ガイド送付'],
	waits => ARRAY[NULL, '1 days at 10:00'], schedule => 'always', time_zone => 'Asia/Tokyo');
SELECT chain, position, task, mode FROM taskflow.chain_summary ORDER BY chain, position;

---------------------------------------------------------------- 4/1: orders
-- 山田 and 鈴木 are new; 佐藤 renews (her membership runs until 4/20);
-- 高橋 pays by credit card and needs no check
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, expires_at, properties) VALUES
	('bt-1', 'yamada@example.jp', '山田太郎', 'awaiting_payment', '2026-04-01 10:00+09', NULL,
	 '{"payment_method": "銀行振込"}'),
	('bt-2', 'sato@example.jp', '佐藤花子', 'awaiting_payment', '2026-03-20 10:00+09', '2026-04-20 00:00+09',
	 '{"payment_method": "銀行振込"}'),
	('bt-3', 'suzuki@example.jp', '鈴木一郎', 'awaiting_payment', '2026-04-01 10:00+09', NULL,
	 '{"payment_method": "銀行振込"}'),
	('bt-4', 'takahashi@example.jp', '高橋美咲', 'paid', '2026-04-01 10:00+09', '2026-05-01 10:00+09',
	 '{"payment_method": "クレジットカード"}');
-- the engine's next run puts the transfers on the pending list at once
SELECT * FROM taskflow.run('2026-04-01 10:05+09');
SELECT * FROM taskflow.run('2026-04-01 10:10+09');

SET ROLE usecase_bank_transfer_staff;
SELECT task, member_id, member_name, email, pending_since, assignee, priority FROM taskflow.dashboard;
RESET ROLE;

---------------------------------------------------------------- 4/2: confirming
-- the transfers of 山田 and 佐藤 are in the bank account (the clerk records them)
SELECT taskflow.record_payment(1, 5000, '2026-04-02', '2026-05-01', '2026-04-02 11:00+09'),
	   taskflow.record_payment(2, 5000, '2026-04-20', '2026-05-19', '2026-04-02 14:00+09');
-- nothing happens by itself: the task is manual
SELECT * FROM taskflow.run('2026-04-02 14:30+09');
SELECT member_id, status, expires_at FROM taskflow.member WHERE member_id IN (1, 2) ORDER BY member_id;

SET ROLE usecase_bank_transfer_staff;
SELECT taskflow.process('入金確認', ARRAY[1, 2]::bigint[], '2026-04-02 15:00+09');
-- paid, a month more (from now for 山田, from her old expiry for 佐藤)
SELECT member_id, name, status, expires_at FROM taskflow.member ORDER BY member_id;
SELECT member_id, member_name FROM taskflow.dashboard;
-- 鈴木 has not paid: he stays on the list
SELECT chain, state, task, since, due_at, reason FROM taskflow.explain(3, '2026-04-02 15:00+09');
SELECT chain, state, task, since, due_at, reason FROM taskflow.explain(1, '2026-04-02 15:00+09');
RESET ROLE;

-- the rest runs automatically: the guide the next morning at 10:00
SELECT * FROM taskflow.run('2026-04-03 09:59+09');
SELECT * FROM taskflow.run('2026-04-03 10:00+09');

---------------------------------------------------------------- 4/4-4/5: switching to auto
-- 田中 orders on 4/4 and is pending like the others
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, properties) VALUES
	('bt-5', 'tanaka@example.jp', '田中健', 'awaiting_payment', '2026-04-04 10:00+09',
	 '{"payment_method": "銀行振込"}');
SELECT * FROM taskflow.run('2026-04-04 10:05+09');

-- from 4/5 the bank statements are imported as payment events, so the check
-- can be automatic: the criteria now also require a payment, and the task
-- runs in full-auto mode
SET taskflow.as_of = '2026-04-05 12:00+09';
SELECT taskflow.save_criteria('銀行振込の入金あり',
	$$status = 'awaiting_payment' AND prop_text(properties, 'payment_method') = '銀行振込'
	  AND paid_within(member_id, '30 days')$$);
SELECT taskflow.alter_task('入金確認', mode => 'auto', criteria => '銀行振込の入金あり');
SELECT chain, position, task, mode, waiting, pending FROM taskflow.chain_summary ORDER BY chain, position;

-- 田中's transfer arrives after the switch; 伊藤 and 渡辺 order after it
SELECT taskflow.record_payment(5, 5000, '2026-04-05', '2026-05-04', '2026-04-05 12:30+09');
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, properties) VALUES
	('bt-6', 'ito@example.jp', '伊藤さくら', 'awaiting_payment', '2026-04-05 13:00+09',
	 '{"payment_method": "銀行振込"}'),
	('bt-7', 'watanabe@example.jp', '渡辺翔', 'awaiting_payment', '2026-04-05 13:00+09',
	 '{"payment_method": "銀行振込"}');
SELECT * FROM taskflow.run('2026-04-05 13:05+09');
-- 伊藤's transfer arrives: the next run confirms it with no one involved
SELECT taskflow.record_payment(6, 5000, '2026-04-05', '2026-05-04', '2026-04-05 15:20+09');
SELECT * FROM taskflow.run('2026-04-05 15:25+09');

-- those pending before the switch are still pending, paid or not; 渡辺 has
-- not paid, so under the new criteria he has not entered
SET ROLE usecase_bank_transfer_staff;
SELECT task, member_id, member_name, pending_since FROM taskflow.dashboard;
SELECT chain, state, task, since, due_at, reason FROM taskflow.explain(5, '2026-04-05 15:25+09');
SELECT chain, state, task, since, due_at, reason FROM taskflow.explain(7, '2026-04-05 15:25+09');
-- the clerk processes 田中 (paid); 鈴木 has still not paid and stays
SELECT taskflow.process('入金確認', ARRAY[5]::bigint[], '2026-04-05 16:00+09');
SELECT task, member_id, member_name, pending_since FROM taskflow.dashboard;
RESET ROLE;

SELECT * FROM taskflow.run('2026-04-06 10:00+09');
SELECT * FROM taskflow.run('2026-04-07 10:00+09');

---------------------------------------------------------------- the outcome
SELECT member_id, name, status, expires_at FROM taskflow.member ORDER BY member_id;
SELECT o.member_id, o.recipient, o.subject, o.created_at
  FROM taskflow.outbox o ORDER BY o.member_id, o.created_at;
SELECT body_text FROM taskflow.outbox WHERE member_id = 2 AND subject LIKE '%ご入金%';
SELECT h.member_id, m.name, h.event, h.task_name, h.at, h.actor
  FROM taskflow.history h JOIN taskflow.member m USING (member_id)
 ORDER BY h.member_id, h.history_id;
SELECT member_name, task, state, waiting_since, finished_at
  FROM taskflow.member_state ORDER BY member_id;
SELECT chain, state, task, since, due_at, reason FROM taskflow.explain(3, '2026-04-07 10:00+09');

DROP ROLE usecase_bank_transfer_staff;
