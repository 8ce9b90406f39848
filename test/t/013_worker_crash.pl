# 013_worker_crash.pl — a scheduler killed with SIGKILL in the middle of a
# large batch: the postmaster restarts every process, the killed run's
# transaction is rolled back as a whole, and after recovery the worker
# applies the step again, so every due member has exactly one "applied"
# history row and one outbox row.  Another database's scheduler comes back
# too.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use TaskflowTest;

# One batch for all members (taskflow.batch_size), so the run is long
# enough to be caught in the middle; PostgreSQL::Test::Cluster turns
# restart_after_crash off, a production server has it on.  No delivery
# workers (tested in 020-022).
my $n = 100_000;
my $node = TaskflowTest::new_node('crash', workers => 1, conf => <<'CONF');
taskflow.safety_interval = '1h'
taskflow.entry_interval = '1d'
taskflow.batch_size = 1000000
restart_after_crash = on
taskflow.delivery_workers = 0
CONF

# applied_is(task, n): a query: was the task applied n times?
sub applied_is
{
	my ($task, $n) = @_;
	return "SELECT count(*) = $n FROM taskflow.history WHERE event = 'applied'"
	  . " AND task_name = '$task'";
}

# A small database with its own chain: two members wait for a payment
# reminder an hour after they joined.
TaskflowTest::create_database($node, 'app');
$node->safe_psql('app', <<'SQL');
INSERT INTO taskflow.member (external_id, email, name, status) VALUES
	('c-1', 'yamada@example.jp', '山田太郎', 'trial'),
	('c-2', 'sato@example.jp', '佐藤花子', 'trial');
SELECT taskflow.create_template('支払い案内', '{{name}}様、お支払いのご案内',
	E'{{name}}様\n\nお支払い方法のご案内です。',
	sender_name => '事務局', sender_address => 'info@example.jp');
SELECT taskflow.create_task('登録', 'auto');
SELECT taskflow.create_task('支払い案内', 'auto', template => '支払い案内');
SELECT taskflow.create_chain('支払いフォロー', tasks => ARRAY['登録', '支払い案内'],
	waits => ARRAY[NULL, '1 hours'], time_zone => 'Asia/Tokyo');
SQL
ok(defined TaskflowTest::wait_for($node, 'app', applied_is('登録', 2), seconds => 5),
	'app: the members entered the chain');
my $launcher = TaskflowTest::launcher_pid($node);

# The large database: the members are loaded the way a migration would
# (replica mode: no per-row triggers; the rows are valid).
TaskflowTest::create_database($node, 'bulk');
my $t0 = Time::HiRes::time();
$node->safe_psql('bulk', <<"SQL");
SET session_replication_role = replica;
INSERT INTO taskflow.member (external_id, email, name, status)
SELECT 'b-' || g, 'member' || g || '\@example.jp', '会員' || g, 'paid'
  FROM generate_series(1, $n) AS g;
SQL
note(sprintf('%d members loaded in %.1fs', $n, Time::HiRes::time() - $t0));

# A new "always" chain: all members are due at once for its first task, a
# mail, in one batch (taskflow.batch_size is larger).  Kill the scheduler
# once its run has been going for half a second (it takes several seconds):
# it has written rows (a transaction id) and not committed.
my $created = $node->safe_psql('bulk', <<'SQL');
SELECT clock_timestamp();
SELECT taskflow.create_template('一斉案内メール', '{{name}}様へのご案内',
	E'{{name}}様\n\n新しいお知らせがあります。',
	sender_name => '事務局', sender_address => 'info@example.jp');
SELECT taskflow.create_task('一斉案内', 'auto', template => '一斉案内メール');
SELECT taskflow.create_chain('一斉案内', tasks => ARRAY['一斉案内'], time_zone => 'Asia/Tokyo');
SQL
($created) = split /\n/, $created;
my ($pid, $xid);
my $log;
my $deadline = Time::HiRes::time() + 10;
while (Time::HiRes::time() < $deadline)
{
	($pid, $xid) = split /\|/, $node->safe_psql('postgres', <<"SQL");
SELECT pid || '|' || backend_xid FROM pg_stat_activity
 WHERE backend_type = 'taskflow scheduler' AND datname = 'bulk'
   AND state = 'active' AND query = 'taskflow: running due work'
   AND backend_xid IS NOT NULL AND xact_start > '$created'
   AND clock_timestamp() - xact_start > interval '0.5 seconds'
SQL
	last if $pid;
	Time::HiRes::usleep(10_000);
}
ok($pid, 'the scheduler is in the middle of the run (active for 0.5 s, with a transaction id)');
my $log_offset = -s $node->logfile;
kill 'KILL', $pid if $pid;
$t0 = Time::HiRes::time();
note("killed scheduler $pid during transaction $xid");
$deadline = Time::HiRes::time() + 30;
Time::HiRes::usleep(50_000)
  while slurp_file($node->logfile, $log_offset) !~ /reinitializing/
  && Time::HiRes::time() < $deadline;
$log = slurp_file($node->logfile, $log_offset);
like($log, qr/taskflow scheduler.*\(PID $pid\) was terminated by signal 9/,
	'the server log shows the scheduler killed');
like($log, qr/all server processes terminated; reinitializing/,
	'and the postmaster restarting everything');
ok(defined TaskflowTest::wait_for($node, 'bulk', 'SELECT 1', expected => '1', seconds => 30),
	'the server is back after the crash');
ok(defined TaskflowTest::wait_for($node, 'bulk',
	applied_is('一斉案内', $n), seconds => 90),
	'after recovery the worker enters every member and applies the task');
note(sprintf('crash, recovery and the full run took %.1fs', Time::HiRes::time() - $t0));
is($node->safe_psql('bulk', "SELECT pg_xact_status('$xid'::xid8)"), 'aborted',
	'the killed run\'s transaction was rolled back as a whole');
is($node->safe_psql('bulk', <<'SQL'),
SELECT count(*) FILTER (WHERE event = 'entered')
	   || ' ' || count(*) FILTER (WHERE event = 'applied')
	   || ' ' || (SELECT count(*) FROM taskflow.outbox)
	   || ' ' || (SELECT count(*) FROM taskflow.chain_member WHERE state = 'done')
  FROM taskflow.history
SQL
	"$n $n $n $n", "history (entered, applied), outbox and member states: $n each");
is($node->safe_psql('bulk', <<'SQL'),
SELECT (SELECT count(*) FROM (SELECT FROM taskflow.history WHERE event = 'applied'
							  GROUP BY chain_id, member_id, iteration, step_id
							  HAVING count(*) > 1) d)
	   || ' ' || (SELECT count(*) FROM (SELECT FROM taskflow.outbox
										GROUP BY chain_id, member_id, iteration, step_id
										HAVING count(*) > 1) d)
	   || ' ' || (SELECT count(*) FROM taskflow.member m
				   WHERE NOT EXISTS (SELECT FROM taskflow.outbox o
									  WHERE o.member_id = m.member_id))
SQL
	'0 0 0', 'no member has a step applied twice or two mails, none has none');
isnt(TaskflowTest::launcher_pid($node), $launcher, 'a new launcher runs');
ok(defined TaskflowTest::wait_for($node, 'app',
	"SELECT state = 'running' FROM taskflow.worker_status WHERE database = 'app'",
	seconds => 10),
	'app\'s scheduler is back as well');
$node->safe_psql('app', <<'SQL');
UPDATE taskflow.chain_member SET due_at = clock_timestamp() WHERE state = 'waiting';
SQL
ok(defined TaskflowTest::wait_for($node, 'app',
	"SELECT count(*) = 2 FROM taskflow.outbox WHERE subject LIKE '%お支払いのご案内'",
	seconds => 5),
	'and applies its due work');

$node->stop;
done_testing();
