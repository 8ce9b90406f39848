-- Changing the steps of an anchor chain: set_wait changes a step's offset
-- (kept in time order), move_step and a schedule are refused clearly.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
SET taskflow.as_of = '2026-05-01 00:00+09';

SELECT taskflow.define_property('purchased_on', 'date');
SELECT taskflow.create_task(t, mode => 'auto') > 0 AS created
  FROM unnest(ARRAY['購入お礼', '使い方', 'お客様の声', 'おすすめ']) t;
SELECT taskflow.create_chain('購入フォロー', tasks => ARRAY['購入お礼', '使い方', 'お客様の声', 'おすすめ'],
	anchor => 'properties.purchased_on',
	offsets => ARRAY['0 days at 10:00', '2 days at 10:00', '7 days at 10:00', '30 days at 10:00'],
	time_zone => 'Asia/Tokyo') > 0 AS created;

SELECT taskflow.set_wait('購入フォロー', 2, '3 days at 11:00');
SELECT s.position, t.name, s.wait_kind, s.wait_days, s.wait_at
  FROM taskflow.chain_step s JOIN taskflow.task t USING (task_id) ORDER BY s.position;
-- refused, nothing changed
SELECT taskflow.set_wait('購入フォロー', 2, '9 days at 11:00');
SELECT taskflow.set_wait('購入フォロー', 2, '3 hours');
SELECT taskflow.set_wait('購入フォロー', 9, '1 days');
SELECT taskflow.move_step('購入フォロー', 1, 2);
SELECT taskflow.alter_chain('購入フォロー', schedule => 'daily at 09:00');
SELECT s.position, t.name, s.wait_kind, s.wait_days, s.wait_at
  FROM taskflow.chain_step s JOIN taskflow.task t USING (task_id) ORDER BY s.position;
