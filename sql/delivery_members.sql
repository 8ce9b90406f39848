-- Delivery as the member sees it: the address a queued message goes to
-- (read again at claim time), control characters in a subject (C0, DEL and
-- C1: what the renderer writes is what the MIME builder takes), messages
-- cancelled when queued (no e-mail address, already unsubscribed) on the
-- member's timeline, and the server's reply in state_reason and the
-- suppression list without its code twice.
SET client_min_messages = warning;	-- whether an earlier test left it installed
DROP EXTENSION IF EXISTS taskflow CASCADE;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
SET taskflow.as_of = '2026-05-01 09:00+09';

SELECT taskflow.configure_channel('email', message_id_domain => 'mail.example.jp');
SELECT taskflow.configure_channel('mail_quiet', kind => 'smtp',
	quiet_start => '21:00', quiet_end => '08:00');
INSERT INTO taskflow.member (external_id, email, name, tags) VALUES
	('a-1', 'yamada@example.jp', '山田太郎', '{案内}'),
	('a-2', 'sato@example.jp', '佐藤花子', '{案内}'),
	('a-3', 'suzuki@example.jp', '鈴木一郎', '{案内}'),
	('a-4', 'takahashi@example.jp', '高橋美咲', '{案内}'),
	('a-5', NULL, '田中健太', '{案内}'),
	('a-6', 'ito@example.jp', '伊藤直子', '{案内}'),
	('a-7', 'nel@example.jp', E'渡辺\u0085さくら', '{件名}'),
	('a-8', 'del@example.jp', E'小林\u007f誠', '{件名}'),
	('a-9', 'tab@example.jp', E'加藤\t愛', '{件名}');
SELECT taskflow.unsubscribe(6, '2026-04-30 10:00+09');

-- a chain of one automatic task sending a template of a channel to the
-- members with a tag (criteria, template, task and chain share the name)
CREATE FUNCTION pg_temp.mail_chain(chain text, channel text, tag text, subject text,
								   body text DEFAULT '{{name}}様、いつもありがとうございます。',
								   test boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM taskflow.save_criteria(chain, format('has_tag(tags, %L)', tag));
	PERFORM taskflow.create_template(chain, subject => subject, body_text => body,
		sender_name => '会員サイト事務局', sender_address => 'info@example.jp', channel => channel);
	PERFORM taskflow.create_task(chain, 'auto', criteria => chain, template => chain);
	PERFORM taskflow.create_chain(chain, tasks => ARRAY[chain], time_zone => 'Asia/Tokyo', test => test);
END
$$;
CREATE VIEW pg_temp.mail AS
SELECT o.outbox_id AS id, m.external_id, o.recipient, o.state, o.state_reason
  FROM taskflow.outbox o JOIN taskflow.member m USING (member_id);

---------------------------------------------------------------- cancelled when queued
-- 田中 has no e-mail address and 伊藤 unsubscribed: their messages are
-- written cancelled, and the timeline says so, as for a cancellation at
-- claim time
SELECT pg_temp.mail_chain('夜のお知らせ', 'mail_quiet', '案内', '【会員サイト】{{name}}様へのお知らせ');
SELECT entered, applied FROM taskflow.run('2026-05-01 23:00+09', '夜のお知らせ');
SELECT * FROM pg_temp.mail ORDER BY id;
SELECT m.external_id, e.kind, e.occurred_at, e.detail, e.recorded_by
  FROM taskflow.event e JOIN taskflow.member m USING (member_id)
 WHERE e.kind LIKE 'mail\_%' ORDER BY e.event_id;
SELECT at, kind, coalesce(detail->>'event', detail->>'reason') AS what, actor
  FROM taskflow.activity(5);
-- a test chain's message is not the member's: no timeline row
SELECT taskflow.create_chain('夜のお知らせ（テスト）', tasks => ARRAY['夜のお知らせ'],
	time_zone => 'Asia/Tokyo', test => true) > 0 AS created;
SELECT entered, applied FROM taskflow.run('2026-05-01 23:00+09', '夜のお知らせ（テスト）');
SELECT o.member_id, o.state, o.state_reason, o.is_test,
	   (SELECT count(*) FROM taskflow.event e WHERE e.detail->>'outbox_id' = o.outbox_id::text) AS events
  FROM taskflow.outbox o WHERE o.is_test AND o.state = 'cancelled' ORDER BY o.outbox_id;
DELETE FROM taskflow.outbox WHERE is_test;

---------------------------------------------------------------- the address at claim time
-- quiet hours defer the others to 08:00; meanwhile 山田 corrects the
-- address, 佐藤 changes to an address on the suppression list, 鈴木's
-- address is removed
SELECT outbox_id FROM taskflow.claim_messages('mail_quiet', 'w1', 10, as_of => '2026-05-01 23:00+09');
SELECT id, external_id, recipient, state, state_reason FROM pg_temp.mail WHERE state = 'deferred' ORDER BY id;
SELECT taskflow.suppress('sato.new@example.jp', 'complaint', '2026-05-01 12:00+09');
UPDATE taskflow.member SET email = 'yamada.new@example.jp' WHERE external_id = 'a-1';
UPDATE taskflow.member SET email = 'SATO.NEW@example.jp' WHERE external_id = 'a-2';
UPDATE taskflow.member SET email = NULL WHERE external_id = 'a-3';
-- the claim sends to the address each member has now
SELECT outbox_id, recipient, original_recipient, state
  FROM taskflow.claim_messages('mail_quiet', 'w1', 10, as_of => '2026-05-02 08:00+09');
SELECT * FROM pg_temp.mail ORDER BY id;
SELECT a.outbox_id, a.recipient FROM taskflow.delivery_attempt a ORDER BY a.attempt_id;
SELECT m.external_id, e.kind, e.detail->>'recipient' AS recipient, e.detail->>'reason' AS reason
  FROM taskflow.event e JOIN taskflow.member m USING (member_id)
 WHERE e.kind = 'mail_cancelled' AND e.occurred_at >= '2026-05-02' ORDER BY e.event_id;

---------------------------------------------------------------- the reply, once
-- the delivery workers pass the server's whole line; smtplib's
-- smtp_error has the enhanced code but not the code; a relay may pass
-- only the text
SELECT r.code, r.enhanced, r.reply, taskflow._reply_text(r.code, r.enhanced, r.reply)
  FROM (VALUES (550, '5.1.1', '550 5.1.1 <rej@example.jp>: Recipient address rejected: User unknown'),
			   (550, '5.1.1', '5.1.1 <rej@example.jp>: Recipient address rejected: User unknown'),
			   (550, '5.1.1', 'User unknown'),
			   (450, '4.2.1', '450-4.2.1 Mailbox busy, try again later'),
			   (535, '5.7.8', '535 5.7.8 Authentication credentials invalid'),
			   (421, NULL, '421 Service not available'),
			   (421, NULL, '4210 is not a code'),
			   (503, NULL, 'HTTP/1.1 503 Service Unavailable'),
			   (550, '5.1.1', '550 5.1.1'),
			   (NULL, NULL, 'Connection refused'),
			   (NULL, NULL, NULL),
			   (250, '', '  ')) AS r(code, enhanced, reply);
-- 山田's address is unknown at the new server (a hard bounce, suppressed)
-- and 高橋's mailbox is busy: state_reason and the suppression list carry
-- each code once; the attempt keeps the reply as the server sent it
SELECT taskflow.complete_messages('w1', ARRAY[1, 4]::bigint[], ARRAY['permanent', 'temporary'],
	ARRAY[550, 450], ARRAY['5.1.1', '4.2.1'],
	ARRAY['550 5.1.1 <yamada.new@example.jp>: Recipient address rejected: User unknown',
		  '450-4.2.1 Mailbox busy, try again later'],
	'2026-05-02 08:00:05+09');
SELECT id, external_id, recipient, state, state_reason FROM pg_temp.mail WHERE id IN (1, 4) ORDER BY id;
SELECT address, reason FROM taskflow.suppression ORDER BY address;
SELECT outbox_id, outcome, smtp_code, enhanced_code, reply FROM taskflow.delivery_attempt
 WHERE finished_at IS NOT NULL ORDER BY attempt_id;

-- a test chain's message, routed to a tester: the claim after a
-- temporary failure keeps the tester and takes the member's new address
-- as original_recipient; the suppression list applies to the member's
-- address as it is now (山田's bounced, 佐藤's complaint)
SELECT taskflow.configure_channel('email', test_recipients => ARRAY['qa@example.jp']);
SELECT pg_temp.mail_chain('テスト案内', 'email', '案内', '{{name}}様へのご案内', test => true);
SELECT entered, applied FROM taskflow.run('2026-05-04 10:00+09', 'テスト案内');
SELECT outbox_id, recipient, original_recipient, state
  FROM taskflow.claim_messages('email', 'w1', 10, as_of => '2026-05-04 10:00+09');
SELECT taskflow.complete_messages('w1', ARRAY(SELECT outbox_id FROM taskflow.outbox WHERE state = 'sending'
											   AND is_test), ARRAY['temporary'], ARRAY[421], NULL,
	ARRAY['421 4.3.2 Service shutting down'], '2026-05-04 10:00:05+09');
UPDATE taskflow.member SET email = 'takahashi.new@example.jp' WHERE external_id = 'a-4';
SELECT outbox_id, recipient, original_recipient, state
  FROM taskflow.claim_messages('email', 'w1', 10, as_of => '2026-05-04 11:00+09');
SELECT o.outbox_id, m.external_id, o.recipient, o.original_recipient, o.state, o.state_reason
  FROM taskflow.outbox o JOIN taskflow.member m USING (member_id)
 WHERE o.is_test ORDER BY o.outbox_id;

---------------------------------------------------------------- control characters in a subject
-- a member's name with a C1 control (U+0085, NEL, common in text from
-- legacy systems), DEL or a tab: in the subject each becomes a space, so
-- the MIME builder (which refuses them in any header) builds the mail; the
-- body keeps the name as it is
SELECT pg_temp.mail_chain('件名の制御文字', 'email', '件名', '{{name}}様へのお知らせ',
	'{{name}}様');
SELECT entered, applied FROM taskflow.run('2026-05-03 10:00+09', '件名の制御文字');
SELECT m.external_id, o.subject, o.subject ~ '[\x01-\x1f\x7f-\x9f]' AS control_in_subject,
	   o.body_text ~ '[\x01-\x1f\x7f-\x9f]' AS control_in_body, o.state
  FROM taskflow.outbox o JOIN taskflow.member m USING (member_id)
 WHERE m.tags @> '{件名}' ORDER BY o.outbox_id;
SELECT m.external_id,
	   substring(taskflow.mime_message(o.outbox_id, '2026-05-03 10:00+09') from 'Subject: [^\r]*') AS subject_header
  FROM taskflow.outbox o JOIN taskflow.member m USING (member_id)
 WHERE m.tags @> '{件名}' ORDER BY o.outbox_id;
-- the renderer treats the template's own subject text the same way (a
-- template saved before such text was refused); text and HTML keep it
SELECT p.part, replace(replace(taskflow.render_member(E'お知らせ\u0085{{name}}\u009fです', m, p.part),
							  E'\u0085', '<U+0085>'), E'\u009f', '<U+009F>') AS rendered
  FROM taskflow.member m, unnest(ARRAY['subject', 'text', 'html']) WITH ORDINALITY AS p(part, n)
 WHERE m.external_id = 'a-7' ORDER BY p.n;
-- every C0 and C1 control and DEL becomes a space in a subject; the
-- characters next to them (U+00A0, U+00FF, U+3000, emoji) stay
SELECT count(*) FILTER (WHERE r = 'a b') AS spaced, count(*) AS controls
  FROM generate_series(1, 159) c,
	   LATERAL taskflow.render_member('{{name}}',
			jsonb_populate_record(NULL::taskflow.member, jsonb_build_object('name', 'a' || chr(c) || 'b')),
			'subject') r
 WHERE c < 32 OR c >= 127;
SELECT taskflow.render_member('{{name}}',
	jsonb_populate_record(NULL::taskflow.member, jsonb_build_object('name', E'a\u00a0b\u00ffc\u3000d😀')),
	'subject') = E'a\u00a0b\u00ffc\u3000d😀' AS unchanged;

---------------------------------------------------------------- timestamps in the chain's zone
-- the engine writes a timestamp (and the Date header) in the chain's
-- time_zone, whatever the session's; preview_template() renders in the
-- session's TimeZone, and shows the mail as sent once the session is set
-- to the chain's zone
UPDATE taskflow.member SET expires_at = '2026-12-05 00:00+09', tags = '{期限}' WHERE external_id = 'a-4';
SELECT pg_temp.mail_chain('期限のお知らせ', 'email', '期限', '{{name}}様、有効期限のお知らせ',
	'有効期限: {{expires_at}}');
SELECT taskflow.alter_chain('期限のお知らせ', time_zone => 'America/Los_Angeles');
SELECT entered, applied FROM taskflow.run('2026-05-05 10:00+09', '期限のお知らせ');
SELECT o.body_text, o.time_zone,
	   substring(taskflow.mime_message(o.outbox_id, '2026-05-05 10:00+09') from 'Date: [^\r]*') AS date_header
  FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id) WHERE c.name = '期限のお知らせ';
SHOW TimeZone;
SELECT body_text FROM taskflow.preview_template('期限のお知らせ', 4);
BEGIN;
SELECT set_config('TimeZone', time_zone, true) FROM taskflow.chain WHERE name = '期限のお知らせ';
SELECT p.body_text, p.body_text = o.body_text AS as_sent
  FROM taskflow.preview_template('期限のお知らせ', 4) p,
	   taskflow.outbox o JOIN taskflow.chain c USING (chain_id) WHERE c.name = '期限のお知らせ';
COMMIT;
