-- Members: core columns, typed custom properties, tags, groups, events,
-- COPY import/export, helper predicates as of fixed instants, roles.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
-- the engine's clock, so tag and group events get exact times
SET taskflow.as_of = '2026-11-20 10:00+09';

-- a schema created beforehand makes CREATE EXTENSION fail cleanly
DROP EXTENSION taskflow;
CREATE SCHEMA taskflow;
CREATE EXTENSION taskflow;
DROP SCHEMA taskflow;
CREATE EXTENSION taskflow;

-- the control file: not relocatable, not trusted
SELECT extname, extrelocatable FROM pg_extension WHERE extname = 'taskflow';

---------------------------------------------------------------- properties
SELECT taskflow.define_property('plan', 'list', ARRAY['ブロンズ', 'シルバー', 'ゴールド'], '会員プラン');
SELECT taskflow.define_property('points', 'number');
SELECT taskflow.define_property('newsletter_ok', 'boolean');
SELECT taskflow.define_property('renewal_date', 'date');
SELECT taskflow.define_property('company', 'text');
SELECT taskflow.define_property('billing_email', 'email');
SELECT name, type, allowed_values, description FROM taskflow.custom_property ORDER BY name;

-- bad definitions
SELECT taskflow.define_property('Plan', 'text');
SELECT taskflow.define_property('会社', 'text');
SELECT taskflow.define_property(NULL, 'text');
SELECT taskflow.define_property('age', 'integer');
SELECT taskflow.define_property('rank', 'list');
SELECT taskflow.define_property('rank', 'list', ARRAY[]::text[]);
SELECT taskflow.define_property('rank', 'list', ARRAY['A', NULL]);
SELECT taskflow.define_property('memo', 'text', ARRAY['x']);
-- redefining without a description keeps the one there was
SELECT taskflow.define_property('plan', 'list', ARRAY['ブロンズ', 'シルバー', 'ゴールド']);
SELECT allowed_values, description FROM taskflow.custom_property WHERE name = 'plan';
-- list values are trimmed (spaces, full-width spaces) and must be
-- non-empty, one line and distinct
SELECT taskflow.define_property('size', 'list', ARRAY[' S ', '　M　', 'L'], 'サイズ');
SELECT allowed_values FROM taskflow.custom_property WHERE name = 'size';
SELECT taskflow.define_property('size', 'list', ARRAY['S', '　']);
SELECT taskflow.define_property('size', 'list', ARRAY['S', E'M\n']);
SELECT taskflow.define_property('size', 'list', ARRAY['S', 'M', ' M']);
SELECT taskflow.drop_property('size');
-- a new type, fewer list values or a drop waits for open transactions
-- that write members (test/specs/property_retype.spec), so it needs READ
-- COMMITTED to see what they wrote; a new description waits for nobody
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT taskflow.define_property('company', 'text', description => '会社名');
SELECT taskflow.define_property('company', 'number');
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT taskflow.drop_property('company');
ROLLBACK;

---------------------------------------------------------------- members
INSERT INTO taskflow.member (external_id, email, name, name_kana, status, joined_at, expires_at, birthday, tags, properties) VALUES
 ('m-001', 'yamada@example.jp', '山田太郎', 'ヤマダタロウ', 'paid', '2026-01-10 09:00+09', '2026-12-05 00:00+09', '1980-02-29', '{優良会員}', '{"plan": "ゴールド", "points": 1200}'),
 ('m-002', 'sato@example.jp', '佐藤花子', 'サトウハナコ', 'trial', '2026-11-15 12:00+09', '2026-11-29 12:00+09', '1992-12-31', '{}', '{"newsletter_ok": true}'),
 ('m-003', 'suzuki@example.jp', '鈴木一郎', 'スズキイチロウ', 'paid', '2026-09-01 10:00+09', '2026-12-01 00:00+09', NULL, '{" 動画講座 ", 動画講座, 優良会員}', '{"renewal_date": "2026-12-01", "company": "株式会社すずき"}'),
 ('m-004', NULL, '高橋美咲', NULL, 'newsletter', '2025-05-20 08:00+09', NULL, NULL, '{}', '{}');
SELECT external_id, email, name, status, joined_at, expires_at, birthday, tags, properties
  FROM taskflow.member ORDER BY member_id;

-- tags are trimmed, de-duplicated and sorted; only add_tag / remove_tag (and the
-- engine's tag actions) write the timeline, so a bulk load stays plain
SELECT m.external_id, e.kind, e.detail FROM taskflow.event e JOIN taskflow.member m USING (member_id)
 ORDER BY m.external_id, e.event_id;

-- bad member rows
INSERT INTO taskflow.member (external_id, email, name) VALUES ('m-001', 'dup@example.jp', '重複');
INSERT INTO taskflow.member (external_id, email, name) VALUES ('m-101', E'evil@example.jp\r\nBcc: all@example.jp', '改行');
INSERT INTO taskflow.member (external_id, email, name) VALUES ('m-102', 'no-at-sign.example.jp', 'アットなし');
INSERT INTO taskflow.member (external_id, email, name) VALUES ('m-103', 'a b@example.jp', '空白');
INSERT INTO taskflow.member (external_id, name, status) VALUES ('m-104', '状態不明', 'vip');
INSERT INTO taskflow.member (external_id, name, tags) VALUES ('m-105', 'タグ空', '{""}');
INSERT INTO taskflow.member (external_id, name, tags) VALUES ('m-106', 'タグNULL', ARRAY[NULL::text]);
INSERT INTO taskflow.member (external_id, name, tags) VALUES ('m-107', 'タグ長い', ARRAY[repeat('長', 101)]);
INSERT INTO taskflow.member (external_id, name, properties) VALUES ('m-108', '配列', '[1, 2]');
-- tags NULL (not an array with a NULL) means no tags: stored as {}
INSERT INTO taskflow.member (external_id, name, tags) VALUES ('m-109', 'タグ無し', NULL)
RETURNING name, tags;
UPDATE taskflow.member SET tags = NULL WHERE external_id = 'm-109' RETURNING name, tags;
DELETE FROM taskflow.member WHERE external_id = 'm-109';

-- every property type, every kind of bad value
INSERT INTO taskflow.member (external_id, name, properties) VALUES ('m-110', '不明', '{"favorite": "猫"}');
INSERT INTO taskflow.member (external_id, name, properties) VALUES ('m-111', '数値', '{"points": "百"}');
INSERT INTO taskflow.member (external_id, name, properties) VALUES ('m-112', '数値文字', '{"points": "12"}');
INSERT INTO taskflow.member (external_id, name, properties) VALUES ('m-113', '真偽', '{"newsletter_ok": "はい"}');
INSERT INTO taskflow.member (external_id, name, properties) VALUES ('m-114', '日付', '{"renewal_date": "2026-02-30"}');
INSERT INTO taskflow.member (external_id, name, properties) VALUES ('m-115', '日付形式', '{"renewal_date": "2026/12/01"}');
INSERT INTO taskflow.member (external_id, name, properties) VALUES ('m-116', 'リスト', '{"plan": "プラチナ"}');
INSERT INTO taskflow.member (external_id, name, properties) VALUES ('m-117', 'メール', '{"billing_email": "経理@"}');
INSERT INTO taskflow.member (external_id, name, properties) VALUES ('m-118', 'テキスト', E'{"company": "株式会社\\u0007"}');
INSERT INTO taskflow.member (external_id, name, properties) VALUES ('m-119', 'NULL値', '{"company": null}');
INSERT INTO taskflow.member (external_id, name, properties) VALUES ('m-120', '型違い', '{"company": 5}');
-- a text property is one line (テキスト(1行)): no line break or tab either
INSERT INTO taskflow.member (external_id, name, properties) VALUES ('m-121', '改行', E'{"company": "株式会社\\nすずき"}');
INSERT INTO taskflow.member (external_id, name, properties) VALUES ('m-122', 'タブ', E'{"company": "株式会社\\tすずき"}');
-- nothing of the above was written
SELECT count(*) AS members FROM taskflow.member;

-- an update is validated the same way
UPDATE taskflow.member SET properties = properties || '{"plan": "ダイヤ"}' WHERE external_id = 'm-001';
UPDATE taskflow.member SET email = E'x@example.jp\n' WHERE external_id = 'm-001';

-- set_property / remove_property
SELECT taskflow.set_property(2, 'plan', 'シルバー'::text);
SELECT taskflow.set_property(2, 'points', 30);
SELECT taskflow.set_property(2, 'renewal_date', date '2027-01-15');
SELECT taskflow.set_property(2, 'points', '三十'::text);
SELECT taskflow.set_property(999, 'points', 1);
SELECT taskflow.remove_property(2, 'renewal_date');
SELECT properties FROM taskflow.member WHERE member_id = 2;

-- a definition change that existing values do not fit is refused
SELECT taskflow.define_property('plan', 'list', ARRAY['ブロンズ', 'シルバー']);
SELECT taskflow.define_property('plan', 'list', ARRAY['ブロンズ', 'シルバー', 'ゴールド', 'プラチナ']);
SELECT taskflow.drop_property('company');
SELECT taskflow.drop_property('company', remove_values => true);
SELECT taskflow.drop_property('company');
SELECT count(*) FROM taskflow.member WHERE properties ? 'company';
-- a property a saved criteria reads cannot be dropped
SELECT taskflow.save_criteria('ポイント千以上', 'prop_number(properties, ''points'') >= 1000') > 0 AS saved;
SELECT taskflow.drop_property('points', remove_values => true);
SELECT taskflow.drop_criteria('ポイント千以上');

-- statuses are data: add one, then use it
SELECT taskflow.define_status('vip', 'VIP会員');
-- defined again without a description: the description stays
SELECT taskflow.define_status('vip');
SELECT taskflow.define_event_kind('seminar', 'セミナー参加');
SELECT taskflow.define_event_kind('seminar');
SELECT (SELECT description FROM taskflow.member_status WHERE status = 'vip') AS status_description,
	   (SELECT description FROM taskflow.event_kind WHERE kind = 'seminar') AS kind_description;
SELECT taskflow.define_status('VIP!', 'bad');
UPDATE taskflow.member SET status = 'vip' WHERE external_id = 'm-001';
SELECT status, description, builtin FROM taskflow.member_status ORDER BY status;

---------------------------------------------------------------- tags
SELECT taskflow.add_tag(2, '体験中');
SELECT taskflow.add_tag(2, '体験中');
SELECT taskflow.add_tag(4, 'メルマガ');
SELECT taskflow.remove_tag(3, '動画講座');
SELECT taskflow.remove_tag(3, '動画講座');
SELECT taskflow.add_tag(999, 'x');
SELECT taskflow.add_tag(2, E'改行\nタグ');
-- remove_tag trims as add_tag does; both trim the full-width space (U+3000)
SELECT taskflow.add_tag(2, ' 紹介 ');
SELECT taskflow.remove_tag(2, ' 紹介 ');
SELECT taskflow.add_tag(2, '　紹介　');
SELECT taskflow.add_tag(2, '紹介');
SELECT taskflow.remove_tag(2, '　紹介　');
SELECT taskflow.add_tag(2, '　');
UPDATE taskflow.member SET tags = ARRAY['　メルマガ ', 'メルマガ'] WHERE member_id = 4;
SELECT external_id, tags FROM taskflow.member ORDER BY member_id;
SELECT * FROM taskflow.tag_usage ORDER BY tag;
-- "has tag" uses the GIN index
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT member_id FROM taskflow.member WHERE taskflow.has_tag(tags, '優良会員');
RESET enable_seqscan;

---------------------------------------------------------------- groups
SELECT taskflow.create_group('オンラインサロン', '月額会員のコミュニティ');
SELECT taskflow.create_group('オンラインサロン');
SELECT taskflow.create_group('  ');
SELECT taskflow.join_group(1, 'オンラインサロン', '2026-02-01 10:00+09');
SELECT taskflow.join_group(1, 'オンラインサロン', '2026-03-01 10:00+09');
SELECT taskflow.join_group(3, 'オンラインサロン', '2026-10-01 10:00+09');
SELECT taskflow.leave_group(3, 'オンラインサロン', '2026-11-01 10:00+09');
SELECT taskflow.leave_group(3, 'オンラインサロン', '2026-11-02 10:00+09');
-- a stay cannot overlap an earlier one, nor end before it starts
SELECT taskflow.join_group(3, 'オンラインサロン', '2026-10-15 10:00+09');
SELECT taskflow.join_group(3, 'オンラインサロン', '2026-09-15 10:00+09');
SELECT taskflow.join_group(3, 'オンラインサロン', '2026-11-10 10:00+09');
SELECT taskflow.leave_group(3, 'オンラインサロン', '2026-11-05 10:00+09');
SELECT taskflow.leave_group(3, 'オンラインサロン', '2026-11-15 10:00+09');
SELECT kind, occurred_at, detail FROM taskflow.timeline(3) WHERE kind LIKE 'group%' ORDER BY occurred_at;
SELECT taskflow.join_group(2, '存在しない');
-- however a stay is written (INSERT, COPY, UPDATE), it cannot overlap
-- another stay of the member in the group
INSERT INTO taskflow.group_membership (member_id, group_id, joined_at, left_at)
VALUES (3, taskflow.group_id('オンラインサロン'), '2026-10-20 10:00+09', '2026-10-25 10:00+09');
INSERT INTO taskflow.group_membership (member_id, group_id, joined_at)
VALUES (3, taskflow.group_id('オンラインサロン'), '2026-09-01 10:00+09');
UPDATE taskflow.group_membership SET left_at = '2026-11-12 10:00+09'
 WHERE member_id = 3 AND joined_at = '2026-10-01 10:00+09';
COPY taskflow.group_membership (member_id, group_id, joined_at, left_at) FROM stdin;
3	1	2026-11-14 10:00:00+09	2026-11-20 10:00:00+09
\.
-- one may start the instant the one before ended
INSERT INTO taskflow.group_membership (member_id, group_id, joined_at, left_at)
VALUES (3, taskflow.group_id('オンラインサロン'), '2026-11-01 10:00+09', '2026-11-05 10:00+09');
-- a second open stay is the unique index's: ON CONFLICT DO NOTHING still
-- leaves a member already in the group as they are
INSERT INTO taskflow.group_membership (member_id, group_id, joined_at)
VALUES (1, taskflow.group_id('オンラインサロン'), '2026-01-15 10:00+09')
ON CONFLICT (member_id, group_id) WHERE left_at IS NULL DO NOTHING;
SELECT m.external_id, g.name, gm.joined_at, gm.left_at
  FROM taskflow.group_membership gm JOIN taskflow.member m USING (member_id)
  JOIN taskflow.member_group g USING (group_id) ORDER BY 1, 3;

---------------------------------------------------------------- events
SELECT taskflow.record_payment(1, 5500, '2026-01-10', '2026-02-09', '2026-01-10 09:05+09') IS NOT NULL AS paid;
SELECT taskflow.record_payment(1, 5500, '2026-02-10', '2026-03-09', '2026-02-10 09:00+09') IS NOT NULL AS paid;
SELECT taskflow.record_payment(3, 5500, '2026-09-01', '2026-09-30', '2026-09-01 10:00+09') IS NOT NULL AS paid;
SELECT taskflow.record_payment(3, -1, '2026-10-01', '2026-10-31');
SELECT taskflow.record_payment(3, 5500, '2026-10-31', '2026-10-01');
SELECT taskflow.record_event(2, 'purchase', '{"item": "入門講座DVD", "price": 3980}', '2026-11-20 15:00+09') IS NOT NULL AS recorded;
SELECT taskflow.record_event(2, 'form', '{"form": "資料請求", "answer": "郵送希望"}', '2026-11-16 09:00+09') IS NOT NULL AS recorded;
SELECT taskflow.record_event(2, 'telepathy', '{}');
SELECT taskflow.record_event(2, 'form', '"not an object"');
SELECT taskflow.record_event(999, 'form', '{}');
SELECT taskflow.add_note(2, '電話で入会を検討中とのこと', '2026-11-21 11:00+09') IS NOT NULL AS noted;
SELECT taskflow.add_note(2, '  ');
SELECT taskflow.define_event_kind('seminar', 'セミナー参加');
SELECT taskflow.record_event(2, 'seminar', '{"title": "集客セミナー"}', '2026-11-22 14:00+09') IS NOT NULL AS recorded;
SELECT kind, occurred_at, amount, period, detail FROM taskflow.timeline(2);
SELECT taskflow.unsubscribe(4, '2026-11-01 00:00+09', '配信停止リンク');
SELECT taskflow.unsubscribe(4);
SELECT unsubscribed_at FROM taskflow.member WHERE member_id = 4;
SELECT taskflow.resubscribe(4, '2026-11-10 00:00+09');
SELECT kind, occurred_at, detail FROM taskflow.timeline(4);

---------------------------------------------------------------- predicates as of fixed instants
SET taskflow.as_of = '2026-11-28 09:00+09';
SELECT taskflow.clock();
SELECT external_id,
	   taskflow.days_since(joined_at) AS days_since_join,
	   taskflow.days_until(expires_at) AS days_to_expiry,
	   taskflow.within_next(expires_at, '7 days') AS expires_within_7d,
	   taskflow.paid_count(member_id) AS payments,
	   taskflow.paid_for_month(member_id, 2) AS paid_month2,
	   taskflow.paid_within(member_id, '35 days') AS paid_35d,
	   taskflow.in_group(member_id, 'オンラインサロン') AS salon,
	   taskflow.days_until_anniversary(birthday) AS to_birthday
  FROM taskflow.member ORDER BY member_id;
-- earlier instant: events recorded later do not count yet
SET taskflow.as_of = '2026-02-01 00:00+09';
SELECT external_id, taskflow.paid_count(member_id) AS payments,
	   taskflow.paid_for_month(member_id, 2) AS paid_month2,
	   taskflow.in_group(member_id, 'オンラインサロン') AS salon,
	   taskflow.days_until_anniversary(birthday) AS to_birthday
  FROM taskflow.member ORDER BY member_id;
-- 29 February birthdays fall on 28 February in common years
SET taskflow.as_of = '2027-02-27 12:00+09';
SELECT taskflow.days_until_anniversary('1980-02-29');
SET taskflow.as_of = '2028-02-28 12:00+09';
SELECT taskflow.days_until_anniversary('1980-02-29');
-- bad clock values
SET taskflow.as_of = 'いつか';
SET taskflow.as_of = 'infinity';
RESET taskflow.as_of;
SELECT taskflow.clock() = now() AS clock_is_now;
SET taskflow.as_of = '2026-11-20 10:00+09';
-- property readers
SELECT external_id, taskflow.prop_text(properties, 'plan') AS plan,
	   taskflow.prop_number(properties, 'points') AS points,
	   taskflow.prop_bool(properties, 'newsletter_ok') AS ok,
	   taskflow.prop_date(properties, 'renewal_date') AS renewal
  FROM taskflow.member ORDER BY member_id;

---------------------------------------------------------------- COPY import / export
COPY (SELECT external_id, email, name, status, joined_at, tags, properties
		FROM taskflow.member ORDER BY member_id) TO STDOUT WITH (FORMAT csv, HEADER);
COPY taskflow.member (external_id, email, name, status, joined_at, tags, properties) FROM STDIN WITH (FORMAT csv, HEADER);
external_id,email,name,status,joined_at,tags,properties
m-201,ito@example.jp,伊藤健太,trial,2026-11-20 10:00:00+09,{体験中},"{""plan"": ""ブロンズ""}"
m-202,watanabe@example.jp,渡辺さくら,paid,2026-10-01 10:00:00+09,{},{}
\.
SELECT external_id, name, status, tags, properties FROM taskflow.member WHERE external_id LIKE 'm-2%' ORDER BY 1;
-- a bad row in a COPY loads nothing
COPY taskflow.member (external_id, email, name, properties) FROM STDIN WITH (FORMAT csv);
m-203,kobayashi@example.jp,小林,{}
m-204,nakamura@example.jp,中村,"{""plan"": ""ダイヤ""}"
\.
SELECT count(*) FROM taskflow.member WHERE external_id IN ('m-203', 'm-204');

---------------------------------------------------------------- roles
CREATE ROLE tf_mem_app LOGIN IN ROLE taskflow_app;
CREATE ROLE tf_mem_op LOGIN IN ROLE taskflow_operator;
CREATE ROLE tf_mem_nobody LOGIN;
SET ROLE tf_mem_app;
INSERT INTO taskflow.member (external_id, email, name) VALUES ('m-301', 'kato@example.jp', '加藤') RETURNING name;
SELECT taskflow.add_tag((SELECT member_id FROM taskflow.member WHERE external_id = 'm-301'), '体験中');
SELECT taskflow.define_property('source', 'text');
RESET ROLE;
SET ROLE tf_mem_op;
SELECT count(*) > 0 AS operator_reads FROM taskflow.member;
INSERT INTO taskflow.member (external_id, name) VALUES ('m-302', '不正');
UPDATE taskflow.member SET status = 'cancelled';
SELECT taskflow.define_property('hack', 'text');
RESET ROLE;
SET ROLE tf_mem_nobody;
SELECT count(*) FROM taskflow.member;
SELECT taskflow.clock();
INSERT INTO taskflow.custom_property (name, type) VALUES ('x', 'text');
RESET ROLE;
-- nobody can write definitions directly, not even the application
SET ROLE tf_mem_app;
INSERT INTO taskflow.custom_property (name, type) VALUES ('x', 'text');
DELETE FROM taskflow.member_status;
RESET ROLE;

-- deleting a member removes its timeline and group rows
DELETE FROM taskflow.member WHERE external_id = 'm-003';
SELECT count(*) FROM taskflow.event e WHERE NOT EXISTS (SELECT FROM taskflow.member m WHERE m.member_id = e.member_id);

DROP OWNED BY tf_mem_app, tf_mem_op, tf_mem_nobody;
DROP ROLE tf_mem_app, tf_mem_op, tf_mem_nobody;
