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

DROP SCHEMA shop CASCADE;
