-- A gateway channel (SMS, LINE) addresses each member by a custom
-- property — a phone number, a LINE id — instead of the e-mail address:
-- configure_channel(recipient_property => 'phone').  A member without it
-- gets nothing on that channel (cancelled as queued, "member has no
-- phone"), one without an e-mail still gets it; the address is read again
-- when the message is claimed; the property cannot be dropped or retyped
-- while a channel uses it.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
SET taskflow.as_of = '2026-05-01 09:00+09';

SELECT taskflow.define_property('phone', 'text', description => '携帯電話番号');
SELECT taskflow.define_property('visits', 'number');
SELECT taskflow.define_property('billing_email', 'email');
SELECT taskflow.configure_channel('sms', url => 'https://sms.example.jp/send',
	webhook_secret_file => current_setting('data_directory') || '/PG_VERSION',
	recipient_property => 'phone');
SELECT name, kind, recipient_property FROM taskflow.channel ORDER BY name;

-- what cannot hold an address is refused
SELECT taskflow.configure_channel('sms', recipient_property => 'fax');
SELECT taskflow.configure_channel('sms', recipient_property => 'visits');
SELECT taskflow.configure_channel('email', recipient_property => 'phone');
SELECT taskflow.configure_channel('email', recipient_property => 'billing_email');
SELECT taskflow.configure_channel('email', reset => ARRAY['recipient_property']);
SELECT name, recipient_property FROM taskflow.channel ORDER BY name;
-- nor can the property go while the channel uses it
SELECT taskflow.drop_property('phone');
SELECT taskflow.define_property('phone', 'number');

SELECT taskflow.create_template('予約SMS', NULL,
	$${"to": "{{properties.phone}}", "text": "{{name}}様、ご予約ありがとうございます"}$$,
	channel => 'sms');
SELECT taskflow.create_task('予約SMS', 'auto', template => '予約SMS');
SELECT taskflow.create_chain('予約SMS', ARRAY['予約SMS'], time_zone => 'Asia/Tokyo');
INSERT INTO taskflow.member (external_id, email, name, properties) VALUES
	('s-1', NULL, '鈴木一郎', '{"phone": "09033334444"}'),
	('s-2', 'kato@example.jp', '加藤美咲', '{}'),
	('s-3', 'mori@example.jp', '森大輔', '{"phone": "08011112222"}');
-- the preview says who would not get it
SELECT member_name, subject
  FROM taskflow.preview('2026-05-01 09:00+09', '2026-05-01 09:10+09', '予約SMS')
 WHERE event = 'applied' ORDER BY member_id;
SELECT * FROM taskflow.run('2026-05-01 09:05+09');
SELECT m.name, o.recipient, o.state, o.state_reason
  FROM taskflow.outbox o JOIN taskflow.member m USING (member_id) ORDER BY o.outbox_id;

-- 森 changes his phone before the message is sent: it goes to the new one
-- (the webhook request's X-Taskflow-Recipient header; the body was
-- rendered when the message was queued)
UPDATE taskflow.member SET properties = '{"phone": "08099998888"}' WHERE external_id = 's-3';
SELECT c.recipient, c.body_text
  FROM taskflow.claim_messages('sms', 'w1', 10, as_of => '2026-05-01 09:06+09') c
 ORDER BY c.outbox_id;
