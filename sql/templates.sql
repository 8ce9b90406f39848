-- Message templates: merge fields, rendering (Japanese, escaping, dates,
-- defaults), missing fields, validation errors, alter/drop, privileges.
SET client_min_messages = warning;	-- whether an earlier test left it installed
DROP EXTENSION IF EXISTS taskflow CASCADE;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never

---------------------------------------------------------------- members
SELECT taskflow.define_property('plan', 'list', ARRAY['ブロンズ', 'シルバー', 'ゴールド'], '会員プラン');
SELECT taskflow.define_property('points', 'number');
SELECT taskflow.define_property('renewal_date', 'date');
SELECT taskflow.define_property('newsletter_ok', 'boolean');

INSERT INTO taskflow.member (external_id, email, name, name_kana, status, joined_at, expires_at, birthday, tags, properties) VALUES
 ('t-001', 'yamada@example.jp', '山田太郎', 'ヤマダタロウ', 'paid', '2026-01-10 09:00+09', '2026-12-05 00:00+09', '1980-02-29',
  '{優良会員,動画講座}', '{"plan": "ゴールド", "points": 1200, "renewal_date": "2026-12-01", "newsletter_ok": true}'),
 ('t-002', 'sato@example.jp', '佐藤花子', NULL, 'trial', '2026-11-15 12:30+09', '2026-11-29 12:00+09', NULL, '{}', '{}'),
 ('t-003', 'tanaka@example.jp', '<script>alert("x")</script> & 田中''s', NULL, 'paid', '2026-03-01 10:00+09', '2027-03-01 00:00+00', NULL,
  '{}', '{"plan": "シルバー"}'),
 ('t-004', NULL, '', NULL, 'newsletter', '2025-05-20 08:00+09', NULL, NULL, '{}', '{"points": 0}'),
 ('t-005', 'sushi@example.jp', '🍣すし子🎉', NULL, 'paid', '2026-02-14 23:59+09', NULL, '2000-01-01', '{"A&B"}', '{"plan": "ブロンズ"}'),
 ('t-006', 'crlf@example.jp', E'改行\r\nBcc: all@example.jp', NULL, 'paid', '2026-04-01 00:00+09', NULL, NULL, '{}', '{}');

---------------------------------------------------------------- merge fields
-- the tokenizer: distinct fields in order of first use; whitespace and
-- defaults inside braces; \{{ and \}} are literal braces
SELECT taskflow.template_fields('{{name}}様、{{ properties.plan | 未設定 }}の{{name}}です \{{literal\}}');
SELECT taskflow.template_fields('差し込みなし');
SELECT taskflow.template_fields(NULL);
-- syntax errors give the character position (characters, not bytes)
SELECT taskflow.template_fields('こんにちは{{name');
SELECT taskflow.template_fields('{{name}}様}}');
SELECT taskflow.template_fields('{{ }}様');
SELECT taskflow.template_fields('{{|お客様}}様');
SELECT taskflow.template_fields('{{名前}}様');
SELECT taskflow.template_fields('{{name {{email}}');
SELECT taskflow.template_fields('{{properties.}}');
SELECT taskflow.template_fields(E'お知らせ{{na\nme}}', 'body_text of template "例"');

---------------------------------------------------------------- templates
SELECT taskflow.create_template(
	name => '期限リマインド',
	subject => '【会員サイト】{{name|お客様}}様、有効期限まであと7日です',
	body_text => E'{{ name | お客様 }}様\n\n'
		'いつもご利用ありがとうございます。\n'
		'ご契約プラン「{{properties.plan|未設定}}」の有効期限は {{expires_at}} です。\n'
		'保有ポイント: {{properties.points|0}}pt（更新日 {{properties.renewal_date|未定}}）\n'
		'タグ: {{tags|なし}}\n'
		'ご入会日: {{joined_at}} / 誕生日: {{birthday|未登録}}\n',
	body_html => '<p>{{name|お客様}}様</p><p>プラン: <b>{{properties.plan|未設定}}</b>、有効期限: {{expires_at|なし}}</p>'
		'<p>{{tags|タグ&なし}}</p>',
	sender_name => '会員サイト事務局',
	sender_address => 'info@example.jp',
	reply_to => 'support@example.jp',
	description => '有効期限7日前のリマインド');
SELECT name, channel, subject, sender_name, sender_address, reply_to, transactional, missing_field, description
  FROM taskflow.template ORDER BY template_id;

-- subjects: values on one line (CR/LF of a value cannot add a header)
SELECT m.external_id, r.subject
  FROM taskflow.template t, taskflow.member m, LATERAL taskflow.render_message(t, m) r
 WHERE t.name = '期限リマインド' ORDER BY m.member_id;
-- text bodies: values as they are; timestamps in the session time zone,
-- dates, numbers, tags as a list; defaults for NULL, empty or missing values
SELECT m.external_id, r.body_text
  FROM taskflow.template t, taskflow.member m, LATERAL taskflow.render_message(t, m) r
 WHERE t.name = '期限リマインド' ORDER BY m.member_id;
-- HTML bodies: values and defaults HTML-escaped, the template's own markup not
SELECT m.external_id, r.body_html
  FROM taskflow.template t, taskflow.member m, LATERAL taskflow.render_message(t, m) r
 WHERE t.name = '期限リマインド' ORDER BY m.member_id;

-- timestamps follow the session's TimeZone
SET TimeZone = 'UTC';
SELECT subject, body_text FROM taskflow.preview_template('期限リマインド', 1);
SET TimeZone = 'Asia/Tokyo';

-- the preview users call; unknown template or member
SELECT * FROM taskflow.preview_template('期限リマインド', 3);
SELECT * FROM taskflow.preview_template('存在しない', 1);
SELECT * FROM taskflow.preview_template('期限リマインド', 999);

-- render_message is inlined: "(render_message(t, m)).*" is one C call per
-- part, with no conversion of the member row to jsonb
CREATE FUNCTION pg_temp.render_calls(query text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
	line text;
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || query LOOP
		IF line ~ 'render' THEN
			RETURN NEXT regexp_replace(btrim(line), '^Output: ', '');
		END IF;
	END LOOP;
END
$$;
SELECT * FROM pg_temp.render_calls(
	'SELECT (taskflow.render_message(t, m)).* FROM taskflow.template t, taskflow.member m');

---------------------------------------------------------------- missing fields
-- refuse: no message for a member without a value; the error names the
-- field and the member; a field with a default never refuses
SELECT taskflow.create_template('入金確認', '{{name}}様、お振込みを確認しました',
	E'{{name}}様\nプラン: {{properties.plan}}\nポイント: {{properties.points|0}}',
	missing_field => 'refuse', transactional => true,
	sender_address => 'info@example.jp');
SELECT (taskflow.render_message(t, m)).* FROM taskflow.template t, taskflow.member m
 WHERE t.name = '入金確認' AND m.external_id = 't-001';
SELECT r.subject FROM taskflow.template t, taskflow.member m,
	LATERAL taskflow.render_message(t, m) r
 WHERE t.name = '入金確認' AND m.external_id = 't-002';
SELECT r.subject FROM taskflow.template t, taskflow.member m,
	LATERAL taskflow.render_message(t, m) r
 WHERE t.name = '入金確認' AND m.external_id = 't-004';
SELECT * FROM taskflow.preview_template('入金確認', 2);
-- an empty default is a default: never refused
SELECT taskflow.alter_template('入金確認', body_text => E'{{name}}様\nプラン: {{properties.plan|}}');
SELECT body_text FROM taskflow.preview_template('入金確認', 2);

---------------------------------------------------------------- render() with jsonb
-- to_jsonb of a member row: properties nested, timestamps formatted
SELECT m.external_id,
	   taskflow.render('{{name|お客様}}様 入会 {{joined_at}} 誕生日 {{birthday|-}} タグ {{tags|-}} プラン {{properties.plan|-}} {{properties.newsletter_ok|-}}',
					   to_jsonb(m)) AS text
  FROM taskflow.member m ORDER BY m.member_id;
SELECT taskflow.render('<p>{{name}}</p>', to_jsonb(m), html => true)
  FROM taskflow.member m WHERE m.external_id = 't-003';
SELECT taskflow.render('{{ greeting | こんにちは🎁 }}、{{who}}さん', '{"who": "世界"}');
SELECT taskflow.render('{{a.b.c}} {{list}} {{obj}}', '{"a": {"b": {"c": "深い"}}, "list": ["一", "", null, 2, true], "obj": {"k": "値"}}');
SELECT taskflow.render(NULL, '{}') IS NULL AS null_template;
SELECT taskflow.render('{{name|お客様}}様', NULL);
SELECT taskflow.render('{{properties.plan}}', to_jsonb(m), refuse_missing => true)
  FROM taskflow.member m WHERE m.external_id = 't-002';
SELECT taskflow.render('{{name}}', '{"member_id": 7}', refuse_missing => true);
SELECT taskflow.render('{{name}}', '["not", "an", "object"]');
SELECT taskflow.render_member('{{name}}', m, 'body') FROM taskflow.member m WHERE m.member_id = 1;
-- a syntax error at render time
SELECT taskflow.render('{{name', '{}');

---------------------------------------------------------------- webhook
SELECT taskflow.create_template('入会通知', NULL,
	'{"text": "{{name}}さんが入会しました", "member": {"id": {{member_id}}, "plan": "{{properties.plan|なし}}"\}}',
	channel => 'webhook');
SELECT body_text FROM taskflow.preview_template('入会通知', 1);
-- values are escaped as JSON-string content: every body stays valid JSON
SELECT m.external_id, r.subject IS NULL AS no_subject, (r.body_text::jsonb) ->> 'text' AS text,
	   r.body_text::jsonb -> 'member' AS member
  FROM taskflow.template t, taskflow.member m, LATERAL taskflow.render_message(t, m) r
 WHERE t.name = '入会通知' ORDER BY m.member_id;
SELECT body_text FROM taskflow.preview_template('入会通知', 3);

---------------------------------------------------------------- long bodies
-- a TOASTed (compressed or out-of-line) template renders like any other
SELECT taskflow.alter_template('期限リマインド',
	body_html => repeat('<p>お知らせ</p>', 3000) || '{{name|お客様}}様');
SELECT taskflow.alter_template('入金確認',
	body_text => (SELECT string_agg(md5(i::text), '' ORDER BY i) FROM generate_series(1, 600) i) || '{{name|お客様}}様');
SELECT name, pg_column_size(body) < octet_length(body) AS compressed,
	   pg_column_size(body) > 2000 AS out_of_line
  FROM (SELECT name, coalesce(body_html, body_text) AS body FROM taskflow.template) t
 WHERE name IN ('期限リマインド', '入金確認') ORDER BY name;
SELECT t.name, m.external_id, length(r.body_html) AS html_length, right(r.body_html, 12) AS html_end,
	   length(r.body_text) AS text_length, right(r.body_text, 8) AS text_end
  FROM taskflow.template t, taskflow.member m, LATERAL taskflow.render_message(t, m) r
 WHERE t.name IN ('期限リマインド', '入金確認') AND m.external_id IN ('t-001', 't-005')
 ORDER BY 1, 2;

-- more templates than the per-query cache holds, interleaved row by row
SELECT taskflow.create_template('テンプレ' || i, '件名' || i || ' {{name|お客様}}', '本文' || i,
	sender_address => 'info@example.jp')
  FROM generate_series(1, 5) i;
SELECT m.external_id, string_agg(r.subject, ' | ' ORDER BY t.template_id) AS subjects
  FROM taskflow.member m CROSS JOIN taskflow.template t, LATERAL taskflow.render_message(t, m) r
 WHERE t.name LIKE 'テンプレ%' AND m.member_id <= 2
 GROUP BY m.external_id ORDER BY 1;

---------------------------------------------------------------- bad templates
-- unknown field, unknown property
SELECT taskflow.create_template('悪い1', '{{nmae}}様', '本文',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('悪い2', '件名', 'プラン: {{properties.rank}}',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('悪い3', '件名', '本文', '<p>{{properties}}</p>',
	sender_address => 'info@example.jp');
-- syntax: unclosed, stray, empty, bad name
SELECT taskflow.create_template('悪い4', '件名', E'山田様\n{{name',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('悪い5', '件名', '本文', '<style>p{color:red}}</style>',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('悪い6', '【お知らせ】{{}}', '本文',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('悪い7', '件名', '{{お名前}}様',
	sender_address => 'info@example.jp');
-- header injection: CR/LF or control characters in headers
SELECT taskflow.create_template('悪い8', E'件名\r\nBcc: all@example.jp', '本文',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('悪い9', '件名', '本文', sender_name => E'事務局\nX-Evil: 1',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('悪い10', '件名', '本文', sender_address => E'info@example.jp\r\nBcc: all@example.jp');
SELECT taskflow.create_template('悪い11c1', E'件名\u0085改行', '本文', sender_address => 'info@example.jp');
SELECT taskflow.create_template('悪い11n', '件名', '本文', sender_name => E'事務局\u0085',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('悪い11', E'件名\tタブ', '本文',
	sender_address => 'info@example.jp');
-- addresses
SELECT taskflow.create_template('悪い12', '件名', '本文', sender_address => 'info@@example.jp');
SELECT taskflow.create_template('悪い13', '件名', '本文', reply_to => 'support example.jp',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('悪い14', '件名', '本文', sender_address => '事務局 <info@example.jp>');
-- subject: empty, blank, too long (333 Japanese characters = 999 bytes)
SELECT taskflow.create_template('悪い15', '', '本文',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('悪い16', '   ', '本文',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('悪い17', repeat('あ', 333), '本文',
	sender_address => 'info@example.jp');
SELECT octet_length(repeat('あ', 332)) AS bytes, taskflow.create_template('長い件名', repeat('あ', 332), '本文',
	sender_address => 'info@example.jp') > 0 AS created;
-- channel, missing_field, bodies
SELECT taskflow.create_template('悪い18', '件名', '本文', channel => 'sms');
SELECT taskflow.create_template('悪い19', '件名', '本文', missing_field => 'skip',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('悪い20', '件名', NULL,
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('悪い21', '件名', E'本文\u0007ベル',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('悪い22', '件名', '本文', E'<p>\u001b[31m</p>',
	sender_address => 'info@example.jp');
-- name
SELECT taskflow.create_template('期限リマインド', '件名', '本文',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('', '件名', '本文',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template(NULL, '件名', '本文',
	sender_address => 'info@example.jp');
-- nothing of the bad ones was saved
SELECT count(*) AS bad_saved FROM taskflow.template WHERE name LIKE '悪い%';

---------------------------------------------------------------- alter, drop
SELECT taskflow.alter_template('期限リマインド',
	subject => '【会員サイト】{{name|お客様}}様、有効期限まであと3日です',
	body_html => '', reply_to => '', description => '有効期限3日前のリマインド');
SELECT name, subject, body_html IS NULL AS no_html, reply_to, sender_address, description,
	   updated_at >= created_at AS updated
  FROM taskflow.template WHERE name = '期限リマインド';
-- a bad change is refused and changes nothing
SELECT taskflow.alter_template('期限リマインド', subject => '{{name}}様 {{unknown_field}}');
SELECT taskflow.alter_template('期限リマインド', channel => 'fax');
SELECT taskflow.alter_template('期限リマインド', subject => '');
SELECT subject FROM taskflow.template WHERE name = '期限リマインド';
-- a webhook needs no subject; an e-mail does
SELECT taskflow.alter_template('入会通知', channel => 'email');
-- rename
SELECT taskflow.alter_template('テンプレ1', new_name => 'テンプレ2');
SELECT taskflow.alter_template('テンプレ1', new_name => '初回案内');
SELECT taskflow.alter_template('存在しない', subject => '件名');
SELECT name FROM taskflow.template WHERE name IN ('テンプレ1', '初回案内');
-- drop
SELECT taskflow.template_used_by(template_id) FROM taskflow.template WHERE name = '初回案内';
SELECT taskflow.drop_template('初回案内');
SELECT taskflow.drop_template('初回案内');
SELECT count(*) FROM taskflow.template WHERE name = '初回案内';

---------------------------------------------------------------- privileges
CREATE ROLE tf_tpl_app IN ROLE taskflow_app;
CREATE ROLE tf_tpl_op IN ROLE taskflow_operator;
CREATE ROLE tf_tpl_nobody;
SET ROLE tf_tpl_app;
SELECT taskflow.create_template('アプリ作成', '{{name}}様へ', 'ようこそ',
	sender_address => 'info@example.jp') > 0 AS created;
SELECT subject FROM taskflow.preview_template('アプリ作成', 1);
SELECT taskflow.alter_template('アプリ作成', body_text => 'ようこそ！');
INSERT INTO taskflow.template (name, subject, body_text) VALUES ('直接', '件名', '本文');
UPDATE taskflow.template SET subject = E'件名\r\nBcc: x@example.jp';
SELECT taskflow.drop_template('アプリ作成');
RESET ROLE;
SET ROLE tf_tpl_op;
SELECT subject FROM taskflow.preview_template('期限リマインド', 1);
SELECT count(*) > 0 AS can_read FROM taskflow.template;
SELECT taskflow.create_template('運用者作成', '件名', '本文',
	sender_address => 'info@example.jp');
SELECT taskflow.drop_template('期限リマインド');
RESET ROLE;
SET ROLE tf_tpl_nobody;
SELECT taskflow.create_template('部外者作成', '件名', '本文',
	sender_address => 'info@example.jp');
SELECT * FROM taskflow.template;
RESET ROLE;
DROP ROLE tf_tpl_app, tf_tpl_op, tf_tpl_nobody;
