-- bench/sql/b3_fixture.sql — benchmark 3 (idle cost) and 4 (latency):
-- :nchains chains of two steps, scheduled daily at an hour before now
-- (their next slot is about 23 hours away), and every member of
-- members.sql waiting at step 2 of one of them, due in 10 to 11 days.
-- Created at the real time: the scheduler runs them as of now.
SELECT taskflow.create_template('b3:案内', '{{name}}様、ご案内',
	E'{{name}}様\n\nいつもご利用ありがとうございます。',
	sender_name => '会員事務局', sender_address => 'info@example.jp');
SELECT taskflow.create_task('b3:開始', 'auto');
SELECT taskflow.create_task('b3:案内', 'auto', template => 'b3:案内',
	actions => '[{"add_tag": "案内済"}]');
SELECT set_config('bench.nchains', :'nchains', false);
DO $$
DECLARE
	at text := to_char((now() AT TIME ZONE 'Asia/Tokyo') - interval '1 hour', 'HH24:MI');
BEGIN
	FOR i IN 1 .. current_setting('bench.nchains')::integer LOOP
		PERFORM taskflow.create_chain(format('b3:%s', lpad(i::text, 4, '0')),
			tasks => ARRAY['b3:開始', 'b3:案内'], waits => ARRAY[NULL, '30 days at 10:00'],
			schedule => 'daily at ' || at, time_zone => 'Asia/Tokyo');
	END LOOP;
END
$$;
SET session_replication_role = replica;
INSERT INTO taskflow.chain_member (chain_id, member_id, step_id, iteration, state,
								   entered_at, waiting_since, due_at)
SELECT c.chain_id, m.member_id, s.step_id, 1, 'waiting', now() - interval '1 day',
	   now() - interval '1 day',
	   now() + interval '10 days' + (m.member_id % 1440) * interval '1 minute'
  FROM taskflow.member m
  JOIN (SELECT c.chain_id, row_number() OVER (ORDER BY c.chain_id) - 1 AS k
		  FROM taskflow.chain c WHERE c.name LIKE 'b3:%') c
	ON c.k = (m.member_id - 1) % :nchains
  JOIN taskflow.chain_step s ON s.chain_id = c.chain_id AND s.position = 2;
RESET session_replication_role;
