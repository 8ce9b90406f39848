-- A preview looks only at what its simulation changed (src/preview_watch.c):
-- a step's due scan starts at the lowest due time of a member placed at
-- the step since its last scan, and an anchor chain's change and entry
-- checks look only at the members written since its last check (the entry
-- check only when its audience criteria reads nothing but the member row,
-- without the clock).  Each case below is a member whose turn comes from
-- another chain's action in the middle of the range; the preview must show
-- exactly what the engine then does when run over the same range at the
-- same instants.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
SET taskflow.as_of = '2027-03-31 12:00+09';

CREATE FUNCTION pg_temp.task(name text, subject text, criteria text DEFAULT NULL,
							 actions jsonb DEFAULT '[]', on_mismatch text DEFAULT 'leave')
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM taskflow.create_template(name, subject, '{{name}}様' || E'\n\n' || subject,
									 sender_name => '会員サイト事務局', sender_address => 'info@example.jp');
	PERFORM taskflow.create_task(name, 'auto', criteria => criteria, template => name, actions => actions,
								 on_mismatch => on_mismatch);
END
$$;

-- the engine run as the worker runs it, at each wake-up; entry checks of
-- "always" and anchor chains once a day, as in the preview
CREATE FUNCTION pg_temp.run_until(from_at timestamptz, to_at timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	t timestamptz := from_at;
	n timestamptz;
	runs integer := 0;
BEGIN
	WHILE t IS NOT NULL AND t <= to_at LOOP
		PERFORM taskflow.run(t);
		runs := runs + 1;
		n := taskflow.next_wakeup(t);
		t := CASE WHEN n IS NULL THEN NULL WHEN n > t THEN n ELSE t + interval '1 second' END;
	END LOOP;
	RETURN runs;
END
$$;

SELECT taskflow.define_property('seminar_on', 'date', NULL, 'セミナー参加日');
SELECT taskflow.save_criteria('本登録済', $$has_tag(tags, '本登録')$$);
SELECT taskflow.save_criteria('有料会員', $$status = 'paid'$$);
SELECT taskflow.save_criteria('入会3日目', $$days_since(joined_at) = 3$$);
SELECT taskflow.save_criteria('入会10日以上', $$days_since(joined_at) >= 10$$);

-- 1. a step waiting for its criteria: 本登録 (registration) happens on a
--    member's third day, from another chain; the welcome chain's second
--    step waits for it (on_mismatch 'wait') and goes on the same day
SELECT pg_temp.task('仮登録のお礼', '{{name}}様、仮登録ありがとうございます');
SELECT pg_temp.task('本登録のお礼', '{{name}}様、本登録が完了しました', '本登録済', on_mismatch => 'wait');
SELECT taskflow.create_chain('登録の流れ', ARRAY['仮登録のお礼', '本登録のお礼'], ARRAY[NULL, '1 days at 09:00'],
	time_zone => 'Asia/Tokyo');
SELECT pg_temp.task('本登録', '{{name}}様、本登録のご案内', '入会3日目',
	'[{"add_tag": "本登録"}, {"set": "status", "to": "paid"}]');
SELECT taskflow.create_chain('本登録', ARRAY['本登録'], schedule => 'daily at 15:00', time_zone => 'Asia/Tokyo');

-- 2. an anchor that an action changes: the renewal moves expires_at a year
--    on (anchor_change 'follow': the reminder moves with it), and sets the
--    seminar date (anchor_change 'restart')
SELECT pg_temp.task('更新のご案内', '{{name}}様、有効期限の3日前です');
SELECT taskflow.create_chain('期限前', ARRAY['更新のご案内'], anchor => 'expires_at',
	offsets => ARRAY['-3 days at 10:00'], anchor_change => 'follow', activation => 'existing',
	time_zone => 'Asia/Tokyo');
SELECT pg_temp.task('更新', '{{name}}様、自動更新しました', '入会10日以上',
	'[{"extend_expires": "1 year"}, {"set_property": "seminar_on", "to": "2027-05-20"}]');
SELECT taskflow.create_chain('自動更新', ARRAY['更新'], schedule => 'daily at 11:00', time_zone => 'Asia/Tokyo');
SELECT pg_temp.task('セミナー前日', '{{name}}様、明日はセミナーです');
SELECT pg_temp.task('セミナーお礼', '{{name}}様、ご参加ありがとうございました');
SELECT taskflow.create_chain('セミナー', ARRAY['セミナー前日', 'セミナーお礼'], anchor => 'properties.seminar_on',
	offsets => ARRAY['-1 days at 18:00', '1 days at 10:00'], anchor_change => 'restart',
	activation => 'existing', time_zone => 'Asia/Tokyo');

-- 3. an audience that an action makes a member join: paid members only
--    (a criteria on the member row alone), anchored on the joining date,
--    a month after; and one whose audience depends on the clock
SELECT pg_temp.task('1か月のお礼', '{{name}}様、ご入会から1か月です', '有料会員');
SELECT taskflow.create_chain('入会1か月', ARRAY['1か月のお礼'], anchor => 'joined_at',
	offsets => ARRAY['30 days at 10:00'], activation => 'existing', time_zone => 'Asia/Tokyo');
SELECT pg_temp.task('2週間のヒント', '{{name}}様、使い方のヒント', '入会10日以上');
SELECT taskflow.create_chain('入会2週間', ARRAY['2週間のヒント'], anchor => 'joined_at',
	offsets => ARRAY['14 days at 10:00'], activation => 'existing', time_zone => 'Asia/Tokyo');

-- entry checks of "always" and anchor chains once a day, as in a preview
SELECT count(taskflow.alter_chain(name, entry_interval => '1 day'))
  FROM taskflow.chain WHERE schedule IN ('always', 'anchor');

-- members: one joining each day of the first week of April, and one who
-- joined long ago with an expiry in April
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, expires_at)
SELECT 'w' || i, 'watch' || i || '@example.jp', '見守り' || i || '号', 'trial',
	   timestamptz '2027-04-01 08:00+09' + (i - 1) * interval '1 day',
	   timestamptz '2028-04-01 00:00+09'
  FROM generate_series(1, 5) i;
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, expires_at)
VALUES ('w6', 'watch6@example.jp', '古参六郎', 'paid', '2025-04-01 10:00+09', '2027-04-20 00:00+09');

---------------------------------------------------------------- the preview
CREATE TEMP TABLE previewed AS
SELECT * FROM taskflow.preview('2027-04-01 00:00+09', '2027-06-30 00:00+09');
SELECT to_char(at, 'MM-DD HH24:MI') AS at, chain, member_name, task, event, subject
  FROM previewed ORDER BY at, chain, member_name, event;

---------------------------------------------------------------- for real: the same
SELECT pg_temp.run_until('2027-04-01 00:00+09', '2027-06-30 00:00+09') > 0 AS ran;
CREATE TEMP TABLE happened AS
SELECT h.at, h.chain_name AS chain, m.name AS member_name, h.task_name AS task, h.event,
	   CASE WHEN h.event = 'applied' THEN t.actions ELSE h.detail END AS changes, o.subject
  FROM taskflow.history h
  JOIN taskflow.member m USING (member_id)
  LEFT JOIN taskflow.chain_step s ON s.step_id = h.step_id
  LEFT JOIN taskflow.task t ON t.task_id = s.task_id
  LEFT JOIN taskflow.outbox o ON h.event = 'applied' AND o.chain_id = h.chain_id AND o.member_id = h.member_id
	   AND o.step_id = h.step_id AND o.iteration = h.iteration;
SELECT (SELECT count(*) FROM previewed) AS previewed, (SELECT count(*) FROM happened) AS happened;
-- previewed but did not happen, and happened but was not previewed: none
(SELECT 'previewed only' AS what, at, chain, member_name, task, event, changes, subject FROM previewed
 EXCEPT ALL
 SELECT 'previewed only', at, chain, member_name, task, event, changes, subject FROM happened)
UNION ALL
(SELECT 'happened only', at, chain, member_name, task, event, changes, subject FROM happened
 EXCEPT ALL
 SELECT 'happened only', at, chain, member_name, task, event, changes, subject FROM previewed)
ORDER BY 1, 2, 3, 4;
