# 011_worker_faults.pl — the background worker under a DBA's hands and when
# things go wrong: settings changed with a reload (taskflow.enabled,
# taskflow.databases), a scheduler or the launcher terminated, chains
# whose owner lacks a privilege, was dropped or may no longer log in, and a
# batch cancelled by taskflow.chain_statement_timeout.  (A scheduler killed
# with SIGKILL: 013_worker_crash.pl.)

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use TaskflowTest;

# Long safety and entry intervals: what happens within seconds was done on
# time or on change.  No delivery workers (tested in 020-022): their writes
# would wake the scheduler too.
my $node = TaskflowTest::new_node('faults', workers => 1, conf => <<'CONF');
taskflow.safety_interval = '1h'
taskflow.entry_interval = '1d'
taskflow.delivery_workers = 0
CONF

# ---- helpers ---------------------------------------------------------------

# reload(setting => value, ...): ALTER SYSTEM (undef: RESET) and reload, then
# wait until a new session sees the values: the postmaster has re-read the
# file and signalled the workers.
sub reload
{
	my (%set) = @_;
	my ($sql, $check) = ('', 'SELECT true');
	for my $name (sort keys %set)
	{
		my $value = $set{$name};
		$sql .= defined $value
		  ? "ALTER SYSTEM SET $name = '$value';\n"
		  : "ALTER SYSTEM RESET $name;\n";
		# a reset setting is back at its boot value (compared in base units)
		$check .= defined $value
		  ? " AND current_setting('$name') = '$value'"
		  : " AND (SELECT setting = boot_val FROM pg_settings WHERE name = '$name')";
	}
	$node->safe_psql('postgres', $sql . 'SELECT pg_reload_conf();');
	TaskflowTest::wait_for($node, 'postgres', $check, seconds => 5)
	  // die "the reload of $sql was not seen";
	return;
}

# status(db, column): one column of db's row of taskflow.worker_status.
sub status
{
	my ($db, $column) = @_;
	return $node->safe_psql('app',
		"SELECT $column FROM taskflow.worker_status WHERE database = '$db'");
}

# make_due(db, chain): the chain's waiting members are due now (a superuser
# moves their due time; the change wakes the scheduler).
sub make_due
{
	my ($db, $chain) = @_;
	$node->safe_psql($db, <<"SQL");
UPDATE taskflow.chain_member SET due_at = clock_timestamp()
 WHERE state = 'waiting'
   AND chain_id = (SELECT chain_id FROM taskflow.chain WHERE name = '$chain')
SQL
	return;
}

# applied_is(task, n): a query: was the task applied n times?
sub applied_is
{
	my ($task, $n) = @_;
	return "SELECT count(*) = $n FROM taskflow.history WHERE event = 'applied'"
	  . " AND task_name = '$task'";
}

# two_step_chain(db, chain, role): a chain of two auto tasks, the second one
# an hour after the first (tags, and a mail at the second), created by role
# (a superuser when undef).
sub two_step_chain
{
	my ($db, $chain, $role) = @_;
	my $set_role = $role ? "SET ROLE $role;" : '';
	$node->safe_psql($db, <<"SQL");
$set_role
SELECT taskflow.create_template('$chain:案内', '{{name}}様へのご案内',
	E'{{name}}様\\n\\n新しいお知らせがあります。',
	sender_name => '事務局', sender_address => 'info\@example.jp');
SELECT taskflow.create_task('$chain:1', 'auto', actions => '[{"add_tag": "$chain"}]');
SELECT taskflow.create_task('$chain:2', 'auto', template => '$chain:案内');
SELECT taskflow.create_chain('$chain', tasks => ARRAY['$chain:1', '$chain:2'],
	waits => ARRAY[NULL, '1 hours'], time_zone => 'Asia/Tokyo');
SQL
	return;
}

TaskflowTest::create_database($node, 'app');
$node->safe_psql('app', <<'SQL');
INSERT INTO taskflow.member (external_id, email, name, status) VALUES
	('f-1', 'yamada@example.jp', '山田太郎', 'paid'),
	('f-2', 'sato@example.jp', '佐藤花子', 'paid'),
	('f-3', 'suzuki@example.jp', '鈴木一郎', 'trial');
SQL
ok(defined TaskflowTest::wait_for($node, 'app',
	"SELECT state = 'running' FROM taskflow.worker_status WHERE database = 'app'",
	seconds => 5), 'app\'s scheduler runs');
two_step_chain('app', '定期案内');
ok(defined TaskflowTest::wait_for($node, 'app',
	applied_is('定期案内:1', 3), seconds => 5),
	'the chain\'s first task is applied to the three members');

# ---- 1. taskflow.enabled off and on, with a reload --------------------------

reload('taskflow.enabled' => 'off');
my $runs = status('app', 'runs');
make_due('app', '定期案内');
ok(TaskflowTest::holds($node, 'app', applied_is('定期案内:2', 0),
		seconds => 3),
	'taskflow.enabled = off: a due step is not applied (watched for 3 s)');
is(status('app', 'runs'), $runs, 'worker_status: no run while disabled');
is(status('app', 'state'), 'disabled', 'the scheduler itself stays (asleep), shown as disabled');
reload('taskflow.enabled' => undef);
my $took = TaskflowTest::wait_for($node, 'app',
	applied_is('定期案内:2', 3), seconds => 5);
ok(defined $took, 'taskflow.enabled back on: the due step is applied');
note(sprintf('applied %.2fs after the reload', $took // -1));

# ---- 2. taskflow.databases with a reload ------------------------------------

TaskflowTest::create_database($node, 'other');
ok(defined TaskflowTest::wait_for($node, 'app',
	"SELECT state = 'running' FROM taskflow.worker_status WHERE database = 'other'",
	seconds => 5), 'a second database gets its scheduler');
my $app_pid = TaskflowTest::scheduler_pid($node, 'app');
reload('taskflow.databases' => 'app');
ok(defined TaskflowTest::wait_for($node, 'postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler'"
	  . " AND datname = 'other'", seconds => 5),
	'taskflow.databases = app: other\'s scheduler stops');
two_step_chain('other', '別DBの案内');
$node->safe_psql('other', <<'SQL');
INSERT INTO taskflow.member (external_id, email, name, status) VALUES
	('o-1', 'takahashi@example.jp', '高橋美咲', 'paid');
SQL
ok(TaskflowTest::holds($node, 'other', applied_is('別DBの案内:1', 0),
		seconds => 2),
	'other is not served: nothing is applied there');
is(TaskflowTest::scheduler_pid($node, 'app'), $app_pid, 'app\'s scheduler is untouched');
reload('taskflow.databases' => undef);
ok(defined TaskflowTest::wait_for($node, 'other',
	applied_is('別DBの案内:1', 1), seconds => 5),
	'taskflow.databases back to *: other is served again and its work done');

# ---- 3. a scheduler, then the launcher, terminated --------------------------

my $old_pid = TaskflowTest::scheduler_pid($node, 'app');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($old_pid)");
$took = TaskflowTest::wait_for($node, 'postgres',
	"SELECT string_agg(pid::text, ',') NOT IN ('$old_pid') FROM pg_stat_activity"
	  . " WHERE backend_type = 'taskflow scheduler' AND datname = 'app'",
	seconds => 10);
ok(defined $took, 'pg_terminate_backend on app\'s scheduler: a new one starts');
note(sprintf('new scheduler %.2fs after pg_terminate_backend', $took // -1));
my $new_pid = TaskflowTest::scheduler_pid($node, 'app');
like($new_pid, qr/^\d+$/, 'exactly one scheduler in app');
two_step_chain('app', '再起動後の案内');
ok(defined TaskflowTest::wait_for($node, 'app',
	applied_is('再起動後の案内:1', 3), seconds => 5),
	'the new scheduler does the work');

my $launcher = TaskflowTest::launcher_pid($node);
$node->safe_psql('postgres', "SELECT pg_terminate_backend($launcher)");
ok(defined TaskflowTest::wait_for($node, 'postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'taskflow launcher'"
	  . " AND pid <> $launcher", seconds => 10),
	'pg_terminate_backend on the launcher: it is restarted');
ok(TaskflowTest::holds($node, 'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler'"
		  . " AND datname = 'app'", seconds => 2),
	'the new launcher does not start a second scheduler for app');
is(TaskflowTest::scheduler_pid($node, 'app'), $new_pid, 'app keeps its scheduler');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($new_pid)");
ok(defined TaskflowTest::wait_for($node, 'postgres',
	"SELECT string_agg(pid::text, ',') NOT IN ('$new_pid') FROM pg_stat_activity"
	  . " WHERE backend_type = 'taskflow scheduler' AND datname = 'app'",
	seconds => 10),
	'a scheduler terminated after the launcher\'s restart is restarted too');

# ---- 4. privileges and owners -----------------------------------------------

my $log_offset = -s $node->logfile;
$node->safe_psql('app', <<'SQL');
CREATE SCHEMA shop;
CREATE TABLE shop.purchase_log (member_id bigint, note text, at timestamptz);
CREATE ROLE tf011_shop LOGIN IN ROLE taskflow_app;
CREATE ROLE tf011_news LOGIN IN ROLE taskflow_app;
CREATE ROLE tf011_temp LOGIN IN ROLE taskflow_app;
CREATE ROLE tf011_lock LOGIN IN ROLE taskflow_app;
GRANT USAGE ON SCHEMA shop TO tf011_shop;
GRANT INSERT ON shop.purchase_log TO tf011_shop;
SET ROLE tf011_shop;
SELECT taskflow.create_task('購入記録', 'auto',
	actions => $$[{"sql": "INSERT INTO shop.purchase_log SELECT m, '購入記録', $2 FROM unnest($1) AS m"}]$$);
SQL
# The task was checked while the role could write the table; then the DBA
# takes the privilege away.
$node->safe_psql('app', <<'SQL');
REVOKE INSERT ON shop.purchase_log FROM tf011_shop;
SET ROLE tf011_shop;
SELECT taskflow.create_chain('購入者連携', tasks => ARRAY['購入記録'], pause_after_failures => 2);
SQL
my $errors = <<'SQL';
SELECT count(*) FROM taskflow.chain_error e JOIN taskflow.chain c USING (chain_id)
 WHERE c.name = '購入者連携'
SQL
ok(defined TaskflowTest::wait_for($node, 'app', "SELECT ($errors) = 1", seconds => 5),
	'a chain whose action lacks a privilege: the worker records the error');
is($node->safe_psql('app', <<'SQL'),
SELECT e.sqlstate || ' ' || e.message || ' / ' || c.last_error
  FROM taskflow.chain_error e JOIN taskflow.chain c USING (chain_id)
 WHERE c.name = '購入者連携'
SQL
	'42501 permission denied for table purchase_log / permission denied for table purchase_log',
	'taskflow.chain_error and chain.last_error: permission denied');
ok(TaskflowTest::holds($node, 'app', "SELECT ($errors) = 1", seconds => 2),
	'the failed chain is not retried at once (no busy loop)');

# Another role's chain in the same database goes on meanwhile.
two_step_chain('app', 'ニュース', 'tf011_news');
ok(defined TaskflowTest::wait_for($node, 'app', applied_is('ニュース:1', 3), seconds => 5),
	'another role\'s new chain in the same database is applied');
make_due('app', 'ニュース');
ok(defined TaskflowTest::wait_for($node, 'app', applied_is('ニュース:2', 3), seconds => 5),
	'and its due step and mails too');

# It is retried (at the latest 10 s after it failed; any wake-up of the
# scheduler runs every chain, as the ones above did) and fails again: it is
# paused (pause_after_failures 2).
ok(defined TaskflowTest::wait_for($node, 'app',
	"SELECT paused_reason IS NOT NULL FROM taskflow.chain WHERE name = '購入者連携'",
	seconds => 12),
	'the failing chain is retried, and paused after its second failure');
is($node->safe_psql('app',
	"SELECT paused_reason FROM taskflow.chain WHERE name = '購入者連携'"),
	'paused after 2 consecutive failures; last: permission denied for table purchase_log',
	'chain.paused_reason says why');
my $spread = $node->safe_psql('app', <<'SQL');
SELECT round(extract(epoch FROM max(e.at) - min(e.at)), 3)
  FROM taskflow.chain_error e JOIN taskflow.chain c USING (chain_id)
 WHERE c.name = '購入者連携'
SQL
note("the two failing runs were ${spread}s apart");
cmp_ok($spread, '>=', 2, 'the retry did not come at once');
is($node->safe_psql('app', $errors), '2', 'two errors recorded in all');
is($node->safe_psql('app', 'SELECT count(*) FROM shop.purchase_log'), '0',
	'nothing was written to the table');
is($node->safe_psql('app', <<'SQL'),
SELECT count(*) FROM taskflow.history h JOIN taskflow.chain c USING (chain_id)
 WHERE c.name = '購入者連携'
SQL
	'0', 'no history for the failed chain: every failed batch was rolled back');

# The privilege comes back; enable_chain resumes the chain.
$node->safe_psql('app', <<'SQL');
GRANT INSERT ON shop.purchase_log TO tf011_shop;
SET ROLE tf011_shop;
SELECT taskflow.enable_chain('購入者連携');
SQL
ok(defined TaskflowTest::wait_for($node, 'app',
	'SELECT count(*) = 3 FROM shop.purchase_log', seconds => 5),
	'after GRANT and enable_chain the worker applies the chain');

# Chains whose owner is dropped, or may no longer log in.
my $sched_pid = TaskflowTest::scheduler_pid($node, 'app');
my $started = status('app', 'started_at');
two_step_chain('app', '一時チェーン', 'tf011_temp');
two_step_chain('app', 'ロック', 'tf011_lock');
ok(defined TaskflowTest::wait_for($node, 'app',
	"SELECT count(*) = 6 FROM taskflow.history WHERE event = 'applied'"
	  . " AND task_name IN ('一時チェーン:1', 'ロック:1')", seconds => 5),
	'the chains of tf011_temp and tf011_lock run');
my $temp_oid = $node->safe_psql('app', "SELECT oid FROM pg_roles WHERE rolname = 'tf011_temp'");
# (DROP ROLE in 'app' is refused while it owns taskflow objects there: the
# role is dropped from another database)
$node->safe_psql('app', <<'SQL');
DROP OWNED BY tf011_temp;
ALTER ROLE tf011_lock NOLOGIN;
SQL
$node->safe_psql('postgres', 'DROP ROLE tf011_temp');
make_due('app', '一時チェーン');
make_due('app', 'ロック');
ok(defined TaskflowTest::wait_for($node, 'app',
	"SELECT count(*) = 2 FROM taskflow.chain WHERE name IN ('一時チェーン', 'ロック')"
	  . ' AND paused_reason IS NOT NULL', seconds => 5),
	'both chains are paused when their step falls due');
is($node->safe_psql('app',
	"SELECT string_agg(name || ': ' || paused_reason, E'\\n' ORDER BY name) FROM taskflow.chain"
	  . " WHERE name IN ('一時チェーン', 'ロック')"),
	"ロック: the owner role \"tf011_lock\" of chain \"ロック\" may no longer log in\n"
	  . "一時チェーン: the owner role (OID $temp_oid) of chain \"一時チェーン\" no longer exists",
	'the reasons name the owner and what is wrong');
is($node->safe_psql('app',
	"SELECT count(*) FROM taskflow.history WHERE event = 'applied'"
	  . " AND task_name IN ('一時チェーン:2', 'ロック:2')"),
	'0', 'neither chain applied its step');
is(TaskflowTest::scheduler_pid($node, 'app'), $sched_pid,
	'the scheduler did not restart');
is(status('app', 'started_at'), $started, 'worker_status: the same start, no restarts');
ok(TaskflowTest::holds($node, 'app',
		"SELECT count(*) = 2 FROM taskflow.chain WHERE name IN ('一時チェーン', 'ロック')"
		  . " AND paused_at IS NOT NULL AND last_error = paused_reason", seconds => 1),
	'the chains stay paused');
two_step_chain('app', '後続');
ok(defined TaskflowTest::wait_for($node, 'app',
	applied_is('後続:1', 3), seconds => 5),
	'the worker goes on with the other chains');

# ---- 5. taskflow.chain_statement_timeout --------------------------------------

# A custom statement that would take 2 s per member is cancelled after
# 300 ms; the error is the chain's, the scheduler goes on.
reload('taskflow.chain_statement_timeout' => '300ms');
$node->safe_psql('app', <<'SQL');
SELECT taskflow.create_task('遅い処理', 'auto',
	actions => $$[{"sql": "SELECT pg_sleep(2) FROM unnest($1)"}]$$);
SELECT taskflow.create_chain('遅いチェーン', tasks => ARRAY['遅い処理'], pause_after_failures => 1);
SQL
ok(defined TaskflowTest::wait_for($node, 'app',
	"SELECT paused_reason IS NOT NULL FROM taskflow.chain WHERE name = '遅いチェーン'",
	seconds => 5),
	'a batch running past taskflow.chain_statement_timeout fails its chain');
is($node->safe_psql('app', <<'SQL'),
SELECT e.sqlstate || ' ' || e.message || ' ' || (e.at - c.created_at < interval '2 seconds')
  FROM taskflow.chain_error e JOIN taskflow.chain c USING (chain_id)
 WHERE c.name = '遅いチェーン'
SQL
	'57014 canceling statement due to statement timeout true',
	'chain_error: cancelled by the timeout, well before the 6 s it would have taken');
two_step_chain('app', 'タイムアウト後');
ok(defined TaskflowTest::wait_for($node, 'app', applied_is('タイムアウト後:1', 3), seconds => 5),
	'the scheduler goes on with other chains');
reload('taskflow.chain_statement_timeout' => undef);

my $log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/terminated by signal|PANIC|"taskflow (?:scheduler|launcher)" \(PID \d+\) exited/,
	'the server log shows no crash and no scheduler exit');
is(TaskflowTest::scheduler_pid($node, 'app'), $sched_pid, 'and app\'s scheduler is the same process');

$node->stop;
done_testing();
