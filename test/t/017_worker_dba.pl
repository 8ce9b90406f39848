# 017_worker_dba.pl — what a DBA changes under running workers.
#
#  1. taskflow.databases names databases as written: a database "Salon" is
#     served when listed as Salon; a listed name no database has is warned
#     about once, with the name of the database that differs only in case;
#  2. fewer delivery workers (0): the ones no longer wanted leave
#     delivery_status, as operations.md says ("no rows");
#  3. a database setting that makes every run fail
#     (ALTER DATABASE ... SET default_transaction_read_only, a maintenance
#     freeze) stops failing once the DBA resets it: after three failed runs
#     the scheduler starts again, reading the database's settings anew; and
#     worker_status.last_error clears at the first run that works;
#  4. a chain paused after pause_after_failures failing runs says "paused"
#     in the server log, which operations.md tells the DBA to alert on;
#  5. a transaction left open holding one chain (a disable_chain() not
#     committed yet) does not stop the other chains of the database;
#  6. a session-level advisory lock a chain's action takes is not kept by
#     the scheduler (an application using that lock would wait for ever).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

sub count_log
{
	my ($node, $re) = @_;
	return scalar(grep { /$re/ } split /\n/, slurp_file($node->logfile));
}

sub reload_with
{
	my ($node, $setting) = @_;
	$node->safe_psql('postgres', "ALTER SYSTEM SET $setting");
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	return;
}

my $node = TaskflowTest::new_node('dba', workers => 1, conf => <<'CONF');
taskflow.delivery_workers = 2
taskflow.safety_interval = '2s'
CONF

# ---- 1. names as written ----------------------------------------------------

TaskflowTest::create_database($node, 'Salon');
TaskflowTest::create_database($node, 'shop');
my $running = "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler' AND datname = ";
reload_with($node, "taskflow.databases = 'shop, Salon, salon'");
ok(defined TaskflowTest::wait_for($node, 'postgres', $running . "'Salon'", seconds => 15),
	'a database "Salon" listed as Salon is served');
ok(TaskflowTest::holds($node, 'Salon',
		"SELECT state = 'running' FROM taskflow.worker_status WHERE database = 'Salon'", seconds => 2),
	'and worker_status says it runs');
# the launcher scans again at every reload and every few seconds
sleep 3;
is(count_log($node, qr/WARNING:  taskflow.databases lists database "salon", which does not exist/), 1,
	'the listed name no database has is warned about once');
like(slurp_file($node->logfile), qr/HINT:  Names are compared as written: list the database "Salon" as Salon\./,
	'with the name that differs only in case');

# ---- 2. delivery workers no longer wanted --------------------------------------

ok(defined TaskflowTest::wait_for($node, 'shop',
		"SELECT count(*) = 2 FROM taskflow.delivery_status WHERE state = 'running'", seconds => 15),
	'two delivery workers run');
reload_with($node, 'taskflow.delivery_workers = 0');
ok(defined TaskflowTest::wait_for($node, 'shop',
		"SELECT count(*) = 0 FROM taskflow.delivery_status", seconds => 15),
	'delivery_workers = 0: delivery_status has no rows left');

# ---- 3. a database setting that fails every run, then reset -------------------

$node->safe_psql('shop', <<'SQL');
SELECT taskflow.create_task('歓迎タグ', 'auto', actions => '[{"add_tag": "歓迎済"}]');
SELECT taskflow.create_chain('歓迎', ARRAY['歓迎タグ'], time_zone => 'Asia/Tokyo',
	entry_interval => '1 second');
SQL
$node->safe_psql('postgres', 'ALTER DATABASE shop SET default_transaction_read_only = on');
# the scheduler reads it when it starts: start it again
my $old = TaskflowTest::scheduler_pid($node, 'shop');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($old)");
ok(defined TaskflowTest::wait_for($node, 'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler'"
		  . " AND datname = 'shop' AND pid <> $old", seconds => 15),
	'the scheduler started again (with the read-only setting)');
$node->safe_psql('shop', <<'SQL');
SET default_transaction_read_only = off;
INSERT INTO taskflow.member (external_id, email, name) VALUES ('d-1', 'ueda@example.jp', '上田三郎');
SQL
ok(defined TaskflowTest::wait_for($node, 'shop',
		"SELECT last_error ~ 'read-only transaction' FROM taskflow.worker_status WHERE database = 'shop'",
		seconds => 20),
	'its runs fail: cannot write in a read-only transaction');
$node->safe_psql('postgres', 'ALTER DATABASE shop RESET default_transaction_read_only');
ok(defined TaskflowTest::wait_for($node, 'shop',
		"SELECT tags @> '{歓迎済}' FROM taskflow.member WHERE external_id = 'd-1'", seconds => 60),
	'after the DBA resets it, the member gets the step (the scheduler started again and read it)');
like(slurp_file($node->logfile), qr/taskflow scheduler: 3 runs in a row failed in database "shop"; starting again/,
	'the server log says why the scheduler started again');
ok(defined TaskflowTest::wait_for($node, 'shop',
		"SELECT last_error IS NULL FROM taskflow.worker_status WHERE database = 'shop'", seconds => 10),
	'and worker_status.last_error is cleared once a run works');

# ---- 4. a chain paused after failing runs says so ------------------------------

$node->safe_psql('shop', <<'SQL');
CREATE TABLE public.points (member_id bigint, points integer);
SELECT taskflow.create_task('ポイント付与', 'auto',
	actions => '[{"sql": "INSERT INTO public.points SELECT m, 100 FROM unnest($1) m"}]');
SELECT taskflow.create_chain('ポイント', ARRAY['ポイント付与'], time_zone => 'Asia/Tokyo',
	entry_interval => '1 second', pause_after_failures => 2);
DROP TABLE public.points;
INSERT INTO taskflow.member (external_id, email, name) VALUES ('d-2', 'sakai@example.jp', '酒井美穂');
SQL
ok(defined TaskflowTest::wait_for($node, 'shop',
		"SELECT paused_reason IS NOT NULL FROM taskflow.chain WHERE name = 'ポイント'", seconds => 60),
	'a chain failing twice in a row is paused');
like(slurp_file($node->logfile),
	qr/WARNING:  taskflow: chain "ポイント" paused: paused after 2 consecutive failures; last: relation "public.points" does not exist/,
	'and the server log says "paused", with the reason');

# ---- 5. a chain held by an open transaction is skipped, the others run ---------

$node->safe_psql('shop', <<'SQL');
SELECT taskflow.create_task('その他タグ', 'auto', actions => '[{"add_tag": "その他済"}]');
SELECT taskflow.create_chain('その他', ARRAY['その他タグ'], time_zone => 'Asia/Tokyo',
	entry_interval => '1 second');
SQL
my $holder = $node->background_psql('shop');
$holder->query_safe("BEGIN; SELECT taskflow.disable_chain('歓迎');");
$node->safe_psql('shop',
	"INSERT INTO taskflow.member (external_id, email, name) VALUES ('d-3', 'nomura\@example.jp', '野村花子')");
ok(defined TaskflowTest::wait_for($node, 'shop',
		"SELECT tags @> '{その他済}' FROM taskflow.member WHERE external_id = 'd-3'", seconds => 15),
	'while a transaction holds chain 歓迎 (disable_chain not committed), chain その他 runs');
ok(TaskflowTest::holds($node, 'shop',
		"SELECT NOT tags @> '{歓迎済}' FROM taskflow.member WHERE external_id = 'd-3'", seconds => 2),
	'and 歓迎 waits');
$holder->query_safe('ROLLBACK');
$holder->quit;
ok(defined TaskflowTest::wait_for($node, 'shop',
		"SELECT tags @> '{歓迎済}' FROM taskflow.member WHERE external_id = 'd-3'", seconds => 15),
	'once the transaction ends, 歓迎 runs too');

# ---- 6. advisory locks a chain's code takes are let go ---------------------------

$node->safe_psql('shop', <<'SQL');
SELECT taskflow.create_task('月次締めロック', 'auto',
	actions => '[{"sql": "SELECT pg_catalog.pg_advisory_lock(4242) FROM pg_catalog.unnest($1) LIMIT 1"}]');
SELECT taskflow.create_chain('ロック', ARRAY['月次締めロック'], time_zone => 'Asia/Tokyo',
	entry_interval => '1 second');
INSERT INTO taskflow.member (external_id, email, name) VALUES ('d-4', 'kubo@example.jp', '久保明');
SQL
ok(defined TaskflowTest::wait_for($node, 'shop',
		"SELECT count(*) > 0 FROM taskflow.history h JOIN taskflow.chain c USING (chain_id)"
		  . " WHERE c.name = 'ロック' AND h.event = 'applied'", seconds => 15),
	'the chain whose action takes an advisory lock ran');
is($node->safe_psql('shop', 'SELECT pg_try_advisory_lock(4242)'), 't',
	'and the scheduler does not hold the lock: an application can take it');

done_testing();
