-- A chain runs the criteria and actions of its tasks with the privileges of
-- its owner, while the owner of a task (or of its criteria) may change them
-- at any time.  So a chain may use only tasks and criteria whose owners
-- already have the chain owner's privileges: otherwise a role could have
-- its code run with privileges it does not have (a team lead's, granted
-- the junior's role to use the junior's task; a superuser's).  Refused
-- when the chain is built or the task changed; a chain that breaks the rule
-- all the same (a chain from before the rule, a membership revoked) pauses
-- at its next run, saying why, without running anything.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
DROP SCHEMA IF EXISTS runas_lead, runas_junior CASCADE;
DROP ROLE IF EXISTS runas_junior, runas_lead;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
\set SHOW_CONTEXT never
SET taskflow.as_of = '2027-06-01 09:00+09';

CREATE ROLE runas_junior IN ROLE taskflow_app;
CREATE ROLE runas_lead IN ROLE taskflow_app;
GRANT runas_junior TO runas_lead;		-- the lead may use the junior's work
CREATE SCHEMA runas_lead AUTHORIZATION runas_lead;
SET ROLE runas_lead;
CREATE TABLE runas_lead.secret (note text);
INSERT INTO runas_lead.secret VALUES ('取引先の口座番号 1234567');
RESET ROLE;
INSERT INTO taskflow.member (external_id, email, name, status) VALUES
	('r-1', 'yamada@example.jp', '山田太郎', 'trial'),
	('r-2', 'sato@example.jp', '佐藤花子', 'paid');

SET ROLE runas_junior;
SELECT taskflow.save_criteria('体験中', $$status = 'trial'$$);
SELECT taskflow.create_task('体験案内', 'auto', criteria => '体験中', actions => '[{"add_tag": "体験案内済"}]');
SELECT taskflow.create_task('全員タグ', 'auto', actions => '[{"add_tag": "全員"}]');
-- the junior's own chain of its own tasks: fine
SELECT taskflow.create_chain('新人の連鎖', ARRAY['体験案内'], time_zone => 'Asia/Tokyo');
RESET ROLE;

-- the lead builds a chain of the junior's task: refused
SET ROLE runas_lead;
SELECT taskflow.create_chain('リーダーの連鎖', ARRAY['体験案内'], time_zone => 'Asia/Tokyo');
-- the lead's own task with the junior's criteria: refused when chained
SELECT taskflow.create_task('リーダー案内', 'auto', criteria => '体験中', actions => '[{"add_tag": "案内済"}]');
SELECT taskflow.create_chain('リーダーの連鎖', ARRAY['リーダー案内'], time_zone => 'Asia/Tokyo');
-- nor added to a chain of the lead's own tasks, nor given to one of them
SELECT taskflow.create_task('リーダー記録', 'auto', actions => '[{"add_tag": "記録"}]');
SELECT taskflow.create_chain('リーダーの連鎖', ARRAY['リーダー記録'], time_zone => 'Asia/Tokyo');
SELECT taskflow.add_step('リーダーの連鎖', '全員タグ', '1 days at 10:00');
SELECT taskflow.alter_task('リーダー記録', criteria => '体験中');
RESET ROLE;
-- a superuser building a chain of the junior's task: refused too
SELECT taskflow.create_chain('管理者の連鎖', ARRAY['全員タグ'], time_zone => 'Asia/Tokyo');
SELECT name, owner, (SELECT array_agg(t.name ORDER BY s.position)
					   FROM taskflow.chain_step s JOIN taskflow.task t USING (task_id)
					  WHERE s.chain_id = c.chain_id) AS tasks
  FROM taskflow.chain c ORDER BY chain_id;

-- Changing a task checks its actions by a trial run for no member: as the
-- task's owner, never as whoever changes it (a superuser setting its
-- priority must not run the junior's function with a superuser's rights).
CREATE SCHEMA runas_junior AUTHORIZATION runas_junior;
SET ROLE runas_junior;
CREATE FUNCTION runas_junior.who(ids bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	RAISE NOTICE 'the trial run runs as %', current_user;
END $$;
SELECT taskflow.create_task('新人の記録', 'auto', actions => '[{"sql": "SELECT runas_junior.who($1)"}]');
RESET ROLE;
SELECT taskflow.alter_task('新人の記録', priority => 5);
SET ROLE runas_lead;
SELECT taskflow.alter_task('新人の記録', assignee => '新人係');
RESET ROLE;

-- A chain that breaks the rule all the same (here made as 0.1 allowed it:
-- the lead's chain of a task the junior now owns, whose action reads the
-- lead's table) pauses at its next run and runs nothing of it.
CREATE TABLE public.runas_loot (who text, note text);
GRANT INSERT ON public.runas_loot TO runas_junior, runas_lead;
UPDATE taskflow.task SET owner = 'runas_junior',
	   actions = $$[{"sql": "INSERT INTO public.runas_loot SELECT current_user, note FROM runas_lead.secret"}]$$
 WHERE name = 'リーダー記録';
SELECT chain, entered, applied, errors FROM taskflow.run('2027-06-01 09:00+09') ORDER BY chain;
SELECT name, enabled, paused_reason FROM taskflow.chain ORDER BY chain_id;
SELECT count(*) AS loot FROM public.runas_loot;
-- explain says so
SELECT chain, state, reason FROM taskflow.explain(1, '2027-06-01 09:00+09') ORDER BY chain;

---------------------------------------------------------------- clean up
RESET taskflow.as_of;
SET client_min_messages = warning;
DROP TABLE public.runas_loot;
DROP SCHEMA runas_lead, runas_junior CASCADE;
DROP EXTENSION taskflow CASCADE;
DROP OWNED BY runas_junior, runas_lead;
RESET client_min_messages;
DROP ROLE runas_junior, runas_lead;
