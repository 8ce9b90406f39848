-- An entry check adds to a criteria the index ranges its day counts imply
-- (src/criteria_hint.c): "days_since(joined_at) = 3" reads only the members
-- who joined around that day, through the index on joined_at, instead of
-- every member.  The ranges must never leave out a member the criteria
-- matches: here every comparison, both ways round, is checked against
-- taskflow.search() (which has no such ranges) for members whose dates lie
-- on both sides of local midnights, on the days clocks change in New York.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'America/New_York';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never

-- members joining (and expiring) every 20 minutes over three days around
-- each change of the clocks in 2027 (14 March, 7 November)
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, expires_at)
SELECT 'h' || n, 'hint' || n || '@example.jp', '境界' || n || '号', 'paid', t, t + interval '10 days'
  FROM (SELECT row_number() OVER () AS n, t
		  FROM (SELECT generate_series(d - interval '1 day', d + interval '2 days', interval '20 minutes') AS t
				  FROM unnest(ARRAY[timestamptz '2027-03-14 00:00', timestamptz '2027-11-07 00:00']) d) x) y;
SELECT count(*) AS members FROM taskflow.member;

-- each criteria, and the chain that enters whom it matches at 09:00 New York
CREATE TEMP TABLE cases (name text, expression text);
INSERT INTO cases VALUES
	('入会3日', 'days_since(joined_at) = 3'),
	('入会2日以上', 'days_since(joined_at) >= 2'),
	('入会2日より前', 'days_since(joined_at) > 2'),
	('入会1日以内', 'days_since(joined_at) <= 1'),
	('入会1日未満', 'days_since(joined_at) < 1'),
	('逆向き', '3 = days_since(joined_at)'),
	('期限8日後', 'days_until(expires_at) = 8'),
	('期限9日以内', 'days_until(expires_at) <= 9 AND status = ''paid'''),
	('期限9日後より先', '9 < days_until(expires_at)');
SELECT count(taskflow.save_criteria(name, expression)) FROM cases;
SELECT count(taskflow.create_template('t:' || name, name || 'のご案内', '{{name}}様',
									  sender_name => '会員事務局', sender_address => 'info@example.jp'))
  FROM cases;
SELECT count(taskflow.create_task('t:' || name, 'auto', criteria => name, template => 't:' || name))
  FROM cases;
SELECT count(taskflow.create_chain('c:' || name, ARRAY['t:' || name], schedule => 'daily at 09:00',
								   time_zone => 'America/New_York'))
  FROM cases;

-- run on each of the days, and compare who entered with what search says
CREATE TEMP TABLE entered (at timestamptz, chain text, member_id bigint);
CREATE TEMP TABLE matched (at timestamptz, chain text, member_id bigint);
DO $$
DECLARE
	t timestamptz;
	c record;
	last_id bigint := 0;
BEGIN
	FOR t IN SELECT d + interval '9 hours'
			   FROM generate_series(timestamp '2027-03-13', timestamp '2027-03-18', interval '1 day') d
			 UNION ALL
			 SELECT d + interval '9 hours'
			   FROM generate_series(timestamp '2027-11-06', timestamp '2027-11-11', interval '1 day') d LOOP
		-- as search() sees it, before the run (members who entered before
		-- never enter again)
		FOR c IN SELECT name FROM cases LOOP
			INSERT INTO matched
			SELECT t, 'c:' || c.name, s.member_id FROM taskflow.search(c.name, t) s
			 WHERE NOT EXISTS (SELECT FROM taskflow.history h
								WHERE h.chain_name = 'c:' || c.name AND h.member_id = s.member_id
								  AND h.event = 'entered');
		END LOOP;
		PERFORM taskflow.run(t);
		INSERT INTO entered
		SELECT h.at, h.chain_name, h.member_id FROM taskflow.history h
		 WHERE h.history_id > last_id AND h.event = 'entered';
		SELECT max(history_id) INTO last_id FROM taskflow.history;
	END LOOP;
END
$$;
SELECT chain, count(*) AS entered FROM entered GROUP BY chain ORDER BY chain;
-- entered but not matched, and matched but not entered: none
(SELECT 'entered only' AS what, * FROM entered EXCEPT ALL SELECT 'entered only', * FROM matched)
UNION ALL
(SELECT 'matched only', * FROM matched EXCEPT ALL SELECT 'matched only', * FROM entered)
ORDER BY 1, 2, 3, 4;

