# 050_upgrade.pl — updating taskflow from its first released version.
#
# A DBA installs the new binaries, restarts, and runs ALTER EXTENSION
# taskflow UPDATE in each database.  What must hold:
#
#  1. an updated database has exactly the objects a fresh install has: every
#     function's definition, every table's columns in order, constraints,
#     indexes, triggers, privileges, comments, what pg_dump dumps
#     (test/lib/catalog_of_taskflow.sql lists them all);
#  2. the data made with the old version (members, chains in progress,
#     history, messages) is untouched by the update, and the engine goes on
#     from where it was: every member gets each step exactly once, the
#     steps due before the update are not repeated, those due after follow;
#  3. the new library works with a database still at the old version until
#     it is updated (the workers too), and against a version it does not
#     know, the engine refuses with a hint and the workers wait, saying why
#     in worker_status, until ALTER EXTENSION taskflow UPDATE wakes them.

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $first = '0.1';    # the first released version
my $catalog_sql = slurp_file(
	File::Spec->catfile(dirname(__FILE__), '..', 'lib', 'catalog_of_taskflow.sql'));

# ---- 1. the update path, and the catalog after it ---------------------------

my $node = TaskflowTest::new_node('upgrade');
my $current = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'taskflow'");
isnt($current, $first, "the current version ($current) is not the first release");
like($node->safe_psql('postgres',
		"SELECT string_agg(path, ', ') FROM pg_extension_update_paths('taskflow')"
		  . " WHERE source = '$first' AND target = '$current'"),
	qr/^\Q$first\E--/, "an update path leads from $first to $current");

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION taskflow');
$node->safe_psql('postgres', 'CREATE DATABASE updated');
$node->safe_psql('updated', "CREATE EXTENSION taskflow VERSION '$first'");
is($node->safe_psql('updated', "SELECT extversion FROM pg_extension WHERE extname = 'taskflow'"),
	$first, "CREATE EXTENSION taskflow VERSION '$first' installs the old version");

# ---- 2. fill the old version, as an application would ----------------------

# A follow-up chain run by the engine at explicit instants: a welcome at
# once (a tag and a mail), a follow-up three days later at 10:00, a last
# mail a week after that.  Three members join before the update, one after.
$node->safe_psql('updated', <<'SQL');
SET taskflow.as_of = '2026-04-01 09:00+09';
INSERT INTO taskflow.member (external_id, email, name, status, joined_at) VALUES
	('u-1', 'yamada@example.jp', '山田太郎', 'trial', '2026-04-01 08:00+09'),
	('u-2', 'sato@example.jp', '佐藤花子', 'trial', '2026-04-01 08:10+09'),
	('u-3', 'suzuki@example.jp', '鈴木一郎', 'paid', '2026-04-01 08:20+09');
SELECT taskflow.save_criteria('体験・有料会員', $$status IN ('trial', 'paid')$$);
-- read by containment: the 0.1 library recorded no property for these and
-- saved the typo (this library is newer: its records are put back as 0.1's)
SELECT taskflow.define_property('plan', 'list', ARRAY['ブロンズ', 'ゴールド'], '会員プラン');
SELECT taskflow.save_criteria('ゴールド会員', $$properties @> '{"plan": "ゴールド"}'$$);
UPDATE taskflow.criteria SET properties = '{}' WHERE name = 'ゴールド会員';
INSERT INTO taskflow.criteria (name, expression, normalized, owner)
VALUES ('綴り違い', $$properties @> '{"plann": "ゴールド"}'$$,
		$$(properties @> '{"plann": "ゴールド"}'::jsonb)$$, current_user::regrole);
SELECT taskflow.create_template('ようこそ', '{{name}}様、ご入会ありがとうございます',
	E'{{name}}様\n\nご登録ありがとうございます。', sender_name => '会員事務局',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('その後', '{{name}}様、その後いかがですか',
	E'{{name}}様\n\nご不明な点はお気軽にお問い合わせください。', sender_name => '会員事務局',
	sender_address => 'info@example.jp');
SELECT taskflow.create_template('一週間後', '{{name}}様、ご利用一週間のご案内',
	E'{{name}}様\n\n便利な使い方をご紹介します。', sender_name => '会員事務局',
	sender_address => 'info@example.jp');
SELECT taskflow.create_task('歓迎', 'auto', criteria => '体験・有料会員', template => 'ようこそ',
	actions => '[{"add_tag": "歓迎済"}]');
SELECT taskflow.create_task('フォロー', 'auto', template => 'その後',
	actions => '[{"add_tag": "フォロー済"}]');
SELECT taskflow.create_task('一週間', 'auto', template => '一週間後');
SELECT taskflow.create_chain('入会フォロー', tasks => ARRAY['歓迎', 'フォロー', '一週間'],
	waits => ARRAY[NULL, '3 days at 10:00', '7 days at 10:00'], time_zone => 'Asia/Tokyo');
SQL
$node->safe_psql('updated', <<'SQL');
SELECT count(*) FROM taskflow.run('2026-04-01 09:00+09');
SELECT count(*) FROM taskflow.run('2026-04-04 10:00+09');
SQL

# what the application sees; compared before and after the update
my $state_sql = <<'SQL';
SELECT string_agg(line, E'\n' ORDER BY line) FROM (
  SELECT 'member ' || m.name || ' ' || m.status || ' ' || array_to_string(m.tags, ',') AS line
    FROM taskflow.member m
  UNION ALL
  SELECT 'history ' || m.name || ' ' || h.event || ' ' || coalesce(h.task_name, '') || ' '
		 || to_char(h.at AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD HH24:MI')
    FROM taskflow.history h JOIN taskflow.member m USING (member_id)
  UNION ALL
  SELECT 'outbox ' || o.recipient || ' ' || o.subject || ' ' || o.state
    FROM taskflow.outbox o
  UNION ALL
  SELECT 'state ' || m.name || ' ' || cm.state || ' step ' || coalesce((SELECT s.position FROM taskflow.chain_step s WHERE s.step_id = cm.step_id), 0) || ' due '
		 || coalesce(to_char(cm.due_at AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD HH24:MI'), '-')
    FROM taskflow.chain_member cm JOIN taskflow.member m USING (member_id)
) AS l
SQL
my $before = $node->safe_psql('updated', $state_sql);
like($before, qr/history 山田太郎 applied フォロー 2026-04-04 10:00/,
	"the old version's engine ran the first two steps");

# ---- 3. update --------------------------------------------------------------

my ($rc, $out, $err) = $node->psql('updated', 'ALTER EXTENSION taskflow UPDATE');
is($rc, 0, "ALTER EXTENSION taskflow UPDATE succeeds") or diag($err);
is($node->safe_psql('updated',
		"SELECT string_agg(name || ' ' || properties::text, ', ' ORDER BY criteria_id) FROM taskflow.criteria"),
	'体験・有料会員 {}, ゴールド会員 {plan}, 綴り違い {}',
	'the update records the properties 0.1 criteria read by containment');
like($err, qr/WARNING:  criteria "綴り違い": unknown property "plann"/,
	'and names, in a warning, a saved criteria that 0.2 would refuse');
my (undef, undef, $drop_err) = $node->psql('updated', "SELECT taskflow.drop_property('plan')");
like($drop_err, qr/property "plan" is used by criteria "ゴールド会員"/,
	'so the property can no longer be dropped under it');
is($node->safe_psql('updated', "SELECT extversion FROM pg_extension WHERE extname = 'taskflow'"),
	$current, "the database is now at $current");

my @fresh = split /\n/, $node->safe_psql('fresh', $catalog_sql);
my @updated = split /\n/, $node->safe_psql('updated', $catalog_sql);
cmp_ok(scalar(@fresh), '>', 500, 'the catalog listing covers the whole extension (' . scalar(@fresh) . ' lines)');
my %in_fresh = map { $_ => 1 } @fresh;
my %in_updated = map { $_ => 1 } @updated;
my @missing = grep { !$in_updated{$_} } @fresh;
my @extra = grep { !$in_fresh{$_} } @updated;
diag("in a fresh install but not after the update:\n" . join("\n", @missing[0 .. ($#missing < 9 ? $#missing : 9)]))
  if @missing;
diag("after the update but not in a fresh install:\n" . join("\n", @extra[0 .. ($#extra < 9 ? $#extra : 9)]))
  if @extra;
ok(!@missing && !@extra, 'the updated database has exactly the objects of a fresh install');
is_deeply(\@updated, \@fresh, 'and in the same order (columns included)');

is($node->safe_psql('updated', $state_sql), $before,
	'the update leaves members, history, messages and chain states as they were');

# ---- 4. the engine goes on ------------------------------------------------

$node->safe_psql('updated', <<'SQL');
SET taskflow.as_of = '2026-04-05 12:00+09';
INSERT INTO taskflow.member (external_id, email, name, status, joined_at)
VALUES ('u-4', 'takahashi@example.jp', '高橋美咲', 'trial', '2026-04-05 12:00+09');
SQL
$node->safe_psql('updated', <<'SQL');
SELECT count(*) FROM taskflow.run('2026-04-04 10:00+09');
SELECT count(*) FROM taskflow.run('2026-04-05 12:00+09');
SELECT count(*) FROM taskflow.run('2026-04-08 10:00+09');
SELECT count(*) FROM taskflow.run('2026-04-11 10:00+09');
SELECT count(*) FROM taskflow.run('2026-04-15 10:00+09');
SQL
is($node->safe_psql('updated', <<'SQL'),
SELECT string_agg(m.name || ' ' || h.task_name || ' '
				  || to_char(h.at AT TIME ZONE 'Asia/Tokyo', 'MM-DD HH24:MI'), E'\n'
				  ORDER BY m.member_id, h.at)
  FROM taskflow.history h JOIN taskflow.member m USING (member_id)
 WHERE h.event = 'applied'
SQL
	join("\n",
		'山田太郎 歓迎 04-01 09:00',
		'山田太郎 フォロー 04-04 10:00',
		'山田太郎 一週間 04-11 10:00',
		'佐藤花子 歓迎 04-01 09:00',
		'佐藤花子 フォロー 04-04 10:00',
		'佐藤花子 一週間 04-11 10:00',
		'鈴木一郎 歓迎 04-01 09:00',
		'鈴木一郎 フォロー 04-04 10:00',
		'鈴木一郎 一週間 04-11 10:00',
		'高橋美咲 歓迎 04-05 12:00',
		'高橋美咲 フォロー 04-08 10:00',
		'高橋美咲 一週間 04-15 10:00'),
	'after the update every member gets each step once: none repeated, none skipped');
is($node->safe_psql('updated',
		"SELECT count(*) || ' ' || count(DISTINCT (member_id, subject)) FROM taskflow.outbox"),
	'12 12', 'twelve messages in the outbox, none twice');
like($node->safe_psql('updated',
		"SELECT string_agg(subject, ',') FROM taskflow.outbox WHERE recipient = 'takahashi\@example.jp'"),
	qr/高橋美咲様、ご入会ありがとうございます/, 'Japanese subjects rendered after the update');
like($node->safe_psql('updated',
		"SELECT count(*) FROM taskflow.preview('2026-04-15 10:00+09', '2026-05-15 10:00+09')"),
	qr/^\d+$/, 'preview runs on the updated database');

$node->stop;

# ---- 5. the workers: an old version, an unknown one, the update ------------

# entry checks every second: a new member enters as soon as the scheduler
# may run
my $wnode = TaskflowTest::new_node('upgrade_workers', workers => 1, conf => <<'CONF');
taskflow.safety_interval = '1h'
taskflow.entry_interval = '1s'
taskflow.delivery_workers = 1
CONF
$wnode->safe_psql('postgres', 'CREATE DATABASE app');
$wnode->safe_psql('app', "CREATE EXTENSION taskflow VERSION '$first'");
$wnode->safe_psql('app', <<'SQL');
SELECT taskflow.create_task('歓迎タグ', 'auto', actions => '[{"add_tag": "歓迎済"}]');
SELECT taskflow.create_chain('新規会員', tasks => ARRAY['歓迎タグ']);
INSERT INTO taskflow.member (external_id, email, name, status)
VALUES ('w-1', 'ito@example.jp', '伊藤健太', 'trial');
SQL
ok(defined TaskflowTest::wait_for($wnode, 'app',
		"SELECT '歓迎済' = ANY (tags) FROM taskflow.member WHERE external_id = 'w-1'", seconds => 10),
	"the scheduler runs a database still at $first with the new library");

# A version this library does not know (as after installing older binaries
# than a database was updated to): set by hand in the catalog.
$wnode->safe_psql('app', "UPDATE pg_extension SET extversion = '0.0' WHERE extname = 'taskflow'");
$wnode->safe_psql('app', <<'SQL');
INSERT INTO taskflow.member (external_id, email, name, status)
VALUES ('w-2', 'watanabe@example.jp', '渡辺直美', 'trial');
SQL
ok(defined TaskflowTest::wait_for($wnode, 'app',
		"SELECT last_error LIKE 'taskflow 0.0 is installed here but the library is version $current: waiting for ALTER EXTENSION taskflow UPDATE'"
		  . " FROM taskflow.worker_status WHERE database = 'app'", seconds => 10),
	'worker_status says the scheduler waits for the update');
ok(TaskflowTest::holds($wnode, 'app',
		"SELECT NOT '歓迎済' = ANY (tags) FROM taskflow.member WHERE external_id = 'w-2'", seconds => 2),
	'and it runs nothing meanwhile');
ok(defined TaskflowTest::wait_for($wnode, 'app',
		"SELECT bool_or(last_error LIKE 'taskflow 0.0 is installed here%') FROM taskflow.delivery_status",
		seconds => 10),
	'delivery_status says the delivery worker waits too');
($rc, $out, $err) = $wnode->psql('app', "SELECT count(*) FROM taskflow.run()");
like($err, qr/taskflow 0\.0 is installed in this database, but the taskflow library loaded is version \Q$current\E/,
	'taskflow.run() refuses');
like($err, qr/HINT:  Run ALTER EXTENSION taskflow UPDATE/, 'with a hint to update');
($rc, $out, $err) = $wnode->psql('app', "SELECT taskflow.save_criteria('有料', \$\$status = 'paid'\$\$)");
like($err, qr/taskflow 0\.0 is installed in this database/, 'so does every API function');
like(slurp_file($wnode->logfile), qr/taskflow scheduler: taskflow 0\.0 is installed here but the library is version/,
	'the server log says it once');

# Back to the old version, then the real update: the workers go on at once
# (the update wakes them; the safety interval is an hour).
$wnode->safe_psql('app', "UPDATE pg_extension SET extversion = '$first' WHERE extname = 'taskflow'");
$wnode->safe_psql('app', 'ALTER EXTENSION taskflow UPDATE');
ok(defined TaskflowTest::wait_for($wnode, 'app',
		"SELECT '歓迎済' = ANY (tags) FROM taskflow.member WHERE external_id = 'w-2'", seconds => 5),
	'ALTER EXTENSION taskflow UPDATE wakes the scheduler, which applies the waiting step');
is($wnode->safe_psql('app',
		"SELECT count(*) FROM taskflow.history WHERE event = 'applied' AND task_name = '歓迎タグ'"),
	'2', 'each member got the step once');
my @catalog_app = split /\n/, $wnode->safe_psql('app', $catalog_sql);
is_deeply(\@catalog_app, \@fresh, 'this database too has exactly the objects of a fresh install');
$wnode->stop;

done_testing();
