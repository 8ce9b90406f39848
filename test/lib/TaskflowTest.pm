# TaskflowTest.pm — small helpers shared by taskflow's TAP tests.
#
#	use TaskflowTest;
#	my $node = TaskflowTest::new_node('main');   # started, taskflow preloaded
#	TaskflowTest::create_database($node, 'app'); # + CREATE EXTENSION taskflow
#	my ($rc, $out, $err) = TaskflowTest::run_cmd([...]);
#
# Background worker tests (taskflow's launcher and schedulers running):
#	my $node = TaskflowTest::new_node('w', workers => 1);
#	my $secs = TaskflowTest::wait_for($node, 'app', 'SELECT ...', seconds => 5);
#	ok(TaskflowTest::holds($node, 'app', 'SELECT ...', seconds => 3));
#	my $pid  = TaskflowTest::scheduler_pid($node, 'app');
#
# The Makefile puts test/lib on prove's include path (PROVE_FLAGS).

package TaskflowTest;

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use IPC::Run;
use Time::HiRes ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# test/taskflow.conf: the settings every test instance uses (the same file
# pg_regress and the isolation tester get with --temp-config).
our $CONF = File::Spec->catfile(dirname(__FILE__), '..', 'taskflow.conf');

# Watchdog: a hung test fails on its own instead of waiting for the runner's
# timeout.  Each psql call is bounded as well (PG_TEST_TIMEOUT_DEFAULT).
my $watchdog = $ENV{TASKFLOW_TEST_TIMEOUT} || 300;
$SIG{ALRM} = sub { die "test still running after ${watchdog}s, stopped\n" };
alarm($watchdog);

# new_node(name, conf => "extra settings\n"): a started instance, UTF-8
# and C locale (so sorting and Japanese text are the same everywhere), with
# test/taskflow.conf and any extra settings appended.
#
# workers => 1: the background workers serve every database where taskflow
# is installed (test/taskflow.conf's "taskflow.databases = ''", which keeps
# them out of pg_regress, is left out).  allows_streaming => 1: the node can
# be backed up and streamed from (PostgreSQL::Test::Cluster's init option).
sub new_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	my $conf = slurp_file($CONF);

	$conf =~ s/^\s*taskflow\.databases\s*=.*\n//mg if $opts{workers};
	$node->init(
		extra => [ '--encoding=UTF8', '--locale=C' ],
		$opts{allows_streaming} ? (allows_streaming => 1) : ());
	$node->append_conf('postgresql.conf', $conf);
	$node->append_conf('postgresql.conf', $opts{conf}) if $opts{conf};
	$node->start;
	return $node;
}

# create_database(node, dbname): a new database with taskflow installed.
sub create_database
{
	my ($node, $dbname) = @_;

	$node->safe_psql('postgres', qq{CREATE DATABASE "$dbname"});
	$node->safe_psql($dbname, 'CREATE EXTENSION taskflow');
	return;
}

# has_function(node, dbname, signature): true when the function exists, so
# a test can cover a part of the API only once it has landed.
sub has_function
{
	my ($node, $dbname, $signature) = @_;

	return $node->safe_psql($dbname,
		"SELECT to_regprocedure('$signature') IS NOT NULL") eq 't';
}

# run_cmd([argv]): runs a program; returns (exit status, stdout, stderr).
sub run_cmd
{
	my ($cmd) = @_;
	my ($out, $err) = ('', '');

	IPC::Run::run($cmd, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return ($? >> 8, $out, $err);
}

# wait_for(node, dbname, query, seconds => 10, expected => 't'): runs the
# query every 20 ms until it returns expected or the seconds have passed.
# Returns the seconds it took (a fraction), or undef after a timeout (the
# last output is shown with diag).  A bounded poll, for the worker's effects.
sub wait_for
{
	my ($node, $dbname, $query, %opts) = @_;
	my $seconds = $opts{seconds} // 10;
	my $expected = $opts{expected} // 't';
	my $start = Time::HiRes::time();
	my ($out, $err) = ('', '');

	while (1)
	{
		($out, $err) = ('', '');
		IPC::Run::run(
			[
				$node->installed_command('psql'), '-XAtq',
				'-d', $node->connstr($dbname),
				'-c', $query
			],
			'>', \$out, '2>', \$err,
			IPC::Run::timeout($seconds + 5));
		chomp $out;
		my $elapsed = Time::HiRes::time() - $start;
		return $elapsed if $out eq $expected && $err eq '';
		last if $elapsed > $seconds;
		Time::HiRes::usleep(20_000);
	}
	diag("wait_for: no \"$expected\" after ${seconds}s from:\n$query\n"
		  . "last output: $out\nstderr: $err");
	return undef;
}

# holds(node, dbname, query, seconds => 3): true when the query returns 't'
# at every poll (every 20 ms) for that many seconds: for what the worker
# must NOT do (a negative can only be watched for a while).
sub holds
{
	my ($node, $dbname, $query, %opts) = @_;
	my $seconds = $opts{seconds} // 3;
	my $start = Time::HiRes::time();

	while (Time::HiRes::time() - $start < $seconds)
	{
		my $out = $node->safe_psql($dbname, $query);
		if ($out ne 't')
		{
			diag("holds: after "
				  . sprintf('%.2f', Time::HiRes::time() - $start)
				  . "s got \"$out\" from:\n$query");
			return 0;
		}
		Time::HiRes::usleep(20_000);
	}
	return 1;
}

# scheduler_pid(node, dbname): the pid of the taskflow scheduler connected
# to a database ('' when there is none), from pg_stat_activity.
sub scheduler_pid
{
	my ($node, $dbname) = @_;

	return $node->safe_psql('postgres',
		"SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity"
		  . " WHERE backend_type = 'taskflow scheduler' AND datname = '$dbname'");
}

# launcher_pid(node): the pid of the taskflow launcher ('' when none).
sub launcher_pid
{
	my ($node) = @_;

	return $node->safe_psql('postgres',
		"SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity"
		  . " WHERE backend_type = 'taskflow launcher'");
}

1;
