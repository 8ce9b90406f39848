# 015_two_phase.pl — changes committed with two-phase commit wake the
# workers too.
#
# An application using PREPARE TRANSACTION / COMMIT PREPARED (a transaction
# manager) must see its members handled as soon as the transaction is
# committed, not at the next safety-interval wake-up: the wake-ups the
# prepared transaction asked for are dropped at PREPARE (nothing is
# committed then) and COMMIT PREPARED — from any session — delivers them.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest::new_node('twophase', workers => 1, conf => <<'CONF');
max_prepared_transactions = 4
taskflow.safety_interval = '1h'
taskflow.entry_interval = '1h'
taskflow.delivery_workers = 0
CONF
TaskflowTest::create_database($node, 'app');
$node->safe_psql('app', <<'SQL');
INSERT INTO taskflow.member (external_id, email, name, status) VALUES
	('p-1', 'kobayashi@example.jp', '小林大輔', 'trial'),
	('p-2', 'kato@example.jp', '加藤優子', 'trial');
SELECT taskflow.create_task('歓迎タグ', 'auto', actions => '[{"add_tag": "歓迎済"}]');
SQL

sub welcomed
{
	return "SELECT (SELECT count(*) FROM taskflow.member WHERE '歓迎済' = ANY (tags))";
}

# A new chain is entered at once when the scheduler is woken (its first
# entry check is due; the next one only in an hour).  Created in a
# prepared transaction:
$node->safe_psql('app', <<'SQL');
BEGIN;
SELECT taskflow.create_chain('新規会員', tasks => ARRAY['歓迎タグ']);
PREPARE TRANSACTION 'taskflow-2pc';
SQL
ok(TaskflowTest::holds($node, 'app', welcomed() . " = 0", seconds => 2),
	'while the transaction is only prepared, nothing happens');

# COMMIT PREPARED from another session: the scheduler is woken at once
$node->safe_psql('app', "COMMIT PREPARED 'taskflow-2pc'");
my $took = TaskflowTest::wait_for($node, 'app', welcomed() . " = 2", seconds => 5);
ok(defined $took,
	'after COMMIT PREPARED the new chain runs at once, not at the next safety-interval wake-up an hour later');
note(sprintf('members welcomed %.2fs after COMMIT PREPARED', $took // -1));

# ROLLBACK PREPARED: nothing to do, nothing done
$node->safe_psql('app', <<'SQL');
BEGIN;
SELECT taskflow.create_task('記録', 'auto', actions => '[{"add_tag": "記録済"}]');
SELECT taskflow.create_chain('取り消し', tasks => ARRAY['記録']);
PREPARE TRANSACTION 'taskflow-2pc-rollback';
SQL
$node->safe_psql('app', "ROLLBACK PREPARED 'taskflow-2pc-rollback'");
ok(TaskflowTest::holds($node, 'app',
		"SELECT count(*) = 0 FROM taskflow.chain WHERE name = '取り消し'", seconds => 1),
	'a rolled-back prepared transaction leaves nothing');
is($node->safe_psql('app',
		"SELECT count(*) FROM taskflow.history WHERE event = 'applied' AND task_name = '歓迎タグ'"),
	'2', 'each member welcomed once');
$node->stop;

done_testing();
