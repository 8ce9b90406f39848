-- bench/sql/b7_fixture.sql — benchmark 7 (preview): five chains over the
-- members of members.sql, made as of :'t1', each member getting a few
-- steps a year from each:
--   b7:期限リマインド  daily 09:00, expiry in 7 days (once a member)
--   b7:新規フォロー    always, trial members: welcome, 3 days later, 7 days later
--   b7:期限前          anchored on expires_at: 3 days before, the day after
--   b7:月刊            daily 10:00 for everyone, repeating every 30 days
--   b7:休眠            daily 09:00, 100 days after joining (once a member)
SET taskflow.as_of = :'t1';
SELECT taskflow.create_template('b7:案内', '{{name}}様、ご案内',
	E'{{name}}様\n\nいつもご利用ありがとうございます。',
	sender_name => '会員事務局', sender_address => 'info@example.jp');
SELECT taskflow.save_criteria('b7:期限7日前', 'days_until(expires_at) = 7');
SELECT taskflow.save_criteria('b7:体験中', $$status = 'trial'$$);
SELECT taskflow.save_criteria('b7:入会100日', 'days_since(joined_at) = 100');
SELECT taskflow.create_task('b7:期限案内', 'auto', criteria => 'b7:期限7日前',
	template => 'b7:案内', actions => '[{"add_tag": "期限案内済"}]');
SELECT taskflow.create_task('b7:ようこそ', 'auto', criteria => 'b7:体験中', template => 'b7:案内');
SELECT taskflow.create_task('b7:使い方', 'auto', template => 'b7:案内');
SELECT taskflow.create_task('b7:本会員案内', 'auto', template => 'b7:案内',
	actions => '[{"set": "status", "to": "paid"}]');
SELECT taskflow.create_task('b7:期限3日前', 'auto', template => 'b7:案内');
SELECT taskflow.create_task('b7:期限翌日', 'auto', template => 'b7:案内',
	actions => '[{"add_tag": "期限切れ"}]');
SELECT taskflow.create_task('b7:月刊号', 'auto', template => 'b7:案内');
SELECT taskflow.create_task('b7:休眠案内', 'auto', criteria => 'b7:入会100日',
	template => 'b7:案内', actions => '[{"add_tag": "休眠"}]');
SELECT taskflow.create_chain('b7:期限リマインド', tasks => ARRAY['b7:期限案内'],
	schedule => 'daily at 09:00', time_zone => 'Asia/Tokyo');
SELECT taskflow.create_chain('b7:新規フォロー', tasks => ARRAY['b7:ようこそ', 'b7:使い方', 'b7:本会員案内'],
	waits => ARRAY[NULL, '3 days at 10:00', '7 days at 10:00'], time_zone => 'Asia/Tokyo');
SELECT taskflow.create_chain('b7:期限前', tasks => ARRAY['b7:期限3日前', 'b7:期限翌日'],
	anchor => 'expires_at', offsets => ARRAY['-3 days at 09:00', '1 days at 09:00'],
	activation => 'existing', time_zone => 'Asia/Tokyo');
SELECT taskflow.create_chain('b7:月刊', tasks => ARRAY['b7:月刊号'],
	schedule => 'daily at 10:00', repeat => true, repeat_wait => '30 days at 10:00',
	time_zone => 'Asia/Tokyo');
SELECT taskflow.create_chain('b7:休眠', tasks => ARRAY['b7:休眠案内'],
	schedule => 'daily at 09:00', time_zone => 'Asia/Tokyo');
