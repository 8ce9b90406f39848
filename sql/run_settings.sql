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
DROP EXTENSION taskflow CASCADE;
