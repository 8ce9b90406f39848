# TaskflowTest.pm — small helpers shared by taskflow's TAP tests.
#
#	use TaskflowTest;
#	my $node = TaskflowTest::new_node('main');   # started, taskflow preloaded
#	TaskflowTest::create_database($node, 'app'); # + CREATE EXTENSION taskflow
#	my ($rc, $out, $err) = TaskflowTest::run_cmd([...]);
#
# The Makefile puts test/lib on prove's include path (PROVE_FLAGS).

package TaskflowTest;

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use IPC::Run;
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
sub new_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);

	$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
	$node->append_conf('postgresql.conf', slurp_file($CONF));
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

1;
