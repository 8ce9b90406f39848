-- A member's activity: timeline events and automation history in one list.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
SET taskflow.as_of = '2026-04-01 09:00+09';

INSERT INTO taskflow.member (external_id, email, name, status, joined_at)
VALUES ('a-1', 'yamada@example.jp', '山田太郎', 'trial', '2026-04-01 08:00+09');
SELECT taskflow.record_event(1, 'form', '{"form": "資料請求"}', '2026-04-01 08:05+09') > 0 AS recorded;
SELECT taskflow.save_criteria('体験中', 'status = ''trial''') > 0 AS saved;
SELECT taskflow.create_task('体験タグ', mode => 'auto', criteria => '体験中',
	actions => '[{"add_tag": "体験中"}]') > 0 AS created;
SELECT taskflow.create_task('体験フォロー', mode => 'manual', assignee => '営業') > 0 AS created;
SELECT taskflow.create_chain('体験', tasks => ARRAY['体験タグ', '体験フォロー'],
	waits => ARRAY[NULL, '1 days at 10:00'], time_zone => 'Asia/Tokyo') > 0 AS created;
SELECT chain, entered, applied, pending FROM taskflow.run('2026-04-01 09:00+09');
SELECT chain, entered, applied, pending FROM taskflow.run('2026-04-02 10:00+09');
SELECT taskflow.add_note(1, '電話で説明済み', '2026-04-02 11:00+09') > 0 AS noted;

-- newest first: the memo, the manual step pending, the tag the automation
-- added (as a timeline event), the task applied, the entry, the form
SELECT at, kind, detail, actor, source FROM taskflow.activity(1);
SELECT count(*) AS rows_for_unknown_member FROM taskflow.activity(999);

-- The actor of an event (its recorded_by) is the role that wrote it.  An
-- operator or the application cannot write another name there, by INSERT,
-- COPY or UPDATE: their own role's name is written instead.  record_event()
-- and add_note() run as their caller, so they record the caller.
CREATE ROLE activity_staff IN ROLE taskflow_operator;
CREATE ROLE activity_shop IN ROLE taskflow_app;
INSERT INTO taskflow.member (external_id, email, name, status, joined_at)
VALUES ('a-2', NULL, '佐藤花子', 'trial', '2026-04-03 08:00+09');
SET ROLE activity_staff;
INSERT INTO taskflow.event (member_id, kind, detail, recorded_by, occurred_at)
VALUES (2, 'note', '{"text": "返金対応済み"}', 'activity_shop', '2026-04-03 09:00+09');
INSERT INTO taskflow.event (member_id, kind, detail, recorded_by, occurred_at)
VALUES (2, 'mail_opened', '{"outbox_id": 2}', 'relay-1', '2026-04-03 09:05+09');
COPY taskflow.event (member_id, kind, occurred_at, detail, recorded_by) FROM stdin;
2	note	2026-04-03 09:10:00+09	{"text": "COPYで記録"}	taskflow
\.
SELECT taskflow.add_note(2, '折り返し電話', '2026-04-03 09:15+09') > 0 AS noted;
RESET ROLE;
SET ROLE activity_shop;
UPDATE taskflow.event SET recorded_by = 'taskflow' WHERE detail ->> 'text' = 'COPYで記録';
SELECT taskflow.record_event(2, 'form', '{"form": "資料請求"}', '2026-04-03 09:20+09') > 0 AS recorded;
-- the engine runs the application's chain: taskflow's own bookkeeping
-- (a mail cancelled for want of an address) keeps its name, the chain's
-- tag action runs as the chain's owner
SELECT taskflow.save_criteria('住所なし体験', 'status = ''trial'' AND email IS NULL') > 0 AS saved;
SELECT taskflow.create_template('ようこそ', '【会員サイト】ようこそ', 'ご登録ありがとうございます。',
	sender_address => 'info@example.jp') > 0 AS created;
SELECT taskflow.create_task('歓迎', mode => 'auto', criteria => '住所なし体験', template => 'ようこそ',
	actions => '[{"add_tag": "歓迎済み"}]') > 0 AS created;
SELECT taskflow.create_chain('歓迎', tasks => ARRAY['歓迎'], time_zone => 'Asia/Tokyo') > 0 AS created;
SELECT chain, entered, applied FROM taskflow.run('2026-04-03 10:00+09', '歓迎');
RESET ROLE;
-- a superuser (like taskflow's own code, which runs as the extension
-- owner) writes the name it gives: here a delivery worker's
INSERT INTO taskflow.event (member_id, kind, detail, recorded_by, occurred_at)
VALUES (2, 'mail_opened', '{"outbox_id": 1}', 'relay-1', '2026-04-03 11:00+09');
SELECT at, kind, detail, actor, source FROM taskflow.activity(2) WHERE source = 'event' ORDER BY at, kind;
REASSIGN OWNED BY activity_shop TO CURRENT_USER;
DROP ROLE activity_staff, activity_shop;
