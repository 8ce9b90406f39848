-- taskflow.preview(from_at, to_at, chain, member_ids, hypothetical,
-- entry_step): the timeline the engine would produce over a range, from
-- the real engine run at every due instant inside a rolled-back
-- subtransaction.
--
-- Compact versions of every use case of BRIEF.md (sql/usecase_*.sql) and
-- of the CScloud anchor chains run side by side.  The test checks that:
--  * a preview leaves nothing behind: members, chains, member states,
--    history, outbox, events and every taskflow sequence are the same
--    before and after (also with a hypothetical member, and after an error);
--  * for members waiting in a chain, the next step explain reports is the
--    first thing preview shows for them;
--  * what preview shows for 6 weeks is exactly what the engine then does
--    when it is run over the same weeks at the same instants (at each of
--    its wake-ups, as the worker does; entry checks of "always" and anchor
--    chains once a day, as in the preview);
--  * member_ids, hypothetical members and bad arguments.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
DROP SCHEMA IF EXISTS preview_app, preview_other_app CASCADE;
DROP ROLE IF EXISTS preview_other;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
SET taskflow.as_of = '2027-03-31 12:00+09';

-- the member site's own table, written by a custom SQL action (use case 3)
CREATE SCHEMA preview_app;
CREATE TABLE preview_app.page_access (
	member_id	bigint NOT NULL,
	page		text NOT NULL,
	granted_at	timestamptz NOT NULL,
	PRIMARY KEY (member_id, page)
);

---------------------------------------------------------------- helpers
-- a template and an automatic (or manual) task of the same name
CREATE FUNCTION pg_temp.task(name text, subject text, criteria text DEFAULT NULL,
							 actions jsonb DEFAULT '[]', mode text DEFAULT 'auto',
							 on_mismatch text DEFAULT 'leave')
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM taskflow.create_template(name, subject, '{{name}}様' || E'\n\n' || subject,
									 sender_name => '会員サイト事務局', sender_address => 'info@example.jp');
	PERFORM taskflow.create_task(name, mode, criteria => criteria, template => name, actions => actions,
								 on_mismatch => on_mismatch);
END
$$;

-- everything a run can change, as rows
CREATE FUNCTION pg_temp.world() RETURNS TABLE (tbl text, r jsonb) LANGUAGE sql AS $$
	SELECT 'member', to_jsonb(x) FROM taskflow.member x
	UNION ALL SELECT 'chain', to_jsonb(x) FROM taskflow.chain x
	UNION ALL SELECT 'chain_member', to_jsonb(x) FROM taskflow.chain_member x
	UNION ALL SELECT 'history', to_jsonb(x) FROM taskflow.history x
	UNION ALL SELECT 'outbox', to_jsonb(x) FROM taskflow.outbox x
	UNION ALL SELECT 'event', to_jsonb(x) FROM taskflow.event x
	UNION ALL SELECT 'group_membership', to_jsonb(x) FROM taskflow.group_membership x
	UNION ALL SELECT 'chain_error', to_jsonb(x) FROM taskflow.chain_error x
	UNION ALL SELECT 'page_access', to_jsonb(x) FROM preview_app.page_access x
$$;

-- every taskflow sequence: pg_sequences.last_value and the sequence's own
-- last_value and is_called
CREATE FUNCTION pg_temp.sequences()
RETURNS TABLE (seq text, last_value bigint, seq_last_value bigint, is_called boolean)
LANGUAGE plpgsql AS $$
DECLARE
	s record;
BEGIN
	FOR s IN SELECT p.sequencename, p.last_value FROM pg_sequences p
			  WHERE p.schemaname = 'taskflow' ORDER BY p.sequencename LOOP
		seq := s.sequencename;
		last_value := s.last_value;
		EXECUTE format('SELECT last_value, is_called FROM taskflow.%I', s.sequencename)
		   INTO seq_last_value, is_called;
		RETURN NEXT;
	END LOOP;
END
$$;

-- snapshots taken before a preview, compared after it
CREATE TEMP TABLE world_before (tbl text, r jsonb);
CREATE TEMP TABLE sequences_before (seq text, last_value bigint, seq_last_value bigint, is_called boolean);
CREATE FUNCTION pg_temp.snapshot() RETURNS void LANGUAGE sql AS $$
	TRUNCATE world_before, sequences_before;
	INSERT INTO world_before SELECT * FROM pg_temp.world();
	INSERT INTO sequences_before SELECT * FROM pg_temp.sequences();
$$;
-- what changed since the snapshot: rows gone, rows new, sequences moved
CREATE FUNCTION pg_temp.changes() RETURNS TABLE (what text, tbl text, r text) LANGUAGE sql AS $$
	(SELECT 'gone', b.tbl, b.r::text FROM (SELECT * FROM world_before EXCEPT ALL SELECT * FROM pg_temp.world()) b)
	UNION ALL
	(SELECT 'new', a.tbl, a.r::text FROM (SELECT * FROM pg_temp.world() EXCEPT ALL SELECT * FROM world_before) a)
	UNION ALL
	(SELECT 'sequence', s.seq, row(s.*)::text
	   FROM (SELECT * FROM pg_temp.sequences() EXCEPT ALL SELECT * FROM sequences_before) s)
	ORDER BY 1, 2, 3
$$;

-- the engine run as the worker runs it: at from_at, then at each wake-up
-- (taskflow.next_wakeup) until to_at; returns how many runs
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

---------------------------------------------------------------- the use cases, compact
SELECT taskflow.define_property('purchased_on', 'date', NULL, '購入日');

-- 1. reminders (usecase_reminders): 7 days before the expiry; dunning when
--    no payment came for 35 days, and the all-clear once it comes
SELECT taskflow.save_criteria('期限7日前', $$has_tag(tags, '会員') AND status = 'paid' AND days_until(expires_at) BETWEEN 4 AND 7$$);
SELECT taskflow.save_criteria('入金35日なし', $$has_tag(tags, '会員') AND status = 'paid' AND NOT paid_within(member_id, '35 days')$$);
SELECT taskflow.save_criteria('入金35日以内', $$paid_within(member_id, '35 days')$$);
SELECT pg_temp.task('期限7日前のご案内', '{{name}}様、有効期限（{{expires_at}}）が近づいています', '期限7日前');
SELECT pg_temp.task('督促', '{{name}}様、月会費のお支払いのお願い', '入金35日なし', '[{"add_tag": "督促中"}]');
SELECT pg_temp.task('督促解除', '{{name}}様、お支払いを確認しました', '入金35日以内', '[{"remove_tag": "督促中"}]',
					on_mismatch => 'wait');
SELECT taskflow.create_chain('期限7日前リマインド', ARRAY['期限7日前のご案内'], schedule => 'daily at 09:00',
							 time_zone => 'Asia/Tokyo', reentry => 'rematch');
SELECT taskflow.create_chain('月額督促', ARRAY['督促', '督促解除'], ARRAY[NULL, '1 days at 09:00'],
							 schedule => 'daily at 09:00', time_zone => 'Asia/Tokyo');
-- 2. trial (usecase_trial): day 12 a mail, day 14 to the newsletter
SELECT taskflow.save_criteria('無料体験12日目', $$status = 'trial' AND days_since(joined_at) BETWEEN 12 AND 13$$);
SELECT taskflow.save_criteria('無料体験中', $$status = 'trial'$$);
SELECT pg_temp.task('体験終了前のご案内', '{{name}}様、無料体験は残り2日です', '無料体験12日目');
SELECT pg_temp.task('メルマガ移行', '{{name}}様、無料体験期間が終了しました', '無料体験中',
					'[{"set": "status", "to": "newsletter"}, {"add_tag": "体験終了"}]');
SELECT taskflow.create_chain('無料体験', ARRAY['体験終了前のご案内', 'メルマガ移行'], ARRAY[NULL, '2 days at 09:00'],
							 schedule => 'daily at 09:00', time_zone => 'Asia/Tokyo');
-- 3. drip content (usecase_drip): pages A, B, C a day apart from the day
--    after joining, each granted by a custom SQL action
SELECT taskflow.save_criteria('入会翌日', $$has_tag(tags, '動画講座') AND status = 'paid' AND days_since(joined_at) = 1$$);
SELECT pg_temp.task('動画A公開', '{{name}}様、第1回の動画を公開しました', '入会翌日',
	$$[{"sql": "INSERT INTO preview_app.page_access SELECT m, 'A', $2 FROM unnest($1) AS m"}]$$);
SELECT pg_temp.task('動画B公開', '{{name}}様、第2回の動画を公開しました', NULL,
	$$[{"sql": "INSERT INTO preview_app.page_access SELECT m, 'B', $2 FROM unnest($1) AS m"}]$$);
SELECT pg_temp.task('動画C公開', '{{name}}様、第3回の動画を公開しました', NULL,
	$$[{"sql": "INSERT INTO preview_app.page_access SELECT m, 'C', $2 FROM unnest($1) AS m"}]$$);
SELECT taskflow.create_chain('動画講座', ARRAY['動画A公開', '動画B公開', '動画C公開'],
	ARRAY[NULL, '1 days at 10:00', '1 days at 10:00'], schedule => 'daily at 10:00', time_zone => 'Asia/Tokyo');
-- 4. payment-gated content (usecase_payment_unlock): page N once month N is paid
SELECT taskflow.save_criteria('1カ月目入金済', $$has_tag(tags, '月額講座') AND paid_for_month(member_id, 1)$$);
SELECT taskflow.save_criteria('2カ月目入金済', $$paid_for_month(member_id, 2)$$);
SELECT pg_temp.task('1カ月目公開', '{{name}}様、1カ月目の講座を公開しました', '1カ月目入金済', '[{"add_tag": "1カ月目"}]');
SELECT pg_temp.task('2カ月目公開', '{{name}}様、2カ月目の講座を公開しました', '2カ月目入金済', '[{"add_tag": "2カ月目"}]',
					on_mismatch => 'wait');
SELECT taskflow.create_chain('月額コンテンツ公開', ARRAY['1カ月目公開', '2カ月目公開'], ARRAY[NULL, '1 days at 09:00'],
							 schedule => 'daily at 09:00', time_zone => 'Asia/Tokyo');
-- 5. a manual step in the middle (usecase_material): thanks 3 hours after
--    the request, then the material is posted by hand
SELECT taskflow.save_criteria('資料請求者', $$has_tag(tags, '資料請求')$$);
SELECT taskflow.create_task('資料請求受付', 'auto', criteria => '資料請求者');
SELECT pg_temp.task('登録お礼', '{{name}}様、資料請求ありがとうございます');
SELECT pg_temp.task('資料発送', '資料を発送しました', mode => 'manual');
SELECT taskflow.create_chain('資料請求フォロー', ARRAY['資料請求受付', '登録お礼', '資料発送'],
	ARRAY[NULL, '3 hours', '1 minutes'], schedule => 'always', time_zone => 'Asia/Tokyo');
-- 6. bank transfer (usecase_bank_transfer): a person confirms the payment
SELECT taskflow.define_status('awaiting_payment', '銀行振込の入金待ち');
SELECT taskflow.save_criteria('銀行振込の入金待ち', $$status = 'awaiting_payment'$$);
SELECT pg_temp.task('入金確認', '{{name}}様、ご入金を確認しました', '銀行振込の入金待ち',
					'[{"set": "status", "to": "paid"}]', mode => 'manual');
SELECT pg_temp.task('利用ガイド送付', '{{name}}様、ご利用ガイド');
SELECT taskflow.create_chain('銀行振込入会', ARRAY['入金確認', '利用ガイド送付'], ARRAY[NULL, '1 days at 10:00'],
							 schedule => 'always', time_zone => 'Asia/Tokyo');
-- 7. CScloud (seed 003): after a purchase (an anchor on a date property),
--    and a birthday every year
SELECT taskflow.save_criteria('購入者', $$has_tag(tags, 'ショップ')$$);
SELECT pg_temp.task('サンクスメッセージ', '{{name}}様、ご購入ありがとうございます', '購入者');
SELECT pg_temp.task('使い方のコツ', '{{name}}様、効果的な使い方のコツ', actions => '[{"add_tag": "使い方案内済"}]');
SELECT pg_temp.task('愛用者の声', '{{name}}様、愛用者の声');
SELECT pg_temp.task('おすすめ商品', '{{name}}様、おすすめの商品');
SELECT taskflow.create_chain('購入後フォロー', ARRAY['サンクスメッセージ', '使い方のコツ', '愛用者の声', 'おすすめ商品'],
	anchor => 'properties.purchased_on', offsets => ARRAY['immediately', '1 days at 10:00', '6 days at 10:00', '29 days at 10:00'],
	time_zone => 'Asia/Tokyo');
SELECT pg_temp.task('お誕生日おめでとう', '{{name}}様、お誕生日おめでとうございます');
SELECT taskflow.create_chain('誕生日', ARRAY['お誕生日おめでとう'], anchor => 'birthday', yearly => true,
	offsets => ARRAY['0 days at 09:00'], time_zone => 'Asia/Tokyo');
-- entry checks of "always" and anchor chains once a day, as in a preview
-- (its entry_step), so the real runs below are at the preview's instants
SELECT taskflow.alter_chain(name, entry_interval => '1 day')
  FROM taskflow.chain WHERE schedule IN ('always', 'anchor') ORDER BY chain_id;
SELECT name, schedule, daily_at, anchor, entry_interval FROM taskflow.chain ORDER BY chain_id;

-- the members: each use case has its own (tags keep them apart)
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, expires_at, birthday, tags, properties) VALUES
	('p-1', 'yamada@example.jp', '山田太郎', 'paid', '2026-04-08 10:00+09', '2027-04-08 23:59+09', NULL, '{会員}', '{}'),
	('p-2', 'tanaka@example.jp', '田中健', 'paid', '2026-12-20 10:00+09', '2027-12-19 23:59+09', NULL, '{会員}', '{}'),
	('p-3', 'kobayashi@example.jp', '小林直子', 'trial', '2027-04-01 10:00+09', NULL, NULL, '{}', '{}'),
	('p-4', 'ito@example.jp', '伊藤さくら', 'paid', '2027-04-08 15:00+09', NULL, NULL, '{動画講座}', '{}'),
	('p-5', 'watanabe@example.jp', '渡辺翔', 'paid', '2027-04-01 10:00+09', NULL, NULL, '{月額講座}', '{}'),
	('p-6', 'kato@example.jp', '加藤恵', 'paid', '2027-03-31 11:00+09', NULL, NULL, '{資料請求}', '{}'),
	('p-7', 'yoshida@example.jp', '吉田京子', 'awaiting_payment', '2027-03-31 10:00+09', NULL, NULL, '{}', '{}'),
	('p-8', 'misaki@example.jp', '三崎綾', 'paid', '2026-10-01 10:00+09', NULL, NULL, '{ショップ}', '{"purchased_on": "2027-04-05"}'),
	('p-9', 'ishida@example.jp', '石田大輔', 'paid', '2026-10-01 10:00+09', NULL, NULL, '{ショップ}', '{"purchased_on": "2027-04-20"}'),
	('p-10', 'oono@example.jp', '大野晦', 'paid', '2020-01-01 10:00+09', NULL, '1990-04-15', '{}', '{}');
-- payments: 山田 and 渡辺 pay on time; 田中's last payment was 2/20, his
-- next one arrives on 4/14 (the engine sees events when their time comes)
SELECT count(taskflow.record_payment(m.member_id, 3000, v.from_day::date, v.to_day::date, v.at::timestamptz)) AS payments
  FROM (VALUES ('p-1', '2027-03-08', '2027-04-07', '2027-03-08 10:00+09'),
			   ('p-2', '2027-02-20', '2027-03-19', '2027-02-20 10:00+09'),
			   ('p-2', '2027-03-20', '2027-04-19', '2027-04-14 18:00+09'),
			   ('p-5', '2027-04-01', '2027-04-30', '2027-04-01 10:00+09'),
			   ('p-5', '2027-05-01', '2027-05-31', '2027-04-30 20:00+09')) AS v(ext, from_day, to_day, at)
  JOIN taskflow.member m ON m.external_id = v.ext;

---------------------------------------------------------------- 3/31 - 4/10: the first days, for real
-- (the last entry check of the "always" and anchor chains is on 4/9 at
-- 12:00, so the next one is at 12:00 on 4/10, when the previews below start)
SELECT pg_temp.run_until('2027-03-31 12:00+09', '2027-04-10 11:00+09') AS runs;
SELECT h.chain_name AS chain, m.name, h.event, h.task_name AS task, to_char(h.at, 'MM-DD HH24:MI') AS at
  FROM taskflow.history h JOIN taskflow.member m USING (member_id)
 ORDER BY h.history_id;

---------------------------------------------------------------- 4/10: two more members
-- 4/10 morning: 森 buys (her purchase date is 4/12, the day the goods are
-- delivered) and 新井, born on 5/3, signs up
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, birthday, tags, properties) VALUES
	('p-11', 'mori@example.jp', '森なつみ', 'paid', '2027-04-10 09:00+09', NULL, '{ショップ}', '{"purchased_on": "2027-04-12"}'),
	('p-12', 'arai@example.jp', '新井陽子', 'paid', '2027-04-10 09:30+09', '1988-05-03', '{}', '{}');

---------------------------------------------------------------- no side effects
-- a preview of the next six weeks (kept for the checks below) changes no
-- row and no sequence; nor does one with a hypothetical member
SELECT pg_temp.snapshot();
SELECT * FROM sequences_before ORDER BY seq;
CREATE TEMP TABLE previewed AS
SELECT p.n, p.at, p.chain, p.member_id, p.member_name, p.task, p.event, p.changes, p.subject
  FROM taskflow.preview('2027-04-10 12:00+09', '2027-05-22 12:00+09') WITH ORDINALITY
	   AS p(at, chain, member_id, member_name, task, event, changes, subject, n);
SELECT * FROM pg_temp.changes();
-- a hypothetical member
SELECT count(*) FROM taskflow.preview('2027-04-10 12:00+09', '2027-06-10 12:00+09',
	hypothetical => '{"name": "見込み客", "email": "prospect@example.jp", "tags": ["ショップ", "会員"], "status": "paid",
					  "expires_at": "2027-06-30 23:59+09", "birthday": "1985-05-05", "properties": {"purchased_on": "2027-05-01"}}');
SELECT * FROM pg_temp.changes();

---------------------------------------------------------------- explain and preview agree
-- as of 4/10 12:00: for each member waiting for a step, or about to enter
-- an anchor chain, explain's task and due time are the first thing
-- preview shows for it in that chain (members waiting for their criteria
-- to match, or pending at a manual task, have no next step to compare)
SELECT m.name, e.chain, e.state, e.task, to_char(e.due_at, 'MM-DD HH24:MI') AS due_at, e.reason
  FROM taskflow.member m, LATERAL taskflow.explain(m.member_id, '2027-04-10 12:00+09') e
 WHERE e.state IN ('waiting', 'pending') OR e.task IS NOT NULL
 ORDER BY m.member_id, e.chain;
CREATE TEMP TABLE next_steps AS
SELECT DISTINCT ON (p.member_id, p.chain) p.member_id, p.chain, p.event, p.task, p.at
  FROM previewed p
 WHERE p.event IN ('entered', 'applied')
 ORDER BY p.member_id, p.chain, p.n;
SELECT m.name, e.chain, e.task AS explain_task, to_char(e.due_at, 'MM-DD HH24:MI') AS explain_due,
	   n.event AS preview_first, n.task AS preview_task, to_char(n.at, 'MM-DD HH24:MI') AS preview_at,
	   (SELECT to_char(min(p.at), 'MM-DD HH24:MI') FROM previewed p
		 WHERE p.member_id = m.member_id AND p.chain = e.chain AND p.event = 'applied' AND p.task = e.task)
	   AS preview_applied_at
  FROM taskflow.member m CROSS JOIN LATERAL taskflow.explain(m.member_id, '2027-04-10 12:00+09') e
  LEFT JOIN next_steps n ON n.member_id = m.member_id AND n.chain = e.chain
 WHERE e.task IS NOT NULL AND (e.state = 'not entered' OR e.reason LIKE 'waiting for task%')
 ORDER BY m.member_id, e.chain;
-- the same, counted: no member where they differ
SELECT count(*) AS members_checked,
	   count(*) FILTER (WHERE n.task IS DISTINCT FROM e.task
						   OR (e.state = 'waiting' AND (n.event <> 'applied' OR n.at <> e.due_at))) AS disagreements
  FROM taskflow.member m CROSS JOIN LATERAL taskflow.explain(m.member_id, '2027-04-10 12:00+09') e
  LEFT JOIN next_steps n ON n.member_id = m.member_id AND n.chain = e.chain
 WHERE e.task IS NOT NULL AND (e.state = 'not entered' OR e.reason LIKE 'waiting for task%');

---------------------------------------------------------------- the timeline
-- what the preview shows: when, who, which task, what happened, the
-- data changes and the message
SELECT to_char(at, 'MM-DD HH24:MI') AS at, chain, member_name, task, event, changes, subject
  FROM previewed ORDER BY n;

-- member_ids: only the rows of those members, the same as in the preview
-- of everyone
CREATE TEMP TABLE previewed_some AS
SELECT p.* FROM taskflow.preview('2027-04-10 12:00+09', '2027-05-22 12:00+09', member_ids => ARRAY[9, 12]::bigint[]) p;
SELECT to_char(at, 'MM-DD HH24:MI') AS at, chain, member_id, member_name, task, event, subject
  FROM previewed_some ORDER BY at, member_id;
SELECT (SELECT count(*) FROM (SELECT at, chain, member_id, task, event, changes, subject FROM previewed
							   WHERE member_id IN (9, 12)
							  EXCEPT ALL
							  SELECT at, chain, member_id, task, event, changes, subject FROM previewed_some) x)
	 + (SELECT count(*) FROM (SELECT at, chain, member_id, task, event, changes, subject FROM previewed_some
							  EXCEPT ALL
							  SELECT at, chain, member_id, task, event, changes, subject FROM previewed
							   WHERE member_id IN (9, 12)) y) AS differences;

---------------------------------------------------------------- 4/10 - 5/22 for real: the same
SELECT max(history_id) AS last_history_id FROM taskflow.history \gset
SELECT pg_temp.run_until('2027-04-10 12:00+09', '2027-05-22 12:00+09') AS runs;
CREATE TEMP TABLE happened AS
SELECT h.at, h.chain_name AS chain, h.member_id, m.name AS member_name, h.task_name AS task, h.event,
	   CASE WHEN h.event = 'applied' THEN t.actions ELSE h.detail END AS changes, o.subject
  FROM taskflow.history h
  JOIN taskflow.member m USING (member_id)
  LEFT JOIN taskflow.chain_step s ON s.step_id = h.step_id
  LEFT JOIN taskflow.task t ON t.task_id = s.task_id
  LEFT JOIN taskflow.outbox o ON h.event = 'applied' AND o.chain_id = h.chain_id AND o.member_id = h.member_id
	   AND o.step_id = h.step_id AND o.iteration = h.iteration
 WHERE h.history_id > :last_history_id;
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
-- the data changes happened for real: pages, tags, statuses
SELECT a.member_id, a.page, to_char(a.granted_at, 'MM-DD HH24:MI') AS granted_at
  FROM preview_app.page_access a ORDER BY a.member_id, a.page;
SELECT member_id, name, status, tags FROM taskflow.member ORDER BY member_id;

---------------------------------------------------------------- one chain
-- over the next year
SELECT to_char(at, 'YYYY-MM-DD HH24:MI') AS at, chain, member_name, task, event, subject
  FROM taskflow.preview('2027-05-22 12:00+09', '2028-05-22 12:00+09', '誕生日');
-- members not in any chain's way: nothing
SELECT count(*) FROM taskflow.preview('2027-05-22 12:00+09', '2027-06-05 00:00+09', member_ids => ARRAY[3, 4]::bigint[]);

---------------------------------------------------------------- a hypothetical member
-- "what would a customer who buys on 6/1 get?": member_id -1, only its
-- rows (its status is not given: the default, trial, also takes it into
-- the trial chain)
SELECT pg_temp.snapshot();
SELECT to_char(at, 'MM-DD HH24:MI') AS at, chain, member_id, member_name, task, event, changes, subject
  FROM taskflow.preview('2027-05-22 12:00+09', '2027-07-01 00:00+09',
	hypothetical => '{"name": "見込み客", "email": "prospect@example.jp", "tags": ["ショップ"],
					  "properties": {"purchased_on": "2027-06-01"}, "birthday": "1990-06-10"}');
-- a trial member joining at the start of the preview (joined_at is the
-- preview's start when not given)
SELECT to_char(at, 'MM-DD HH24:MI') AS at, chain, member_name, task, event, subject
  FROM taskflow.preview('2027-05-22 12:00+09', '2027-06-30 00:00+09', '無料体験',
	hypothetical => '{"name": "体験太郎", "status": "trial"}');
SELECT * FROM pg_temp.changes();

---------------------------------------------------------------- bad arguments
SELECT * FROM taskflow.preview(NULL, '2027-06-30 00:00+09');
SELECT * FROM taskflow.preview('2027-05-22 12:00+09', NULL);
SELECT * FROM taskflow.preview('2027-05-22 12:00+09', '2027-06-30 00:00+09', entry_step => NULL);
SELECT * FROM taskflow.preview('2027-06-30 00:00+09', '2027-05-22 12:00+09');
SELECT * FROM taskflow.preview('2027-05-22 12:00+09', '2032-06-30 00:00+09');
SELECT * FROM taskflow.preview('2027-05-22 12:00+09', '2027-06-30 00:00+09', 'ない');
SELECT * FROM taskflow.preview('2027-05-22 12:00+09', '2027-06-30 00:00+09', hypothetical => '[1, 2]');
SELECT * FROM taskflow.preview('2027-05-22 12:00+09', '2027-06-30 00:00+09', hypothetical => '{"member_id": 5}');
SELECT * FROM taskflow.preview('2027-05-22 12:00+09', '2027-06-30 00:00+09', hypothetical => '{"created_at": "2027-01-01"}');
SELECT * FROM taskflow.preview('2027-05-22 12:00+09', '2027-06-30 00:00+09', hypothetical => '{"nickname": "ヒロ"}');
SELECT * FROM taskflow.preview('2027-05-22 12:00+09', '2027-06-30 00:00+09', hypothetical => '{"status": "vip"}');
SELECT * FROM taskflow.preview('2027-05-22 12:00+09', '2027-06-30 00:00+09', hypothetical => '{"properties": {"points": 3}}');
SELECT * FROM pg_temp.changes();

---------------------------------------------------------------- another role, and a step that fails
-- an application role previews its own chains (its hypothetical member
-- too), not the others'.  Its chain's second step writes to its own table,
-- which refuses the row (a failure of the member's data): the preview
-- shows each failed try, the member set aside and tried again 10, 20, 40 …
-- minutes later, as the engine would run them (over a day and a half).
CREATE ROLE preview_other IN ROLE taskflow_app;
CREATE SCHEMA preview_other_app AUTHORIZATION preview_other;
SET ROLE preview_other;
CREATE TABLE preview_other_app.coupon (member_id bigint, code text CHECK (code <> 'B'));
SELECT taskflow.create_template('クーポンA', '{{name}}様、クーポンAです', 'A',
	sender_address => 'info@example.jp');
SELECT taskflow.create_task('クーポンA', 'auto', template => 'クーポンA',
	actions => $$[{"sql": "INSERT INTO preview_other_app.coupon SELECT m, 'A' FROM unnest($1) AS m"}]$$);
SELECT taskflow.create_task('クーポンB', 'auto',
	actions => $$[{"sql": "INSERT INTO preview_other_app.coupon SELECT m, 'B' FROM unnest($1) AS m"}]$$);
SELECT taskflow.create_chain('クーポン', ARRAY['クーポンA', 'クーポンB'], anchor => 'joined_at',
	offsets => ARRAY['immediately', '1 days at 10:00'], time_zone => 'Asia/Tokyo');
RESET ROLE;
SELECT pg_temp.snapshot();
SET ROLE preview_other;
SELECT to_char(at, 'MM-DD HH24:MI:SS') AS at, chain, member_id, member_name, task, event, changes, subject
  FROM taskflow.preview('2027-05-22 12:00+09', '2027-05-24 00:00+09',
	hypothetical => '{"name": "クーポン太郎", "email": "coupon@example.jp"}');
SELECT * FROM taskflow.preview('2027-05-22 12:00+09', '2027-06-30 00:00+09', '誕生日');
SELECT count(*) AS rows_of_other_chains FROM taskflow.preview('2027-05-22 12:00+09', '2027-06-30 00:00+09')
 WHERE chain <> 'クーポン';
RESET ROLE;
SELECT count(*) AS coupons, (SELECT paused_reason FROM taskflow.chain WHERE name = 'クーポン') AS paused
  FROM preview_other_app.coupon;
-- none of this left anything behind
SELECT * FROM pg_temp.changes();

-- the next instant a preview asks for: next_wakeup() counting only the
-- members due after its instant (the simulation's own earlier steps leave
-- index entries due before it); the worker's next_wakeup() counts them all
SELECT taskflow.next_wakeup(t) IS NOT DISTINCT FROM taskflow._next_wakeup(t, '-infinity') AS same,
       (SELECT min(due_at) FROM taskflow.chain_member WHERE state = 'waiting' AND checked_at IS NULL
                                                        AND due_at > t)
         >= taskflow._next_wakeup(t, t) AS after_only
  FROM (VALUES (timestamptz '2027-05-22 12:00+09'), ('2027-06-30 00:00+09')) v(t);

---------------------------------------------------------------- the first entry check
-- The first entry check of a range counts what the worker's would, with
-- the chain's own entry interval (here the default, 5 minutes): an anchor
-- step missed earlier today still counts, one missed yesterday does not
-- (the member enters at the next step), as explain() says; only the later
-- checks are made every entry_step.  望月's first step was due yesterday at
-- 18:00, 早川's is due today at 18:00.
SELECT pg_temp.task('更新3日前', '{{name}}様、有効期限の3日前です');
SELECT pg_temp.task('更新2日前', '{{name}}様、有効期限の2日前です');
SELECT taskflow.create_chain('更新前', ARRAY['更新3日前', '更新2日前'], anchor => 'expires_at',
	offsets => ARRAY['-3 days at 18:00', '-2 days at 18:00'], activation => 'existing',
	time_zone => 'Asia/Tokyo');
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, expires_at) VALUES
	('p-21', 'mochizuki@example.jp', '望月咲', 'paid', '2026-07-03 10:00+09', '2027-07-03 10:00+09'),
	('p-22', 'hayakawa@example.jp', '早川純', 'paid', '2026-07-04 10:00+09', '2027-07-04 10:00+09');
SELECT m.name, e.task, to_char(e.due_at, 'MM-DD HH24:MI') AS due
  FROM taskflow.member m, LATERAL taskflow.explain(m.member_id, '2027-07-01 12:00+09') e
 WHERE m.external_id IN ('p-21', 'p-22') AND e.chain = '更新前'
 ORDER BY m.member_id;
SELECT to_char(at, 'MM-DD HH24:MI') AS at, member_name, task, event
  FROM taskflow.preview('2027-07-01 12:00+09', '2027-07-03 00:00+09', '更新前',
	member_ids => (SELECT array_agg(member_id) FROM taskflow.member WHERE external_id IN ('p-21', 'p-22')))
 ORDER BY at, member_id, event;

---------------------------------------------------------------- odd states
-- a message that would be cancelled as it is queued (no e-mail address,
-- unsubscribed) is marked so, not shown as sent
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, expires_at) VALUES
	('p-23', NULL, '住所のみ', 'paid', '2026-07-04 10:00+09', '2027-07-04 10:00+09');
SELECT to_char(at, 'MM-DD HH24:MI') AS at, member_name, task, subject
  FROM taskflow.preview('2027-07-01 12:00+09', '2027-07-03 00:00+09', '更新前',
	member_ids => (SELECT array_agg(member_id) FROM taskflow.member WHERE external_id = 'p-23'))
 WHERE event = 'applied';
-- a member that does not exist is an error, as in explain()
SELECT count(*) FROM taskflow.preview('2027-07-01 12:00+09', '2027-07-03 00:00+09',
	member_ids => ARRAY[999999]::bigint[]);
-- a sequence restarted by the DBA: the preview draws from where it stands
-- (it used the start value, and showed made-up duplicate keys)
ALTER SEQUENCE taskflow.history_history_id_seq RESTART WITH 1000000;
SELECT count(*) FILTER (WHERE event = 'error') AS errors, count(*) > 0 AS rows
  FROM taskflow.preview('2027-07-01 12:00+09', '2027-07-03 00:00+09', '更新前');
SELECT nextval('taskflow.history_history_id_seq') AS next_history_id;

---------------------------------------------------------------- clean up
RESET taskflow.as_of;
DROP EXTENSION taskflow CASCADE;
DROP SCHEMA preview_app, preview_other_app CASCADE;
DROP ROLE preview_other;
