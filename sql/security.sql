-- Privileges under attack.  A non-superuser application role (bob) tries to
-- read or change another role's (alice's) definitions and members' chain
-- state through every taskflow function that takes a name; to escalate
-- through a criteria or a custom sql action (they run as their owner, in a
-- security-restricted operation, even when a superuser runs the engine); to
-- hijack what the extension's functions or the engine resolve, with
-- functions, operators and types planted in public and in a schema first on
-- the victim's search_path; and to write taskflow's tables directly.  All
-- of it is refused, and nothing changes.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
SET taskflow.as_of = '2027-06-01 00:00+09';
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS security_alice, security_bob, security_admin, security_evil, security_probe CASCADE;
DROP ROLE IF EXISTS security_alice, security_bob, security_bob_helper, security_op, security_relay,
	security_plain;
RESET client_min_messages;

CREATE ROLE security_alice IN ROLE taskflow_app;
CREATE ROLE security_bob IN ROLE taskflow_app;
CREATE ROLE security_bob_helper;
GRANT security_bob_helper TO security_bob;
CREATE ROLE security_op IN ROLE taskflow_operator;
CREATE ROLE security_relay IN ROLE taskflow_relay;
CREATE ROLE security_plain;
-- alice's private data (who is a VIP) and the superuser's
CREATE SCHEMA security_alice AUTHORIZATION security_alice;
CREATE SCHEMA security_bob AUTHORIZATION security_bob;
CREATE SCHEMA security_admin;
CREATE TABLE security_admin.secrets (note text);
INSERT INTO security_admin.secrets VALUES ('金庫の暗証番号 0000');

INSERT INTO taskflow.member (external_id, email, name, status, joined_at) VALUES
	('s-1', 'yamada@example.jp', '山田太郎', 'trial', '2027-05-20 10:00+09'),
	('s-2', 'sato@example.jp', '佐藤花子', 'trial', '2027-05-21 10:00+09'),
	('s-3', 'suzuki@example.jp', '鈴木一郎', 'paid', '2027-04-01 10:00+09'),
	('s-4', 'takahashi@example.jp', '高橋美咲', 'paid', '2027-04-02 10:00+09');
CREATE FUNCTION pg_temp.mid(text) RETURNS bigint
	LANGUAGE sql STABLE AS 'SELECT member_id FROM taskflow.member WHERE external_id = $1';

-- The contents of every taskflow table: row count and md5, per table.
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

---------------------------------------------------------------- alice's chain
SET ROLE security_alice;
CREATE TABLE security_alice.vip (member_id bigint PRIMARY KEY);
INSERT INTO security_alice.vip VALUES (pg_temp.mid('s-3'));
SELECT taskflow.save_criteria('A体験中', $$status = 'trial'$$);
SELECT taskflow.save_criteria('A優待', $$EXISTS (SELECT FROM security_alice.vip v WHERE v.member_id = member.member_id)$$);
SELECT taskflow.create_template('A案内', '{{name}}様 体験期間のご案内', 'アリス商店からのご案内です。',
	sender_name => 'アリス商店', sender_address => 'info@alice.example.jp');
SELECT taskflow.create_task('A案内送信', 'auto', criteria => 'A体験中', template => 'A案内',
	actions => '[{"add_tag": "A案内済"}]');
SELECT taskflow.create_task('A電話', 'manual', assignee => '営業部');
SELECT taskflow.create_chain('Aのチェーン', ARRAY['A案内送信', 'A電話'], waits => ARRAY[NULL, '1 hours'],
	time_zone => 'Asia/Tokyo');
RESET ROLE;
SELECT * FROM taskflow.run('2027-06-01 10:00+09') ORDER BY chain;
SELECT * FROM taskflow.run('2027-06-01 11:00+09') ORDER BY chain;
SELECT task, member_name, pending_since, assignee FROM taskflow.dashboard;
SELECT o.outbox_id, m.name, o.subject, o.state FROM taskflow.outbox o JOIN taskflow.member m USING (member_id)
 ORDER BY o.outbox_id;
CREATE TEMP TABLE before_bob AS SELECT * FROM pg_temp.fingerprint();
SELECT min(outbox_id) AS alice_message FROM taskflow.outbox \gset
-- what each role sees of taskflow's tables and views (row security)
CREATE FUNCTION pg_temp.visible() RETURNS TABLE (relation text, visible_rows bigint)
LANGUAGE plpgsql AS $$
DECLARE
	rel text;
BEGIN
	FOREACH rel IN ARRAY ARRAY['task', 'chain', 'chain_step', 'chain_member', 'history',
							   'outbox', 'chain_error', 'template', 'delivery_attempt',
							   'pending_tasks', 'dashboard', 'chain_summary', 'member_state']
	LOOP
		relation := rel;
		EXECUTE format('SELECT count(*) FROM taskflow.%I', rel) INTO visible_rows;
		RETURN NEXT;
	END LOOP;
	relation := 'member_activity (automation)';
	SELECT count(*) INTO visible_rows FROM taskflow.member_activity a WHERE a.source = 'history';
	RETURN NEXT;
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.visible() TO PUBLIC;
SELECT * FROM pg_temp.visible();
-- alice sees all of it: it is all hers
SET ROLE security_alice;
SELECT * FROM pg_temp.visible();
RESET ROLE;

---------------------------------------------------------------- bob against alice
-- Every function that takes a name of alice's: refused, nothing read.
SET ROLE security_bob;
-- criteria: replace, drop, search (it would tell bob who is in alice's
-- private VIP table), count; and bob cannot read them at all
SELECT taskflow.save_criteria('A体験中', 'true');
SELECT taskflow.drop_criteria('A優待');
SELECT * FROM taskflow.search('A優待');
SELECT taskflow.count('A優待');
SELECT name FROM taskflow.criteria_list;
SELECT name, expression FROM taskflow.criteria;
-- nor read alice's table through a criteria or a search of his own
SELECT taskflow.save_criteria('B覗き見', $$EXISTS (SELECT FROM security_alice.vip v WHERE v.member_id = member.member_id)$$);
SELECT * FROM taskflow.search_expression($$EXISTS (SELECT FROM security_alice.vip v WHERE v.member_id = member.member_id)$$);
-- tasks: use alice's criteria or template in his own, change or drop hers
SELECT taskflow.create_task('B乗っ取り', 'auto', criteria => 'A体験中');
SELECT taskflow.create_task('B乗っ取り', 'auto', template => 'A案内');
SELECT taskflow.alter_task('A案内送信', actions => '[{"set": "status", "to": "cancelled"}]');
SELECT taskflow.alter_task('A電話', mode => 'auto');
SELECT taskflow.drop_task('A電話');
-- templates: rewrite what alice's chain sends, rename, drop
SELECT taskflow.alter_template('A案内', body_text => '偽のご案内: https://evil.example.com/');
SELECT taskflow.alter_template('A案内', new_name => 'Bの案内');
SELECT taskflow.drop_template('A案内');
-- chains: use her tasks, change every part of her chain
SELECT taskflow.create_chain('Bのチェーン', ARRAY['A案内送信']);
SELECT taskflow.add_step('Aのチェーン', 'A電話', '2 hours');
SELECT taskflow.set_wait('Aのチェーン', 2, '5 hours');
SELECT taskflow.move_step('Aのチェーン', 2, 1);
SELECT taskflow.remove_step('Aのチェーン', 2);
SELECT taskflow.alter_chain('Aのチェーン', schedule => 'daily at 03:00');
SELECT taskflow.disable_chain('Aのチェーン');
SELECT taskflow.enable_chain('Aのチェーン');
SELECT taskflow.drop_chain('Aのチェーン');
-- the engine: run or preview her chain, work her pending list
SELECT * FROM taskflow.run('2027-06-01 12:00+09', 'Aのチェーン');
SELECT * FROM taskflow.preview('2027-06-01 12:00+09', '2027-06-03 00:00+09', chain => 'Aのチェーン');
SELECT taskflow.process('A電話', NULL, '2027-06-01 12:00+09');
SELECT taskflow.skip('A電話', ARRAY[pg_temp.mid('s-1')], '2027-06-01 12:00+09');
SELECT taskflow.cancel('A電話', ARRAY[pg_temp.mid('s-2')], '2027-06-01 12:00+09');
-- her messages: cancel one, queue one again
SELECT taskflow.cancel_message(:alice_message);
SELECT taskflow.retry_message(:alice_message);
-- nor read any of it: her tasks, chains, templates, member states,
-- history, messages, errors, the dashboard and summaries show no row of
-- hers; explain shows none of her chains; her template cannot be previewed
SELECT * FROM pg_temp.visible();
SELECT count(*) FROM taskflow.explain(pg_temp.mid('s-1'), '2027-06-01 12:00+09');
SELECT * FROM taskflow.preview_template('A案内', pg_temp.mid('s-1'));
SELECT count(*) FROM taskflow.activity(pg_temp.mid('s-1'));
-- his own run and preview do nothing to her chain (he has no chain)
SELECT * FROM taskflow.run('2027-06-01 12:00+09') ORDER BY chain;
SELECT count(*) FROM taskflow.preview('2027-06-01 12:00+09', '2027-06-03 00:00+09');
-- the internal functions take the caller as an argument: calling one
-- directly, as alice, is refused
SELECT taskflow._save_criteria('security_alice', 'A体験中', 'true', NULL);
SELECT taskflow._drop_chain('security_alice', 'Aのチェーン');
SELECT taskflow._criteria_validate('security_alice', 'true', 'x');
SELECT * FROM taskflow._member_matches(1, NULL, 1, '2027-06-01 12:00+09');
RESET ROLE;
-- nothing of alice's changed
SELECT b.tbl, b.n AS rows, b.md5 = a.md5 AS unchanged
  FROM before_bob b JOIN pg_temp.fingerprint() a USING (tbl) ORDER BY b.tbl;

-- an operator works every chain's pending list (that is the role), but
-- defines, runs and reads criteria of no one
SET ROLE security_op;
-- it sees every chain's rows
SELECT * FROM pg_temp.visible();
SELECT taskflow.save_criteria('運用', 'true');
SELECT taskflow.alter_chain('Aのチェーン', description => '運用で変更');
SELECT taskflow.alter_template('A案内', subject => '運用で変更');
SELECT taskflow.count('A優待');
SELECT * FROM taskflow.run('2027-06-01 12:00+09');
-- nor changes members beyond its memos
SELECT taskflow.add_tag(pg_temp.mid('s-1'), '運用');
SELECT taskflow.set_property(pg_temp.mid('s-1'), 'plan', 'ゴールド'::text);
SELECT taskflow.unsubscribe(pg_temp.mid('s-1'));
RESET ROLE;
-- a relay claims and completes outbox rows, nothing else
SET ROLE security_relay;
SELECT count(*) FROM taskflow.outbox;
SELECT count(*) FROM taskflow.member;
SELECT * FROM taskflow.explain(pg_temp.mid('s-1'));
SELECT * FROM taskflow.preview_template('A案内', pg_temp.mid('s-1'));
SELECT taskflow.suppress('yamada@example.jp');
RESET ROLE;
-- a role without any taskflow role reaches nothing
SET ROLE security_plain;
SELECT taskflow.clock();
SELECT count(*) FROM taskflow.member;
SELECT taskflow.save_criteria('x', 'true');
SELECT * FROM taskflow.explain(1);
RESET ROLE;

-- No taskflow role (nor PUBLIC) may execute an internal function (they
-- take the caller as an argument, or write as the extension owner);
-- _local only formats a time, _may_see only says whether a role has
-- another's privileges (the row security policies call it).
SELECT p.oid::regprocedure AS internal_function, r.rolname
  FROM pg_proc p CROSS JOIN (SELECT rolname, oid FROM pg_roles
							  WHERE rolname IN ('taskflow_app', 'taskflow_operator', 'taskflow_relay')
							 UNION ALL SELECT 'PUBLIC', 0) r
 WHERE p.pronamespace = 'taskflow'::regnamespace AND p.proname LIKE '\_%'
   AND CASE WHEN r.oid = 0 THEN EXISTS (SELECT FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
										 WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
			ELSE has_function_privilege(r.oid, p.oid, 'EXECUTE') END
 ORDER BY 1, 2;
-- The functions that run with the extension owner's rights, and who may
-- call them: each checks what it is given.
SELECT p.oid::regprocedure AS security_definer,
	   (SELECT string_agg(r.rolname, ', ' ORDER BY r.rolname) FROM pg_roles r
		 WHERE r.rolname IN ('taskflow_app', 'taskflow_operator', 'taskflow_relay')
		   AND has_function_privilege(r.oid, p.oid, 'EXECUTE')) AS callers
  FROM pg_proc p
 WHERE p.pronamespace = 'taskflow'::regnamespace AND p.prosecdef
 ORDER BY 1::text;

---------------------------------------------------------------- escalation
-- A criteria or an action runs as the chain's owner inside a
-- security-restricted operation, whoever runs the engine: here a
-- superuser.  Bob's helper function tries what would escalate.
SET ROLE security_bob;
CREATE TABLE security_bob.calls (what text, current_role_name text, session_is_superuser boolean,
								 current_is_superuser boolean);
CREATE FUNCTION security_bob.attempt(what text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
	CASE what
	WHEN 'log' THEN
		INSERT INTO security_bob.calls
		SELECT what, current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = session_user),
			   (SELECT rolsuper FROM pg_roles WHERE rolname = current_user);
	WHEN 'set role' THEN
		SET ROLE security_bob_helper;
	WHEN 'set_config' THEN
		PERFORM set_config('role', 'security_bob_helper', false);
	WHEN 'session' THEN
		SET SESSION AUTHORIZATION security_bob_helper;
	WHEN 'temp' THEN
		CREATE TEMP TABLE security_loot (note text);
	WHEN 'api' THEN
		PERFORM taskflow.save_criteria('B乗っ取り', 'true');
	WHEN 'secrets' THEN
		PERFORM count(*) FROM security_admin.secrets;
	WHEN 'su temp' THEN
		PERFORM security_admin.su_attempt('temp');
	WHEN 'su role' THEN
		PERFORM security_admin.su_attempt('set_config');
	END CASE;
	RETURN true;
END
$$;
-- criteria may not call volatile functions; a stable wrapper gets past that
CREATE FUNCTION security_bob.probe(what text) RETURNS boolean
LANGUAGE sql STABLE AS 'SELECT security_bob.attempt(what)';
RESET ROLE;
-- a superuser's SECURITY DEFINER function bob may call
CREATE FUNCTION security_admin.su_attempt(what text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
	IF what = 'temp' THEN
		CREATE TEMP TABLE security_loot AS SELECT * FROM security_admin.secrets;
	ELSIF what = 'set_config' THEN
		PERFORM set_config('role', 'security_alice', false);
	END IF;
	RETURN true;
END
$$;
REVOKE ALL ON FUNCTION security_admin.su_attempt(text) FROM PUBLIC;
GRANT USAGE ON SCHEMA security_admin TO security_bob;
GRANT EXECUTE ON FUNCTION security_admin.su_attempt(text) TO security_bob;

-- outside taskflow, bob's function does change his role
SET ROLE security_bob;
SELECT security_bob.attempt('set role');
SELECT current_user;
RESET ROLE;
SET ROLE security_bob;
SELECT taskflow.save_criteria('B:log', $$security_bob.probe('log') AND status = 'trial'$$);
SELECT taskflow.save_criteria('B:set role', $$security_bob.probe('set role')$$);
SELECT taskflow.save_criteria('B:set_config', $$security_bob.probe('set_config')$$);
SELECT taskflow.save_criteria('B:session', $$security_bob.probe('session')$$);
SELECT taskflow.save_criteria('B:temp', $$security_bob.probe('temp')$$);
SELECT taskflow.save_criteria('B:api', $$security_bob.probe('api')$$);
SELECT taskflow.save_criteria('B:secrets', $$security_bob.probe('secrets')$$);
SELECT taskflow.save_criteria('B:su temp', $$security_bob.probe('su temp')$$);
SELECT taskflow.save_criteria('B:su role', $$security_bob.probe('su role')$$);
RESET ROLE;
-- a superuser searches with bob's criteria: they run as bob, restricted
SELECT taskflow.count('B:log');
SELECT taskflow.count('B:set role');
SELECT taskflow.count('B:set_config');
SELECT taskflow.count('B:session');
SELECT taskflow.count('B:temp');
SELECT taskflow.count('B:api');
SELECT taskflow.count('B:secrets');
SELECT taskflow.count('B:su temp');
SELECT taskflow.count('B:su role');
SELECT current_user = session_user AS still_myself;

-- the same in bob's chains, run by a superuser: a criteria that logs, and
-- actions that try to escalate; an action that would escalate at once is
-- refused when the task is saved
SET ROLE security_bob;
SELECT taskflow.create_task('B記録', 'auto', criteria => 'B:log', actions =>
	'[{"sql": "INSERT INTO security_bob.calls SELECT ''action'', current_user, (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user), (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) FROM unnest($1) AS m"}]');
SELECT taskflow.create_task('Bロール', 'auto', criteria => 'B:log',
	actions => '[{"sql": "SELECT security_bob.attempt(''set_config'') FROM unnest($1) AS m"}]');
SELECT taskflow.create_task('B一時表', 'auto', criteria => 'B:log',
	actions => '[{"sql": "SELECT security_bob.attempt(''temp'') FROM unnest($1) AS m"}]');
SELECT taskflow.create_task('B特権', 'auto', criteria => 'B:log',
	actions => '[{"sql": "SELECT security_admin.su_attempt(''temp'') FROM unnest($1) AS m"}]');
SELECT taskflow.create_task('B即時', 'auto',
	actions => '[{"sql": "SELECT pg_catalog.set_config(''role'', ''security_bob_helper'', false)"}]');
SELECT taskflow.create_task('B履歴消去', 'auto',
	actions => '[{"sql": "DELETE FROM taskflow.history WHERE member_id = ANY($1)"}]');
SELECT taskflow.create_chain('B記録チェーン', ARRAY['B記録'], time_zone => 'Asia/Tokyo');
SELECT taskflow.create_chain('Bロールチェーン', ARRAY['Bロール'], time_zone => 'Asia/Tokyo');
SELECT taskflow.create_chain('B一時表チェーン', ARRAY['B一時表'], time_zone => 'Asia/Tokyo');
SELECT taskflow.create_chain('B特権チェーン', ARRAY['B特権'], time_zone => 'Asia/Tokyo');
SELECT taskflow.create_task('B条件', 'auto', criteria => 'B:set_config');
SELECT taskflow.create_chain('B条件チェーン', ARRAY['B条件'], time_zone => 'Asia/Tokyo');
RESET ROLE;
TRUNCATE security_bob.calls;
SELECT * FROM taskflow.run('2027-06-02 10:00+09') ORDER BY chain;
SELECT c.name, e.sqlstate, e.message FROM taskflow.chain_error e JOIN taskflow.chain c USING (chain_id)
 ORDER BY c.name, e.error_id;
-- what ran, ran as bob (in a superuser's session)
SELECT what, current_role_name, session_is_superuser, current_is_superuser, count(*)
  FROM security_bob.calls GROUP BY 1, 2, 3, 4 ORDER BY 1;
SELECT current_user = session_user AS still_myself,
	   to_regclass('pg_temp.security_loot') IS NULL AS no_loot;
SELECT name FROM taskflow.criteria_list WHERE name = 'B乗っ取り';

-- fixed for the rest of the test: bob's chains stop
SET ROLE security_bob;
SELECT taskflow.drop_chain(name) FROM taskflow.chain WHERE name LIKE 'B%' ORDER BY name;
RESET ROLE;

---------------------------------------------------------------- search_path
-- Bob plants look-alikes in public and in a schema of his own, and a
-- victim puts that schema first on its search_path.  Every look-alike
-- writes a row to security_evil.calls when called, and counts the call in
-- a sequence (which no rollback, a preview's say, takes back); none may
-- ever be called.
GRANT CREATE ON SCHEMA public TO security_bob;
CREATE SCHEMA security_evil AUTHORIZATION security_bob;
SET ROLE security_bob;
CREATE TABLE security_evil.calls (name text, by_role text DEFAULT current_user);
CREATE SEQUENCE security_evil.call_count;
GRANT USAGE ON SCHEMA security_evil TO PUBLIC;
GRANT INSERT ON security_evil.calls TO PUBLIC;
GRANT USAGE ON SEQUENCE security_evil.call_count TO PUBLIC;
CREATE FUNCTION security_evil.called(what text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
	PERFORM pg_catalog.nextval('security_evil.call_count');
	INSERT INTO security_evil.calls (name) VALUES (what);
	RETURN true;
END
$$;
DO $plant$
DECLARE
	s text;
BEGIN
	FOREACH s IN ARRAY ARRAY['public', 'security_evil'] LOOP
		-- functions the engine, the criteria and the templates use
		EXECUTE format($f$
			CREATE FUNCTION %1$I.now() RETURNS timestamptz LANGUAGE sql VOLATILE
				AS 'SELECT pg_catalog.statement_timestamp() FROM (SELECT security_evil.called(''%1$s.now'')) x';
			CREATE FUNCTION %1$I.clock() RETURNS timestamptz LANGUAGE sql VOLATILE
				AS 'SELECT pg_catalog.statement_timestamp() FROM (SELECT security_evil.called(''%1$s.clock'')) x';
			CREATE FUNCTION %1$I.lower(text) RETURNS text LANGUAGE sql VOLATILE
				AS 'SELECT pg_catalog.lower($1) FROM (SELECT security_evil.called(''%1$s.lower'')) x';
			CREATE FUNCTION %1$I.lower(varchar) RETURNS text LANGUAGE sql VOLATILE
				AS 'SELECT pg_catalog.lower($1) FROM (SELECT security_evil.called(''%1$s.lower(varchar)'')) x';
			CREATE FUNCTION %1$I.btrim(text) RETURNS text LANGUAGE sql VOLATILE
				AS 'SELECT pg_catalog.btrim($1) FROM (SELECT security_evil.called(''%1$s.btrim'')) x';
			CREATE FUNCTION %1$I.has_tag(text[], text) RETURNS boolean LANGUAGE sql VOLATILE
				AS 'SELECT $1 OPERATOR(pg_catalog.@>) ARRAY[$2] FROM (SELECT security_evil.called(''%1$s.has_tag'')) x';
			CREATE FUNCTION %1$I.days_since(timestamptz) RETURNS integer LANGUAGE sql VOLATILE
				AS 'SELECT 0 FROM (SELECT security_evil.called(''%1$s.days_since'')) x';
			CREATE FUNCTION %1$I.current_setting(text) RETURNS text LANGUAGE sql VOLATILE
				AS 'SELECT pg_catalog.current_setting($1) FROM (SELECT security_evil.called(''%1$s.current_setting'')) x';
			CREATE FUNCTION %1$I.format(text) RETURNS text LANGUAGE sql VOLATILE
				AS 'SELECT $1 FROM (SELECT security_evil.called(''%1$s.format'')) x';
			CREATE FUNCTION %1$I.jsonb_build_object(text, text) RETURNS jsonb LANGUAGE sql VOLATILE
				AS 'SELECT pg_catalog.jsonb_build_object($1, $2) FROM (SELECT security_evil.called(''%1$s.jsonb_build_object'')) x';
			CREATE FUNCTION %1$I.unnest(bigint[]) RETURNS SETOF bigint LANGUAGE sql VOLATILE
				AS 'SELECT pg_catalog.unnest($1) FROM (SELECT security_evil.called(''%1$s.unnest'')) x';
			CREATE FUNCTION %1$I.to_jsonb(text) RETURNS jsonb LANGUAGE sql VOLATILE
				AS 'SELECT pg_catalog.to_jsonb($1) FROM (SELECT security_evil.called(''%1$s.to_jsonb'')) x';
			-- aggregates
			CREATE FUNCTION %1$I.agg_step(bigint[], bigint) RETURNS bigint[] LANGUAGE sql VOLATILE
				AS 'SELECT $1 OPERATOR(pg_catalog.||) $2 FROM (SELECT security_evil.called(''%1$s.aggregate'')) x';
			CREATE FUNCTION %1$I.agg_max(bigint[]) RETURNS bigint LANGUAGE sql VOLATILE
				AS 'SELECT pg_catalog.max(v) FROM pg_catalog.unnest($1) v';
			CREATE FUNCTION %1$I.agg_count(bigint[]) RETURNS bigint LANGUAGE sql VOLATILE
				AS 'SELECT pg_catalog.cardinality($1)::bigint';
			CREATE AGGREGATE %1$I.array_agg(bigint) (sfunc = %1$I.agg_step, stype = bigint[], initcond = '{}');
			CREATE AGGREGATE %1$I.max(bigint) (sfunc = %1$I.agg_step, stype = bigint[], finalfunc = %1$I.agg_max, initcond = '{}');
			CREATE AGGREGATE %1$I.sum(bigint) (sfunc = %1$I.agg_step, stype = bigint[], finalfunc = %1$I.agg_max, initcond = '{}');
			-- operators
			CREATE FUNCTION %1$I.op_text(text, text) RETURNS boolean LANGUAGE sql VOLATILE
				AS 'SELECT $1 OPERATOR(pg_catalog.=) $2 FROM (SELECT security_evil.called(''%1$s.= text'')) x';
			CREATE FUNCTION %1$I.op_int8(bigint, bigint) RETURNS boolean LANGUAGE sql VOLATILE
				AS 'SELECT $1 OPERATOR(pg_catalog.=) $2 FROM (SELECT security_evil.called(''%1$s.= bigint'')) x';
			CREATE FUNCTION %1$I.op_int4(integer, integer) RETURNS boolean LANGUAGE sql VOLATILE
				AS 'SELECT $1 OPERATOR(pg_catalog.=) $2 FROM (SELECT security_evil.called(''%1$s.= integer'')) x';
			CREATE FUNCTION %1$I.op_int84(bigint, integer) RETURNS boolean LANGUAGE sql VOLATILE
				AS 'SELECT $1 OPERATOR(pg_catalog.=) $2 FROM (SELECT security_evil.called(''%1$s.= bigint integer'')) x';
			CREATE FUNCTION %1$I.op_plus(timestamptz, interval) RETURNS timestamptz LANGUAGE sql VOLATILE
				AS 'SELECT $1 OPERATOR(pg_catalog.+) $2 FROM (SELECT security_evil.called(''%1$s.+'')) x';
			CREATE FUNCTION %1$I.op_le(timestamptz, timestamptz) RETURNS boolean LANGUAGE sql VOLATILE
				AS 'SELECT $1 OPERATOR(pg_catalog.<=) $2 FROM (SELECT security_evil.called(''%1$s.<='')) x';
			CREATE FUNCTION %1$I.op_cat(text, text) RETURNS text LANGUAGE sql VOLATILE
				AS 'SELECT $1 OPERATOR(pg_catalog.||) $2 FROM (SELECT security_evil.called(''%1$s.||'')) x';
			CREATE FUNCTION %1$I.op_get(jsonb, text) RETURNS text LANGUAGE sql VOLATILE
				AS 'SELECT $1 OPERATOR(pg_catalog.->>) $2 FROM (SELECT security_evil.called(''%1$s.->>'')) x';
			CREATE FUNCTION %1$I.op_contains(text[], text[]) RETURNS boolean LANGUAGE sql VOLATILE
				AS 'SELECT $1 OPERATOR(pg_catalog.@>) $2 FROM (SELECT security_evil.called(''%1$s.@>'')) x';
			CREATE FUNCTION %1$I.op_match(text, text) RETURNS boolean LANGUAGE sql VOLATILE
				AS 'SELECT $1 OPERATOR(pg_catalog.~) $2 FROM (SELECT security_evil.called(''%1$s.~'')) x';
			CREATE OPERATOR %1$I.= (leftarg = text, rightarg = text, function = %1$I.op_text);
			CREATE OPERATOR %1$I.= (leftarg = bigint, rightarg = bigint, function = %1$I.op_int8);
			CREATE OPERATOR %1$I.= (leftarg = integer, rightarg = integer, function = %1$I.op_int4);
			CREATE OPERATOR %1$I.= (leftarg = bigint, rightarg = integer, function = %1$I.op_int84);
			CREATE OPERATOR %1$I.+ (leftarg = timestamptz, rightarg = interval, function = %1$I.op_plus);
			CREATE OPERATOR %1$I.<= (leftarg = timestamptz, rightarg = timestamptz, function = %1$I.op_le);
			CREATE OPERATOR %1$I.|| (leftarg = text, rightarg = text, function = %1$I.op_cat);
			CREATE OPERATOR %1$I.->> (leftarg = jsonb, rightarg = text, function = %1$I.op_get);
			CREATE OPERATOR %1$I.@> (leftarg = text[], rightarg = text[], function = %1$I.op_contains);
			CREATE OPERATOR %1$I.~ (leftarg = text, rightarg = text, function = %1$I.op_match);
		$f$, s);
	END LOOP;
END
$plant$;
-- types named like the built-in ones, whose every use calls back
CREATE DOMAIN security_evil.text AS pg_catalog.text CHECK (security_evil.called('type text'));
CREATE DOMAIN security_evil.oid AS pg_catalog.oid CHECK (security_evil.called('type oid'));
CREATE DOMAIN security_evil.int4 AS pg_catalog.int4 CHECK (security_evil.called('type int4'));
CREATE DOMAIN security_evil.int8 AS pg_catalog.int8 CHECK (security_evil.called('type int8'));
CREATE DOMAIN security_evil.interval AS pg_catalog.interval CHECK (security_evil.called('type interval'));
CREATE DOMAIN security_evil.jsonb AS pg_catalog.jsonb CHECK (security_evil.called('type jsonb'));
CREATE DOMAIN security_evil.timestamptz AS pg_catalog.timestamptz CHECK (security_evil.called('type timestamptz'));
CREATE DOMAIN security_evil.bool AS pg_catalog.bool CHECK (security_evil.called('type bool'));
RESET ROLE;
SELECT count(*) AS planted FROM pg_proc WHERE pronamespace IN ('public'::regnamespace, 'security_evil'::regnamespace);
SELECT count(*) AS planted_operators FROM pg_operator WHERE oprnamespace IN ('public'::regnamespace, 'security_evil'::regnamespace);

-- The victims: alice defines and changes a chain, a superuser runs the
-- engine, the operator's calls and the relay's, all with bob's schema
-- first on their search_path (pg_catalog is then still searched first,
-- implicitly; below it is put last as well).
SET search_path = security_evil, public;
SET ROLE security_alice;
SELECT taskflow.define_property('plan', 'list', ARRAY['ブロンズ', 'ゴールド']);
SELECT taskflow.create_group('A会員');
CREATE TABLE security_alice.log (member_id bigint, note text, at timestamptz);
SELECT taskflow.save_criteria('A有料', $$status = 'paid' AND has_tag(tags, 'A会員') = false
	AND lower(email) LIKE '%@example.jp' AND days_since(joined_at) >= 0
	AND coalesce(prop_text(properties, 'plan'), 'なし') <> 'ゴールド'$$);
SELECT taskflow.check_criteria($$lower(email) || 'x' = 'y' AND tags @> ARRAY['x']$$);
SELECT taskflow.create_template('A会員案内', '{{name}}様 会員のご案内 ({{properties.plan|未設定}})',
	'{{name}}様、{{email}} 宛にお送りしています。', sender_address => 'info@alice.example.jp');
SELECT taskflow.create_task('A会員登録', 'auto', criteria => 'A有料', template => 'A会員案内',
	actions => '[{"add_tag": "A会員"}, {"set_property": "plan", "to": "ブロンズ"},
				 {"join_group": "A会員"}, {"extend_expires": "1 month"},
				 {"record_event": "automation", "detail": {"note": "会員登録"}},
				 {"sql": "INSERT INTO security_alice.log SELECT m, lower(''ABC'') || ''-'' || to_char($2, ''YYYY-MM-DD''), $2 FROM unnest($1) AS m"}]');
SELECT taskflow.create_task('A会員確認', 'manual', actions => '[{"remove_tag": "A案内済"}]');
SELECT taskflow.create_chain('A会員チェーン', ARRAY['A会員登録', 'A会員確認'], waits => ARRAY[NULL, '2 days at 09:00'],
	time_zone => 'Asia/Tokyo', reentry => 'cooldown', reentry_cooldown => '30 days');
SELECT taskflow.add_step('A会員チェーン', 'A電話', '3 hours');
SELECT taskflow.set_wait('A会員チェーン', 3, '4 hours');
SELECT taskflow.move_step('A会員チェーン', 3, 2);
SELECT taskflow.move_step('A会員チェーン', 2, 3);
SELECT taskflow.remove_step('A会員チェーン', 3);
SELECT taskflow.alter_chain('A会員チェーン', description => '有料会員の登録');
SELECT taskflow.alter_task('A会員確認', assignee => '会員係');
SELECT taskflow.alter_template('A会員案内', reply_to => 'support@example.jp');
RESET ROLE;
-- the engine and the operators' calls, as a superuser
SELECT * FROM taskflow.run('2027-06-03 10:00+09') ORDER BY chain;
SELECT * FROM taskflow.run('2027-06-05 09:00+09') ORDER BY chain;
SELECT taskflow.process('A会員確認', NULL, '2027-06-05 10:00+09');
SELECT taskflow.process('A電話', ARRAY[pg_temp.mid('s-1')], '2027-06-05 10:00+09');
SELECT taskflow.skip('A電話', ARRAY[pg_temp.mid('s-2')], '2027-06-05 10:00+09');
SELECT chain, state, task, reason FROM taskflow.explain(pg_temp.mid('s-3'), '2027-06-05 10:00+09') ORDER BY chain;
SELECT count(*) FROM taskflow.preview('2027-06-05 10:00+09', '2027-07-10 00:00+09');
SELECT name FROM taskflow.search('A有料', '2027-06-01 00:00+09') ORDER BY member_id;
SELECT taskflow.count('A有料', '2027-06-01 00:00+09');
SELECT name FROM taskflow.search_expression($$lower(name) = '山田太郎'$$) ORDER BY member_id;
SELECT subject FROM taskflow.preview_template('A会員案内', pg_temp.mid('s-4'));
SELECT taskflow.render('{{name}}様', '{"name": "山田太郎"}');
SELECT taskflow.add_tag(pg_temp.mid('s-4'), '確認済'), taskflow.set_property(pg_temp.mid('s-4'), 'plan', 'ゴールド'::pg_catalog.text),
	   taskflow.record_payment(pg_temp.mid('s-4'), 3000, '2027-06-01', '2027-06-30', '2027-06-05 10:00+09');
SELECT outbox_id, recipient, subject FROM taskflow.claim_messages('email', 'relay-1', 10, '5 minutes', '2027-06-05 10:00+09')
 ORDER BY outbox_id;
SELECT taskflow.complete_messages('relay-1', pg_catalog.array_agg(outbox_id ORDER BY outbox_id),
	array_fill('sent'::pg_catalog.text, ARRAY[count(*)::int]), NULL, NULL, NULL, '2027-06-05 10:01+09')
  FROM taskflow.outbox WHERE state = 'sending';
SELECT length(taskflow.mime_message(min(outbox_id), '2027-06-05 10:02+09')) > 0 AS built FROM taskflow.outbox;
SELECT taskflow.next_delivery_at('email', '2027-06-05 10:02+09');
SELECT taskflow.suppress('bounce@example.jp'), taskflow.unsuppress('bounce@example.jp');
-- the same with pg_catalog put last on the search_path: only taskflow
-- calls below, since the test's own statements would pick up bob's
-- look-alikes now
SET search_path = security_evil, public, pg_catalog;
SELECT * FROM taskflow.run('2027-06-07 09:00+09');
SELECT taskflow.process('A会員確認', NULL, '2027-06-07 10:00+09');
SELECT * FROM taskflow.explain(1, '2027-06-07 10:00+09');
SELECT * FROM taskflow.preview('2027-06-07 10:00+09', '2027-07-10 00:00+09');
SELECT member_id, name FROM taskflow.search('A有料', '2027-06-07 10:00+09');
SELECT taskflow.count('A有料', '2027-06-07 10:00+09');
SELECT taskflow.save_criteria('A最終', $$has_tag(tags, 'A会員') AND lower(email) <> ''$$);
SELECT taskflow.create_task('A最終確認', 'auto', criteria => 'A最終',
	actions => '[{"add_tag": "A最終"}, {"sql": "INSERT INTO security_alice.log SELECT m, ''最終'', $2 FROM unnest($1) AS m"}]');
SELECT taskflow.create_chain('A最終チェーン', ARRAY['A最終確認'], time_zone => 'Asia/Tokyo');
SELECT * FROM taskflow.run('2027-06-08 09:00+09');
SELECT * FROM taskflow.claim_messages('email', 'relay-1', 10, '5 minutes', '2027-06-08 09:00+09');
SELECT taskflow.complete_messages('relay-1', '{}', '{}', NULL, NULL, NULL, '2027-06-08 09:01+09');
SELECT taskflow.mime_message(1, '2027-06-08 09:02+09') IS NOT NULL;
RESET search_path;
-- Bob himself, his schema before pg_catalog, calls what switches to the
-- extension owner's rights (the API, run, preview, explain, process): none
-- of it may resolve a name through his search_path.
SET ROLE security_bob;
SET search_path = security_evil, public, pg_catalog;
SELECT taskflow.save_criteria('B有料', $$status = 'paid' AND lower(name) <> ''$$);
SELECT taskflow.create_template('B案内', '{{name}}様', 'ボブ商会です。', sender_address => 'bob@example.jp');
SELECT taskflow.create_task('B登録', 'auto', criteria => 'B有料', template => 'B案内',
	actions => '[{"add_tag": "B"}, {"record_event": "automation", "detail": {"by": "bob"}}]');
SELECT taskflow.create_task('B確認', 'manual');
SELECT taskflow.create_chain('Bの新チェーン', ARRAY['B登録', 'B確認'], waits => ARRAY[NULL, '1 hours'],
	time_zone => 'Asia/Tokyo');
SELECT * FROM taskflow.run('2027-06-09 09:00+09');
SELECT * FROM taskflow.run('2027-06-09 10:00+09');
SELECT taskflow.process('B確認', NULL, '2027-06-09 10:30+09');
SELECT * FROM taskflow.preview('2027-06-09 10:30+09', '2027-06-20 00:00+09');
SELECT * FROM taskflow.explain(3, '2027-06-09 11:00+09');
SELECT member_id, name FROM taskflow.search('B有料', '2027-06-09 11:00+09');
SELECT taskflow.count('B有料', '2027-06-09 11:00+09');
SELECT taskflow.alter_template('B案内', subject => '{{name}}様へ');
SELECT taskflow.drop_chain('Bの新チェーン');
RESET search_path;
RESET ROLE;
-- none of bob's look-alikes was ever called
SELECT name, by_role, count(*) FROM security_evil.calls GROUP BY 1, 2 ORDER BY 1, 2;
SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS calls_counted FROM security_evil.call_count;
-- and the chain did its work
SELECT m.name, h.chain_name, h.task_name, h.event, h.at FROM taskflow.history h JOIN taskflow.member m USING (member_id)
 WHERE h.chain_name LIKE 'A会員%' OR h.chain_name = 'A最終チェーン' ORDER BY h.at, m.member_id, h.history_id;
SELECT m.name, l.note, l.at FROM security_alice.log l JOIN taskflow.member m USING (member_id) ORDER BY l.at, m.member_id;

---------------------------------------------------------------- the tables
-- Every table as taskflow_app, taskflow_operator, taskflow_relay and a
-- role with none of them: I(NSERT), U(PDATE), D(ELETE), T(RUNCATE) where
-- allowed, - where refused; sequences N(EXTVAL), S(ETVAL).  Only the member
-- data the application owns (member, event, group_membership) and the
-- operators' memos (event INSERT) may be written with plain SQL; the rest
-- is written only through taskflow's functions.
CREATE SCHEMA security_probe;
GRANT USAGE ON SCHEMA security_probe TO PUBLIC;
CREATE TABLE security_probe.result (role text, tbl text, op text, allowed boolean);
GRANT INSERT ON security_probe.result TO PUBLIC;
-- runs stmt and rolls it back; allowed unless refused for lack of privilege
CREATE FUNCTION security_probe.try(tbl text, op text, stmt text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	ok boolean;
BEGIN
	BEGIN
		EXECUTE stmt;
		RAISE EXCEPTION USING ERRCODE = 'T0001';
	EXCEPTION
		WHEN insufficient_privilege THEN ok := false;
		WHEN OTHERS THEN ok := true;
	END;
	INSERT INTO security_probe.result VALUES (current_user, tbl, op, ok);
END
$$;
CREATE FUNCTION security_probe.try_all() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT c.relname, c.relkind,
					(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum = 1) AS col
			   FROM pg_class c
			  WHERE c.relnamespace = 'taskflow'::regnamespace AND c.relkind IN ('r', 'S')
			  ORDER BY c.relname LOOP
		IF r.relkind = 'S' THEN
			PERFORM security_probe.try(r.relname, 'N', format('SELECT nextval(%L)', 'taskflow.' || r.relname));
			PERFORM security_probe.try(r.relname, 'S', format('SELECT setval(%L, 1000)', 'taskflow.' || r.relname));
		ELSE
			PERFORM security_probe.try(r.relname, 'I', format('INSERT INTO taskflow.%I DEFAULT VALUES', r.relname));
			PERFORM security_probe.try(r.relname, 'U', format('UPDATE taskflow.%I SET %I = %I WHERE false', r.relname, r.col, r.col));
			PERFORM security_probe.try(r.relname, 'D', format('DELETE FROM taskflow.%I WHERE false', r.relname));
			PERFORM security_probe.try(r.relname, 'T', format('TRUNCATE taskflow.%I', r.relname));
		END IF;
	END LOOP;
END
$$;
CREATE TEMP TABLE before_tables AS SELECT * FROM pg_temp.fingerprint();
SET ROLE taskflow_app;
SELECT security_probe.try_all();
SET ROLE taskflow_operator;
SELECT security_probe.try_all();
SET ROLE taskflow_relay;
SELECT security_probe.try_all();
SET ROLE security_plain;
SELECT security_probe.try_all();
RESET ROLE;
SELECT tbl,
	   string_agg(CASE WHEN allowed THEN op ELSE '-' END, '' ORDER BY strpos('IUDTNS', op))
		 FILTER (WHERE role = 'taskflow_app') AS app,
	   string_agg(CASE WHEN allowed THEN op ELSE '-' END, '' ORDER BY strpos('IUDTNS', op))
		 FILTER (WHERE role = 'taskflow_operator') AS operator,
	   string_agg(CASE WHEN allowed THEN op ELSE '-' END, '' ORDER BY strpos('IUDTNS', op))
		 FILTER (WHERE role = 'taskflow_relay') AS relay,
	   string_agg(CASE WHEN allowed THEN op ELSE '-' END, '' ORDER BY strpos('IUDTNS', op))
		 FILTER (WHERE role = 'security_plain') AS plain
  FROM security_probe.result GROUP BY tbl ORDER BY tbl;
-- the views are read-only for everyone
SELECT c.relname AS view, r.rolname
  FROM pg_class c CROSS JOIN pg_roles r
 WHERE c.relnamespace = 'taskflow'::regnamespace AND c.relkind = 'v'
   AND r.rolname IN ('taskflow_app', 'taskflow_operator', 'taskflow_relay', 'security_plain')
   AND has_table_privilege(r.oid, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
 ORDER BY 1, 2;
-- nor may bob change the tables themselves or add to the schema
SET ROLE security_bob;
ALTER TABLE taskflow.chain DISABLE TRIGGER ALL;
CREATE TRIGGER security_spy BEFORE UPDATE ON taskflow.member
	FOR EACH ROW EXECUTE FUNCTION security_evil.called('x');
CREATE POLICY security_hide ON taskflow.member USING (false);
CREATE INDEX security_idx ON taskflow.member (name);
CREATE FUNCTION taskflow.clock2() RETURNS timestamptz LANGUAGE sql AS 'SELECT now()';
CREATE VIEW taskflow.all_criteria AS SELECT 1;
COMMENT ON TABLE taskflow.criteria IS '乗っ取り';
GRANT SELECT ON taskflow.criteria TO security_bob;
RESET ROLE;
-- nothing was written
SELECT b.tbl, b.n AS rows, b.md5 = a.md5 AS unchanged
  FROM before_tables b JOIN pg_temp.fingerprint() a USING (tbl) WHERE b.md5 <> a.md5 ORDER BY b.tbl;

---------------------------------------------------------------- clean up
RESET taskflow.as_of;
REVOKE CREATE ON SCHEMA public FROM security_bob;
SET client_min_messages = warning;
DROP SCHEMA security_alice, security_bob, security_admin, security_evil, security_probe CASCADE;
DROP EXTENSION taskflow CASCADE;
DROP OWNED BY security_alice, security_bob, security_bob_helper, security_op, security_relay, security_plain;
RESET client_min_messages;
DROP ROLE security_alice, security_bob, security_bob_helper, security_op, security_relay, security_plain;
