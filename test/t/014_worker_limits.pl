# 014_worker_limits.pl — more databases than the workers can serve.
#
# What a DBA sees when taskflow.max_workers or max_worker_processes is used
# up: one clear warning per episode in the server log (not one per retry),
# the databases that have a scheduler keep working, and the one left out
# gets its scheduler as soon as a slot is free again.

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

# a slot is freed: the next database in line gets its scheduler at once
$node->safe_psql('postgres', 'DROP DATABASE school');
ok(defined TaskflowTest::wait_for($node, 'postgres',
		"SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler'",
		seconds => 10),
	'after DROP DATABASE of a served database, another one gets the free slot');
ok(defined TaskflowTest::wait_for($node, 'postgres', running('shop'), seconds => 2),
	'the first database kept its scheduler all along');
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
$node->stop;

done_testing();
