-- What is in use cannot be broken: a custom property cannot change type,
-- or be dropped, while a saved criteria, an anchor chain, a template or a
-- task's actions use it, nor lose a list value a task's action sets; the
-- error names the first user.  And a chain's time zone: the session's
-- TimeZone by default, any zone name in any letter case, always stored as
-- pg_timezone_names spells it.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
\set SHOW_CONTEXT never
SET taskflow.as_of = '2027-05-01 00:00+09';

---------------------------------------------------------------- properties in use
SELECT taskflow.define_property('renew_on', 'date', description => '更新日');
SELECT taskflow.define_property('contract_date', 'date', description => '契約日');
SELECT taskflow.define_property('rank', 'text', description => 'ランク');
SELECT taskflow.define_property('ref_code', 'text', description => '紹介コード');
SELECT taskflow.define_property('memo', 'text', description => 'メモ');
SELECT taskflow.define_property('plan', 'list', ARRAY['ブロンズ', 'シルバー', 'ゴールド'], '会員プラン');
INSERT INTO taskflow.member (external_id, email, name, status, joined_at, properties) VALUES
	('u-1', 'yamada@example.jp', '山田太郎', 'trial', '2027-04-20 10:00+09', '{"renew_on": "2027-06-01"}'),
	('u-2', 'sato@example.jp', '佐藤花子', 'paid', '2027-04-21 10:00+09', '{}');
SELECT taskflow.save_criteria('更新日3日前', $$days_until(prop_date(properties, 'renew_on')) = 3$$);
SELECT taskflow.create_template('ランク案内', '{{name}}様のランク', 'ランク: {{properties.rank|未設定}}',
	sender_address => 'info@example.jp');
SELECT taskflow.create_task('コード付与', 'auto', actions => '[{"set_property": "ref_code", "to": "ABC"}]');
SELECT taskflow.create_task('メモ消去', 'auto', actions => '[{"add_tag": "整理済"}, {"remove_property": "memo"}]');
SELECT taskflow.create_task('ゴールド化', 'auto', actions => '[{"set_property": "plan", "to": "ゴールド"}]');
SELECT taskflow.create_task('契約案内', 'auto');
SELECT taskflow.create_chain('契約日チェーン', ARRAY['契約案内'], anchor => 'properties.contract_date',
	offsets => ARRAY['immediately'], time_zone => 'Asia/Tokyo');

-- a new type, or dropping it, is refused while anything uses the property
SELECT taskflow.define_property('renew_on', 'text', description => '自由記述に変更');
SELECT taskflow.drop_property('renew_on', remove_values => true);
SELECT taskflow.define_property('contract_date', 'text');
SELECT taskflow.drop_property('contract_date');
SELECT taskflow.define_property('rank', 'number');
SELECT taskflow.drop_property('rank');
SELECT taskflow.define_property('ref_code', 'number');
SELECT taskflow.drop_property('ref_code');
SELECT taskflow.drop_property('memo');
-- a list value a task's action sets cannot go
SELECT taskflow.define_property('plan', 'list', ARRAY['ブロンズ', 'シルバー', 'プラチナ']);
-- a new description, list values added, the same type: fine
SELECT taskflow.define_property('rank', 'text', description => 'ランク（自由記述）');
SELECT taskflow.define_property('plan', 'list', ARRAY['ブロンズ', 'シルバー', 'ゴールド', 'プラチナ'], '会員プラン');
-- once nothing uses it any more, the change goes through
SELECT taskflow.drop_task('メモ消去');
SELECT taskflow.drop_property('memo');
SELECT taskflow.alter_template('ランク案内', body_text => 'いつもご利用ありがとうございます。');
SELECT taskflow.define_property('rank', 'number');
SELECT name, type, allowed_values FROM taskflow.custom_property ORDER BY name;

---------------------------------------------------------------- a chain's time zone
SELECT taskflow.create_task('案内', 'auto');
-- the session's TimeZone, as SHOW TimeZone says it
SET TimeZone = 'asia/tokyo';
SHOW TimeZone;
SELECT taskflow.create_chain('既定の時間帯', ARRAY['案内']);
SELECT time_zone FROM taskflow.chain WHERE name = '既定の時間帯';
SET TimeZone = 'America/New_York';
SELECT taskflow.create_chain('ニューヨーク既定', ARRAY['案内']);
SET TimeZone = 'Asia/Tokyo';
-- a name in any letter case
SELECT taskflow.create_chain('小文字の時間帯', ARRAY['案内'], time_zone => 'europe/london');
SELECT taskflow.create_chain('大文字の時間帯', ARRAY['案内'], time_zone => 'ASIA/SEOUL');
SELECT taskflow.alter_chain('既定の時間帯', time_zone => 'asia/SINGAPORE');
-- an abbreviation or offset is no zone name: refused, the default saying so
SELECT taskflow.create_chain('略号の時間帯', ARRAY['案内'], time_zone => 'JST');
SET TimeZone = 'JST-9';
SELECT taskflow.create_chain('略号の時間帯', ARRAY['案内']);
SELECT taskflow.create_chain('略号の時間帯', ARRAY['案内'], time_zone => 'Asia/Tokyo');
SET TimeZone = 'Asia/Tokyo';
SELECT name, time_zone FROM taskflow.chain ORDER BY chain_id;
