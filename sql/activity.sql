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
