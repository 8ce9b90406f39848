-- Engine failure handling: a failing chain is isolated from the healthy
-- ones and paused after repeated failures; privileges between application
-- roles, operators and the engine; and bad task / chain / step definitions,
-- each refused with a clear error, changing nothing.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
SET taskflow.as_of = '2026-04-01 00:00+09';
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS engine_errors_a, engine_errors_b, engine_errors_shop CASCADE;
DROP ROLE IF EXISTS engine_errors_a, engine_errors_b, engine_errors_op;
RESET client_min_messages;

CREATE ROLE engine_errors_a IN ROLE taskflow_app;
CREATE ROLE engine_errors_b IN ROLE taskflow_app;
CREATE ROLE engine_errors_op IN ROLE taskflow_operator;
-- A's private data; a shop table both may write
CREATE SCHEMA engine_errors_a AUTHORIZATION engine_errors_a;
CREATE SCHEMA engine_errors_b AUTHORIZATION engine_errors_b;
CREATE SCHEMA engine_errors_shop;
CREATE TABLE engine_errors_shop.grant_log (
	member_id bigint PRIMARY KEY,
	granted_at timestamptz NOT NULL,
	note text
);
GRANT USAGE ON SCHEMA engine_errors_shop TO engine_errors_a, engine_errors_b;
GRANT SELECT, INSERT, UPDATE, DELETE ON engine_errors_shop.grant_log TO engine_errors_a, engine_errors_b;

INSERT INTO taskflow.member (external_id, email, name, status, joined_at, tags) VALUES
	('f-1', 'yamada@example.jp', '山田太郎', 'paid', '2026-03-01 10:00+09', '{特典}'),
	('f-2', 'sato@example.jp', '佐藤花子', 'paid', '2026-03-01 10:00+09', '{特典}'),
	('f-3', 'suzuki@example.jp', '鈴木一郎', 'paid', '2026-03-01 10:00+09', '{歓迎}'),
	('f-4', 'takahashi@example.jp', '高橋美咲', 'trial', '2026-03-01 10:00+09', '{発送}'),
	('f-5', 'tanaka@example.jp', '田中健', 'trial', '2026-03-01 10:00+09', '{秘密}');
CREATE FUNCTION public.engine_errors_id(text) RETURNS bigint
	LANGUAGE sql STABLE AS 'SELECT member_id FROM taskflow.member WHERE external_id = $1';

---------------------------------------------------------------- a failing chain
-- 特典チェーン (role A) records a grant in engine_errors_shop.grant_log with
-- custom SQL; 歓迎チェーン (role A too) only tags.  The shop has closed
-- grant_log for maintenance (role A may not insert), so 特典チェーン's batch
-- (山田 and 佐藤) fails: a failure of the chain, not of a member's data
-- (those set the member aside: sql/member_failures.sql).
SET ROLE engine_errors_a;
SELECT taskflow.save_criteria('特典対象', $$has_tag(tags, '特典')$$);
SELECT taskflow.save_criteria('歓迎対象', $$has_tag(tags, '歓迎')$$);
SELECT taskflow.create_template('特典メール', '{{name}}様 特典のお知らせ', '特典を付与しました。',
	sender_address => 'info@example.jp');
SELECT taskflow.create_task('特典付与', 'auto', criteria => '特典対象', template => '特典メール',
	actions => '[{"add_tag": "特典済"},
				 {"sql": "INSERT INTO engine_errors_shop.grant_log (member_id, granted_at) SELECT m, $2 FROM unnest($1) AS m"}]');
SELECT taskflow.create_task('歓迎タグ', 'auto', criteria => '歓迎対象', actions => '[{"add_tag": "歓迎済"}]');
SELECT taskflow.create_chain('特典チェーン', ARRAY['特典付与'], pause_after_failures => 2, time_zone => 'Asia/Tokyo');
SELECT taskflow.create_chain('歓迎チェーン', ARRAY['歓迎タグ'], time_zone => 'Asia/Tokyo');
RESET ROLE;
REVOKE INSERT ON engine_errors_shop.grant_log FROM engine_errors_a;

-- one run of everything: 特典チェーン fails (its batch is rolled back, the
-- error recorded), 歓迎チェーン applies its step
SELECT * FROM taskflow.run('2026-04-01 09:00+09') ORDER BY chain;
SELECT c.name, e.at, e.sqlstate, e.message, e.detail, e.step_id IS NOT NULL AS has_step
  FROM taskflow.chain_error e JOIN taskflow.chain c USING (chain_id) ORDER BY e.error_id;
SELECT name, consecutive_failures, last_error, last_error_at, paused_reason FROM taskflow.chain ORDER BY name;
-- nothing of 特典チェーン's batch stayed: no member state, history, outbox,
-- tag or grant_log row; 歓迎チェーン's step is there
SELECT c.name, (SELECT count(*) FROM taskflow.chain_member cm WHERE cm.chain_id = c.chain_id) AS members,
	   (SELECT count(*) FROM taskflow.history h WHERE h.chain_id = c.chain_id) AS history,
	   (SELECT count(*) FROM taskflow.outbox o WHERE o.chain_id = c.chain_id) AS outbox
  FROM taskflow.chain c ORDER BY c.name;
SELECT name, tags FROM taskflow.member WHERE external_id IN ('f-1', 'f-2', 'f-3') ORDER BY member_id;
SELECT member_id, note FROM engine_errors_shop.grant_log ORDER BY member_id;
-- the second failing run in a row pauses the chain (pause_after_failures 2)
SELECT * FROM taskflow.run('2026-04-01 09:10+09') ORDER BY chain;
SELECT chain, position, task, waiting, errors, chain_state FROM taskflow.chain_summary ORDER BY chain, position;
SELECT chain, state, reason FROM taskflow.explain(engine_errors_id('f-1'), '2026-04-01 09:15+09') ORDER BY chain;
-- a paused chain is not run
SELECT * FROM taskflow.run('2026-04-01 09:20+09') ORDER BY chain;
-- fixed (INSERT granted again) and enabled again: it runs
GRANT INSERT ON engine_errors_shop.grant_log TO engine_errors_a;
SET ROLE engine_errors_a;
SET taskflow.as_of = '2026-04-01 09:25+09';
SELECT taskflow.enable_chain('特典チェーン');
RESET ROLE;
SELECT * FROM taskflow.run('2026-04-01 09:30+09') ORDER BY chain;
SELECT name, consecutive_failures, last_error IS NOT NULL AS has_last_error, paused_reason FROM taskflow.chain ORDER BY name;
SELECT m.name, h.event, h.task_name, h.at FROM taskflow.history h JOIN taskflow.member m USING (member_id)
 ORDER BY h.at, m.member_id, h.history_id;
SELECT m.name, g.granted_at FROM engine_errors_shop.grant_log g JOIN taskflow.member m USING (member_id) ORDER BY m.member_id;

-- A column an action uses is dropped after the task was saved: the step
-- fails at run time with the error recorded against that step.
SET ROLE engine_errors_a;
CREATE TABLE engine_errors_a.shipment (member_id bigint, shipped boolean DEFAULT false, memo text);
SELECT taskflow.save_criteria('発送対象', $$has_tag(tags, '発送')$$);
SELECT taskflow.create_task('発送登録', 'auto', criteria => '発送対象',
	actions => '[{"sql": "INSERT INTO engine_errors_a.shipment (member_id) SELECT m FROM unnest($1) AS m"}]');
SELECT taskflow.create_task('発送済', 'auto',
	actions => '[{"sql": "UPDATE engine_errors_a.shipment SET shipped = true, memo = ''発送済'' WHERE member_id = ANY($1)"}]');
SELECT taskflow.create_chain('発送チェーン', ARRAY['発送登録', '発送済'], waits => ARRAY[NULL, '2 hours'],
	time_zone => 'Asia/Tokyo');
SELECT * FROM taskflow.run('2026-04-01 10:00+09', '発送チェーン');
ALTER TABLE engine_errors_a.shipment DROP COLUMN memo;
SELECT * FROM taskflow.run('2026-04-01 12:00+09', '発送チェーン');
SELECT c.name, s.position, e.sqlstate, e.message FROM taskflow.chain_error e JOIN taskflow.chain c USING (chain_id)
  LEFT JOIN taskflow.chain_step s ON s.step_id = e.step_id WHERE c.name = '発送チェーン';
SELECT member_name, task, state, due_at FROM taskflow.member_state WHERE chain = '発送チェーン';
SELECT * FROM engine_errors_a.shipment;
SELECT chain, position, task, waiting, applied, errors, chain_state FROM taskflow.chain_summary
 WHERE chain = '発送チェーン' ORDER BY position;
RESET ROLE;

---------------------------------------------------------------- privileges
-- role B may not touch A's chain or task, nor use A's criteria or data
SET ROLE engine_errors_b;
SELECT taskflow.alter_chain('特典チェーン', description => '乗っ取り');
SELECT taskflow.disable_chain('特典チェーン');
SELECT taskflow.drop_chain('特典チェーン');
SELECT taskflow.enable_chain('特典チェーン');
SELECT taskflow.add_step('特典チェーン', '歓迎タグ', '1 hours');
SELECT taskflow.move_step('特典チェーン', 1, 1);
SELECT taskflow.set_wait('特典チェーン', 2, '1 hours');
SELECT taskflow.remove_step('特典チェーン', 1);
SELECT taskflow.alter_task('特典付与', mode => 'manual');
SELECT taskflow.drop_task('特典付与');
SELECT taskflow.create_task('Bのタスク', 'auto', criteria => '特典対象');
SELECT taskflow.create_task('Bの発送', 'auto',
	actions => '[{"sql": "UPDATE engine_errors_a.shipment SET shipped = true WHERE member_id = ANY($1)"}]');
SELECT taskflow.save_criteria('Bの条件',
	$$EXISTS (SELECT FROM engine_errors_a.shipment s WHERE s.member_id = member.member_id)$$);
-- B does not even see A's chain and task (row security); they are as they were
SELECT count(*) FROM taskflow.chain WHERE name = '特典チェーン';
RESET ROLE;
SELECT name, description, enabled, paused_reason FROM taskflow.chain WHERE name = '特典チェーン';
SELECT t.name, t.mode, count(s.step_id) AS steps FROM taskflow.task t LEFT JOIN taskflow.chain_step s USING (task_id)
 WHERE t.name = '特典付与' GROUP BY t.name, t.mode;
SET ROLE engine_errors_b;
-- B's own chain cannot use A's task either
SELECT taskflow.create_chain('Bのチェーン', ARRAY['歓迎タグ']);
-- B's own chain over the shared table is fine
SELECT taskflow.save_criteria('秘密対象', $$has_tag(tags, '秘密')$$);
SELECT taskflow.create_task('Bの記録', 'manual', criteria => '秘密対象',
	actions => '[{"sql": "INSERT INTO engine_errors_shop.grant_log (member_id, granted_at, note) SELECT m, $2, ''B'' FROM unnest($1) AS m"}]');
SELECT taskflow.create_chain('Bのチェーン', ARRAY['Bの記録'], time_zone => 'Asia/Tokyo');
-- B's run() runs only B's chains; naming A's chain is refused
SELECT * FROM taskflow.run('2026-04-01 13:00+09') ORDER BY chain;
SELECT * FROM taskflow.run('2026-04-01 13:00+09', '特典チェーン');
SELECT task, member_name FROM taskflow.dashboard;
RESET ROLE;
-- A cannot process B's pending members; B's chain is unchanged afterwards
SET ROLE engine_errors_a;
SELECT taskflow.process('Bの記録', NULL, '2026-04-01 13:30+09');
SELECT taskflow.alter_task('Bの記録', mode => 'auto');
RESET ROLE;
-- an operator processes them, but cannot define or run chains
SET ROLE engine_errors_op;
SELECT taskflow.create_chain('運用チェーン', ARRAY['Bの記録']);
SELECT taskflow.create_task('運用タスク', 'auto');
SELECT * FROM taskflow.run('2026-04-01 13:30+09');
-- not as of before the member became pending (13:00), nor in the future:
-- the owner's actions compute from as_of (this test's instants are past)
SELECT taskflow.process('Bの記録', NULL, '2026-04-01 12:00+09');
SELECT taskflow.process('Bの記録', NULL, '2099-04-01 13:30+09');
SELECT taskflow.process('Bの記録', NULL, '2026-04-01 13:30+09');
RESET ROLE;
SELECT m.name, h.event, h.task_name, h.at, h.actor FROM taskflow.history h JOIN taskflow.member m USING (member_id)
 WHERE h.chain_name = 'Bのチェーン' ORDER BY h.at, h.history_id;
SELECT m.name, g.note FROM engine_errors_shop.grant_log g JOIN taskflow.member m USING (member_id) ORDER BY m.member_id;

-- privileges change after saving: A loses INSERT on the shop table; the
-- chain's next run fails with the error recorded (nothing crashes, the
-- other chains run)
SET ROLE engine_errors_a;
UPDATE taskflow.member SET tags = '{特典}' WHERE external_id = 'f-3';
RESET ROLE;
REVOKE INSERT ON engine_errors_shop.grant_log FROM engine_errors_a;
SELECT * FROM taskflow.run('2026-04-01 14:00+09') ORDER BY chain;
SELECT c.name, e.sqlstate, e.message FROM taskflow.chain_error e JOIN taskflow.chain c USING (chain_id)
 WHERE e.at = '2026-04-01 14:00+09' ORDER BY e.error_id;
GRANT INSERT ON engine_errors_shop.grant_log TO engine_errors_a;

---------------------------------------------------------------- bad definitions
SET ROLE engine_errors_a;
SET taskflow.as_of = '2026-04-02 00:00+09';
SELECT taskflow.define_property('points', 'number');
SELECT taskflow.create_group('オンラインサロン');
SELECT taskflow.create_task('単発', 'auto');
SELECT taskflow.create_task('手動確認', 'manual');
SELECT taskflow.create_task('検索だけ', 'criteria_only', criteria => '特典対象');
SELECT taskflow.create_chain('二段', ARRAY['単発', '手動確認'], waits => ARRAY[NULL, '1 hours'],
	time_zone => 'Asia/Tokyo');
-- what the bad definitions below must leave as it is
CREATE TEMP VIEW defs AS
SELECT (SELECT count(*) FROM taskflow.task) AS tasks,
	   (SELECT count(*) FROM taskflow.chain) AS chains,
	   (SELECT count(*) FROM taskflow.chain_step) AS steps,
	   (SELECT count(*) FROM taskflow.criteria_list) AS criteria,
	   (SELECT string_agg(t.name || ' (' || s.wait_kind || ')', ' → ' ORDER BY s.position)
		  FROM taskflow.chain_step s JOIN taskflow.task t USING (task_id)
		  JOIN taskflow.chain c USING (chain_id) WHERE c.name = '二段') AS "二段",
	   md5((SELECT string_agg(to_jsonb(t)::text, ',' ORDER BY t.task_id) FROM taskflow.task t)
		   || (SELECT string_agg(to_jsonb(c)::text, ',' ORDER BY c.chain_id) FROM taskflow.chain c)
		   || (SELECT string_agg(to_jsonb(s)::text, ',' ORDER BY s.step_id) FROM taskflow.chain_step s))
		AS fingerprint;
SELECT tasks, chains, steps, criteria, "二段" FROM defs;
SELECT fingerprint AS before_fingerprint FROM defs \gset

-- tasks: names
SELECT taskflow.create_task('', 'auto');
SELECT taskflow.create_task('   ', 'auto');
SELECT taskflow.create_task(NULL, 'auto');
SELECT taskflow.create_task(repeat('長', 201), 'auto');
SELECT taskflow.create_task(E'改行\nあり', 'auto');
SELECT taskflow.create_task('単発', 'auto');
-- mode, on_mismatch, priority, assignee
SELECT taskflow.create_task('悪いタスク', 'automatic');
SELECT taskflow.create_task('悪いタスク', NULL);
SELECT taskflow.create_task('悪いタスク', 'auto', on_mismatch => 'stay');
SELECT taskflow.create_task('悪いタスク', 'manual', priority => NULL);
SELECT taskflow.create_task('悪いタスク', 'manual', assignee => '  ');
-- criteria and template
SELECT taskflow.create_task('悪いタスク', 'auto', criteria => '存在しない条件');
SELECT taskflow.create_task('悪いタスク', 'criteria_only');
SELECT taskflow.create_task('悪いタスク', 'auto', template => '存在しないテンプレート');
-- actions
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '{"add_tag": "A"}');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '["add_tag"]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"send_mail": "A"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"add_tag": "A", "remove_tag": "B"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"set": "nickname", "to": "たろう"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"set": "tags", "to": "{A}"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"set": "status"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"set": "expires_at", "to": "来月"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"set": "birthday", "to": "2026-02-30"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"set": "email", "to": "not-an-address"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"set": "status", "to": "vip"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"set_property": "rank", "to": "A"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"set_property": "points", "to": "たくさん"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"remove_property": "rank"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"add_tag": ""}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"add_tag": 5}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"join_group": "存在しないグループ"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"record_event": "party"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"record_event": "automation", "detail": "メモ"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"extend_expires": "1 eternity"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"extend_expires": 30}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"sql": ""}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions =>
	'[{"sql": "UPDATE engine_errors_shop.grant_log SET note = ''x'' WHERE member_id = ANY($1); DELETE FROM engine_errors_shop.grant_log"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"sql": "DROP TABLE engine_errors_shop.grant_log"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"sql": "SET ROLE postgres"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"sql": "COMMIT"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"sql": "UPDATE engine_errors_shop.no_such_table SET x = 1 WHERE member_id = ANY($1)"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"sql": "UPDATE grant_log SET note = ''x'' WHERE member_id = ANY($1)"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"sql": "UPDATE engine_errors_shop.grant_log SET nope = 1 WHERE member_id = ANY($1)"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"sql": "DELETE FROM engine_errors_b.nothing WHERE member_id = ANY($1)"}]');
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"sql": "UPDATE taskflow.chain SET owner = ''postgres''"}]');
-- a temporary table of this session would be gone (or another one) when the
-- engine runs the action
CREATE TEMP TABLE grant_log (member_id bigint);
SELECT taskflow.create_task('悪いタスク', 'auto', actions => '[{"sql": "DELETE FROM grant_log WHERE member_id = ANY($1)"}]');
DROP TABLE grant_log;
-- alter_task: the same checks; an unknown task
SELECT taskflow.alter_task('単発', mode => 'sometimes');
SELECT taskflow.alter_task('単発', actions => '[{"set": "status", "to": "vip"}]');
SELECT taskflow.alter_task('存在しないタスク', mode => 'auto');
-- a task used by a chain cannot become criteria_only or be dropped
SELECT taskflow.alter_task('単発', mode => 'criteria_only', criteria => '特典対象');
SELECT taskflow.drop_task('単発');

-- chains: names, tasks
SELECT taskflow.create_chain(NULL, ARRAY['単発']);
SELECT taskflow.create_chain('', ARRAY['単発']);
SELECT taskflow.create_chain(repeat('鎖', 201), ARRAY['単発']);
SELECT taskflow.create_chain('二段', ARRAY['単発']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY[]::text[]);
SELECT taskflow.create_chain('悪いチェーン', NULL);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['存在しないタスク']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['検索だけ']);
-- schedule, weekdays, time zone
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発'], schedule => 'daily at 25:00');
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発'], schedule => 'daily at 9:60');
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発'], schedule => 'hourly');
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発'], schedule => NULL);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発'], schedule => 'daily at 09:00', weekdays => ARRAY['mon', 'funday']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発'], schedule => 'daily at 09:00', weekdays => ARRAY[]::text[]);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発'], schedule => 'daily at 09:00', weekdays => ARRAY['8']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発'], schedule => 'always', weekdays => ARRAY['mon']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発'], time_zone => 'Asia/Osaka');
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発'], time_zone => '');
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発'], entry_interval => '0');
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発'], entry_interval => '2 days');
-- waits
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発', '手動確認'], waits => ARRAY[NULL, '3 days']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発', '手動確認'], waits => ARRAY[NULL, '-1 hours']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発', '手動確認'], waits => ARRAY[NULL, '25 hours']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発', '手動確認'], waits => ARRAY[NULL, 'later']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発', '手動確認'], waits => ARRAY[NULL, '1 days at 24:00']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発', '手動確認'], waits => ARRAY['1 hours', '1 hours']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発', '手動確認'], waits => ARRAY[NULL, NULL]);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発', '手動確認']);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発', '手動確認'], waits => ARRAY[NULL]);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発', '手動確認'], waits => ARRAY[NULL, '1 hours', '2 hours']);
-- re-entry, repeat, pause
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発'], reentry => 'sometimes');
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発'], reentry => 'cooldown');
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発'], reentry => 'cooldown', reentry_cooldown => '-1 day');
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発'], reentry => 'never', reentry_cooldown => '1 day');
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発'], repeat => true);
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発'], repeat => true, repeat_wait => 'every week');
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発'], repeat_wait => '7 days at 09:00');
SELECT taskflow.create_chain('悪いチェーン', ARRAY['単発'], pause_after_failures => 0);
-- steps: positions, waits, the only task
SELECT taskflow.add_step('二段', '単発', '1 hours', 0);
SELECT taskflow.add_step('二段', '単発', '1 hours', 4);
SELECT taskflow.add_step('二段', '単発', NULL, 3);
SELECT taskflow.add_step('二段', '単発', NULL, 1);
SELECT taskflow.add_step('二段', '検索だけ', '1 hours');
SELECT taskflow.add_step('二段', '存在しないタスク', '1 hours');
SELECT taskflow.add_step('存在しないチェーン', '単発', '1 hours');
SELECT taskflow.move_step('二段', 0, 1);
SELECT taskflow.move_step('二段', 1, 3);
SELECT taskflow.move_step('二段', NULL, 1);
SELECT taskflow.remove_step('二段', 3);
SELECT taskflow.remove_step('二段', NULL);
SELECT taskflow.set_wait('二段', 1, '1 hours');
SELECT taskflow.set_wait('二段', 2, NULL);
SELECT taskflow.set_wait('二段', 5, '1 hours');
SELECT taskflow.set_wait('二段', 2, '3 days');
SELECT taskflow.create_chain('一段', ARRAY['単発'], time_zone => 'Asia/Tokyo');
SELECT taskflow.remove_step('一段', 1);
SELECT taskflow.drop_chain('一段');
-- alter_chain
SELECT taskflow.alter_chain('二段', schedule => 'weekly');
SELECT taskflow.alter_chain('二段', weekdays => ARRAY['mon']);
SELECT taskflow.alter_chain('二段', time_zone => 'Mars/Olympus');
SELECT taskflow.alter_chain('二段', reentry => 'cooldown');
SELECT taskflow.alter_chain('二段', repeat => true);
SELECT taskflow.alter_chain('二段', pause_after_failures => -1);
SELECT taskflow.alter_chain('存在しないチェーン', repeat => false);
SELECT taskflow.enable_chain('存在しないチェーン');
SELECT taskflow.drop_chain('存在しないチェーン');
-- the engine's entry points: NULL and unknown arguments
SELECT * FROM taskflow.run(NULL, '二段');
SELECT * FROM taskflow.run('2026-04-02 09:00+09', '存在しないチェーン');
SELECT taskflow.process(NULL);
SELECT taskflow.process('存在しないタスク');
SELECT taskflow.process('手動確認', ARRAY[engine_errors_id('f-1')], '2026-04-02 09:00+09');
SELECT taskflow.process('手動確認', NULL, NULL);
SELECT * FROM taskflow.explain(engine_errors_id('f-1'), NULL) WHERE chain = '二段';
SELECT * FROM taskflow.explain(NULL, '2026-04-02 09:00+09');
SELECT * FROM taskflow.explain(999999, '2026-04-02 09:00+09');
-- nothing changed
SELECT tasks, chains, steps, criteria, "二段" FROM defs;
SELECT fingerprint = :'before_fingerprint' AS unchanged FROM defs;
RESET ROLE;

---------------------------------------------------------------- cancelling a run
-- A client's statement_timeout (or cancel) stops its whole taskflow.run():
-- the error is the caller's, not recorded as the chain's, and nothing of
-- the run stays.
CREATE TABLE engine_errors_shop.slow_log (member_id bigint);
SELECT taskflow.create_task('遅い処理', 'auto',
	actions => $$[{"sql": "INSERT INTO engine_errors_shop.slow_log SELECT m FROM unnest($1) AS m, pg_sleep(0.5)"}]$$);
SELECT taskflow.create_chain('遅いチェーン', ARRAY['遅い処理']);
SET statement_timeout = '300ms';
SELECT * FROM taskflow.run('2026-04-02 09:00+09', '遅いチェーン');
RESET statement_timeout;
SELECT (SELECT count(*) FROM taskflow.chain_error e WHERE e.chain_id = c.chain_id) AS errors,
	   c.consecutive_failures, (SELECT count(*) FROM taskflow.chain_member cm WHERE cm.chain_id = c.chain_id) AS members,
	   (SELECT count(*) FROM engine_errors_shop.slow_log) AS logged
  FROM taskflow.chain c WHERE c.name = '遅いチェーン';
SELECT taskflow.drop_chain('遅いチェーン');

---------------------------------------------------------------- clean up
RESET taskflow.as_of;
DROP VIEW defs;
DROP FUNCTION public.engine_errors_id(text);
SET client_min_messages = warning;
DROP SCHEMA engine_errors_a, engine_errors_b, engine_errors_shop CASCADE;
DROP EXTENSION taskflow CASCADE;
RESET client_min_messages;
DROP ROLE engine_errors_a, engine_errors_b, engine_errors_op;
