-- bench/sql/b2_fixture.sql — benchmark 2 (entry evaluation): an "always"
-- chain whose first task's criteria ("expires in exactly 7 days", 1% of the
-- members of members.sql as of :'t0') enters members and tags them; its
-- second step waits three days.
SET taskflow.as_of = :'t1';
SELECT taskflow.save_criteria('b2:期限7日前', 'days_until(expires_at) = 7');
SELECT taskflow.create_task('b2:期限案内', 'auto', criteria => 'b2:期限7日前',
	actions => '[{"add_tag": "期限案内"}]');
SELECT taskflow.create_task('b2:フォロー', 'auto');
SELECT taskflow.create_chain('b2', tasks => ARRAY['b2:期限案内', 'b2:フォロー'],
	waits => ARRAY[NULL, '3 days at 10:00'], time_zone => 'Asia/Tokyo');
