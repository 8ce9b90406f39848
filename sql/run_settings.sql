-- What a chain's statements run with, whatever the session has set: the
-- engine's clock, the chain's time zone, a search_path holding nothing a
-- user could plant objects in, and no JIT compilation (compiling a batch's
-- statements cost more than running them).  A custom SQL action records
-- what it sees; the session's own settings are as they were afterwards.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
DROP TABLE IF EXISTS public.run_settings_seen;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'UTC';
SET jit = on;
SET search_path = public;
SET taskflow.as_of = '2027-04-01 09:00+09';

CREATE TABLE public.run_settings_seen (member_id bigint, as_of text, time_zone text, search_path text, jit text);
SELECT taskflow.create_task('設定の記録', 'auto', actions => $$[{"sql": "INSERT INTO public.run_settings_seen SELECT m, pg_catalog.current_setting('taskflow.as_of'), pg_catalog.current_setting('TimeZone'), pg_catalog.current_setting('search_path'), pg_catalog.current_setting('jit') FROM pg_catalog.unnest($1) AS m"}]$$);
SELECT taskflow.create_chain('設定確認', ARRAY['設定の記録'], time_zone => 'America/New_York');
INSERT INTO taskflow.member (external_id, email, name) VALUES ('s-1', 'settei@example.jp', '設定太郎');
SELECT entered, applied FROM taskflow.run('2027-04-01 09:00+09');
SELECT as_of, time_zone, search_path, jit FROM public.run_settings_seen;
SHOW jit;
SHOW TimeZone;
SHOW search_path;

DROP TABLE public.run_settings_seen;
RESET jit;
RESET search_path;

-- Settings a criteria or an action changes with set_config() do not stay
-- in the session that ran them (the scheduler's, for every other chain):
-- neither session-wide nor local ones, neither from run() nor search().
CREATE FUNCTION public.run_settings_meddle(m taskflow.member) RETURNS boolean
	LANGUAGE plpgsql STABLE AS $$
BEGIN
	PERFORM pg_catalog.set_config('default_transaction_read_only', 'on', false);
	PERFORM pg_catalog.set_config('standard_conforming_strings', 'off', false);
	PERFORM pg_catalog.set_config('DateStyle', 'SQL, DMY', false);
	PERFORM pg_catalog.set_config('work_mem', '77kB', true);
	RETURN true;
END $$;
SELECT taskflow.save_criteria('設定を変える', $$public.run_settings_meddle(member)$$);
SELECT taskflow.create_task('設定を変える作業', 'auto', criteria => '設定を変える',
	actions => $$[{"sql": "SELECT pg_catalog.set_config('statement_timeout', '1ms', false), pg_catalog.set_config('lock_timeout', '5ms', false) FROM pg_catalog.unnest($1)"}]$$);
SELECT taskflow.create_chain('設定を変える連鎖', ARRAY['設定を変える作業'], time_zone => 'Asia/Tokyo');
SELECT entered, applied FROM taskflow.run('2027-04-02 09:00+09') WHERE chain = '設定を変える連鎖';
SELECT count(*) FROM taskflow.search('設定を変える');
SELECT count(*) FROM taskflow.search_expression($$public.run_settings_meddle(member)$$);
SELECT pg_catalog.current_setting('default_transaction_read_only') AS read_only,
	   pg_catalog.current_setting('standard_conforming_strings') AS strings,
	   pg_catalog.current_setting('DateStyle') AS date_style,
	   pg_catalog.current_setting('work_mem') AS work_mem,
	   pg_catalog.current_setting('statement_timeout') AS statement_timeout,
	   pg_catalog.current_setting('lock_timeout') AS lock_timeout;
DROP EXTENSION taskflow CASCADE;	-- and run_settings_meddle(), which takes its type
