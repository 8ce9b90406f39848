-- The mail format (src/mime.c): Japanese subjects and sender names as
-- RFC 2047 encoded-words split on character boundaries, header lines of at
-- most 76 characters, base64 UTF-8 bodies, multipart/alternative (text,
-- then HTML), Date, Message-ID, List-Id, List-Unsubscribe (RFC 8058), header
-- injection refused, and taskflow.mime_message() over an outbox row written
-- by the engine.  Every message is decoded back here, in SQL.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
SET taskflow.as_of = '2026-06-01 08:00+09';

---------------------------------------------------------------- decoding helpers
CREATE SCHEMA mime_test;

-- the lines of a message, numbered (the message ends with CRLF, so the last
-- "line" is empty)
CREATE FUNCTION mime_test.lines(msg text) RETURNS TABLE (n bigint, line text)
LANGUAGE sql IMMUTABLE
AS $$ SELECT l.n, l.line FROM regexp_split_to_table(msg, E'\r\n') WITH ORDINALITY AS l(line, n) $$;

-- a header's value, unfolded (RFC 5322 2.2.3: CRLF before a space removed)
CREATE FUNCTION mime_test.header(msg text, name text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
SELECT substr(h, length(name) + 3)
  FROM regexp_split_to_table(replace(split_part(msg, E'\r\n\r\n', 1), E'\r\n ', ' '), E'\r\n') AS h
 WHERE h LIKE name || ': %' OR h = name || ':'
$$;

-- the encoded-words of a header value, each decoded on its own: a word
-- holding part of a UTF-8 character would fail convert_from()
CREATE FUNCTION mime_test.words(value text)
RETURNS TABLE (n bigint, word text, word_length integer, decoded text)
LANGUAGE sql IMMUTABLE
AS $$
SELECT w.n, w.m[1], length(w.m[1]), convert_from(decode(w.m[2], 'base64'), 'UTF8')
  FROM regexp_matches(value, '(=\?UTF-8\?B\?([A-Za-z0-9+/=]*)\?=)', 'g') WITH ORDINALITY AS w(m, n)
$$;

-- the text of a header value made of encoded-words only
CREATE FUNCTION mime_test.decode(value text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
SELECT CASE WHEN value ~ '^=\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=( =\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=)*$'
			THEN (SELECT string_agg(w.decoded, '' ORDER BY w.n) FROM mime_test.words(value) w)
			ELSE 'not only encoded-words: ' || value END
$$;

-- the body parts, in order, with their content type and decoded text
CREATE FUNCTION mime_test.parts(msg text) RETURNS TABLE (n bigint, content_type text, body text)
LANGUAGE sql IMMUTABLE
AS $$
SELECT p.n, substring(p.piece from 'Content-Type: ([^;\r]+)'),
	   convert_from(decode(replace(substr(p.piece, strpos(p.piece, E'\r\n\r\n') + 4), E'\r\n', ''),
						   'base64'), 'UTF8')
  FROM (SELECT substring(mime_test.header(msg, 'Content-Type') from 'boundary="([^"]+)"')) AS b(boundary),
	   LATERAL unnest(CASE WHEN b.boundary IS NULL THEN ARRAY[msg]
						   ELSE (string_to_array(msg, E'\r\n--' || b.boundary))[2:] END)
			   WITH ORDINALITY AS p(piece, n)
 WHERE p.piece <> E'--\r\n'
$$;

-- the messages under test, built once
CREATE TABLE mime_test.msg (name text PRIMARY KEY, subject text, from_name text,
							body_text text, body_html text, msg text);

---------------------------------------------------------------- a Japanese reminder
-- 【会員サイト】山田太郎様、有効期限まであと7日です: 27 characters, 79 bytes
-- of UTF-8; the sender name, the text and the HTML are Japanese too.
INSERT INTO mime_test.msg (name, subject, from_name, body_text, body_html)
VALUES ('reminder', '【会員サイト】山田太郎様、有効期限まであと7日です', '会員サイト事務局',
		E'山田太郎様\n\nいつもご利用ありがとうございます。\n会員有効期限は 2026-06-08 です。\nマイページから更新のお手続きをお願いいたします。\n',
		E'<p>山田太郎様</p>\n<p>会員有効期限は <b>2026-06-08</b> です。</p>\n');
UPDATE mime_test.msg
   SET msg = taskflow.mime_build(from_name, 'info@example.jp', 'yamada@example.jp', subject, body_text, body_html,
								 message_id => '<101.7@mail.example.jp>', reply_to => 'support@example.jp',
								 list_id => '会員サイトのお知らせ <members.example.jp>',
								 unsubscribe_url => 'https://example.jp/unsubscribe?m=101',
								 date => '2026-06-01 09:00+09', time_zone => 'Asia/Tokyo')
 WHERE name = 'reminder';
-- the whole message, line by line
SELECT l.n, length(l.line) AS len, l.line FROM mime_test.msg m, mime_test.lines(m.msg) l
 WHERE m.name = 'reminder' ORDER BY l.n;
-- the subject and the sender's name decode back exactly; every word decodes
-- on its own (no character split between two words)
SELECT w.n, w.word_length, w.decoded
  FROM mime_test.msg m, mime_test.words(mime_test.header(m.msg, 'Subject')) w
 WHERE m.name = 'reminder' ORDER BY w.n;
SELECT mime_test.decode(mime_test.header(msg, 'Subject')) = subject AS subject_exact,
	   mime_test.decode(split_part(mime_test.header(msg, 'From'), ' <', 1)) = from_name AS from_name_exact,
	   substring(mime_test.header(msg, 'From') from '<(.*)>$') AS from_address,
	   mime_test.decode(split_part(mime_test.header(msg, 'List-Id'), ' <', 1)) AS list_name
  FROM mime_test.msg WHERE name = 'reminder';
-- text first, then HTML, each decoding to the original with CRLF line
-- breaks (the canonical form of text, RFC 2046)
SELECT p.n, p.content_type,
	   p.body = replace(CASE p.n WHEN 1 THEN m.body_text ELSE m.body_html END, E'\n', E'\r\n') AS body_exact,
	   p.body
  FROM mime_test.msg m, mime_test.parts(m.msg) p WHERE m.name = 'reminder' ORDER BY p.n;

---------------------------------------------------------------- long subjects, emoji
INSERT INTO mime_test.msg (name, subject, from_name, body_text, body_html) VALUES
	('long', '【重要なお知らせ】山田太郎様へ：ご契約中のゴールドプランの更新手続きと、来月から始まる新しい会員特典（動画講座・オンライン相談・ポイント2倍キャンペーン）のご案内です。お早めにご確認ください。',
	 '株式会社サンプル 会員サポートセンター（お問い合わせ窓口）', repeat('本文です。', 100), NULL),
	('emoji', '🎉🎊✨ご入会ありがとうございます✨🎊🎉 🍣すし子🎉様へ特典のお知らせ👍👍👍👍👍👍👍👍👍👍',
	 '🍣すし子🎉', E'🎉ご入会ありがとうございます🎉\r\nCRLF と\rCR と\nLF', '<p>🍣</p>'),
	('mixed', 'Re: 【お問い合わせ】Order #12345 の配送について — Thank you for your patience',
	 'Sato Hanako 佐藤花子', 'x', NULL);
UPDATE mime_test.msg
   SET msg = taskflow.mime_build(from_name, 'info@example.jp', 'yamada@example.jp', subject, body_text, body_html,
								 message_id => '<102.7@mail.example.jp>', date => '2026-06-01 09:00+09')
 WHERE name IN ('long', 'emoji', 'mixed');
-- words, lines, the longest line and word, exact decoding
SELECT m.name,
	   (SELECT count(*) FROM mime_test.words(mime_test.header(m.msg, 'Subject'))) AS subject_words,
	   (SELECT max(w.word_length) FROM mime_test.words(mime_test.header(m.msg, 'Subject')) w) AS longest_word,
	   (SELECT count(*) FROM mime_test.lines(m.msg) l WHERE l.line LIKE 'Subject:%' OR
			   l.n > (SELECT s.n FROM mime_test.lines(m.msg) s WHERE s.line LIKE 'Subject:%')
			   AND l.n < (SELECT s.n FROM mime_test.lines(m.msg) s WHERE s.line LIKE 'Message-ID:%')) AS subject_lines,
	   (SELECT max(length(l.line)) FROM mime_test.lines(m.msg) l) AS longest_line,
	   mime_test.decode(mime_test.header(m.msg, 'Subject')) = m.subject AS subject_exact,
	   mime_test.decode(split_part(mime_test.header(m.msg, 'From'), ' <', 1)) = m.from_name AS from_name_exact
  FROM mime_test.msg m ORDER BY m.name;
-- the long subject, as folded
SELECT l.n, length(l.line) AS len, l.line FROM mime_test.msg m, mime_test.lines(m.msg) l
 WHERE m.name = 'long' AND l.n BETWEEN 2 AND 12 ORDER BY l.n;
-- 4-byte characters: each word holds whole emoji
SELECT w.n, w.word_length, w.decoded
  FROM mime_test.msg m, mime_test.words(mime_test.header(m.msg, 'Subject')) w
 WHERE m.name = 'emoji' ORDER BY w.n;
-- bodies: lines of 76 characters; CRLF, lone CR and lone LF all become CRLF
SELECT m.name, p.n, p.content_type, length(p.body) AS chars,
	   p.body = regexp_replace(CASE p.n WHEN 1 THEN m.body_text ELSE m.body_html END,
							   E'\r\n|\r|\n', E'\r\n', 'g') AS body_exact
  FROM mime_test.msg m, mime_test.parts(m.msg) p ORDER BY m.name, p.n;
SELECT l.n, length(l.line) AS len FROM mime_test.msg m, mime_test.lines(m.msg) l
 WHERE m.name = 'long' AND l.n BETWEEN 13 AND 17 ORDER BY l.n;

---------------------------------------------------------------- ASCII headers
-- an ASCII subject stays plain, folded at a space when long; a display
-- name with a comma (a special) is quoted; one without is written as is
SELECT l.line FROM mime_test.lines(taskflow.mime_build('Yamada, Taro', 'info@example.jp', 'taro@example.jp',
		'Your membership expires on 2026-06-08: please renew it from your account page to keep access',
		'Hello', date => '2026-06-01 09:00+09')) l
 ORDER BY l.n;
SELECT mime_test.header(taskflow.mime_build(n, 'info@example.jp', 'taro@example.jp', 'Hi', 'x',
											date => '2026-06-01'), 'From') AS "from"
  FROM unnest(ARRAY['Member Services', 'Taro "TJ" Yamada', 'Example Inc.', 'a\b', '', NULL]) WITH ORDINALITY AS v(n, i)
 ORDER BY v.i;
-- what is not safe as plain ASCII is encoded: text looking like an
-- encoded-word, double spaces, leading spaces, a word longer than a line
SELECT v.s, mime_test.header(m, 'Subject') LIKE '=?UTF-8?B?%' AS encoded,
	   CASE WHEN mime_test.header(m, 'Subject') LIKE '=?UTF-8?B?%'
			THEN mime_test.decode(mime_test.header(m, 'Subject')) = v.s
			ELSE mime_test.header(m, 'Subject') = v.s END AS exact
  FROM (VALUES (1, 'Hello =?UTF-8?B?44GC?= world'), (2, 'two  spaces'), (3, ' leading'),
			   (4, repeat('x', 80)), (5, 'plain words only')) AS v(i, s),
	   LATERAL taskflow.mime_build(NULL, 'info@example.jp', 'taro@example.jp', v.s, 'x', date => '2026-06-01') AS m
 ORDER BY v.i;
-- an empty subject and body, no HTML: one text/plain part
SELECT l.line FROM mime_test.lines(taskflow.mime_build(NULL, 'info@example.jp', 'taro@example.jp', '', '', '',
		message_id => '1.2@example.jp', date => '2026-06-01 00:00+00')) l
 ORDER BY l.n;
-- HTML only: one text/html part
SELECT p.n, p.content_type, p.body
  FROM mime_test.parts(taskflow.mime_build(NULL, 'info@example.jp', 'taro@example.jp', 's', NULL, '<p>お知らせ</p>',
										   date => '2026-06-01')) p ORDER BY p.n;

---------------------------------------------------------------- Date, List-Unsubscribe
SELECT v.zone, mime_test.header(taskflow.mime_build(NULL, 'info@example.jp', 'taro@example.jp', 's', 'x',
													date => '2026-01-04 09:05:07.9+09', time_zone => v.zone), 'Date') AS date
  FROM (VALUES (1, 'Asia/Tokyo'), (2, NULL), (3, 'America/New_York'), (4, 'Asia/Kolkata')) AS v(i, zone)
 ORDER BY v.i;
SELECT taskflow.mime_build(NULL, 'info@example.jp', 'taro@example.jp', 's', 'x', time_zone => 'Mars/Olympus');
-- an https URL is one-click (RFC 8058); http and mailto alone are not;
-- non-ASCII in a URL is percent-encoded
SELECT v.i, mime_test.header(m, 'List-Unsubscribe') AS list_unsubscribe,
	   mime_test.header(m, 'List-Unsubscribe-Post') AS post
  FROM (VALUES (1, 'https://example.jp/u?m=1&t=abc', NULL),
			   (2, 'https://example.jp/u/1', 'unsubscribe@example.jp'),
			   (3, 'http://localhost:8080/解除', NULL),
			   (4, NULL, 'mailto:unsubscribe@example.jp?subject=unsubscribe')) AS v(i, url, mailto),
	   LATERAL taskflow.mime_build(NULL, 'info@example.jp', 'taro@example.jp', 's', 'x',
								   unsubscribe_url => v.url, unsubscribe_mailto => v.mailto) AS m
 ORDER BY v.i;
SELECT mime_test.header(taskflow.mime_build(NULL, 'info@example.jp', 'taro@example.jp', 's', 'x', list_id => v.id), 'List-Id')
  FROM (VALUES (1, 'news.example.jp'), (2, 'Members News <news.example.jp>'), (3, '<news.example.jp>')) AS v(i, id)
 ORDER BY v.i;

---------------------------------------------------------------- header injection
-- a line break or any other control character in a header value is
-- refused, naming the header; so is an address that is not one address
SELECT taskflow.mime_build('事務局', 'info@example.jp', 'taro@example.jp', E'ご案内\r\nBcc: all@example.jp', 'x');
SELECT taskflow.mime_build('ご案内', 'info@example.jp', 'taro@example.jp', E'ご案内\nです', 'x');
SELECT taskflow.mime_build(E'事務局\nBcc: all@example.jp', 'info@example.jp', 'taro@example.jp', 's', 'x');
SELECT taskflow.mime_build('事務局', E'info@example.jp\r\nBcc: all@example.jp', 'taro@example.jp', 's', 'x');
SELECT taskflow.mime_build('事務局', 'info@example.jp', E'taro@example.jp\nBcc: all@example.jp', 's', 'x');
SELECT taskflow.mime_build('事務局', 'info@example.jp', 'taro@example.jp', 's', 'x',
						   reply_to => E'support@example.jp\r\nBcc: all@example.jp');
SELECT taskflow.mime_build('事務局', 'info@example.jp', 'taro@example.jp', 's', 'x',
						   list_id => E'news.example.jp\r\nBcc: all@example.jp');
SELECT taskflow.mime_build('事務局', 'info@example.jp', 'taro@example.jp', 's', 'x',
						   unsubscribe_url => E'https://example.jp/u\r\nBcc: all@example.jp');
SELECT taskflow.mime_build('事務局', 'info@example.jp', 'taro@example.jp', 's', 'x',
						   message_id => E'<1.2@example.jp>\r\nBcc: all@example.jp');
-- tab, DEL and a C1 control (U+0085, "next line") are control characters too
SELECT taskflow.mime_build('事務局', 'info@example.jp', 'taro@example.jp', E'ご\t案内', 'x');
SELECT taskflow.mime_build('事務局', 'info@example.jp', 'taro@example.jp', E'ご案内\x7f', 'x');
SELECT taskflow.mime_build('事務局', 'info@example.jp', 'taro@example.jp', 'ご案内' || chr(133), 'x');
-- addresses: one plain ASCII address each
SELECT taskflow.mime_build('事務局', 'Info <info@example.jp>', 'taro@example.jp', 's', 'x');
SELECT taskflow.mime_build('事務局', 'info@example.jp', 'taro@example.jp, hanako@example.jp', 's', 'x');
SELECT taskflow.mime_build('事務局', 'info@example.jp', '山田@例え.jp', 's', 'x');
SELECT taskflow.mime_build('事務局', 'info@example.jp', NULL, 's', 'x');
SELECT taskflow.mime_build('事務局', 'info@example.jp', 'taro@example.jp', 's', 'x', message_id => 'no-at-sign');
SELECT taskflow.mime_build('事務局', 'info@example.jp', 'taro@example.jp', 's', 'x', list_id => 'お知らせ');
-- bodies may hold tabs and line breaks
SELECT p.body = E'a\tb\r\nc' AS body_exact
  FROM mime_test.parts(taskflow.mime_build(NULL, 'info@example.jp', 'taro@example.jp', 's', E'a\tb\nc')) p;

---------------------------------------------------------------- an outbox row
-- the engine writes the row; mime_message() builds the mail the delivery
-- worker sends: the Message-ID comes from the row, so a resend (another
-- as_of, after a crash) carries the same id; the Date is in the chain's zone
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, expires_at) VALUES
	('mime-1', 'yamada@example.jp', '山田太郎', 'paid', '2025-06-08 10:00+09', '2026-06-08 23:59+09'),
	('mime-2', 'sato@example.jp', '佐藤花子', 'paid', '2025-06-05 10:00+09', '2026-06-05 23:59+09');
SELECT taskflow.save_criteria('期限7日以内', $$status = 'paid' AND days_until(expires_at) BETWEEN 0 AND 7$$);
SELECT taskflow.create_template('期限のご案内', '【会員サイト】{{name}}様、会員有効期限が近づいています',
	E'{{name}}様\n\n会員有効期限は {{expires_at}} です。', E'<p>{{name}}様</p><p>有効期限: {{expires_at}}</p>',
	sender_name => '会員サイト事務局', sender_address => 'info@example.jp', reply_to => 'support@example.jp');
SELECT taskflow.create_task('期限のご案内', 'auto', criteria => '期限7日以内', template => '期限のご案内');
SELECT taskflow.create_chain('期限リマインド', ARRAY['期限のご案内'], schedule => 'daily at 09:00',
							 time_zone => 'Asia/Tokyo');
SELECT chain, entered, applied FROM taskflow.run('2026-06-01 09:00+09');
SELECT o.recipient, o.sender_name, o.subject FROM taskflow.outbox o ORDER BY o.outbox_id;
CREATE TABLE mime_test.sent AS
SELECT o.outbox_id, o.chain_id, o.recipient, o.subject, o.sender_name, o.body_text, o.body_html,
	   taskflow.mime_message(o.outbox_id, '2026-06-01 09:00:05+09') AS first_try,
	   taskflow.mime_message(o.outbox_id, '2026-06-01 09:47:00+09') AS resend
  FROM taskflow.outbox o;
SELECT s.recipient,
	   mime_test.header(s.first_try, 'Message-ID') = format('<%s.%s@example.jp>', s.outbox_id, s.chain_id) AS derived_id,
	   mime_test.header(s.first_try, 'Message-ID') = mime_test.header(s.resend, 'Message-ID') AS same_id_on_resend,
	   mime_test.header(s.first_try, 'Date') AS date, mime_test.header(s.resend, 'Date') AS resend_date,
	   mime_test.header(s.first_try, 'To') AS "to", mime_test.header(s.first_try, 'Reply-To') AS reply_to,
	   mime_test.decode(mime_test.header(s.first_try, 'Subject')) = s.subject AS subject_exact,
	   mime_test.decode(split_part(mime_test.header(s.first_try, 'From'), ' <', 1)) = s.sender_name AS from_name_exact,
	   (SELECT array_agg(p.content_type ORDER BY p.n) FROM mime_test.parts(s.first_try) p) AS parts,
	   (SELECT bool_and(p.body = replace(CASE p.n WHEN 1 THEN s.body_text ELSE s.body_html END, E'\n', E'\r\n'))
		  FROM mime_test.parts(s.first_try) p) AS bodies_exact,
	   (SELECT max(length(l.line)) FROM mime_test.lines(s.first_try) l) AS longest_line
  FROM mime_test.sent s ORDER BY s.recipient;
-- the same bytes apart from the Date: the boundary is stable too
SELECT replace(s.first_try, mime_test.header(s.first_try, 'Date'), '') =
	   replace(s.resend, mime_test.header(s.resend, 'Date'), '') AS same_message
  FROM mime_test.sent s ORDER BY s.outbox_id;
SELECT taskflow.mime_message(-1, '2026-06-01 09:00+09');

---------------------------------------------------------------- all messages above
-- pure ASCII, CRLF only (no bare CR or LF), no line over 76 characters
SELECT count(*) AS messages,
	   count(*) FILTER (WHERE m.msg !~ '^[\x20-\x7e\r\n]*$') AS not_ascii,
	   count(*) FILTER (WHERE strpos(replace(m.msg, E'\r\n', ''), E'\r') > 0
						   OR strpos(replace(m.msg, E'\r\n', ''), E'\n') > 0) AS bare_cr_or_lf,
	   count(*) FILTER (WHERE right(m.msg, 2) <> E'\r\n') AS not_ending_in_crlf,
	   sum((SELECT count(*) FROM mime_test.lines(m.msg) l WHERE length(l.line) > 76)) AS lines_over_76
  FROM (SELECT msg FROM mime_test.msg UNION ALL SELECT first_try FROM mime_test.sent
		UNION ALL SELECT resend FROM mime_test.sent) AS m(msg);

---------------------------------------------------------------- privileges
-- the application and operators may build mail; the mail of an outbox
-- row only relays, operators and the role owning its chain (these chains
-- are the superuser's); PUBLIC nothing
CREATE ROLE mime_app IN ROLE taskflow_app;
CREATE ROLE mime_operator IN ROLE taskflow_operator;
CREATE ROLE mime_relay IN ROLE taskflow_relay;
CREATE ROLE mime_nobody;
SELECT min(outbox_id) AS first_message FROM taskflow.outbox \gset
SET ROLE mime_app;
SELECT length(taskflow.mime_build('事務局', 'info@example.jp', 'taro@example.jp', 's', 'x')) > 0 AS built;
SELECT taskflow.mime_message(:first_message, '2026-06-01 09:00+09');
RESET ROLE;
SET ROLE mime_operator;
SELECT strpos(taskflow.mime_message(:first_message, '2026-06-01 09:00+09'), E'\r\nTo: ') > 0 AS built;
RESET ROLE;
SET ROLE mime_relay;
SELECT strpos(taskflow.mime_message(:first_message, '2026-06-01 09:00+09'), E'\r\nTo: ') > 0 AS built;
RESET ROLE;
SET ROLE mime_nobody;
SELECT taskflow.mime_build('事務局', 'info@example.jp', 'taro@example.jp', 's', 'x');
SELECT taskflow.mime_message(:first_message, '2026-06-01 09:00+09');
RESET ROLE;

DROP ROLE mime_app;
DROP ROLE mime_operator;
DROP ROLE mime_relay;
DROP ROLE mime_nobody;
DROP SCHEMA mime_test CASCADE;
