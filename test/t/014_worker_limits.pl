# 014_worker_limits.pl — more databases than the workers can serve.
#
# What a DBA sees when taskflow.max_workers or max_worker_processes is used
# up: one clear warning per episode in the server log (not one per retry),
# worker_status shows the databases left out as waiting for a worker slot
# and says why, the databases that have a scheduler keep working, and the
# one left out gets its scheduler as soon as a slot is free again — a
# served database dropped, or taken out of taskflow.databases.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

# count(node, regex): how many lines of the server log match.
sub count_log
{
	my ($node, $re) = @_;
	my @lines = grep { /$re/ } split /\n/, slurp_file($node->logfile);
	return scalar @lines;
}

sub running
{
	my ($db) = @_;
	return "SELECT count(*) = 1 FROM pg_stat_activity"
	  . " WHERE backend_type = 'taskflow scheduler' AND datname = '$db'";
}

# ---- 1. taskflow.max_workers used up -------------------------------------------

my $node = TaskflowTest::new_node('limits', workers => 1, conf => <<'CONF');
taskflow.max_workers = 2
taskflow.delivery_workers = 0
taskflow.safety_interval = '1h'
CONF
# databases without taskflow (postgres too) take no slot from those with it
$node->safe_psql('postgres', "CREATE DATABASE $_") for qw(plain1 plain2 plain3);
ok(defined TaskflowTest::wait_for($node, 'postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler'",
		seconds => 10),
	'three databases without taskflow: no scheduler stays');
TaskflowTest::create_database($node, $_) for qw(shop school);
ok(defined TaskflowTest::wait_for($node, 'postgres', running('shop'), seconds => 10)
	  && defined TaskflowTest::wait_for($node, 'postgres', running('school'), seconds => 10),
	'two databases with taskflow, two schedulers (taskflow.max_workers = 2), however many databases have none');
is(count_log($node, qr/gets no scheduler/), 0, 'and no warning');
TaskflowTest::create_database($node, 'clinic');
# more rescans: each CREATE DATABASE and CREATE EXTENSION wakes the launcher
TaskflowTest::create_database($node, $_) for qw(spare1 spare2);
ok(TaskflowTest::holds($node, 'postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler'"
		  . " AND datname IN ('clinic', 'spare1', 'spare2')", seconds => 2),
	'a third database gets no scheduler');
my $warned = qr/taskflow: database "\w+" gets no scheduler: all 2 of taskflow.max_workers are in use/;
is(count_log($node, $warned), 1, 'the server log says so once, for all the rescans');
like(slurp_file($node->logfile), qr/HINT:  Raise taskflow.max_workers/, 'with a hint');
is($node->safe_psql('shop', <<'SQL'),
SELECT string_agg(database || '|' || state || '|' || (pid IS NULL), ', ' ORDER BY database)
  FROM taskflow.worker_status WHERE database IN ('clinic', 'spare1', 'spare2')
SQL
	'clinic|waiting for a worker slot|true, spare1|waiting for a worker slot|true, spare2|waiting for a worker slot|true',
	'worker_status: the databases left out are waiting for a worker slot');
like($node->safe_psql('shop',
		"SELECT last_error FROM taskflow.worker_status WHERE database = 'clinic'"),
	qr/^all 2 of taskflow.max_workers are in use: raise taskflow.max_workers/,
	'and last_error says why');

# a slot is freed: the next database in line gets its scheduler at once
$node->safe_psql('postgres', 'DROP DATABASE school');
ok(defined TaskflowTest::wait_for($node, 'postgres',
		"SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler'",
		seconds => 10),
	'after DROP DATABASE of a served database, another one gets the free slot');
ok(defined TaskflowTest::wait_for($node, 'postgres', running('shop'), seconds => 2),
	'the first database kept its scheduler all along');

# a served database taken out of taskflow.databases gives its slot to a
# database left out, as the warning's hint says
my ($got_slot, @left_out) = split /\n/, $node->safe_psql('postgres', <<'SQL');
SELECT d.datname FROM pg_database d
 WHERE d.datname IN ('clinic', 'spare1', 'spare2')
 ORDER BY (SELECT count(*) FROM pg_stat_activity a
			WHERE a.backend_type = 'taskflow scheduler' AND a.datname = d.datname) DESC,
		  d.datname
SQL
ok(defined TaskflowTest::wait_for($node, 'postgres', running($got_slot), seconds => 2),
	"$got_slot has the freed slot, @left_out wait");
$node->safe_psql('postgres',
	"ALTER SYSTEM SET taskflow.databases = 'shop, $left_out[0]'; SELECT pg_reload_conf()");
my $took_slot = TaskflowTest::wait_for($node, 'postgres', running($left_out[0]), seconds => 10);
ok(defined $took_slot,
	"$got_slot taken out of taskflow.databases: its slot goes to $left_out[0], which was waiting");
note(sprintf('%s served %.2fs after the reload', $left_out[0], $took_slot // -1));
ok(defined TaskflowTest::wait_for($node, 'postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler'"
		  . " AND datname IN ('$got_slot', '$left_out[1]')", seconds => 5),
	'the database taken out has no scheduler, nor has the one never listed');
ok(defined TaskflowTest::wait_for($node, 'shop',
		"SELECT string_agg(database || '|' || state, ', ' ORDER BY database <> 'shop', database)"
		  . " FROM taskflow.worker_status",
		expected => "shop|running, $left_out[0]|running", seconds => 5),
	'worker_status: only the two listed databases, running; no row for those not listed');
ok(TaskflowTest::holds($node, 'postgres', running('shop'), seconds => 1),
	'shop kept its scheduler');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET taskflow.databases; SELECT pg_reload_conf()');
$node->stop;

# ---- 2. max_worker_processes used up --------------------------------------------

# the logical replication launcher, taskflow's launcher and two schedulers
# fill max_worker_processes = 4
$node->append_conf('postgresql.conf', "taskflow.max_workers = 8\nmax_worker_processes = 4\n");
$node->start;
ok(defined TaskflowTest::wait_for($node, 'postgres',
		"SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler'",
		seconds => 10),
	'max_worker_processes = 4: room for two schedulers');
sleep(12);    # two retries, 5 seconds apart
# worker_status says which databases with taskflow are left out, and why
my $tf_dbs = "('shop', 'clinic', 'spare1', 'spare2')";
ok(defined TaskflowTest::wait_for($node, 'shop', <<"SQL", seconds => 15),
SELECT count(*) = 2
   AND bool_and(state = 'waiting for a worker slot' AND pid IS NULL
				AND last_error LIKE 'no background worker slot is free (raise max_worker_processes)%')
   AND bool_and(database NOT IN (SELECT datname FROM pg_stat_activity
								  WHERE backend_type = 'taskflow scheduler'))
  FROM taskflow.worker_status
 WHERE database IN $tf_dbs AND state <> 'running'
SQL
	'worker_status: the two databases without a scheduler are waiting for a worker slot, and last_error says why');
my $log = slurp_file($node->logfile);
my %warnings;
$warnings{$1}++ while $log =~ /could not start a scheduler for database "(\w+)": no background worker slot is free/g;
ok(%warnings && !grep({ $_ > 1 } values %warnings),
	'each database left out is warned about once, not at every retry ('
	  . join(', ', map { "$_: $warnings{$_}" } sort keys %warnings) . ')');
like($log, qr/HINT:  Raise max_worker_processes/, 'with a hint');

# free a worker: the database left out gets its scheduler within a retry
my $served = $node->safe_psql('postgres',
	"SELECT datname FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler' ORDER BY datname LIMIT 1");
$node->safe_psql('postgres', "DROP DATABASE $served");
ok(defined TaskflowTest::wait_for($node, 'postgres',
		"SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler'",
		seconds => 15),
	'after a scheduler\'s database is dropped, a database left out gets one within a retry');
like(slurp_file($node->logfile), qr/taskflow: started the scheduler for database "\w+"/,
	'and the log says the scheduler was started after all');

# ---- 3. no slot left for delivery workers ------------------------------------------

# the two schedulers fill max_worker_processes: delivery workers cannot start
my $with_scheduler = $node->safe_psql('postgres',
	"SELECT datname FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler' ORDER BY datname LIMIT 1");
$node->safe_psql('postgres', 'ALTER SYSTEM SET taskflow.delivery_workers = 1; SELECT pg_reload_conf()');
ok(defined TaskflowTest::wait_for($node, $with_scheduler, <<"SQL", seconds => 15),
SELECT count(*) = 1 AND bool_and(state = 'waiting for a worker slot' AND pid IS NULL
								 AND last_error LIKE 'could not be started: no background worker slot is free%')
  FROM taskflow.delivery_status
SQL
	'delivery_status: the delivery worker that cannot start is waiting for a worker slot, and says why');
sleep(11);    # two retries, 5 seconds apart
my %delivery_warnings;
my $log_now = slurp_file($node->logfile);
$delivery_warnings{$1}++ while $log_now =~ /could not start delivery worker 1 for database "(\w+)"/g;
ok(%delivery_warnings && !grep({ $_ > 1 } values %delivery_warnings),
	'each delivery worker that cannot start is warned about once, not every 5 seconds ('
	  . join(', ', map { "$_: $delivery_warnings{$_}" } sort keys %delivery_warnings) . ')');
$node->stop;

done_testing();
