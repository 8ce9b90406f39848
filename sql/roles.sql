-- Roles that own taskflow objects.  DROP ROLE of a role owning criteria,
-- templates, tasks or chains in this database is refused, saying which
-- (PostgreSQL does not see the owner columns as dependencies); REASSIGN
-- OWNED BY gives them to the new role, and the chain then runs as it.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS taskflow CASCADE;
DROP ROLE IF EXISTS roles_shop;
DROP ROLE IF EXISTS roles_shop2;
DROP ROLE IF EXISTS roles_many;
RESET client_min_messages;
CREATE EXTENSION taskflow;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never
SET taskflow.as_of = '2026-05-01 09:00+09';

INSERT INTO taskflow.member (external_id, email, name, status) VALUES
	('r-1', 'nakamura@example.jp', '中村陽子', 'trial'),
	('r-2', 'yoshida@example.jp', '吉田健', 'paid');

CREATE ROLE roles_shop IN ROLE taskflow_app;
CREATE ROLE roles_shop2 IN ROLE taskflow_app;
SET ROLE roles_shop;
SELECT taskflow.save_criteria('体験中', $$status = 'trial'$$);
SELECT taskflow.create_template('体験案内', '{{name}}様 体験のご案内', '体験期間中です。',
	sender_name => 'ショップ', sender_address => 'shop@example.jp');
SELECT taskflow.create_task('体験案内送信', 'auto', criteria => '体験中', template => '体験案内',
	actions => '[{"add_tag": "案内済"}]');
SELECT taskflow.create_chain('体験フォロー', ARRAY['体験案内送信'], time_zone => 'Asia/Tokyo');
RESET ROLE;

-- refused, naming what it owns; nothing changed
DROP ROLE roles_shop;
DROP ROLE IF EXISTS roles_shop, roles_nobody;
SELECT rolname FROM pg_roles WHERE rolname = 'roles_shop';
-- a role that owns nothing here is dropped as usual
CREATE ROLE roles_plain;
DROP ROLE roles_plain;

-- many objects: ten named, the rest counted
CREATE ROLE roles_many IN ROLE taskflow_app;
SET ROLE roles_many;
SELECT count(taskflow.save_criteria('条件' || g, 'true')) FROM generate_series(1, 12) AS g;
RESET ROLE;
DROP ROLE roles_many;

-- REASSIGN OWNED BY: every taskflow object goes to the new owner
REASSIGN OWNED BY roles_shop, roles_many TO roles_shop2;
SELECT 'chain' AS kind, name, owner FROM taskflow.chain
UNION ALL SELECT 'task', name, owner FROM taskflow.task
UNION ALL SELECT 'template', name, owner FROM taskflow.template
UNION ALL SELECT 'criteria', name, owner FROM taskflow.criteria WHERE name !~ '^条件'
UNION ALL SELECT 'criteria', count(*)::text, min(owner::text)::regrole FROM taskflow.criteria WHERE name ~ '^条件'
ORDER BY 1, 2;
DROP ROLE roles_shop;
DROP ROLE roles_many;
-- the chain runs as its new owner, who now also sees and changes it
SELECT * FROM taskflow.run('2026-05-01 10:00+09');
SELECT m.name, h.task_name, h.event FROM taskflow.history h JOIN taskflow.member m USING (member_id)
 WHERE h.event = 'applied' ORDER BY m.name;
SET ROLE roles_shop2;
SELECT name FROM taskflow.chain;
SELECT taskflow.alter_chain('体験フォロー', description => '引き継ぎ済み');
RESET ROLE;

-- without taskflow installed, DROP ROLE is not looked at
DROP EXTENSION taskflow CASCADE;
CREATE ROLE roles_plain;
DROP ROLE roles_plain;
REASSIGN OWNED BY roles_shop2 TO CURRENT_USER;
DROP ROLE roles_shop2;
