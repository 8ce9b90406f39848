-- Unsubscribe tokens: the List-Unsubscribe link carries a token only the
-- member's own link has; the endpoint checks it.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
SET taskflow.as_of = '2026-04-01 09:00+09';

INSERT INTO taskflow.member (external_id, email, name) VALUES
	('u-1', 'yamada@example.jp', '山田太郎'), ('u-2', 'sato@example.jp', '佐藤花子');
SELECT taskflow.configure_channel('email', unsubscribe_url => 'https://example.jp/unsubscribe?m={{member_id}}&t={{token}}',
	list_id => 'news.example.jp') IS NULL AS configured;
SELECT taskflow.create_template('お知らせ', '【会員サイト】{{name}}様へのお知らせ', '本文',
	sender_name => '会員サイト事務局', sender_address => 'info@example.jp') > 0 AS created;
SELECT taskflow.create_task('お知らせ配信', mode => 'auto', template => 'お知らせ') > 0 AS created;
SELECT taskflow.create_chain('お知らせ', tasks => ARRAY['お知らせ配信'], time_zone => 'Asia/Tokyo') > 0 AS created;
SELECT chain, entered, applied FROM taskflow.run('2026-04-01 09:00+09');

-- each member's mail links to their own token (64 hex characters)
SELECT o.member_id,
	   strpos(replace(taskflow.mime_message(o.outbox_id, '2026-04-01 09:00+09'), E'\r\n ', ''),
			  'https://example.jp/unsubscribe?m=' || o.member_id || '&t='
			  || taskflow.unsubscribe_token(o.member_id) || '>') > 0 AS own_link,
	   length(taskflow.unsubscribe_token(o.member_id)) AS token_length,
	   strpos(taskflow.mime_message(o.outbox_id, '2026-04-01 09:00+09'),
			  'List-Unsubscribe-Post: List-Unsubscribe=One-Click') > 0 AS one_click
  FROM taskflow.outbox o ORDER BY o.member_id;

-- the endpoint: a wrong token, another member's token, NULL: nothing done
SELECT taskflow.unsubscribe_with_token(1, 'deadbeef');
SELECT taskflow.unsubscribe_with_token(1, taskflow.unsubscribe_token(2));
SELECT taskflow.unsubscribe_with_token(1, NULL);
SELECT count(*) AS unsubscribed FROM taskflow.member WHERE unsubscribed_at IS NOT NULL;
-- the member's own token unsubscribes, once
SELECT taskflow.unsubscribe_with_token(1, taskflow.unsubscribe_token(1));
SELECT taskflow.unsubscribe_with_token(1, taskflow.unsubscribe_token(1));
SELECT external_id, unsubscribed_at FROM taskflow.member ORDER BY member_id;
SELECT kind, detail FROM taskflow.timeline(1) WHERE kind = 'unsubscribed';

-- rotating the secret invalidates links already sent
SELECT taskflow.unsubscribe_token(2) AS old_token \gset
SELECT taskflow.rotate_unsubscribe_secret();
SELECT taskflow.unsubscribe_with_token(2, :'old_token');
SELECT taskflow.unsubscribe_token(2) <> :'old_token' AS token_changed;

-- only applications check tokens; nobody reads the secret
CREATE ROLE unsubscribe_op IN ROLE taskflow_operator;
SET ROLE unsubscribe_op;
SELECT taskflow.unsubscribe_token(1);
SELECT * FROM taskflow.unsubscribe_secret;
RESET ROLE;
DROP ROLE unsubscribe_op;

---------------------------------------------------------------- test chains
-- a test chain's mail goes to a tester: it carries no List-Unsubscribe
-- (nor the one-click Post header), since its link would unsubscribe the
-- real member; List-Id stays.  The production mail keeps its link.
-- (山田 unsubscribed above: the test chain's message to him is cancelled.)
SELECT taskflow.configure_channel('email', test_recipients => ARRAY['qa@example.jp']);
SELECT taskflow.create_chain('お知らせ（テスト）', tasks => ARRAY['お知らせ配信'], time_zone => 'Asia/Tokyo',
	test => true) > 0 AS created;
SELECT chain, entered, applied FROM taskflow.run('2026-04-02 09:00+09', 'お知らせ（テスト）');
SELECT outbox_id, recipient, original_recipient
  FROM taskflow.claim_messages('email', 'relay-1', 10, as_of => '2026-04-02 09:00+09');
SELECT o.is_test, o.member_id, o.state,
	   substring(taskflow.mime_message(o.outbox_id, '2026-04-02 09:00+09') from E'\r\nTo: ([^\r]*)') AS "to",
	   strpos(taskflow.mime_message(o.outbox_id, '2026-04-02 09:00+09'), 'List-Unsubscribe') > 0 AS list_unsubscribe,
	   strpos(taskflow.mime_message(o.outbox_id, '2026-04-02 09:00+09'), E'\r\nList-Id: ') > 0 AS list_id
  FROM taskflow.outbox o ORDER BY o.outbox_id;
