# 040_worker_search_path.pl — the background workers run as a superuser in
# every database that has taskflow; a database owner who is not one sets
# the database's search_path to a schema of their own, before pg_catalog,
# holding look-alikes of the types (text, int8, oid …) and aggregates (sum,
# max, array_agg) that the workers' statements name.  Each look-alike logs
# its call.  The scheduler and the delivery worker then do their work —
# enter a member, send (try to send) the mail — and no look-alike is ever
# called: the workers pin their search_path, and every taskflow entry point
# pins it before running SQL.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest::new_node('search_path', workers => 1,
	conf => "taskflow.delivery_workers = 1\n");

# A session of ours must not call the look-alikes itself.
sub psql
{
	my ($sql, $role) = @_;
	my $set_role = $role ? "SET ROLE $role;" : '';
	return $node->safe_psql('app', "SET search_path = pg_catalog, public; $set_role\n$sql");
}

$node->safe_psql('postgres', q{
CREATE ROLE app_owner LOGIN;
CREATE DATABASE app OWNER app_owner;
});
$node->safe_psql('app', 'CREATE EXTENSION taskflow');

# What the database owner plants, and the search_path it sets.
psql(<<'SQL', 'app_owner');
CREATE SCHEMA look_alike;
CREATE TABLE look_alike.calls (name text, by_role text DEFAULT current_user);
GRANT USAGE ON SCHEMA look_alike TO PUBLIC;
GRANT INSERT ON look_alike.calls TO PUBLIC;
CREATE FUNCTION look_alike.called(what text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO look_alike.calls (name) VALUES (what);
	RETURN true;
END
$$;
CREATE DOMAIN look_alike.text AS pg_catalog.text CHECK (look_alike.called('type text'));
CREATE DOMAIN look_alike.int8 AS pg_catalog.int8 CHECK (look_alike.called('type int8'));
CREATE DOMAIN look_alike.int4 AS pg_catalog.int4 CHECK (look_alike.called('type int4'));
CREATE DOMAIN look_alike.oid AS pg_catalog.oid CHECK (look_alike.called('type oid'));
CREATE DOMAIN look_alike.interval AS pg_catalog.interval CHECK (look_alike.called('type interval'));
CREATE DOMAIN look_alike.jsonb AS pg_catalog.jsonb CHECK (look_alike.called('type jsonb'));
CREATE DOMAIN look_alike.timestamptz AS pg_catalog.timestamptz
	CHECK (look_alike.called('type timestamptz'));
CREATE DOMAIN look_alike.bool AS pg_catalog.bool CHECK (look_alike.called('type bool'));
CREATE FUNCTION look_alike.step(bigint, bigint) RETURNS bigint
	LANGUAGE sql AS 'SELECT $2 FROM (SELECT look_alike.called(''aggregate'')) x';
CREATE FUNCTION look_alike.collect(bigint[], bigint) RETURNS bigint[]
	LANGUAGE sql AS 'SELECT $1 || $2 FROM (SELECT look_alike.called(''array_agg'')) x';
CREATE AGGREGATE look_alike.sum(bigint) (sfunc = look_alike.step, stype = bigint);
CREATE AGGREGATE look_alike.max(bigint) (sfunc = look_alike.step, stype = bigint);
CREATE AGGREGATE look_alike.array_agg(bigint) (sfunc = look_alike.collect, stype = bigint[]);
ALTER DATABASE app SET search_path = look_alike, public, pg_catalog;
SQL
is(psql('SELECT rolsuper FROM pg_roles WHERE rolname = current_user', 'app_owner'), 'f',
	'the database owner is not a superuser');

# The workers connect again and so take the database's search_path.
$node->restart;

# A chain with a member and a mail; the mail goes to a port nobody listens
# on, so the delivery worker claims it and reports a temporary failure.
psql(<<'SQL');
SELECT taskflow.configure_channel('email', url => 'smtp://127.0.0.1:1', require_starttls => false,
	backoff_base => '1 hour');
INSERT INTO taskflow.member (external_id, email, name, status) VALUES
	('sp-1', 'yamada@example.jp', '山田太郎', 'trial');
SELECT taskflow.save_criteria('体験中', $$status = 'trial'$$);
SELECT taskflow.create_template('ようこそ', '{{name}}様、ようこそ', 'ご登録ありがとうございます。',
	sender_address => 'info@example.jp');
SELECT taskflow.create_task('歓迎', 'auto', criteria => '体験中', template => 'ようこそ',
	actions => '[{"add_tag": "歓迎済"}]');
SELECT taskflow.create_chain('歓迎チェーン', ARRAY['歓迎'], time_zone => 'Asia/Tokyo');
SQL

ok(defined TaskflowTest::wait_for($node, 'app',
		q{SELECT count(*) = 1 FROM taskflow.history WHERE event = 'applied'}, seconds => 30),
	'the scheduler applied the step');
ok(defined TaskflowTest::wait_for($node, 'app',
		q{SELECT count(*) = 1 FROM taskflow.outbox WHERE attempts = 1 AND state = 'deferred'},
		seconds => 30),
	'the delivery worker tried the mail');
is($node->safe_psql('app', 'SHOW search_path'), 'look_alike, public, pg_catalog',
	"a session that sets nothing gets the owner's search_path");

is(psql(q{SELECT coalesce(string_agg(DISTINCT name || ' by ' || by_role, ', '), 'none')
		  FROM look_alike.calls}),
	'none', 'no look-alike was called by the workers');

done_testing();
