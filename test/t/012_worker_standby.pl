# 012_worker_standby.pl — a streaming standby runs no taskflow worker: no
# launcher or scheduler in its pg_stat_activity, taskflow.worker_status is
# empty there, and due work stays undone on it (it could not write anyway).
# After promotion the new primary's workers start and run the work that fell
# due meanwhile.

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
my $primary = TaskflowTest::new_node('primary', workers => 1, allows_streaming => 1,
	conf => <<'CONF');
taskflow.safety_interval = '1h'
taskflow.entry_interval = '1d'
taskflow.delivery_workers = 0
CONF

TaskflowTest::create_database($primary, 'app');
$primary->safe_psql('app', <<'SQL');
INSERT INTO taskflow.member (external_id, email, name, status) VALUES
	('s-1', 'yamada@example.jp', '山田太郎', 'trial'),
	('s-2', 'sato@example.jp', '佐藤花子', 'trial');
SELECT taskflow.create_template('更新案内', '{{name}}様、会員更新のご案内',
	E'{{name}}様\n\n会員資格の更新手続きのご案内です。',
	sender_name => '事務局', sender_address => 'info@example.jp');
SELECT taskflow.create_task('登録', 'auto', actions => '[{"add_tag": "更新対象"}]');
SELECT taskflow.create_task('更新案内', 'auto', template => '更新案内');
SELECT taskflow.create_chain('会員更新', tasks => ARRAY['登録', '更新案内'],
	waits => ARRAY[NULL, '5 days at 10:00'], time_zone => 'Asia/Tokyo');
SQL
ok(defined TaskflowTest::wait_for($primary, 'app',
	"SELECT count(*) = 2 FROM taskflow.history WHERE event = 'applied' AND task_name = '登録'",
	seconds => 5),
	'primary: the worker applies the first task');

$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;
is($standby->safe_psql('app', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');

my $workers = "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type LIKE 'taskflow%'";
ok(TaskflowTest::holds($standby, 'postgres', $workers, seconds => 2),
	'standby: no taskflow launcher or scheduler in pg_stat_activity');
is($standby->safe_psql('app', 'SELECT count(*) FROM taskflow.worker_status'), '0',
	'standby: taskflow.worker_status is empty (no scheduler)');
is($standby->safe_psql('app',
	"SELECT string_agg(name || ' ' || state, ', ' ORDER BY name) FROM taskflow.chain_member"
	  . ' JOIN taskflow.member USING (member_id)'),
	'佐藤花子 waiting, 山田太郎 waiting', 'standby: the replicated members wait for step 2');

# The follow-up falls due in 4 s.  The primary goes away before that; the
# standby sees the due time replayed and does nothing with it.
my $due = $primary->safe_psql('app', <<'SQL');
UPDATE taskflow.chain_member SET due_at = date_trunc('second', clock_timestamp()) + interval '4 seconds';
SELECT max(due_at) FROM taskflow.chain_member;
SQL
$primary->wait_for_catchup($standby);
$primary->stop('fast');
is($standby->safe_psql('app', "SELECT count(*) FROM taskflow.history WHERE task_name = '更新案内'"),
	'0', 'the old primary stopped before the follow-up was due');
ok(defined TaskflowTest::wait_for($standby, 'app',
	"SELECT clock_timestamp() > '$due'::timestamptz + interval '1 second'", seconds => 10),
	'the follow-up is now due');
ok(TaskflowTest::holds($standby, 'postgres', $workers, seconds => 1),
	'standby: still no taskflow worker');
is($standby->safe_psql('app',
	"SELECT count(*) FROM taskflow.history WHERE task_name = '更新案内'"),
	'0', 'standby: the due follow-up is not applied');

# Promotion: the workers start and run the overdue step.
my $t0 = Time::HiRes::time();
$standby->promote;
is($standby->safe_psql('app', 'SELECT pg_is_in_recovery()'), 'f', 'the standby is promoted');
my $took = TaskflowTest::wait_for($standby, 'app',
	"SELECT count(*) = 2 FROM taskflow.outbox WHERE subject LIKE '%会員更新のご案内'",
	seconds => 10);
ok(defined $took, 'the new primary\'s worker applies the overdue follow-up');
note(sprintf('follow-up applied %.2fs after promotion', Time::HiRes::time() - $t0));
is($standby->safe_psql('app', <<'SQL'),
SELECT string_agg(m.name || ' ' || h.actor, ', ' ORDER BY m.name)
  FROM taskflow.history h JOIN taskflow.member m USING (member_id)
 WHERE h.event = 'applied' AND h.task_name = '更新案内'
SQL
	'佐藤花子 taskflow, 山田太郎 taskflow', 'history: applied once to each member, by the worker');
is($standby->safe_psql('app',
	"SELECT string_agg(recipient, ', ' ORDER BY recipient) FROM taskflow.outbox"
	  . " WHERE subject LIKE '%会員更新のご案内'"),
	'sato@example.jp, yamada@example.jp', 'the outbox holds one mail per member');
is($standby->safe_psql('app',
	"SELECT state FROM taskflow.worker_status WHERE database = 'app'"),
	'running', 'worker_status on the new primary: app\'s scheduler runs');
like(TaskflowTest::scheduler_pid($standby, 'app'), qr/^\d+$/,
	'pg_stat_activity: one taskflow scheduler in app');

$standby->stop;
done_testing();
