-- A catalogue of bad inputs across taskflow's public functions, settings
-- and bulk loads: members and definitions, criteria, templates, tasks,
-- chains, waits, schedules, time zones, anchors and offsets, the engine,
-- channels and delivery, mail headers with CR/LF, over-long values, invalid
-- UTF-8 in COPY, negative and huge intervals, NULL in every argument of
-- every function.  Each is refused with a clear error, and afterwards
-- every table is exactly as it was.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
SET taskflow.as_of = '2027-05-01 00:00+09';

---------------------------------------------------------------- what exists
SELECT taskflow.define_property('plan', 'list', ARRAY['ブロンズ', 'シルバー', 'ゴールド'], '会員プラン');
SELECT taskflow.define_property('points', 'number');
SELECT taskflow.define_property('renewal_date', 'date');
SELECT taskflow.define_property('company', 'text');
SELECT taskflow.create_group('オンラインサロン');
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, tags, properties) VALUES
	('b-1', 'yamada@example.jp', '山田太郎', 'trial', '2027-04-20 10:00+09', '{}', '{"plan": "ゴールド", "points": 120}'),
	('b-2', 'sato@example.jp', '佐藤花子', 'trial', '2027-04-21 10:00+09', '{VIP}', '{"points": 40}'),
	('b-3', 'suzuki@example.jp', '鈴木一郎', 'paid', '2027-03-01 10:00+09', '{}', '{}');
SELECT taskflow.save_criteria('体験中', $$status = 'trial'$$);
SELECT taskflow.save_criteria('ゴールド会員', $$prop_text(properties, 'plan') = 'ゴールド'$$);
SELECT taskflow.create_template('体験案内', '{{name}}様 体験期間のご案内', '{{name}}様、体験期間は残りわずかです。',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('予備', '予備の件名', '予備の本文', sender_address => 'info@example.jp');
SELECT taskflow.create_task('体験案内送信', 'auto', criteria => '体験中', template => '体験案内',
	actions => '[{"add_tag": "案内済"}]');
SELECT taskflow.create_task('資料発送', 'manual', assignee => '発送係');
SELECT taskflow.create_task('単独', 'manual');
SELECT taskflow.configure_channel('sms', kind => 'webhook', description => 'SMS gateway');
SELECT taskflow.create_chain('体験チェーン', ARRAY['体験案内送信', '資料発送'], waits => ARRAY[NULL, '1 hours'],
	time_zone => 'Asia/Tokyo');
SELECT * FROM taskflow.run('2027-05-01 10:00+09');
SELECT * FROM taskflow.run('2027-05-01 11:00+09');
SELECT task, member_name, pending_since FROM taskflow.dashboard;
SELECT outbox_id, recipient, subject, state FROM taskflow.outbox ORDER BY outbox_id;

-- The contents of every taskflow table (row count and md5), to compare
-- at the end.
CREATE FUNCTION pg_temp.fingerprint() RETURNS TABLE (tbl text, n bigint, md5 text)
LANGUAGE plpgsql AS $$
DECLARE
	t text;
BEGIN
	FOR t IN SELECT c.relname FROM pg_class c
			  WHERE c.relnamespace = 'taskflow'::regnamespace AND c.relkind = 'r'
			  ORDER BY c.relname LOOP
		tbl := t;
		EXECUTE format('SELECT count(*), md5(coalesce(string_agg(x::text, E''\n'' ORDER BY x::text), ''''))'
					   ' FROM taskflow.%I x', t) INTO n, md5;
		RETURN NEXT;
	END LOOP;
END
$$;
CREATE TEMP TABLE before AS SELECT * FROM pg_temp.fingerprint();

---------------------------------------------------------------- members and definitions
SELECT taskflow.define_status('VIP会員');
SELECT taskflow.define_event_kind(NULL);
SELECT taskflow.define_property('color', 'colour');
SELECT taskflow.define_property('rank', 'list', ARRAY[]::text[]);
SELECT taskflow.define_property('rank', 'list', ARRAY['A', NULL]);
SELECT taskflow.define_property('nickname', 'text', ARRAY['a']);
SELECT taskflow.define_property(repeat('p', 64), 'text');
SELECT taskflow.define_property('plan', 'number');
SELECT taskflow.define_property('points', 'boolean');
SELECT taskflow.drop_property('存在しない');
SELECT taskflow.drop_property('plan');
SELECT taskflow.drop_property('points');
SELECT taskflow.set_property(1, 'points', '多い'::text);
SELECT taskflow.set_property(1, 'renewal_date', '2027-02-30'::text);
SELECT taskflow.set_property(1, 'plan', 'プラチナ'::text);
SELECT taskflow.set_property(1, 'company', E'株式会社\x07ベル'::text);
SELECT taskflow.set_property(999999, 'points', 1);
SELECT taskflow.remove_property(1, NULL);
SELECT taskflow.add_tag(1, E'改行\nタグ');
SELECT taskflow.add_tag(1, repeat('長', 101));
SELECT taskflow.add_tag(999999, 'VIP');
SELECT taskflow.create_group('  ');
SELECT taskflow.create_group('オンラインサロン');
SELECT taskflow.join_group(1, '存在しないグループ');
SELECT taskflow.join_group(1, 'オンラインサロン', NULL);
SELECT taskflow.record_event(1, 'party');
SELECT taskflow.record_event(1, 'note', '"メモ"');
SELECT taskflow.record_event(999999, 'note');
SELECT taskflow.record_event(NULL, 'note');
SELECT taskflow.record_payment(1, -3000, '2027-05-01', '2027-05-31');
SELECT taskflow.record_payment(1, 3000, '2027-05-31', '2027-05-01');
SELECT taskflow.add_note(1, '   ');
SELECT taskflow.unsubscribe(1, NULL);
SELECT taskflow.check_property_value('points', '"12"');
-- a member id that does not exist is an error everywhere, never "false"
-- (unsubscribe: "already unsubscribed") or a foreign key error
SELECT taskflow.unsubscribe(999999, reason => '配信停止リンク');
SELECT taskflow.resubscribe(999999);
SELECT taskflow.remove_tag(999999, 'VIP');
SELECT taskflow.remove_property(999999, 'plan');
SELECT taskflow.join_group(999999, 'オンラインサロン');
SELECT taskflow.leave_group(999999, 'オンラインサロン');
-- odd values
SELECT taskflow.create_group(E'改行\nグループ');
SELECT taskflow.create_group(' オンラインサロン ');
SELECT taskflow.join_group(1, 'オンラインサロン', 'infinity');
SELECT taskflow.leave_group(1, 'オンラインサロン', '-infinity');
SELECT taskflow.record_payment(1, 'NaN', '2027-05-01', '2027-05-31');
SELECT taskflow.record_payment(1, 'Infinity', '2027-05-01', '2027-05-31');
-- is_valid_date: exactly YYYY-MM-DD and a real date, never an error
SELECT v, taskflow.is_valid_date(v)
  FROM unnest(ARRAY['abc', '20270101', '2027/01/01', '2027-01-01x', '２０２７-01-01',
					'0000-01-01', '2027-02-29', '2028-02-29', '', NULL]) AS v;
-- plain SQL and COPY go through the same checks
INSERT INTO taskflow.member (email, name) VALUES (E'yamada@example.jp\r\nBcc: all@example.jp', '改行');
INSERT INTO taskflow.member (email, name) VALUES (repeat('a', 250) || '@example.jp', '長いアドレス');
INSERT INTO taskflow.member (name, properties) VALUES ('配列', '[]');
INSERT INTO taskflow.member (name, properties) VALUES ('空値', '{"plan": null}');
INSERT INTO taskflow.member (name, properties) VALUES ('未定義', '{"hobby": "釣り"}');
INSERT INTO taskflow.member (name, tags) VALUES ('空タグ', '{NULL}');
-- COPY: bytes that are not UTF-8 (山 then a stray 0xff; an over-long
-- encoding of "/"), a quoted address with CR/LF, a number property given
-- a string, an event detail that is not an object, a group membership
-- that ends before it starts; each COPY loads nothing
COPY taskflow.member (external_id, email, name) FROM PROGRAM $$printf 'c-1,c1@example.jp,\345\261\261\377\n'$$ WITH (FORMAT csv);
COPY taskflow.member (external_id, email, name) FROM PROGRAM $$printf 'c-1,c1@example.jp,\300\257\n'$$ WITH (FORMAT csv);
COPY taskflow.member (external_id, email, name) FROM PROGRAM $$printf 'c-1,"c1@example.jp\r\nBcc: x@example.com",山田\n'$$ WITH (FORMAT csv);
COPY taskflow.member (external_id, name, properties) FROM PROGRAM $$printf 'c-1,山田,"{""points"": ""many""}"\n'$$ WITH (FORMAT csv);
\set VERBOSITY terse
COPY taskflow.event (member_id, kind, detail) FROM PROGRAM $$printf '1,note,[]\n'$$ WITH (FORMAT csv);
\set VERBOSITY default
COPY taskflow.group_membership (member_id, group_id, joined_at, left_at) FROM PROGRAM $$printf '1,1,2027-05-01,2027-04-01\n'$$ WITH (FORMAT csv);
-- an unknown status or event kind is refused naming the member, and in a
-- COPY the line (the foreign key, checked at the end, would name neither)
INSERT INTO taskflow.member (external_id, name, status) VALUES ('c-2', '状態違い', 'vipp');
UPDATE taskflow.member SET status = 'vipp' WHERE external_id = 'b-1';
INSERT INTO taskflow.event (member_id, kind) VALUES (1, 'purchased');
\set SHOW_CONTEXT errors
COPY taskflow.member (external_id, email, name, status) FROM STDIN WITH (FORMAT csv);
c-3,c3@example.jp,伊藤健太,trial
c-4,c4@example.jp,渡辺さくら,vipp
\.
COPY taskflow.event (member_id, kind, occurred_at) FROM STDIN WITH (FORMAT csv);
1,form,2027-04-30 10:00:00+09
1,purchased,2027-04-30 11:00:00+09
\.
\set SHOW_CONTEXT never
-- a payment is refused, however it is written, when record_payment() would
-- refuse it (with its messages): no negative, NaN or missing amount, no
-- payment without the dates it pays for; no event at an infinite instant
SELECT taskflow.record_event(1, 'payment', amount => -5500, period => '[2027-05-01,2027-06-01)');
SELECT taskflow.record_event(1, 'payment', amount => 'NaN', period => '[2027-05-01,2027-06-01)');
SELECT taskflow.record_event(1, 'payment', amount => 'Infinity', period => '[2027-05-01,2027-06-01)');
SELECT taskflow.record_event(1, 'payment', period => '[2027-05-01,2027-06-01)');
SELECT taskflow.record_event(1, 'payment', amount => 5500);
SELECT taskflow.record_event(1, 'payment', amount => 5500, period => 'empty');
SELECT taskflow.record_event(1, 'payment', amount => 5500, period => '[2027-05-01,)');
SELECT taskflow.record_event(1, 'payment', amount => 5500, period => '[2027-05-01,infinity)');
SELECT taskflow.record_event(1, 'form', occurred_at => 'infinity');
SELECT taskflow.record_payment(1, 5500, '2027-05-01', '2027-05-31', '-infinity');
INSERT INTO taskflow.event (member_id, kind, amount, period) VALUES (1, 'payment', -5500, '[2027-05-01,2027-06-01)');
UPDATE taskflow.event SET kind = 'payment' WHERE event_id = (SELECT min(event_id) FROM taskflow.event);
\set SHOW_CONTEXT errors
COPY taskflow.event (member_id, kind, occurred_at, amount, period, detail) FROM STDIN WITH (FORMAT csv, HEADER);
member_id,kind,occurred_at,amount,period,detail
1,payment,2027-04-10 09:00:00+09,5500,"[2027-04-10,2027-05-10)",{}
1,payment,2027-04-10 09:00:00+09,5500,,{}
\.
COPY taskflow.event (member_id, kind, occurred_at, amount, period, detail) FROM STDIN WITH (FORMAT csv);
1,payment,2027-04-10 09:00:00+09,5500,"[2027-04-10,2027-05-10)",{}
1,form,infinity,,,{}
\.
\set SHOW_CONTEXT never
-- so no refund or NaN is counted as a paid month
SELECT taskflow.paid_count(1);
-- check_function_bodies = off skips the checks only in a superuser's
-- restore (pg_dump's scripts set it): an application role that sets it is
-- checked all the same
CREATE ROLE tf_bad_app IN ROLE taskflow_app;
SET ROLE tf_bad_app;
SET check_function_bodies = off;
INSERT INTO taskflow.member (external_id, email, name) VALUES ('evil-1', E'x@example.jp\r\nBcc: spam@example.com', '不正');
INSERT INTO taskflow.member (external_id, name, properties) VALUES ('evil-2', '不正', '{"points": "たくさん"}');
INSERT INTO taskflow.member (external_id, name, properties) VALUES ('evil-3', '不正', '{"undefined_prop": 1}');
INSERT INTO taskflow.member (external_id, name, tags) VALUES ('evil-4', '不正', ARRAY[E'タグ\n改行']);
INSERT INTO taskflow.member (external_id, name, status) VALUES ('evil-5', '不正', 'vipp');
INSERT INTO taskflow.event (member_id, kind, amount, period) VALUES (1, 'payment', -5500, '[2027-05-01,2027-06-01)');
RESET check_function_bodies;
RESET ROLE;
DROP ROLE tf_bad_app;
-- a superuser's restore loads rows as they were dumped, even before the
-- definitions they use (rolled back here)
BEGIN;
SET LOCAL check_function_bodies = off;
INSERT INTO taskflow.member (external_id, name, status, properties)
VALUES ('r-1', '復元', 'trial', '{"defined_later": 1}') RETURNING external_id, status, properties;
ROLLBACK;

---------------------------------------------------------------- criteria
SELECT taskflow.save_criteria(NULL, 'true');
SELECT taskflow.save_criteria(repeat('名', 64), 'true');
SELECT taskflow.save_criteria(E'タブ\t入り', 'true');
SELECT taskflow.save_criteria(' 前に空白', 'true');
SELECT taskflow.save_criteria('悪い条件', NULL);
SELECT taskflow.save_criteria('悪い条件', 'status =');
SELECT taskflow.save_criteria('悪い条件', 'joined_at < now()');
SELECT taskflow.save_criteria('悪い条件', 'random() < 0.5');
SELECT taskflow.save_criteria('悪い条件', 'count(*) > 1');
SELECT taskflow.save_criteria('悪い条件', 'status');
SELECT taskflow.save_criteria('悪い条件', 'true; DROP TABLE taskflow.member');
SELECT taskflow.save_criteria('悪い条件', 'DELETE FROM taskflow.member');
SELECT taskflow.save_criteria('悪い条件', $$prop_number(properties, 'plan') > 1$$);
SELECT taskflow.save_criteria('悪い条件', $$prop_text(properties, 'hobby') = '釣り'$$);
SELECT taskflow.save_criteria('悪い条件', $$taskflow.save_criteria('別', 'true') > 0$$);
SELECT taskflow.save_criteria('悪い条件', 'generate_series(1, 2) > 0');
-- group names and event kinds given as literals must exist (a typo would
-- match nobody, or everybody with NOT); other arguments are not checked
SELECT taskflow.save_criteria('悪い条件', $$NOT in_group(member_id, 'オンラインサロン ')$$);
SELECT taskflow.save_criteria('悪い条件', $$event_count(member_id, 'memo') > 0$$);
SELECT taskflow.save_criteria('悪い条件', $$event_count(member_id, 'memo', '30 days') > 0$$);
SELECT taskflow.check_criteria($$within_last(last_event_at(member_id, 'memo'), '7 days')$$);
SELECT taskflow.check_criteria($$in_group(member_id, 'オンラインサロン') AND event_count(member_id, 'note') > 0$$);
SELECT taskflow.check_criteria($$in_group(member_id, name)$$);
SELECT taskflow.drop_criteria('存在しない');
SELECT taskflow.drop_criteria('体験中');
SELECT * FROM taskflow.search('存在しない');
SELECT * FROM taskflow.search('体験中', NULL);
SELECT taskflow.count('体験中', 'infinity');
SELECT taskflow.check_criteria('   ');

---------------------------------------------------------------- templates
SELECT taskflow.create_template(NULL, '件名', '本文');
SELECT taskflow.create_template('悪いテンプレート', E'件名\r\nBcc: evil@example.com', '本文');
SELECT taskflow.create_template('悪いテンプレート', '件名', '本文', sender_address => E'info@example.jp\r\nBcc: evil@example.com');
SELECT taskflow.create_template('悪いテンプレート', '件名', '本文', sender_name => E'事務局\n');
SELECT taskflow.create_template('悪いテンプレート', '件名', '本文', reply_to => 'サポート窓口');
SELECT taskflow.create_template('悪いテンプレート', '件名', NULL);
SELECT taskflow.create_template('悪いテンプレート', repeat('あ', 340), '本文');
SELECT taskflow.create_template('悪いテンプレート', '件名', E'ベル\x07本文');
SELECT taskflow.create_template('悪いテンプレート', '{{nickname}}様', '本文');
SELECT taskflow.create_template('悪いテンプレート', '件名', '{{properties.hobby}}');
SELECT taskflow.create_template('悪いテンプレート', '{{name', '本文');
SELECT taskflow.create_template('悪いテンプレート', '件名', '本文', channel => 'fax');
SELECT taskflow.create_template('悪いテンプレート', '件名', '本文', missing_field => 'skip',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('体験案内', '件名', '本文', sender_address => 'info@example.jp');
SELECT taskflow.create_template(' 体験案内 ', '件名', '本文', sender_address => 'info@example.jp');
-- an e-mail template needs a sender address; addresses are what mail can be sent to
SELECT taskflow.create_template('差出人なし', 'お知らせ', '本文');
SELECT taskflow.create_template('悪いテンプレート', '件名', '本文', sender_address => 'info@[192.0.2.1]');
SELECT a, taskflow.is_valid_email(a)
  FROM unnest(ARRAY['info@example.jp', 'info+news@mail.example.co.jp', 'a..b@example.jp',
				'.a@example.jp', 'a.@example.jp', 'a@-example.jp', 'a@example', 'info@[192.0.2.1]',
				'じむきょく@example.jp', 'info@xn--eckwd4c7c.xn--zckzah']) AS a;
SELECT taskflow.alter_template('予備', new_name => '体験案内 ');
SELECT taskflow.alter_template('存在しない', subject => '件名');
SELECT taskflow.alter_template('予備', new_name => '体験案内');
SELECT taskflow.drop_template('体験案内');
SELECT * FROM taskflow.preview_template('体験案内', 999999);
SELECT taskflow.render('{{name}}', '[1, 2]');
SELECT taskflow.template_fields('{{ }}');
SELECT taskflow.render_member('{{name}}', m, 'pdf') FROM taskflow.member m WHERE member_id = 1;

---------------------------------------------------------------- tasks
SELECT taskflow.create_task(E'タスク\r\n名', 'auto');
SELECT taskflow.create_task('悪いタスク', 'automatic');
SELECT taskflow.create_task('悪いタスク', 'auto', priority => '2147483648');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => 'null');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"extend_expires": "1000000 years"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"extend_expires": "-200 years"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"set": "joined_at", "to": "来週"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"set_property": "plan", "to": null}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"set": "joined_at", "to": null}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"set_property": "hobby", "to": "釣り"}]');
-- keys the verb does not use are refused, not dropped
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"extend_expires": "1 month", "to": "2027-12-31"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"add_tag": "VIP", "detail": {"x": 1}}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"set": "status", "to": "paid", "detail": {}}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"record_event": "note", "to": "x"}]');
SELECT taskflow.create_task('悪いタスク', 'auto',
	actions => '[{"sql": "UPDATE taskflow.member SET name = name WHERE member_id = ANY($1); SELECT 1"}]');
SELECT taskflow.create_task('悪いタスク', 'auto',
	actions => '[{"sql": "SELECT pg_catalog.set_config(''role'', ''postgres'', false)"}]');
SELECT taskflow.alter_task('存在しない', mode => 'auto');
SELECT taskflow.drop_task('資料発送');

---------------------------------------------------------------- chains, waits, schedules, time zones
SELECT taskflow.create_chain(E'チェーン\r\n', ARRAY['体験案内送信']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY[NULL]);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信'], time_zone => 'JST-9');
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信'], schedule => 'daily at 24:00');
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信'], schedule => 'daily at 09:00',
	weekdays => ARRAY['月', 'funday']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信'], entry_interval => '-5 minutes');
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信'], entry_interval => '100 years');
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信'], reentry => 'cooldown',
	reentry_cooldown => '1000000 years');
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信', '資料発送'], waits => ARRAY[NULL, '-3 hours']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信', '資料発送'], waits => ARRAY[NULL, '10000 days at 09:00']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信', '資料発送'], waits => ARRAY[NULL, '99999 hours']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信', '資料発送'], waits => ARRAY[NULL, '3 days at 9:75']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信'], repeat_wait => '30 days at 09:00');
-- '0 days at HH:MM' would run at once after a task that ran later that day
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信', '資料発送'], waits => ARRAY[NULL, '0 days at 10:00']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信'], repeat => true, repeat_wait => '0 days at 09:00');
-- the default time zone is the session's, which must be a named zone
SET TimeZone = 'JST-9';
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信']);
SET TimeZone = '+09';
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信']);
SET TimeZone = 'Asia/Tokyo';
-- anchors and offsets
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信'], anchor => 'created_at', offsets => ARRAY['immediately']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信'], anchor => 'properties.plan', offsets => ARRAY['immediately']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信'], anchor => 'properties.hobby', offsets => ARRAY['immediately']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信', '資料発送'], anchor => 'birthday', offsets => ARRAY['immediately']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信'], anchor => 'birthday', offsets => ARRAY['yesterday']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信'], anchor => 'birthday', offsets => ARRAY['-10000 days']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信', '資料発送'], anchor => 'birthday',
	offsets => ARRAY['3 days at 09:00', '1 days at 09:00']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信'], anchor => 'birthday', offsets => ARRAY['immediately'],
	waits => ARRAY[NULL]);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信'], anchor => 'birthday', offsets => ARRAY['immediately'],
	schedule => 'daily at 09:00');
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信'], anchor => 'birthday', offsets => ARRAY['immediately'],
	anchor_change => 'reset');
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信'], anchor => 'birthday', offsets => ARRAY['immediately'],
	activation => 'all');
SELECT taskflow.create_chain('悪いチェーン', ARRAY['体験案内送信'], yearly => true);
-- steps
SELECT taskflow.add_step('体験チェーン', '資料発送', '1 hours', 2147483647);
SELECT taskflow.add_step('体験チェーン', '体験案内送信', NULL);
SELECT taskflow.set_wait('体験チェーン', 1, '1 hours');
SELECT taskflow.move_step('体験チェーン', 1, 99);
SELECT taskflow.remove_step('体験チェーン', 99);
SELECT taskflow.alter_chain('体験チェーン', time_zone => 'Mars/Olympus');
SELECT taskflow.alter_chain('体験チェーン', schedule => 'every 5 minutes');
SELECT taskflow.alter_chain('体験チェーン', repeat_wait => '1 hours');
SELECT taskflow.alter_chain('体験チェーン', repeat => true, repeat_wait => '0 days at 09:00');
SELECT taskflow.alter_chain('体験チェーン', schedule => 'daily at 09:00', weekdays => ARRAY['mon'], every_day => true);
SELECT taskflow.set_wait('体験チェーン', 2, '0 days at 10:00');
SELECT taskflow.add_step('体験チェーン', '単独', '0 days at 10:00');
SELECT taskflow.enable_chain('存在しない');

---------------------------------------------------------------- the engine
SELECT * FROM taskflow.run(NULL);
SELECT * FROM taskflow.run('infinity');
SELECT * FROM taskflow.run('2027-05-01 12:00+09', '存在しない');
SELECT taskflow.process('資料発送', ARRAY[999999]::bigint[], '2027-05-01 12:00+09');
SELECT taskflow.process('資料発送', NULL, '2027-05-01 10:30+09');
SELECT taskflow.process('資料発送', NULL, 'infinity');
SELECT taskflow.skip(NULL);
SELECT taskflow.cancel('存在しない');
SELECT * FROM taskflow.explain(999999);
SELECT * FROM taskflow.explain(1, 'infinity');
SELECT * FROM taskflow.preview('2027-05-02', '2027-05-01');
SELECT * FROM taskflow.preview('2027-05-01', '2033-05-01');
SELECT * FROM taskflow.preview('2027-05-01', '2027-05-02', hypothetical => '[]');
SELECT * FROM taskflow.preview('2027-05-01', '2027-05-02', hypothetical => '{"member_id": 1}');
SELECT * FROM taskflow.preview('2027-05-01', '2027-05-02',
	hypothetical => '{"email": "x@example.jp\r\nBcc: all@example.jp"}');
SELECT * FROM taskflow.preview('-infinity', '2027-05-02');
SELECT * FROM taskflow.preview('2027-05-01', '2027-05-02', entry_step => '1000000 years');
SELECT * FROM taskflow.preview('2027-05-01', '2027-05-02', entry_step => '-1 day');
SELECT * FROM taskflow.preview('2027-05-01', '2027-05-02', chain => '存在しない');

---------------------------------------------------------------- channels and delivery
SELECT taskflow.configure_channel('LINE公式', kind => 'webhook');
SELECT taskflow.configure_channel('line', kind => 'sms');
SELECT taskflow.configure_channel('email', url => E'smtp://mail.example.jp\r\nRCPT TO:<x@example.com>');
SELECT taskflow.configure_channel('email', url => 'smtp://user:secret@mail.example.jp');
SELECT taskflow.configure_channel('email', url => 'smtp://mail.example.jp:70000');
SELECT taskflow.configure_channel('email', password_file => 'secret.txt');
SELECT taskflow.configure_channel('email', test_recipients => ARRAY[E'staff@example.jp\r\nBcc: x@example.com']);
SELECT taskflow.configure_channel('email', rate_per_second => 0);
SELECT taskflow.configure_channel('email', connections => 1000);
SELECT taskflow.configure_channel('email', backoff_max => '1000000 years');
SELECT taskflow.configure_channel('email', max_per_member => 3, per_member_window => '1000 years');
SELECT taskflow.configure_channel('email', quota_time_zone => 'Nowhere/Land');
SELECT taskflow.configure_channel('email', quiet_start => '21:00', quiet_end => '21:00');
SELECT taskflow.configure_channel('email', unsubscribe_url => E'https://example.jp/u\r\nX-Evil: 1');
SELECT taskflow.configure_channel('email', list_id => E'news\r\n<news.example.jp>');
SELECT taskflow.configure_channel('email', reset => ARRAY['name']);
SELECT taskflow.drop_channel('email');
SELECT * FROM taskflow.claim_messages('email', NULL, 10);
SELECT * FROM taskflow.claim_messages('email', 'relay-1', 0);
SELECT * FROM taskflow.claim_messages('email', 'relay-1', 100000);
SELECT * FROM taskflow.claim_messages('email', 'relay-1', 10, '100 years');
SELECT * FROM taskflow.claim_messages('email', 'relay-1', 10, '5 minutes', 'infinity');
SELECT * FROM taskflow.claim_messages('存在しない', 'relay-1', 10);
SELECT taskflow.complete_messages('relay-1', ARRAY[1, 2], ARRAY['sent'], NULL, NULL, NULL);
SELECT taskflow.complete_messages('relay-1', ARRAY[1], ARRAY['maybe'], NULL, NULL, NULL);
SELECT taskflow.complete_messages('relay-1', ARRAY[1], ARRAY['sent'], NULL, NULL, NULL, '-infinity');
SELECT taskflow.next_delivery_at('存在しない');
SELECT taskflow.cancel_message(999999);
SELECT taskflow.cancel_message(1, 'テスト', 'infinity');
SELECT taskflow.retry_message(1, '-infinity');
SELECT taskflow.suppress(E'yamada@example.jp\r\n');
SELECT taskflow.suppress(repeat('x', 255) || '@example.jp');
SELECT taskflow.mime_build('事務局', 'info@example.jp', 'yamada@example.jp', E'件名\r\nBcc: x@example.com', '本文');
SELECT taskflow.mime_build('事務局', 'info@example.jp', E'yamada@example.jp\r\nBcc: x@example.com', '件名', '本文');
SELECT taskflow.mime_build('事務局', NULL, 'yamada@example.jp', '件名', '本文');
SELECT taskflow.mime_build('事務局', 'info@example.jp', 'yamada@example.jp', '件名', '本文', time_zone => 'Nowhere/Land');
SELECT taskflow.mime_message(999999);

---------------------------------------------------------------- settings
SET taskflow.as_of = 'someday';
SET taskflow.as_of = 'infinity';
SET taskflow.as_of = '294277-01-01 00:00+00';
SET taskflow.batch_size = 0;
SET taskflow.batch_size = 100000000;
SET taskflow.entry_interval = '1s';

---------------------------------------------------------------- NULL in every argument
-- Each function is called as in "baseline" (which works), with one
-- argument at a time set to NULL, in a subtransaction that is rolled back
-- whatever happens.  "ok" means the function took NULL as documented (a
-- default, "unchanged", "all", "none"); anything else is its error.
CREATE TEMP TABLE null_cases (fn text, srf boolean, args text[], baseline text[]);
INSERT INTO null_cases VALUES
	('define_status', false, '{status,description}', ARRAY[$$'gold'$$, $$'金'$$]),
	('define_event_kind', false, '{kind,description}', ARRAY[$$'seminar'$$, $$'セミナー'$$]),
	('define_property', false, '{name,type,allowed_values,description}', ARRAY[$$'rank'$$, $$'list'$$, $$ARRAY['A']$$, $$'ランク'$$]),
	('drop_property', false, '{name,remove_values}', ARRAY[$$'points'$$, 'true']),
	('set_property', false, '{member_id,name,value}', ARRAY['1', $$'points'$$, '5']),
	('remove_property', false, '{member_id,name}', ARRAY['1', $$'points'$$]),
	('add_tag', false, '{member_id,tag}', ARRAY['1', $$'新規'$$]),
	('remove_tag', false, '{member_id,tag}', ARRAY['2', $$'VIP'$$]),
	('create_group', false, '{name,description}', ARRAY[$$'新グループ'$$, $$'説明'$$]),
	('group_id', false, '{group_name}', ARRAY[$$'オンラインサロン'$$]),
	('join_group', false, '{member_id,group_name,at}', ARRAY['1', $$'オンラインサロン'$$, $$'2027-05-01 12:00+09'$$]),
	('leave_group', false, '{member_id,group_name,at}', ARRAY['1', $$'オンラインサロン'$$, $$'2027-05-01 12:00+09'$$]),
	('record_event', false, '{member_id,kind,detail,occurred_at,amount,period}',
		ARRAY['1', $$'note'$$, $$'{}'$$, $$'2027-05-01 12:00+09'$$, '1', $$'[2027-05-01,2027-05-31]'$$]),
	('record_payment', false, '{member_id,amount,period_from,period_to,occurred_at,detail}',
		ARRAY['1', '3000', $$'2027-05-01'$$, $$'2027-05-31'$$, $$'2027-05-01 12:00+09'$$, $$'{}'$$]),
	('add_note', false, '{member_id,note,occurred_at}', ARRAY['1', $$'電話あり'$$, $$'2027-05-01 12:00+09'$$]),
	('unsubscribe', false, '{member_id,at,reason}', ARRAY['1', $$'2027-05-01 12:00+09'$$, $$'希望'$$]),
	('resubscribe', false, '{member_id,at}', ARRAY['1', $$'2027-05-01 12:00+09'$$]),
	('timeline', true, '{member_id}', ARRAY['1']),
	('check_property_value', false, '{property_name,value,member_label}', ARRAY[$$'points'$$, $$'3'$$, $$'b-1'$$]),
	('save_criteria', false, '{name,expression,description}', ARRAY[$$'新条件'$$, $$'true'$$, $$'説明'$$]),
	('drop_criteria', false, '{name}', ARRAY[$$'ゴールド会員'$$]),
	('check_criteria', false, '{expression}', ARRAY[$$'true'$$]),
	('search', true, '{criteria,as_of}', ARRAY[$$'体験中'$$, $$'2027-05-01 12:00+09'$$]),
	('count', false, '{criteria,as_of}', ARRAY[$$'体験中'$$, $$'2027-05-01 12:00+09'$$]),
	('search_expression', true, '{expression,as_of}', ARRAY[$$'true'$$, $$'2027-05-01 12:00+09'$$]),
	('create_template', false, '{name,subject,body_text,body_html,sender_name,sender_address,reply_to,channel,transactional,missing_field,description}',
		ARRAY[$$'新テンプレート'$$, $$'件名'$$, $$'本文'$$, $$'<p>本文</p>'$$, $$'事務局'$$, $$'info@example.jp'$$,
			  $$'support@example.jp'$$, $$'email'$$, 'false', $$'empty'$$, $$'説明'$$]),
	('alter_template', false, '{name,subject,new_name}', ARRAY[$$'予備'$$, $$'新しい件名'$$, $$'予備2'$$]),
	('drop_template', false, '{name}', ARRAY[$$'予備'$$]),
	('preview_template', true, '{name,member_id}', ARRAY[$$'体験案内'$$, '1']),
	('template_fields', false, '{template_text,part}', ARRAY[$$'{{name}}'$$, $$'subject'$$]),
	('render', false, '{template_text,fields,html,refuse_missing}', ARRAY[$$'{{name}}'$$, $$'{"name": "山田"}'$$, 'false', 'false']),
	('create_task', false, '{name,mode,criteria,actions,template,description,show_on_dashboard,assignee,priority,on_mismatch}',
		ARRAY[$$'新タスク'$$, $$'auto'$$, $$'体験中'$$, $$'[{"add_tag": "新"}]'$$, $$'体験案内'$$, $$'説明'$$, 'true',
			  $$'担当'$$, '1', $$'leave'$$]),
	('alter_task', false, '{name,mode,clear_criteria,clear_template}', ARRAY[$$'資料発送'$$, $$'manual'$$, 'false', 'false']),
	('drop_task', false, '{name}', ARRAY[$$'単独'$$]),
	('create_chain', false, '{name,tasks,waits,schedule,time_zone,repeat,repeat_wait,reentry,enabled,pause_after_failures,test,anchor_change,activation,yearly}',
		ARRAY[$$'新チェーン'$$, $$ARRAY['体験案内送信', '資料発送']$$, $$ARRAY[NULL, '1 hours']$$, $$'daily at 09:00'$$,
			  $$'Asia/Tokyo'$$, 'true', $$'30 days at 09:00'$$, $$'never'$$, 'true', '3', 'false', $$'restart'$$,
			  $$'new'$$, 'false']),
	('add_step', false, '{chain,task,wait,position}', ARRAY[$$'体験チェーン'$$, $$'体験案内送信'$$, $$'2 hours'$$, '3']),
	('set_wait', false, '{chain,position,wait}', ARRAY[$$'体験チェーン'$$, '2', $$'2 hours'$$]),
	('move_step', false, '{chain,from_position,to_position}', ARRAY[$$'体験チェーン'$$, '2', '1']),
	('remove_step', false, '{chain,position}', ARRAY[$$'体験チェーン'$$, '2']),
	('alter_chain', false, '{name,every_day}', ARRAY[$$'体験チェーン'$$, 'false']),
	('enable_chain', false, '{name}', ARRAY[$$'体験チェーン'$$]),
	('disable_chain', false, '{name}', ARRAY[$$'体験チェーン'$$]),
	('drop_chain', false, '{name}', ARRAY[$$'体験チェーン'$$]),
	('run', true, '{as_of,chain}', ARRAY[$$'2027-05-01 12:00+09'$$, $$'体験チェーン'$$]),
	('process', false, '{task,member_ids,as_of}', ARRAY[$$'資料発送'$$, 'ARRAY[1]::bigint[]', $$'2027-05-01 12:00+09'$$]),
	('skip', false, '{task,member_ids,as_of}', ARRAY[$$'資料発送'$$, 'ARRAY[1]::bigint[]', $$'2027-05-01 12:00+09'$$]),
	('cancel', false, '{task,member_ids,as_of}', ARRAY[$$'資料発送'$$, 'ARRAY[1]::bigint[]', $$'2027-05-01 12:00+09'$$]),
	('explain', true, '{member_id,as_of}', ARRAY['1', $$'2027-05-01 12:00+09'$$]),
	('preview', true, '{from_at,to_at,chain,member_ids,hypothetical,entry_step}',
		ARRAY[$$'2027-05-01 12:00+09'$$, $$'2027-05-03 00:00+09'$$, $$'体験チェーン'$$, 'ARRAY[1]::bigint[]',
			  $$'{"name": "仮会員", "status": "trial"}'$$, $$'1 day'$$]),
	('configure_channel', false, '{name,kind}', ARRAY[$$'line'$$, $$'webhook'$$]),
	('drop_channel', false, '{name}', ARRAY[$$'sms'$$]),
	('claim_messages', true, '{channel,worker,max,lease,as_of}',
		ARRAY[$$'email'$$, $$'relay-1'$$, '10', $$'5 minutes'$$, $$'2027-05-01 12:00+09'$$]),
	('complete_messages', false, '{worker,outbox_ids,outcomes,smtp_codes,enhanced_codes,replies,as_of}',
		ARRAY[$$'relay-1'$$, 'ARRAY[1]::bigint[]', $$ARRAY['sent']$$, 'ARRAY[250]', $$ARRAY['2.0.0']$$, $$ARRAY['OK']$$,
			  $$'2027-05-01 12:00+09'$$]),
	('next_delivery_at', false, '{channel,as_of}', ARRAY[$$'email'$$, $$'2027-05-01 12:00+09'$$]),
	('cancel_message', false, '{outbox_id,reason,as_of}', ARRAY['1', $$'重複'$$, $$'2027-05-01 12:00+09'$$]),
	('retry_message', false, '{outbox_id,as_of}', ARRAY['1', $$'2027-05-01 12:00+09'$$]),
	('suppress', false, '{address,reason,at}', ARRAY[$$'bounce@example.jp'$$, $$'苦情'$$, $$'2027-05-01 12:00+09'$$]),
	('unsuppress', false, '{address}', ARRAY[$$'bounce@example.jp'$$]),
	('mime_build', false, '{from_name,from_address,to_address,subject,body_text,body_html,date,time_zone}',
		ARRAY[$$'事務局'$$, $$'info@example.jp'$$, $$'yamada@example.jp'$$, $$'件名'$$, $$'本文'$$, $$'<p>本文</p>'$$,
			  $$'2027-05-01 12:00+09'$$, $$'Asia/Tokyo'$$]),
	('mime_message', false, '{outbox_id,as_of}', ARRAY['1', $$'2027-05-01 12:00+09'$$]),
	('next_wakeup', false, '{after}', ARRAY[$$'2027-05-01 12:00+09'$$]);
CREATE FUNCTION pg_temp.try_null(fn text, srf boolean, args text[], baseline text[], nulled integer)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	call text;
	outcome text;
BEGIN
	SELECT format('taskflow.%I(%s)', fn, string_agg(format('%I => %s', a,
				  CASE WHEN i = nulled THEN 'NULL' ELSE baseline[i] END), ', ' ORDER BY i))
	  INTO call FROM unnest(args) WITH ORDINALITY AS x(a, i);
	BEGIN
		EXECUTE CASE WHEN srf THEN format('SELECT count(*) FROM %s', call) ELSE format('SELECT %s', call) END;
		RAISE EXCEPTION USING ERRCODE = 'T0001';
	EXCEPTION WHEN OTHERS THEN
		outcome := CASE WHEN SQLSTATE = 'T0001' THEN 'ok' ELSE SQLERRM END;
	END;
	RETURN outcome;
END
$$;
-- every baseline works
SELECT fn, pg_temp.try_null(fn, srf, args, baseline, 0) AS baseline FROM null_cases
 WHERE pg_temp.try_null(fn, srf, args, baseline, 0) <> 'ok' ORDER BY fn;
SET client_min_messages = error;
SELECT n.fn, n.args[i] AS "NULL argument", pg_temp.try_null(n.fn, n.srf, n.args, n.baseline, i::integer) AS outcome
  FROM null_cases n, generate_subscripts(n.args, 1) AS i
 ORDER BY n.fn, i;
RESET client_min_messages;

---------------------------------------------------------------- nothing changed
SELECT b.tbl, b.n AS rows, a.n = b.n AS same_count, a.md5 = b.md5 AS same_md5
  FROM before b FULL JOIN pg_temp.fingerprint() a USING (tbl) ORDER BY tbl;

---------------------------------------------------------------- clean up
RESET taskflow.as_of;
SET client_min_messages = warning;
DROP EXTENSION taskflow CASCADE;
RESET client_min_messages;
