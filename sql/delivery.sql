-- Delivery: channels (configure_channel and its errors), the outbox state
-- machine driven by claim_messages / complete_messages as a worker or an
-- external relay would, every transition, backoff, suppression, the
-- guardrails (quiet hours, frequency cap, quota, rate limit), test routing,
-- lease expiry, the member's timeline, operators' cancel and retry.
SET client_min_messages = warning;	-- whether an earlier test left it installed
DROP EXTENSION IF EXISTS taskflow CASCADE;
DROP ROLE IF EXISTS delivery_relay, delivery_staff, delivery_app;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
SET taskflow.as_of = '2026-04-01 09:00+09';

CREATE ROLE delivery_relay LOGIN IN ROLE taskflow_relay;	-- a relay on another machine
CREATE ROLE delivery_staff IN ROLE taskflow_operator;
CREATE ROLE delivery_app IN ROLE taskflow_app;

-- what an operator looks at: every message, its state and next attempt
CREATE VIEW pg_temp.mail AS
SELECT o.outbox_id AS id, m.name, o.channel, o.recipient, o.state, o.attempts,
	   o.not_before, o.state_reason
  FROM taskflow.outbox o JOIN taskflow.member m USING (member_id);
-- the member's timeline as it reads after delivery
CREATE VIEW pg_temp.mail_events AS
SELECT m.name, e.kind, e.occurred_at, e.detail->>'subject' AS subject,
	   e.detail->>'recipient' AS recipient, e.detail->>'attempt' AS attempt,
	   concat_ws(' ', e.detail->>'smtp_code', e.detail->>'enhanced_code', e.detail->>'reply') AS reply,
	   e.detail->>'retry_at' AS retry_at, e.detail->>'reason' AS reason, e.recorded_by
  FROM taskflow.event e JOIN taskflow.member m USING (member_id)
 WHERE e.kind LIKE 'mail\_%';

---------------------------------------------------------------- channels
-- the built-in channels
SELECT name, kind, url, require_starttls, connections, max_attempts, backoff_base,
	   backoff_max, enabled, builtin
  FROM taskflow.channel ORDER BY name;

-- the DBA points 'email' at the relay; the password sits in a server file
SELECT taskflow.configure_channel('email', url => 'smtp://mail.example.jp:587',
	username => 'taskflow', password_file => current_setting('data_directory') || '/PG_VERSION',
	quota_time_zone => 'Asia/Tokyo', message_id_domain => 'mail.example.jp',
	list_id => '会員サイトのお知らせ <news.example.jp>',
	unsubscribe_url => 'https://example.jp/unsubscribe?m={{member_id}}&t={{token}}');
-- a LINE gateway, reached by webhook (the kind follows from the url)
SELECT taskflow.configure_channel('line', url => 'https://gateway.example.jp/line/push',
	webhook_secret_file => current_setting('data_directory') || '/PG_VERSION',
	description => 'LINE 公式アカウント経由', rate_per_second => 20);
SELECT name, kind, url, username, password_file LIKE '%/PG_VERSION' AS password_file,
	   webhook_secret_file LIKE '%/PG_VERSION' AS secret_file, rate_per_second,
	   message_id_domain, list_id, description
  FROM taskflow.channel ORDER BY name;
SELECT quota_time_zone, unsubscribe_url FROM taskflow.channel WHERE name = 'email';

-- bad settings are refused, each with a clear message, and nothing changes
SELECT taskflow.configure_channel('LINE', kind => 'webhook');
SELECT taskflow.configure_channel('sms');
SELECT taskflow.configure_channel('sms', kind => 'fax');
SELECT taskflow.configure_channel('sms', url => 'ftp://sms.example.jp/send');
SELECT taskflow.configure_channel('email', url => 'https://mail.example.jp');
SELECT taskflow.configure_channel('email', url => 'smtp://taskflow:secret@mail.example.jp:587');
SELECT taskflow.configure_channel('email', url => 'smtp://mail.example.jp:99999');
SELECT taskflow.configure_channel('email', url => 'smtp://mail.example.jp/inbox');
SELECT taskflow.configure_channel('email', password_file => 'smtp-password');
SELECT taskflow.configure_channel('email', password_file => '/nonexistent/taskflow/smtp-password');
SELECT taskflow.configure_channel('email', password_file => '/');
SELECT taskflow.configure_channel('email', webhook_secret_file => '/etc/secret');
SELECT taskflow.configure_channel('sms', url => 'https://sms.example.jp/send');
SELECT taskflow.configure_channel('line', username => 'line');
SELECT taskflow.configure_channel('email', connect_timeout_ms => 10);
SELECT taskflow.configure_channel('email', timeout_ms => 5000);
SELECT taskflow.configure_channel('email', connections => 0);
SELECT taskflow.configure_channel('email', rate_per_second => 0);
SELECT taskflow.configure_channel('email', daily_quota => -5);
SELECT taskflow.configure_channel('email', quota_time_zone => 'Asia/Osaka');
SELECT taskflow.configure_channel('email', quiet_start => '21:00');
SELECT taskflow.configure_channel('email', quiet_start => '21:00', quiet_end => '21:00');
SELECT taskflow.configure_channel('email', max_per_member => 3);
SELECT taskflow.configure_channel('email', max_per_member => 3, per_member_window => '10 seconds');
SELECT taskflow.configure_channel('email', max_attempts => 0);
SELECT taskflow.configure_channel('email', backoff_base => '2 hours', backoff_max => '1 hour');
SELECT taskflow.configure_channel('email', test_recipients => ARRAY['qa@example.jp', '検証 担当']);
SELECT taskflow.configure_channel('email', test_recipients => '{}');
SELECT taskflow.configure_channel('email', message_id_domain => 'mail example jp');
SELECT taskflow.configure_channel('email', list_id => E'お知らせ <news.example.jp>\r\nBcc: all@example.jp');
SELECT taskflow.configure_channel('email', unsubscribe_url => 'https://example.jp/u?id={{email}}');
SELECT taskflow.configure_channel('email', unsubscribe_url => 'javascript:alert(1)');
SELECT taskflow.configure_channel('email', reset => ARRAY['name']);
SELECT taskflow.configure_channel('email', kind => 'webhook', url => 'https://mail.example.jp/hook',
	webhook_secret_file => current_setting('data_directory') || '/PG_VERSION', username => '',
	password_file => '');
SELECT name, url, connections, rate_per_second, quiet_start, max_attempts FROM taskflow.channel
 ORDER BY name;
-- the error codes applications can rely on
CREATE FUNCTION pg_temp.sqlstate_of(call text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE call;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END
$$;
SELECT call, pg_temp.sqlstate_of('SELECT taskflow.configure_channel(' || call || ')') AS sqlstate
  FROM (VALUES ($$'LINE', kind => 'webhook'$$), ($$'sms', kind => 'fax'$$),
			   ($$'email', url => 'https://mail.example.jp'$$),
			   ($$'email', url => 'smtp://mail.example.jp:99999'$$),
			   ($$'email', password_file => 'smtp-password'$$),
			   ($$'email', password_file => '/nonexistent/taskflow/smtp-password'$$),
			   ($$'email', password_file => '/'$$), ($$'email', connections => 0$$),
			   ($$'email', quiet_start => '21:00'$$), ($$'email', test_recipients => '{}'$$),
			   ($$'email', reset => ARRAY['name']$$),
			   ($$'email', kind => 'webhook', url => 'https://mail.example.jp/hook',
				   webhook_secret_file => current_setting('data_directory') || '/PG_VERSION',
				   username => '', password_file => ''$$)) v (call)
 ORDER BY 1;

-- only superusers configure channels: a channel names files on the server
SET ROLE delivery_app;
SELECT taskflow.configure_channel('sms', url => 'https://sms.example.jp/send');
SELECT pg_temp.sqlstate_of($$SELECT taskflow.configure_channel('sms', url => 'https://sms.example.jp/send')$$);
SELECT taskflow.drop_channel('line');
RESET ROLE;

-- reset puts a setting back to its default ('' clears a text)
SELECT taskflow.configure_channel('line', reset => ARRAY['rate_per_second'], description => '');
SELECT name, rate_per_second, description FROM taskflow.channel WHERE name = 'line';

-- templates name a channel: unknown ones are refused; a webhook channel's
-- body is JSON, its merge fields escaped as JSON strings
SELECT taskflow.create_template('LINE通知', NULL, '{"to": "{{email}}", "text": "{{name}}様、お知らせです"}',
	channel => 'sms');
SELECT taskflow.create_template('LINE通知', NULL, '{"to": "{{email}}", "text": "{{name}}様、お知らせです"}',
	channel => 'line');
INSERT INTO taskflow.member (external_id, email, name) VALUES
	('d-01', 'yamada@example.jp', '山田"太郎"');
SELECT body_text FROM taskflow.preview_template('LINE通知', 1);
SELECT taskflow.drop_channel('line');
SELECT taskflow.drop_channel('email');
SELECT taskflow.drop_channel('fax');

---------------------------------------------------------------- set-up
-- more channels, each with one guardrail, so each scenario stands alone
SELECT taskflow.configure_channel('mail_retry', url => 'smtp://relay.example.jp',
	max_attempts => 4, backoff_base => '1 minute', backoff_max => '3 minutes');
SELECT taskflow.configure_channel('mail_quiet', url => 'smtp://relay.example.jp',
	quiet_start => '21:00', quiet_end => '08:00');
SELECT taskflow.configure_channel('mail_cap', url => 'smtp://relay.example.jp',
	max_per_member => 2, per_member_window => '1 day');
SELECT taskflow.configure_channel('mail_quota', url => 'smtp://relay.example.jp',
	daily_quota => 2, quota_time_zone => 'Asia/Tokyo');
SELECT taskflow.configure_channel('mail_rate', url => 'smtp://relay.example.jp', rate_per_second => 2);
SELECT taskflow.configure_channel('mail_test', url => 'smtp://relay.example.jp',
	test_recipients => ARRAY['qa1@example.jp', 'qa2@example.jp']);
SELECT name, kind, max_attempts, backoff_base, backoff_max, quiet_start, quiet_end, max_per_member,
	   per_member_window, daily_quota, rate_per_second, test_recipients
  FROM taskflow.channel WHERE name LIKE 'mail\_%' ORDER BY name;

SELECT taskflow.create_template('お知らせ', '【会員サイト】{{name}}様へのお知らせ',
	E'{{name}}様\n\n今月のお知らせです。', sender_name => '会員サイト事務局',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('パスワード再設定', '【会員サイト】パスワード再設定のご案内',
	E'{{name}}様\n\nパスワード再設定の手続きを受け付けました。', sender_name => '会員サイト事務局',
	sender_address => 'info@example.jp', transactional => true);
SELECT taskflow.create_template(c.name, '【会員サイト】{{name}}様へのご案内', E'{{name}}様\n\nご案内です。',
	sender_name => '会員サイト事務局', sender_address => 'info@example.jp', channel => c.name)
  FROM taskflow.channel c WHERE c.name LIKE 'mail\_%' ORDER BY c.name;
SELECT taskflow.create_template('夜の取引連絡', '【会員サイト】ご注文を受け付けました', E'{{name}}様\n\nご注文ありがとうございます。',
	sender_name => '会員サイト事務局', sender_address => 'info@example.jp', channel => 'mail_quiet',
	transactional => true);

INSERT INTO taskflow.member (external_id, email, name, tags) VALUES
	('d-02', 'sato@example.jp', '佐藤花子', '{基本}'),
	('d-03', 'suzuki@example.jp', '鈴木一郎', '{基本}'),
	('d-04', 'takahashi@example.jp', '高橋美咲', '{再送}'),
	('d-05', 'tanaka@example.jp', '田中健', '{応答}'),
	('d-06', 'ito@example.jp', '伊藤さくら', '{応答}'),
	('d-07', 'Watanabe@Example.jp', '渡辺翔', '{応答}'),
	('d-08', 'kato@example.jp', '加藤恵', '{配信停止}'),
	('d-09', 'kobayashi@example.jp', '小林直樹', '{深夜}'),
	('d-10', 'nakamura@example.co.uk', '中村愛', '{深夜ロンドン}'),
	('d-11', 'yamamoto@example.jp', '山本大輔', '{頻度}'),
	('d-12', 'matsumoto@example.jp', '松本結衣', '{上限}'),
	('d-13', 'inoue@example.jp', '井上陸', '{上限}'),
	('d-14', 'kimura@example.jp', '木村美月', '{上限}'),
	('d-15', 'hayashi@example.jp', '林優斗', '{速度}'),
	('d-16', 'shimizu@example.jp', '清水陽菜', '{速度}'),
	('d-17', 'yamaguchi@example.jp', '山口蓮', '{速度}'),
	('d-18', 'mori@example.jp', '森彩花', '{速度}'),
	('d-19', 'ikeda@example.jp', '池田湊', '{速度}'),
	('d-20', 'hashimoto@example.jp', '橋本葵', '{テスト}'),
	('d-21', 'abe@example.jp', '阿部悠真', '{テスト}'),
	('d-22', 'ishikawa@example.jp', '石川結菜', '{リース}'),
	('d-23', 'maeda@example.jp', '前田大和', '{再送}');

-- a chain of one automatic task that sends a template to the members with
-- a tag (criteria, task and chain share the name)
CREATE FUNCTION pg_temp.mail_chain(chain text, template text, tag text,
								   zone text DEFAULT 'Asia/Tokyo', test boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM taskflow.save_criteria(chain, format('has_tag(tags, %L)', tag));
	PERFORM taskflow.create_task(chain, 'auto', criteria => chain, template => template);
	PERFORM taskflow.create_chain(chain, tasks => ARRAY[chain], time_zone => zone, test => test);
END
$$;

-- a relay's round: claim what is ready at "at", report the same outcome
-- for all of it 30 seconds later; shows the messages afterwards
CREATE FUNCTION pg_temp.deliver(ch text, wk text, at timestamptz, outcome text,
								code integer DEFAULT NULL, enhanced text DEFAULT NULL,
								reply text DEFAULT NULL)
RETURNS TABLE (id bigint, name text, recipient text, attempts integer, state text,
			   not_before timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
	ids bigint[];
	n integer;
BEGIN
	SELECT array_agg(c.outbox_id ORDER BY c.outbox_id) INTO ids
	  FROM taskflow.claim_messages(ch, wk, 100, as_of => at) c;
	n := coalesce(cardinality(ids), 0);
	PERFORM taskflow.complete_messages(wk, ids, array_fill(outcome, ARRAY[n]),
		array_fill(code, ARRAY[n]), array_fill(enhanced, ARRAY[n]), array_fill(reply, ARRAY[n]),
		at + interval '30 seconds');
	RETURN QUERY SELECT o.outbox_id, m.name, o.recipient, o.attempts, o.state, o.not_before
	  FROM taskflow.outbox o JOIN taskflow.member m USING (member_id)
	 WHERE o.outbox_id = ANY (ids) ORDER BY o.outbox_id;
END
$$;

---------------------------------------------------------------- pending → sending → sent
SELECT pg_temp.mail_chain('基本のお知らせ', 'お知らせ', '基本');
SELECT entered, applied FROM taskflow.run('2026-04-01 10:00+09', '基本のお知らせ');
-- queued with the chain's time zone; nothing to send before they are due
SELECT o.outbox_id, o.recipient, o.subject, o.state, o.not_before, o.time_zone, o.is_test,
	   o.attempts, o.message_id
  FROM taskflow.outbox o ORDER BY o.outbox_id;
SELECT taskflow.next_delivery_at('email', '2026-04-01 09:59+09');
SELECT count(*) FROM taskflow.claim_messages('email', 'w1', 10, as_of => '2026-04-01 09:59+09');
SELECT taskflow.next_delivery_at('email', '2026-04-01 10:00:05+09');

-- worker w1 leases both for 5 minutes: attempts counted, Message-ID fixed
SELECT outbox_id, recipient, state, attempts, lease_owner, lease_expires_at, message_id
  FROM taskflow.claim_messages('email', 'w1', 10, as_of => '2026-04-01 10:00:05+09');
-- a second worker finds nothing: leased rows are skipped
SELECT count(*) FROM taskflow.claim_messages('email', 'w2', 10, as_of => '2026-04-01 10:00:06+09');
-- the next thing to do on this channel: reclaim the lease if w1 never answers
SELECT taskflow.next_delivery_at('email', '2026-04-01 10:00:06+09');

-- w1 reports both sent in one call; a repeated report changes nothing
SELECT taskflow.complete_messages('w1', ARRAY[1, 2]::bigint[], ARRAY['sent', 'sent'],
	ARRAY[250, 250], ARRAY['2.0.0', '2.0.0'], ARRAY['Ok: queued as 4Fq1', 'Ok: queued as 4Fq2'],
	'2026-04-01 10:00:07+09');
SELECT taskflow.complete_messages('w1', ARRAY[1, 2]::bigint[], ARRAY['sent', 'sent'],
	ARRAY[250, 250], ARRAY['2.0.0', '2.0.0'], ARRAY['Ok: queued as 4Fq1', 'Ok: queued as 4Fq2'],
	'2026-04-01 10:00:08+09');
SELECT * FROM pg_temp.mail ORDER BY id;
SELECT o.outbox_id, o.sent_at, o.last_smtp_code, o.last_enhanced_code, o.last_reply, o.lease_owner
  FROM taskflow.outbox o ORDER BY o.outbox_id;
SELECT outbox_id, attempt, worker, recipient, started_at, finished_at, outcome, smtp_code,
	   enhanced_code, reply
  FROM taskflow.delivery_attempt ORDER BY attempt_id;
SELECT * FROM pg_temp.mail_events ORDER BY occurred_at, name;
SELECT taskflow.next_delivery_at('email', '2026-04-01 10:01+09');

---------------------------------------------------------------- 4xx, network errors, timeouts: backoff
-- mail_retry: 4 attempts, waits of 1 minute, 2 minutes, then at most 3
-- minutes, each plus a jitter of up to 25% (the same on every run)
SELECT n AS attempts, taskflow.retry_delay(3, n, '1 minute', '3 minutes') AS message_3,
	   taskflow.retry_delay(4, n, '1 minute', '3 minutes') AS message_4
  FROM generate_series(1, 5) n ORDER BY n;
SELECT pg_temp.mail_chain('契約更新', 'mail_retry', '再送');
SELECT entered, applied FROM taskflow.run('2026-04-02 10:00+09', '契約更新');
-- the relay cannot reach the server, then times out, then gets 451
SELECT * FROM pg_temp.deliver('mail_retry', 'w1', '2026-04-02 10:00+09', 'temporary',
	NULL, NULL, 'Failed to connect to relay.example.jp port 25: Connection refused');
-- nothing is ready before the earlier of the two retries
SELECT taskflow.next_delivery_at('mail_retry', '2026-04-02 10:00:30+09');
SELECT count(*) FROM taskflow.claim_messages('mail_retry', 'w1', 10, as_of => '2026-04-02 10:01:30+09');
SELECT * FROM pg_temp.deliver('mail_retry', 'w1', '2026-04-02 10:02+09', 'temporary',
	NULL, NULL, 'Operation timed out after 60000 milliseconds with 0 bytes received');
SELECT * FROM pg_temp.deliver('mail_retry', 'w1', '2026-04-02 10:05+09', 'temporary',
	451, '4.3.0', 'Temporary local problem, please try again');
-- attempt 4 of 4: 高橋's message fails; 前田's is claimed too, but the
-- worker dies before it reports: the lease expires and the next claim gives
-- it up as well
SELECT outbox_id, attempts, lease_expires_at
  FROM taskflow.claim_messages('mail_retry', 'w1', 10, as_of => '2026-04-02 10:10+09');
SELECT taskflow.complete_messages('w1', ARRAY[3]::bigint[], ARRAY['temporary'], ARRAY[451],
	ARRAY['4.3.0'], ARRAY['Temporary local problem, please try again'], '2026-04-02 10:10:30+09');
SELECT count(*) FROM taskflow.claim_messages('mail_retry', 'w2', 10, as_of => '2026-04-02 10:14:59+09');
SELECT count(*) FROM taskflow.claim_messages('mail_retry', 'w2', 10, as_of => '2026-04-02 10:15+09');
SELECT taskflow.next_delivery_at('mail_retry', '2026-04-02 10:15+09');
SELECT * FROM pg_temp.mail WHERE channel = 'mail_retry' ORDER BY id;
SELECT outbox_id, attempt, worker, started_at, finished_at, outcome, smtp_code, enhanced_code, reply
  FROM taskflow.delivery_attempt WHERE outbox_id IN (3, 4) ORDER BY outbox_id, attempt_id;
SELECT name, kind, occurred_at, attempt, reply, retry_at, reason FROM pg_temp.mail_events
 WHERE name IN ('高橋美咲', '前田大和') ORDER BY name, occurred_at;

---------------------------------------------------------------- 550 vs 450 vs 5.1.1
SELECT pg_temp.mail_chain('応答テスト', 'お知らせ', '応答');
SELECT entered, applied FROM taskflow.run('2026-04-03 10:00+09', '応答テスト');
SELECT outbox_id, recipient FROM taskflow.claim_messages('email', 'w1', 10, as_of => '2026-04-03 10:00+09');
SELECT taskflow.complete_messages('w1', ARRAY[5, 6, 7]::bigint[],
	ARRAY['permanent', 'temporary', 'permanent'], ARRAY[550, 450, 550],
	ARRAY['5.7.1', '4.2.1', '5.1.1'],
	ARRAY['Message rejected as spam', 'Mailbox busy, try again later', 'User unknown'],
	'2026-04-03 10:00:10+09');
-- 550 fails at once; 450 is retried; 5.1.1 (no such mailbox) also
-- suppresses the address, in lower case
SELECT * FROM pg_temp.mail WHERE id IN (5, 6, 7) ORDER BY id;
SELECT address, reason, at, outbox_id FROM taskflow.suppression ORDER BY address;
SELECT name, kind, occurred_at, recipient, reply, retry_at FROM pg_temp.mail_events
 WHERE name IN ('田中健', '伊藤さくら', '渡辺翔') ORDER BY occurred_at, name;
-- 伊藤's mailbox accepts the retry
SELECT * FROM pg_temp.deliver('email', 'w1', '2026-04-03 10:01:30+09', 'sent', 250, '2.0.0', 'Ok');

---------------------------------------------------------------- suppression at claim time
-- 加藤 unsubscribes after the campaign was queued; 渡辺's address bounced:
-- neither gets marketing mail, but both get their transactional mail
SELECT pg_temp.mail_chain('春のキャンペーン', 'お知らせ', '配信停止');
SELECT taskflow.add_tag(7, '配信停止');
SELECT entered, applied FROM taskflow.run('2026-04-04 10:00+09', '春のキャンペーン');
SELECT * FROM pg_temp.mail WHERE channel = 'email' AND state = 'pending' ORDER BY id;
SELECT taskflow.unsubscribe(8, '2026-04-04 10:01+09', 'メール不要');
SELECT count(*) FROM taskflow.claim_messages('email', 'w1', 10, as_of => '2026-04-04 10:02+09');
SELECT * FROM pg_temp.mail WHERE id IN (8, 9) ORDER BY id;
SELECT pg_temp.mail_chain('パスワード再設定', 'パスワード再設定', '配信停止');
SELECT entered, applied FROM taskflow.run('2026-04-04 10:10+09', 'パスワード再設定');
SELECT * FROM pg_temp.deliver('email', 'w1', '2026-04-04 10:11+09', 'sent', 250, '2.0.0', 'Ok');
SELECT name, kind, occurred_at, subject, recipient, reason FROM pg_temp.mail_events
 WHERE name IN ('加藤恵', '渡辺翔') AND occurred_at >= '2026-04-04' ORDER BY occurred_at, name;

---------------------------------------------------------------- quiet hours
-- mail_quiet keeps 21:00-08:00 quiet in each chain's own time zone;
-- transactional mail passes
SELECT pg_temp.mail_chain('夜のセール', 'mail_quiet', '深夜');
SELECT pg_temp.mail_chain('ご注文確認', '夜の取引連絡', '深夜');
SELECT pg_temp.mail_chain('ロンドン店のセール', 'mail_quiet', '深夜ロンドン', 'Europe/London');
SELECT entered, applied FROM taskflow.run('2026-04-05 22:30+09', '夜のセール');
SELECT entered, applied FROM taskflow.run('2026-04-05 22:30+09', 'ご注文確認');
SELECT entered, applied FROM taskflow.run('2026-04-05 22:30+09', 'ロンドン店のセール');
-- at 22:30 in Tokyo (14:30 in London) the order confirmation and 中村's
-- London mail go; 小林's sale waits until 08:00 Tokyo time
SELECT * FROM pg_temp.deliver('mail_quiet', 'w1', '2026-04-05 22:30+09', 'sent', 250, '2.0.0', 'Ok');
SELECT * FROM pg_temp.mail WHERE channel = 'mail_quiet' ORDER BY id;
SELECT taskflow.next_delivery_at('mail_quiet', '2026-04-06 07:59+09');
SELECT count(*) FROM taskflow.claim_messages('mail_quiet', 'w1', 10, as_of => '2026-04-06 07:59:59+09');
SELECT * FROM pg_temp.deliver('mail_quiet', 'w1', '2026-04-06 08:00+09', 'sent', 250, '2.0.0', 'Ok');
-- queued after midnight: it waits until 08:00 the same morning
SELECT pg_temp.mail_chain('早朝のお知らせ', 'mail_quiet', '深夜');
SELECT entered, applied FROM taskflow.run('2026-04-07 02:00+09', '早朝のお知らせ');
SELECT count(*) FROM taskflow.claim_messages('mail_quiet', 'w1', 10, as_of => '2026-04-07 02:00+09');
SELECT * FROM pg_temp.mail WHERE channel = 'mail_quiet' AND state = 'deferred' ORDER BY id;
-- the edges: 21:00 is quiet, 08:00 is not; London has its own night
SELECT t, z, taskflow.quiet_hours_end(t, '21:00', '08:00', z) AS quiet_until
  FROM (VALUES ('2026-04-07 20:59:59+09'::timestamptz, 'Asia/Tokyo'), ('2026-04-07 21:00+09', 'Asia/Tokyo'),
			   ('2026-04-08 07:59:59+09', 'Asia/Tokyo'), ('2026-04-08 08:00+09', 'Asia/Tokyo'),
			   ('2026-04-08 12:00+09', 'Asia/Tokyo'), ('2026-04-08 06:00+09', 'Europe/London'),
			   ('2026-04-08 16:00+09', 'Europe/London')) v (t, z)
 ORDER BY z, t;

---------------------------------------------------------------- frequency cap
-- mail_cap: at most 2 marketing mails per member and day; three chains
-- queue a mail for 山本 at the same time
SELECT pg_temp.mail_chain('頻度1', 'mail_cap', '頻度');
SELECT pg_temp.mail_chain('頻度2', 'mail_cap', '頻度');
SELECT pg_temp.mail_chain('頻度3', 'mail_cap', '頻度');
SELECT entered, applied FROM taskflow.run('2026-04-08 10:00+09', '頻度1');
SELECT entered, applied FROM taskflow.run('2026-04-08 10:00+09', '頻度2');
SELECT entered, applied FROM taskflow.run('2026-04-08 10:00+09', '頻度3');
SELECT * FROM pg_temp.deliver('mail_cap', 'w1', '2026-04-08 10:00+09', 'sent', 250, '2.0.0', 'Ok');
SELECT * FROM pg_temp.mail WHERE channel = 'mail_cap' ORDER BY id;
-- a day later the two mails sent at 10:00:30 are still in the window: the
-- third waits until they leave it
SELECT count(*) FROM taskflow.claim_messages('mail_cap', 'w1', 10, as_of => '2026-04-09 10:00+09');
SELECT * FROM pg_temp.mail WHERE channel = 'mail_cap' AND state = 'deferred' ORDER BY id;
SELECT * FROM pg_temp.deliver('mail_cap', 'w1', '2026-04-09 10:00:30+09', 'sent', 250, '2.0.0', 'Ok');

---------------------------------------------------------------- daily quota
-- mail_quota: 2 messages a day (Tokyo days); three are due at 23:50
SELECT pg_temp.mail_chain('月末のお知らせ', 'mail_quota', '上限');
SELECT entered, applied FROM taskflow.run('2026-04-10 23:50+09', '月末のお知らせ');
SELECT * FROM pg_temp.deliver('mail_quota', 'w1', '2026-04-10 23:50+09', 'sent', 250, '2.0.0', 'Ok');
SELECT * FROM pg_temp.mail WHERE channel = 'mail_quota' ORDER BY id;
SELECT count(*) FROM taskflow.claim_messages('mail_quota', 'w1', 10, as_of => '2026-04-10 23:59:59+09');
SELECT taskflow.next_delivery_at('mail_quota', '2026-04-10 23:59:59+09');
-- a channel with a message still to send cannot be dropped
SELECT taskflow.alter_template('mail_quota', channel => 'email');
SELECT taskflow.drop_channel('mail_quota');
SELECT taskflow.alter_template('mail_quota', channel => 'mail_quota');
-- the next day the quota starts again
SELECT * FROM pg_temp.deliver('mail_quota', 'w1', '2026-04-11 00:00+09', 'sent', 250, '2.0.0', 'Ok');

---------------------------------------------------------------- rate limit, drained by an external relay
-- mail_rate: at most 2 messages a second; a relay on another machine drains it
SELECT pg_temp.mail_chain('新着情報', 'mail_rate', '速度');
SELECT entered, applied FROM taskflow.run('2026-04-12 10:00+09', '新着情報');
SET ROLE delivery_relay;
SELECT outbox_id, recipient FROM taskflow.claim_messages('mail_rate', 'relay-osaka-1', 10,
	as_of => '2026-04-12 10:00:00.2+09');
SELECT outbox_id, recipient FROM taskflow.claim_messages('mail_rate', 'relay-osaka-1', 10,
	as_of => '2026-04-12 10:00:00.7+09');
SELECT taskflow.next_delivery_at('mail_rate', '2026-04-12 10:00:00.7+09');
SELECT outbox_id, recipient FROM taskflow.claim_messages('mail_rate', 'relay-osaka-1', 10,
	as_of => '2026-04-12 10:00:01.1+09');
SELECT outbox_id, recipient FROM taskflow.claim_messages('mail_rate', 'relay-osaka-1', 10,
	as_of => '2026-04-12 10:00:02.5+09');
-- the relay builds each mail with mime_message(); it carries the
-- Message-ID the claim fixed
SELECT outbox_id, message_id, strpos(taskflow.mime_message(outbox_id, '2026-04-12 10:00:03+09'),
	'Message-ID: ' || message_id) > 0 AS in_mail
  FROM taskflow.outbox WHERE channel = 'mail_rate' ORDER BY outbox_id;
-- one report for the five (reply codes are optional)
SELECT taskflow.complete_messages('relay-osaka-1',
	ARRAY(SELECT outbox_id FROM taskflow.outbox WHERE channel = 'mail_rate' ORDER BY outbox_id),
	array_fill('sent'::text, ARRAY[5]), NULL, NULL, NULL, '2026-04-12 10:00:03+09');
SELECT outbox_id, state, sent_at FROM taskflow.outbox WHERE channel = 'mail_rate' ORDER BY outbox_id;
-- a relay only claims and reports
UPDATE taskflow.outbox SET state = 'sent' WHERE channel = 'mail_rate';
SELECT taskflow.configure_channel('mail_rate', rate_per_second => 100);
RESET ROLE;
-- operators and applications cannot claim
SET ROLE delivery_staff;
SELECT count(*) FROM taskflow.claim_messages('mail_rate', 'staff', 10, as_of => '2026-04-12 10:00:05+09');
RESET ROLE;

---------------------------------------------------------------- test chains
-- a chain marked test sends to the channel's test recipients only, one per
-- member, keeping the member's address; it leaves no trace on the timeline
SELECT pg_temp.mail_chain('新サービス案内', 'mail_test', 'テスト', test => true);
SELECT name, is_test FROM taskflow.chain WHERE name = '新サービス案内';
SELECT entered, applied FROM taskflow.run('2026-04-13 10:00+09', '新サービス案内');
SELECT outbox_id, recipient, original_recipient, is_test, message_id
  FROM taskflow.claim_messages('mail_test', 'w1', 10, as_of => '2026-04-13 10:00+09');
SELECT taskflow.complete_messages('w1', ARRAY(SELECT outbox_id FROM taskflow.outbox WHERE is_test ORDER BY 1),
	ARRAY['sent', 'sent'], ARRAY[250, 250], NULL, NULL, '2026-04-13 10:00:10+09');
SELECT outbox_id, recipient, original_recipient, state FROM taskflow.outbox WHERE is_test ORDER BY outbox_id;
SELECT count(*) AS timeline_rows FROM taskflow.event WHERE member_id IN (20, 21);
-- a test chain on a channel without test recipients sends nothing at all
SELECT pg_temp.mail_chain('新サービス案内（メール）', 'お知らせ', 'テスト', test => true);
SELECT entered, applied FROM taskflow.run('2026-04-13 10:05+09', '新サービス案内（メール）');
SELECT count(*) FROM taskflow.claim_messages('email', 'w1', 10, as_of => '2026-04-13 10:05+09');
SELECT * FROM pg_temp.mail WHERE channel = 'email' AND name IN ('橋本葵', '阿部悠真') ORDER BY id;
-- the test flag is switched off when the chain goes live
SELECT taskflow.alter_chain('新サービス案内', test => false);
SELECT name, is_test FROM taskflow.chain WHERE name LIKE '新サービス案内%' ORDER BY name;

---------------------------------------------------------------- lease expiry
-- w1 leases 石川's mail for 5 minutes and hangs; at 10:05 w2 takes it over
-- (same Message-ID, so a mail w1 did send is recognisable as a resend);
-- w1's late report is ignored
SELECT pg_temp.mail_chain('更新のご案内', 'お知らせ', 'リース');
SELECT entered, applied FROM taskflow.run('2026-04-14 10:00+09', '更新のご案内');
SELECT outbox_id, attempts, lease_owner, lease_expires_at, message_id
  FROM taskflow.claim_messages('email', 'w1', 10, lease => '5 minutes', as_of => '2026-04-14 10:00+09');
SELECT count(*) FROM taskflow.claim_messages('email', 'w2', 10, as_of => '2026-04-14 10:04:59+09');
SELECT outbox_id, attempts, lease_owner, lease_expires_at, message_id
  FROM taskflow.claim_messages('email', 'w2', 10, as_of => '2026-04-14 10:05+09');
SELECT taskflow.complete_messages('w1', ARRAY(SELECT outbox_id FROM taskflow.outbox WHERE member_id = 22),
	ARRAY['sent'], ARRAY[250], ARRAY['2.0.0'], ARRAY['Ok (w1)'], '2026-04-14 10:05:10+09');
SELECT taskflow.complete_messages('w2', ARRAY(SELECT outbox_id FROM taskflow.outbox WHERE member_id = 22),
	ARRAY['sent'], ARRAY[250], ARRAY['2.0.0'], ARRAY['Ok (w2)'], '2026-04-14 10:05:20+09');
SELECT a.outbox_id, a.attempt, a.worker, a.started_at, a.finished_at, a.outcome, a.reply
  FROM taskflow.delivery_attempt a JOIN taskflow.outbox o USING (outbox_id)
 WHERE o.member_id = 22 ORDER BY a.attempt_id;
SELECT name, kind, occurred_at, attempt, reply, recorded_by FROM pg_temp.mail_events
 WHERE name = '石川結菜' ORDER BY occurred_at;

---------------------------------------------------------------- operators: cancel and retry
SELECT taskflow.add_tag(2, 'お詫び'), taskflow.add_tag(3, 'お詫び');
SELECT pg_temp.mail_chain('お詫び', 'お知らせ', 'お詫び');
SELECT entered, applied FROM taskflow.run('2026-04-15 10:00+09', 'お詫び');
SELECT outbox_id, recipient FROM taskflow.claim_messages('email', 'w1', 1, as_of => '2026-04-15 10:00+09');
SET ROLE delivery_staff;
SELECT outbox_id, recipient, state FROM taskflow.outbox WHERE state IN ('pending', 'sending') ORDER BY outbox_id;
SELECT taskflow.cancel_message(o.outbox_id, '重複のため', '2026-04-15 10:02+09') FROM taskflow.outbox o
 WHERE o.state = 'pending' AND o.recipient = 'suzuki@example.jp';
SELECT taskflow.cancel_message(o.outbox_id) FROM taskflow.outbox o
 WHERE o.state = 'cancelled' AND o.recipient = 'suzuki@example.jp';
SELECT taskflow.cancel_message(o.outbox_id) FROM taskflow.outbox o WHERE o.state = 'sending';
SELECT taskflow.cancel_message(1);
SELECT taskflow.cancel_message(999);
-- 高橋's failed renewal notice is queued again, with a fresh count of attempts
SELECT taskflow.retry_message(3, '2026-04-15 10:00+09');
SELECT taskflow.retry_message(3, '2026-04-15 10:00+09');
SELECT taskflow.retry_message(1, '2026-04-15 10:00+09');
SELECT outbox_id, recipient, state, attempts, not_before, state_reason FROM taskflow.outbox
 WHERE outbox_id = 3 OR (recipient = 'suzuki@example.jp' AND state = 'cancelled') ORDER BY outbox_id;
RESET ROLE;
SELECT * FROM pg_temp.deliver('mail_retry', 'w1', '2026-04-15 10:01+09', 'sent', 250, '2.0.0', 'Ok');
SELECT name, kind, occurred_at, subject, reason, recorded_by FROM pg_temp.mail_events
 WHERE occurred_at >= '2026-04-15' ORDER BY occurred_at, name;

---------------------------------------------------------------- bad calls
SELECT count(*) FROM taskflow.claim_messages('email', '', 10);
SELECT count(*) FROM taskflow.claim_messages('email', 'w1', 0);
SELECT count(*) FROM taskflow.claim_messages('email', 'w1', 10, '2 days');
SELECT count(*) FROM taskflow.claim_messages('fax', 'w1', 10);
SELECT count(*) FROM taskflow.claim_messages('email', 'w1', 10, as_of => NULL);
SELECT taskflow.complete_messages('w1', ARRAY[1, 2]::bigint[], ARRAY['sent'], NULL, NULL, NULL);
SELECT taskflow.complete_messages('w1', ARRAY[1]::bigint[], ARRAY['bounced'], NULL, NULL, NULL);
SELECT taskflow.complete_messages('w1', '{}', '{}', NULL, NULL, NULL);
-- a disabled channel hands out nothing
SELECT taskflow.add_tag(15, '停止中');
SELECT pg_temp.mail_chain('停止中', 'mail_rate', '停止中');
SELECT entered, applied FROM taskflow.run('2026-04-16 10:00+09', '停止中');
SELECT taskflow.configure_channel('mail_rate', enabled => false);
SELECT taskflow.next_delivery_at('mail_rate', '2026-04-16 10:00+09');
SELECT count(*) FROM taskflow.claim_messages('mail_rate', 'w1', 10, as_of => '2026-04-16 10:00+09');
SELECT taskflow.configure_channel('mail_rate', enabled => true);
SELECT taskflow.next_delivery_at('mail_rate', '2026-04-16 10:00+09');

---------------------------------------------------------------- in all
-- what is left goes out: 佐藤's apology (still leased by w1), the early
-- morning notice, the message of the re-enabled channel
SELECT * FROM pg_temp.mail WHERE state IN ('pending', 'deferred', 'sending') ORDER BY id;
SELECT taskflow.complete_messages('w1', ARRAY[32]::bigint[], ARRAY['sent'], ARRAY[250],
	ARRAY['2.0.0'], ARRAY['Ok'], '2026-04-16 10:00+09');
SELECT * FROM pg_temp.deliver('mail_quiet', 'w1', '2026-04-16 10:00+09', 'sent', 250, '2.0.0', 'Ok');
SELECT * FROM pg_temp.deliver('mail_rate', 'w1', '2026-04-16 10:00+09', 'sent', 250, '2.0.0', 'Ok');
SELECT channel, state, count(*) FROM taskflow.outbox GROUP BY channel, state ORDER BY channel, state;

DROP ROLE delivery_relay, delivery_staff, delivery_app;
