# 016_install_encoding.pl — CREATE EXTENSION taskflow in a database whose
# encoding is not UTF8 is refused at once, with a message naming the
# encoding and a hint, and leaves nothing behind: taskflow stores Japanese
# names, templates and mail text.  Before, LATIN1 failed with a bare
# conversion error of the install script, and SQL_ASCII installed a
# taskflow that refused every Japanese name ("control characters").
#
# With taskflow preloaded (as it must be) the library refuses before the
# script is read; without it, the install script's first statement does.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $hint = qr/HINT:  Create a database with CREATE DATABASE \.\.\. TEMPLATE template0 ENCODING 'UTF8' and install taskflow there\./;

# create_db(node, name, encoding): a database in that encoding (C locale).
sub create_db
{
	my ($node, $name, $encoding) = @_;
	$node->safe_psql('postgres',
		"CREATE DATABASE $name TEMPLATE template0 ENCODING '$encoding' LC_COLLATE 'C' LC_CTYPE 'C'");
	return;
}

# ---- 1. preloaded: refused before the script is read -------------------------

my $node = TaskflowTest::new_node('encoding', workers => 1,
	conf => "taskflow.delivery_workers = 0\n");
create_db($node, $_->[0], $_->[1])
  for ([ 'latin', 'LATIN1' ], [ 'ascii', 'SQL_ASCII' ], [ 'eucjp', 'EUC_JP' ]);
for my $case ([ 'latin', 'LATIN1' ], [ 'ascii', 'SQL_ASCII' ], [ 'eucjp', 'EUC_JP' ])
{
	my ($db, $encoding) = @$case;
	my ($rc, $out, $err) = $node->psql($db, 'CREATE EXTENSION taskflow');
	isnt($rc, 0, "$encoding: CREATE EXTENSION fails");
	like($err, qr/ERROR:  taskflow needs a UTF8 database; database "$db" uses encoding $encoding/,
		"$encoding: the error names the database and its encoding");
	like($err, $hint, "$encoding: with a hint");
	unlike($err, qr/conversion|byte sequence|control characters/,
		"$encoding: not a conversion error");
	is($node->safe_psql($db,
			"SELECT count(*) FROM pg_namespace WHERE nspname = 'taskflow'"),
		'0', "$encoding: nothing is left behind");
}

# a UTF8 database next to them is installed and served as before
TaskflowTest::create_database($node, 'shop');
ok(defined TaskflowTest::wait_for($node, 'shop',
		"SELECT state = 'running' FROM taskflow.worker_status WHERE database = 'shop'",
		seconds => 10),
	'UTF8: installed, and its scheduler runs');
$node->safe_psql('shop',
	"SELECT taskflow.save_criteria('有効期限7日前', 'days_until(expires_at) = 7')");
is($node->safe_psql('shop', 'SELECT name FROM taskflow.criteria'),
	'有効期限7日前', 'UTF8: a Japanese criteria name is saved');
$node->stop;

# ---- 2. not preloaded: the install script's first statement refuses ---------

# (LATIN1 cannot get that far: PostgreSQL converts the whole UTF8 script
# first, and fails on its Japanese text before any statement runs.)
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$node->start;
my ($rc, $out, $err) = $node->psql('ascii', 'CREATE EXTENSION taskflow');
isnt($rc, 0, 'without the preload, SQL_ASCII: CREATE EXTENSION fails');
like($err, qr/ERROR:  taskflow needs a UTF8 database; database "ascii" uses encoding SQL_ASCII/,
	'at the script\'s encoding check, before the preload check');
like($err, $hint, 'with the same hint');
$node->stop;

done_testing();
