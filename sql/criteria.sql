-- Criteria: saved member searches, validated when saved, run as their owner
-- as of an instant.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
SET client_min_messages = warning;
DROP ROLE IF EXISTS tf_crit_a, tf_crit_a2, tf_crit_b, tf_crit_op, tf_crit_gone;
RESET client_min_messages;
-- the clock for tag and group events written below
SET taskflow.as_of = '2026-01-01 00:00+09';

---------------------------------------------------------------- sample data
-- Two instants are used throughout: 4/10 and 4/13 (2026), 09:00 JST.
SELECT taskflow.define_property('plan', 'list', ARRAY['ブロンズ', 'シルバー', 'ゴールド'], '会員プラン');
SELECT taskflow.define_property('points', 'number');
SELECT taskflow.define_property('renewal_date', 'date', NULL, '契約更新日');
SELECT taskflow.define_property('company', 'text');
SELECT taskflow.create_group('プレミアム');

INSERT INTO taskflow.member (external_id, email, name, status, joined_at, expires_at, tags, properties) VALUES
	('m-1', 'yamada@example.jp', '山田太郎', 'paid', '2026-02-01 10:00+09', '2026-04-12 00:00+09',
	 '{優良会員}', '{"plan": "ゴールド", "points": 120}'),
	('m-2', 'sato@example.jp', '佐藤花子', 'trial', '2026-03-27 15:00+09', '2026-04-10 15:00+09',
	 '{}', '{}'),
	('m-3', 'suzuki@example.jp', '鈴木一郎', 'trial', '2026-03-30 11:00+09', '2026-04-13 12:00+09',
	 '{}', '{"company": "鈴木商店"}'),
	('m-4', 'takahashi@example.jp', '高橋美咲', 'paid', '2026-03-05 10:00+09', '2026-05-04 00:00+09',
	 '{優良会員,紹介}', '{"plan": "シルバー", "points": 40, "renewal_date": "2026-04-17"}'),
	('m-5', 'tanaka@example.jp', '田中健', 'paid', '2026-01-15 10:00+09', '2026-04-30 00:00+09',
	 '{}', '{"plan": "ブロンズ"}'),
	('m-6', 'ito@example.jp', '伊藤さくら', 'newsletter', '2025-12-01 10:00+09', NULL,
	 '{}', '{"points": 80}');
SELECT member_id, name, status FROM taskflow.member ORDER BY member_id;

-- payments: 山田 monthly; 高橋's month 2 arrives on 4/11; 田中 paid month 2 late, on 3/8
SELECT taskflow.record_payment(1, 3000, '2026-02-01', '2026-02-28', '2026-02-01 10:00+09'),
	   taskflow.record_payment(1, 3000, '2026-03-01', '2026-03-31', '2026-03-01 10:00+09'),
	   taskflow.record_payment(1, 3000, '2026-04-01', '2026-04-30', '2026-04-01 10:00+09'),
	   taskflow.record_payment(4, 3000, '2026-03-05', '2026-04-04', '2026-03-05 10:00+09'),
	   taskflow.record_payment(4, 3000, '2026-04-05', '2026-05-04', '2026-04-11 10:00+09'),
	   taskflow.record_payment(5, 3000, '2026-01-15', '2026-02-14', '2026-01-15 10:00+09'),
	   taskflow.record_payment(5, 3000, '2026-02-15', '2026-03-14', '2026-03-08 10:00+09');
-- 山田 is in the premium group since January, 伊藤 from 4/12
SELECT taskflow.join_group(1, 'プレミアム', '2026-01-01 00:00+09'),
	   taskflow.join_group(6, 'プレミアム', '2026-04-12 12:00+09');
RESET taskflow.as_of;

---------------------------------------------------------------- good criteria
SELECT taskflow.save_criteria('有効期限3日以内', $$within_next(expires_at, '3 days')$$,
							  '有効期限まで3日以内の会員');
SELECT taskflow.save_criteria('トライアル14日目', $$status = 'trial' AND days_since(joined_at) = 14$$);
SELECT taskflow.save_criteria('有料2カ月目入金済', $$status = 'paid' AND paid_for_month(member_id, 2)$$);
SELECT taskflow.save_criteria('優良会員', $$has_tag(tags, '優良会員')$$);
SELECT taskflow.save_criteria('35日間入金なし', $$status = 'paid' AND NOT paid_within(member_id, '35 days')$$);
SELECT taskflow.save_criteria('ゴールド高ポイント',
							  $$prop_text(properties, 'plan') = 'ゴールド' AND prop_number(properties, 'points') >= 100$$);
SELECT taskflow.save_criteria('更新7日前', $$days_until(prop_date(properties, 'renewal_date')) = 7$$);
SELECT taskflow.save_criteria('プレミアム会員', $$in_group(member_id, 'プレミアム')$$);
-- a subquery over the timeline, written by hand, and jsonb operators
SELECT taskflow.save_criteria('10日以内に入金',
	$$EXISTS (SELECT FROM taskflow.event e
	           WHERE e.member_id = member.member_id AND e.kind = 'payment'
	             AND e.occurred_at > taskflow.clock() - interval '10 days'
	             AND e.occurred_at <= taskflow.clock())$$);
SELECT taskflow.save_criteria('会社名あり', $$properties ? 'company' AND properties ->> 'company' <> ''$$);

-- what was saved: the expression as written, and the normalized form that
-- runs (every name outside pg_catalog schema-qualified)
SELECT criteria_id, name, normalized, properties
  FROM taskflow.criteria_list ORDER BY criteria_id;

-- each criteria as of 4/10 and as of 4/13 (search returns rows by member_id)
SELECT c.name,
	   taskflow.count(c.name, '2026-04-10 09:00+09') AS n_0410,
	   (SELECT string_agg(m.name, ', ') FROM taskflow.search(c.name, '2026-04-10 09:00+09') m) AS members_0410,
	   taskflow.count(c.name, '2026-04-13 09:00+09') AS n_0413,
	   (SELECT string_agg(m.name, ', ') FROM taskflow.search(c.name, '2026-04-13 09:00+09') m) AS members_0413
  FROM taskflow.criteria_list c
 ORDER BY c.criteria_id;
-- the clock is back where it was after searching as of other instants
SELECT current_setting('taskflow.as_of') AS as_of_after_search;

-- search returns whole member rows, by member_id
SELECT member_id, name, email, status FROM taskflow.search('有料2カ月目入金済', '2026-04-13 09:00+09');

-- as_of defaults to taskflow.clock(): the setting taskflow.as_of, else now()
SET taskflow.as_of = '2026-04-10 09:00+09';
SELECT taskflow.count('トライアル14日目'), (SELECT name FROM taskflow.search('トライアル14日目'));
SET taskflow.as_of = '2026-04-13 09:00+09';
SELECT taskflow.count('トライアル14日目'), (SELECT name FROM taskflow.search('トライアル14日目'));
RESET taskflow.as_of;

-- an ad-hoc search, validated like a criteria, runs as the caller
SELECT member_id, name
  FROM taskflow.search_expression($$status = 'paid' AND days_until(expires_at) <= 3$$,
								  '2026-04-10 09:00+09');

-- check_criteria validates without saving and shows the normalized form
SELECT taskflow.check_criteria($$days_until(expires_at) BETWEEN 0 AND 7 AND NOT has_tag(tags, '退会予定')$$);
-- a bare string literal is read as a boolean, as in WHERE
SELECT taskflow.check_criteria($$'true'$$);

-- replacing keeps the id and the description when none is given
SELECT taskflow.save_criteria('有効期限3日以内', $$within_next(expires_at, '3 days') AND status = 'paid'$$);
SELECT criteria_id, description, expression FROM taskflow.criteria_list WHERE name = '有効期限3日以内';
SELECT taskflow.count('有効期限3日以内', '2026-04-10 09:00+09');

-- properties read by criteria cannot be dropped
SELECT taskflow.property_used_by('points'), taskflow.property_used_by('company'),
	   taskflow.property_used_by('renewal_date'), taskflow.property_used_by('nothing');
SELECT taskflow.drop_property('points', true);
SELECT taskflow.drop_property('renewal_date', true);

---------------------------------------------------------------- bad criteria
-- syntax error
SELECT taskflow.save_criteria('悪い例', $$status = $$);
-- unknown column
SELECT taskflow.save_criteria('悪い例', $$statu = 'paid'$$);
-- unknown function
SELECT taskflow.save_criteria('悪い例', $$has_tags(tags, '優良会員')$$);
-- not a boolean
SELECT taskflow.save_criteria('悪い例', $$days_until(expires_at)$$);
-- a statement
SELECT taskflow.save_criteria('悪い例', $$SELECT 1$$);
SELECT taskflow.save_criteria('悪い例', $$DELETE FROM taskflow.member$$);
-- two statements, and a statement-ending semicolon
SELECT taskflow.save_criteria('悪い例', $$true; DROP TABLE taskflow.member$$);
SELECT taskflow.save_criteria('悪い例', $$status = 'paid';$$);
-- breaking out of parentheses
SELECT taskflow.save_criteria('悪い例', $$true) OR (true$$);
-- clauses of a query
SELECT taskflow.save_criteria('悪い例', $$true FROM pg_authid$$);
SELECT taskflow.save_criteria('悪い例', $$status = 'paid' ORDER BY 1$$);
SELECT taskflow.save_criteria('悪い例', $$true UNION SELECT false$$);
-- more than one expression, an alias, a star
SELECT taskflow.save_criteria('悪い例', $$true, false$$);
SELECT taskflow.save_criteria('悪い例', $$true AS ok$$);
SELECT taskflow.save_criteria('悪い例', $$*$$);
-- aggregate, window and set-returning functions
SELECT taskflow.save_criteria('悪い例', $$count(*) > 0$$);
SELECT taskflow.save_criteria('悪い例', $$row_number() OVER () = 1$$);
SELECT taskflow.save_criteria('悪い例', $$generate_series(1, 3) = member_id$$);
-- volatile functions, also inside a subquery
SELECT taskflow.save_criteria('悪い例', $$random() < 0.5$$);
SELECT taskflow.save_criteria('悪い例',
	$$EXISTS (SELECT FROM taskflow.event e WHERE e.member_id = member.member_id AND random() < 0.5)$$);
-- the real time instead of taskflow's clock
SELECT taskflow.save_criteria('悪い例', $$expires_at < now() + interval '3 days'$$);
SELECT taskflow.save_criteria('悪い例', $$expires_at::date = current_date$$);
SELECT taskflow.save_criteria('悪い例', $$expires_at < clock_timestamp()$$);
SELECT taskflow.save_criteria('悪い例', $$expires_at < 'now'$$);
SELECT taskflow.save_criteria('悪い例', $$birthday = date 'today'$$);
-- custom properties: unknown, wrong reader for the type, not a constant
SELECT taskflow.save_criteria('悪い例', $$prop_text(properties, 'plann') = 'ゴールド'$$);
SELECT taskflow.save_criteria('悪い例', $$prop_number(properties, 'plan') > 1$$);
SELECT taskflow.save_criteria('悪い例', $$prop_bool(properties, 'points')$$);
SELECT taskflow.save_criteria('悪い例', $$properties ->> 'nope' = 'x'$$);
SELECT taskflow.save_criteria('悪い例', $$properties ?| array['plan', 'rank']$$);
SELECT taskflow.save_criteria('悪い例', $$prop_text(properties, status) = 'x'$$);
-- a criteria built on another criteria
SELECT taskflow.save_criteria('悪い例', $$taskflow.count('優良会員') > 0$$);
-- a parameter
SELECT taskflow.save_criteria('悪い例', $$member_id = $1$$);
-- a value the type does not accept, an error found only when planning
SELECT taskflow.save_criteria('悪い例', $$expires_at < '2026-02-30'$$);
SELECT taskflow.save_criteria('悪い例', $$member_id > 1 / 0$$);
-- a temporary table
CREATE TEMP TABLE tf_crit_tmp (member_id bigint);
SELECT taskflow.save_criteria('悪い例', $$member_id IN (SELECT t.member_id FROM tf_crit_tmp t)$$);
DROP TABLE tf_crit_tmp;
-- no expression, no name, bad names
SELECT taskflow.save_criteria('悪い例', NULL);
SELECT taskflow.save_criteria('悪い例', '   ');
SELECT taskflow.save_criteria('悪い例', '-- just a comment');
SELECT taskflow.save_criteria(NULL, 'true');
SELECT taskflow.save_criteria('', 'true');
SELECT taskflow.save_criteria(repeat('長', 64), 'true');
SELECT taskflow.save_criteria(E'改行\nあり', 'true');
SELECT taskflow.save_criteria(' 前に空白', 'true');
-- multi-line: the caret points at the line with the problem
SELECT taskflow.check_criteria($$status = 'paid'
  AND days_untill(expires_at) = 7$$);
-- nothing bad was saved
SELECT count(*) AS bad_saved FROM taskflow.criteria WHERE name = '悪い例';

-- searching: unknown criteria, NULL arguments
SELECT taskflow.count('存在しない');
SELECT * FROM taskflow.search(NULL);
SELECT taskflow.count('優良会員', NULL);
SELECT * FROM taskflow.search_expression($$statu = 'paid'$$);
-- dropping an unknown criteria
SELECT taskflow.drop_criteria('存在しない');

---------------------------------------------------------------- privileges
CREATE ROLE tf_crit_a IN ROLE taskflow_app;
CREATE ROLE tf_crit_a2 IN ROLE tf_crit_a, taskflow_app;
CREATE ROLE tf_crit_b IN ROLE taskflow_app;
CREATE ROLE tf_crit_op IN ROLE taskflow_operator;
CREATE TABLE public.tf_crit_secret (member_id bigint);
INSERT INTO public.tf_crit_secret VALUES (1);

SET ROLE tf_crit_a;
SELECT taskflow.save_criteria('Aの条件', $$has_tag(tags, '優良会員')$$, 'Aさん用');
-- a criteria over a table tf_crit_a cannot read is refused when saved
SELECT taskflow.save_criteria('秘密',
	$$EXISTS (SELECT FROM public.tf_crit_secret s WHERE s.member_id = member.member_id)$$);
-- criteria_list shows only the criteria tf_crit_a may use
SELECT name, owner, description FROM taskflow.criteria_list ORDER BY name;
SELECT taskflow.count('Aの条件', '2026-04-10 09:00+09');
-- the table and the internal functions are out of reach
SELECT count(*) FROM taskflow.criteria;
INSERT INTO taskflow.criteria (name, expression, normalized, owner) VALUES ('x', 'true', 'true', 'tf_crit_a');
SELECT taskflow._save_criteria('tf_crit_a', 'x', 'true', NULL);
SELECT * FROM taskflow._criteria_validate('tf_crit_a', 'true', 'x');
RESET ROLE;

SET ROLE tf_crit_b;
SELECT taskflow.count('Aの条件');
SELECT * FROM taskflow.search('Aの条件');
SELECT taskflow.save_criteria('Aの条件', 'true');
SELECT taskflow.drop_criteria('Aの条件');
SELECT name FROM taskflow.criteria_list;
-- check_criteria validates as the caller
SELECT taskflow.check_criteria($$EXISTS (SELECT FROM public.tf_crit_secret s WHERE s.member_id = member.member_id)$$);
RESET ROLE;

-- operators search but do not define
SET ROLE tf_crit_op;
SELECT taskflow.save_criteria('運用', 'true');
SELECT member_id, name FROM taskflow.search_expression($$has_tag(tags, '紹介')$$);
RESET ROLE;

-- a member of tf_crit_a uses and replaces its criteria; the owner stays tf_crit_a
SET ROLE tf_crit_a2;
SELECT taskflow.count('Aの条件', '2026-04-10 09:00+09');
SELECT taskflow.save_criteria('Aの条件', $$has_tag(tags, '紹介')$$);
SELECT name, owner, description, expression FROM taskflow.criteria_list WHERE name = 'Aの条件';
SELECT member_id, name FROM taskflow.search('Aの条件', '2026-04-10 09:00+09');
RESET ROLE;

-- the criteria runs as its owner: revoking the owner's access makes the
-- search fail, even for a superuser
REVOKE taskflow_app FROM tf_crit_a;
SELECT taskflow.count('Aの条件', '2026-04-10 09:00+09');
GRANT taskflow_app TO tf_crit_a;

-- definitions cannot be changed from a security-restricted operation
CREATE MATERIALIZED VIEW tf_crit_mv AS SELECT taskflow.save_criteria('MV', 'true');

-- a criteria whose owner was dropped: a superuser re-saves it to take it over
CREATE ROLE tf_crit_gone IN ROLE taskflow_app;
SET ROLE tf_crit_gone;
SELECT taskflow.save_criteria('孤児', $$status = 'trial'$$);
RESET ROLE;
-- here DROP ROLE is refused (it owns taskflow objects in this database);
-- dropped from another database, which taskflow does not see from there
DROP ROLE tf_crit_gone;
SELECT current_database() AS regress_db \gset
\c postgres
DROP ROLE tf_crit_gone;
\c :regress_db
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
SET taskflow.as_of = '2026-01-01 00:00+09';
SELECT taskflow.count('孤児');
SELECT taskflow.save_criteria('孤児', $$status = 'trial'$$);
SELECT owner = current_user::regrole AS taken_over, taskflow.count('孤児', '2026-04-10 09:00+09') FROM taskflow.criteria_list WHERE name = '孤児';

SET ROLE tf_crit_a;
SELECT taskflow.drop_criteria('Aの条件');
RESET ROLE;
SELECT count(*) AS a_left FROM taskflow.criteria WHERE name = 'Aの条件';

-- a criteria in use (here by a table with a foreign key) cannot be dropped
CREATE TABLE public.tf_crit_uses (criteria_id integer REFERENCES taskflow.criteria);
INSERT INTO public.tf_crit_uses SELECT criteria_id FROM taskflow.criteria WHERE name = '孤児';
SELECT taskflow.drop_criteria('孤児');
DROP TABLE public.tf_crit_uses;
SELECT taskflow.drop_criteria('孤児');

---------------------------------------------------------------- search_path
-- Saved criteria are normalized and run with search_path pinned: functions
-- and operators created later in another schema change nothing.
CREATE FUNCTION public.has_tag(text[], text) RETURNS boolean
	LANGUAGE sql IMMUTABLE AS 'SELECT true';
CREATE FUNCTION public.tf_crit_texteq(text, text) RETURNS boolean
	LANGUAGE sql IMMUTABLE AS 'SELECT true';
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.tf_crit_texteq);
SET search_path = public, pg_catalog, taskflow;
SELECT taskflow.count('優良会員', '2026-04-10 09:00+09') AS tagged,
	   taskflow.count('トライアル14日目', '2026-04-10 09:00+09') AS trial_day_14;
-- the same for a new criteria: its names resolve in pg_catalog and taskflow
SELECT taskflow.check_criteria($$has_tag(tags, '優良会員') AND status = 'paid'$$);
SELECT member_id, name
  FROM taskflow.search_expression($$has_tag(tags, '優良会員') AND status = 'paid'$$, '2026-04-10 09:00+09');
-- while an ordinary query in this session does pick them up
SELECT count(*) AS hijacked FROM taskflow.member m WHERE has_tag(m.tags, '優良会員') AND m.status = 'x';
RESET search_path;
DROP OPERATOR public.= (text, text);
DROP FUNCTION public.tf_crit_texteq(text, text), public.has_tag(text[], text);

---------------------------------------------------------------- containment and subscripts
-- properties matched with @> / <@ or read with a subscript are checked and
-- recorded like ->>: the names must be defined, a contained value must be
-- one a member can hold
SELECT taskflow.check_criteria($$properties @> '{"plan": "ゴールド", "company": "山田商事"}'$$);
SELECT taskflow.check_criteria($$'{"plan": "シルバー"}' <@ properties$$);
SELECT taskflow.check_criteria($$properties['company'] = '"山田商事"'$$);
SELECT taskflow.save_criteria('ゴールド会員', $$properties @> '{"plan": "ゴールド"}'$$);
SELECT taskflow.save_criteria('会社名指定', $$properties['company'] = '"山田商事"'$$);
SELECT name, properties FROM taskflow.criteria_list
 WHERE name IN ('ゴールド会員', '会社名指定') ORDER BY name;
SELECT member_id, name FROM taskflow.search('ゴールド会員', '2026-04-10 09:00+09');
SELECT taskflow.save_criteria('悪い例', $$properties @> '{"plann": "ゴールド"}'$$);
SELECT taskflow.save_criteria('悪い例', $$properties['plann'] = '"ゴールド"'$$);
SELECT taskflow.save_criteria('悪い例', $$properties @> '{"plan": "ゴールド会員"}'$$);
SELECT taskflow.save_criteria('悪い例', $$properties @> '{"plan": 3}'$$);
SELECT taskflow.save_criteria('悪い例', $$properties @> '{"plan": null}'$$);
-- a property read only that way is in use: neither dropped nor retyped
SELECT taskflow.define_property('rank', 'text', NULL, 'ランク');
SELECT taskflow.save_criteria('ランク金', $$properties @> '{"rank": "金"}'$$);
SELECT taskflow.property_used_by('rank');
SELECT taskflow.drop_property('rank', true);
SELECT taskflow.define_property('rank', 'number');
SELECT taskflow.drop_criteria('ランク金'), taskflow.drop_criteria('ゴールド会員'),
	   taskflow.drop_criteria('会社名指定');
SELECT taskflow.drop_property('rank', true);

---------------------------------------------------------------- clean up
DROP TABLE public.tf_crit_secret;
DROP ROLE tf_crit_a, tf_crit_a2, tf_crit_b, tf_crit_op;
