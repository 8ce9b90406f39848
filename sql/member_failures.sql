-- A step that fails for one member's data: the member is set aside and
-- the others go on.  The shop's points wallet may not go below zero; the
-- task "ポイント利用" takes 100 points.  鈴木 has only 50 and 田中 80:
-- the batches fail for them alone.  Each is tried again after 10 minutes,
-- then 20, 40 …; every failure is in chain_error with the member's id, and
-- explain() says so.  The shop tops 田中 up and he goes on; 鈴木 waits,
-- nothing lost, until his wallet is topped up too.  A failure of the chain
-- itself (a column its action names is gone) is the chain's, as before:
-- recorded, retried, nobody set aside.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
DROP SCHEMA IF EXISTS shop CASCADE;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
SET taskflow.as_of = '2026-06-01 08:00+09';

CREATE SCHEMA shop;
CREATE TABLE shop.wallet (
	member_id	bigint PRIMARY KEY,
	points		integer NOT NULL CHECK (points >= 0)
);
INSERT INTO taskflow.member (external_id, email, name, status) VALUES
	('f-1', 'aoki@example.jp', '青木花子', 'paid'),
	('f-2', 'suzuki@example.jp', '鈴木一郎', 'paid'),
	('f-3', 'tanaka@example.jp', '田中次郎', 'paid'),
	('f-4', 'ueno@example.jp', '上野さくら', 'paid'),
	('f-5', 'endo@example.jp', '遠藤健', 'paid'),
	('f-6', 'ogawa@example.jp', '小川優', 'paid'),
	('f-7', 'kimura@example.jp', '木村真央', 'paid');
INSERT INTO shop.wallet
SELECT member_id, CASE external_id WHEN 'f-2' THEN 50 WHEN 'f-3' THEN 80 ELSE 500 END
  FROM taskflow.member;
CREATE FUNCTION pg_temp.mid(ext text) RETURNS bigint LANGUAGE sql
	RETURN (SELECT member_id FROM taskflow.member WHERE external_id = ext);

SELECT taskflow.save_criteria('有料会員', $$status = 'paid'$$);
SELECT taskflow.create_task('ポイント利用', 'auto', criteria => '有料会員',
	actions => $$[{"sql": "UPDATE shop.wallet SET points = points - 100 WHERE member_id = ANY($1)"},
				 {"add_tag": "特典交換済"}]$$);
SELECT taskflow.create_task('お礼', 'auto', actions => '[{"add_tag": "お礼済"}]');
SELECT taskflow.create_chain('特典交換', ARRAY['ポイント利用', 'お礼'],
	waits => ARRAY[NULL, '1 days at 09:00'], time_zone => 'Asia/Tokyo');

-- batches of two members: 鈴木 and 田中 fall in different batches
SET taskflow.batch_size = 2;
SELECT * FROM taskflow.run('2026-06-01 09:00+09');
CREATE VIEW pg_temp.states AS
SELECT m.name, s.position, cm.state, to_char(cm.due_at, 'MM-DD HH24:MI') AS due,
	   cm.left_reason, w.points, m.tags
  FROM taskflow.chain_member cm JOIN taskflow.member m USING (member_id)
  LEFT JOIN taskflow.chain_step s USING (step_id)
  JOIN shop.wallet w USING (member_id)
 ORDER BY m.external_id;
SELECT * FROM pg_temp.states;
-- each failure kept with the member it is for; the chain itself is fine
SELECT m.name, to_char(e.at, 'MM-DD HH24:MI') AS at, e.sqlstate, e.message
  FROM taskflow.chain_error e JOIN taskflow.member m USING (member_id) ORDER BY e.error_id;
SELECT consecutive_failures, paused_reason FROM taskflow.chain;

-- the shop tops 田中 up; ten minutes later he goes on, 鈴木 fails again
UPDATE shop.wallet SET points = 300 WHERE member_id = pg_temp.mid('f-3');
SELECT * FROM taskflow.run('2026-06-01 09:10+09');
SELECT * FROM pg_temp.states WHERE name IN ('鈴木一郎', '田中次郎');
-- tried alone at 09:30 (20 minutes): still short, next try at 10:10
SELECT * FROM taskflow.run('2026-06-01 09:20+09');
SELECT * FROM taskflow.run('2026-06-01 09:30+09');
SELECT * FROM pg_temp.states WHERE name = '鈴木一郎';
SELECT chain, state, task, to_char(due_at, 'MM-DD HH24:MI') AS due_at, reason
  FROM taskflow.explain(pg_temp.mid('f-2'), '2026-06-01 10:00+09');
SELECT m.name, to_char(e.at, 'MM-DD HH24:MI') AS at, e.sqlstate
  FROM taskflow.chain_error e JOIN taskflow.member m USING (member_id) ORDER BY e.error_id;
SELECT consecutive_failures, paused_reason FROM taskflow.chain;
-- the next day: the others get the second step; 鈴木 is topped up and goes on
UPDATE shop.wallet SET points = 150 WHERE member_id = pg_temp.mid('f-2');
SELECT * FROM taskflow.run('2026-06-02 09:00+09');
SELECT name, position, state, points, tags FROM pg_temp.states;
SELECT m.name, h.event, h.task_name, to_char(h.at, 'MM-DD HH24:MI') AS at
  FROM taskflow.history h JOIN taskflow.member m USING (member_id)
 WHERE m.external_id = 'f-2' ORDER BY h.history_id;
RESET taskflow.batch_size;

---------------------------------------------------------------- the chain's own failures
-- a column the action names is gone: every member fails, nobody is set aside
ALTER TABLE shop.wallet RENAME COLUMN points TO balance;
INSERT INTO taskflow.member (external_id, email, name, status) VALUES
	('g-1', 'goto@example.jp', '後藤明', 'paid'),
	('g-2', 'hara@example.jp', '原直子', 'paid');
INSERT INTO shop.wallet SELECT member_id, 500 FROM taskflow.member WHERE external_id LIKE 'g-%';
SELECT * FROM taskflow.run('2026-06-03 09:00+09');
SELECT name, state, due FROM pg_temp.states WHERE name IN ('後藤明', '原直子');
SELECT e.member_id, e.sqlstate, e.message FROM taskflow.chain_error e
 WHERE e.at = '2026-06-03 09:00+09';
SELECT consecutive_failures, last_error FROM taskflow.chain;
ALTER TABLE shop.wallet RENAME COLUMN balance TO points;
SELECT * FROM taskflow.run('2026-06-03 09:10+09');
SELECT consecutive_failures FROM taskflow.chain;

---------------------------------------------------------------- an entry criteria that fails
-- The first task's criteria raises for one member's data while the entry
-- check looks for who matches: which member is not known from the error,
-- so the check is narrowed down by member id until that member is found
-- and set aside; the members who match enter, and other chains go on.
SELECT taskflow.disable_chain('特典交換');
SELECT taskflow.define_property('points', 'number');
INSERT INTO taskflow.member (external_id, email, name, status, properties) VALUES
	('p-1', 'iida@example.jp', '飯田和子', 'paid', '{"points": 10}'),
	('p-2', 'ishii@example.jp', '石井学', 'paid', '{"points": 0}'),
	('p-3', 'ito@example.jp', '伊藤恵', 'paid', '{"points": 20}');
SELECT taskflow.save_criteria('ポイント比', $$100 / prop_number(properties, 'points') > 1$$);
SELECT taskflow.create_task('ポイント案内', 'auto', criteria => 'ポイント比');
SELECT taskflow.create_chain('ポイント', ARRAY['ポイント案内'], time_zone => 'Asia/Tokyo');
SELECT taskflow.create_task('全員案内', 'auto', actions => '[{"add_tag": "全員案内済"}]');
SELECT taskflow.create_chain('全員', ARRAY['全員案内'], time_zone => 'Asia/Tokyo');
-- the preview shows it first (the error row names the member)
SELECT to_char(at, 'HH24:MI') AS at, member_name, task, event
  FROM taskflow.preview('2026-06-04 09:00+09', '2026-06-04 09:01+09', chain => 'ポイント');
SET taskflow.batch_size = 2;
SELECT * FROM taskflow.run('2026-06-04 09:00+09') ORDER BY chain;
RESET taskflow.batch_size;
SELECT m.name, cm.state, to_char(cm.due_at, 'MM-DD HH24:MI') AS due
  FROM taskflow.chain_member cm JOIN taskflow.member m USING (member_id)
  JOIN taskflow.chain c USING (chain_id)
 WHERE c.name = 'ポイント' ORDER BY m.external_id;
SELECT m.name, e.sqlstate, e.message FROM taskflow.chain_error e
  JOIN taskflow.member m USING (member_id) WHERE e.at = '2026-06-04 09:00+09';
SELECT name, consecutive_failures, paused_reason FROM taskflow.chain ORDER BY name;
-- the next entry check goes past 石井, in the chain already: his failures
-- are his step's (tried again at 09:10), not one more at every check
SELECT * FROM taskflow.run('2026-06-04 09:05+09') ORDER BY chain;
SELECT count(*) AS errors FROM taskflow.chain_error WHERE at > '2026-06-04 09:00+09';
-- a daily chain on an expiry day count: a member who never expires
-- ('infinity') has no day count (NULL), so does not match: no error
SELECT taskflow.disable_chain('ポイント');
SELECT taskflow.disable_chain('全員');
INSERT INTO taskflow.member (external_id, email, name, status, expires_at) VALUES
	('q-1', 'kato@example.jp', '加藤無期限', 'paid', 'infinity'),
	('q-2', 'kudo@example.jp', '工藤理沙', 'paid', '2026-06-12 18:00+09');
SELECT taskflow.save_criteria('期限7日前', $$status = 'paid' AND days_until(expires_at) = 7$$);
SELECT taskflow.create_task('期限案内', 'auto', criteria => '期限7日前');
SELECT taskflow.create_chain('期限', ARRAY['期限案内'], schedule => 'daily at 09:00',
	time_zone => 'Asia/Tokyo');
SELECT * FROM taskflow.run('2026-06-05 09:00+09');
SELECT m.name, cm.state FROM taskflow.chain_member cm JOIN taskflow.member m USING (member_id)
  JOIN taskflow.chain c USING (chain_id) WHERE c.name = '期限' ORDER BY m.external_id;
SELECT m.name, e.sqlstate FROM taskflow.chain_error e
  JOIN taskflow.member m USING (member_id) WHERE e.at = '2026-06-05 09:00+09';
-- a criteria that fails for (nearly) everyone is the chain's to fix: after
-- 100 members set aside in one run the rest is the chain's failure
SELECT taskflow.disable_chain('期限');
INSERT INTO taskflow.member (external_id, email, name, status, properties)
SELECT 'z-' || n, 'z' || n || '@example.jp', '会員' || n, 'paid', '{"points": 0}'
  FROM generate_series(1, 120) n;
SELECT taskflow.save_criteria('ポイント比2', $$100 / prop_number(properties, 'points') > 1
	AND name LIKE '会員%'$$);
SELECT taskflow.create_task('ポイント案内2', 'auto', criteria => 'ポイント比2');
SELECT taskflow.create_chain('ポイント2', ARRAY['ポイント案内2'], time_zone => 'Asia/Tokyo');
SET client_min_messages = error;
SELECT * FROM taskflow.run('2026-06-06 09:00+09');
RESET client_min_messages;
SELECT count(*) AS set_aside FROM taskflow.chain_error
 WHERE at = '2026-06-06 09:00+09' AND member_id IS NOT NULL;
SELECT message, detail FROM taskflow.chain_error
 WHERE at = '2026-06-06 09:00+09' AND member_id IS NULL;
SELECT consecutive_failures FROM taskflow.chain WHERE name = 'ポイント2';

DROP SCHEMA shop CASCADE;
