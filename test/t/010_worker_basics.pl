# 010_worker_basics.pl — the background worker does the engine's work on
# its own: with taskflow preloaded and nobody calling taskflow.run(), a due
# step is applied (history and outbox) within 2 s of its due time, a change
# (a new chain, an operator processing a manual task) is acted on at once
# although the safety interval is an hour, every database with taskflow has
# its own scheduler and the others have none, CREATE / DROP EXTENSION are
# picked up without a restart, and DROP DATABASE of a served database is not
# blocked by its scheduler.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

# The safety interval and the entry interval are long, so anything done
# within seconds here was done on time or on change, never by a poll.  No
# delivery workers (020-022 test them): their writes to the members'
# timeline wake the scheduler too, and would blur what woke it.
my $node = TaskflowTest::new_node('basics', workers => 1, conf => <<'CONF');
taskflow.safety_interval = '1h'
taskflow.entry_interval = '1d'
taskflow.delivery_workers = 0
CONF

# ---- helpers ---------------------------------------------------------------

# status(db): worker_status as "database|state" lines, seen from app1.
sub status
{
	return $node->safe_psql('app1',
		"SELECT database || '|' || state FROM taskflow.worker_status"
		  . " WHERE database IN ('app1', 'app2', 'app3') ORDER BY database");
}

# running(db): a query for wait_for: is db's scheduler running?
sub running
{
	my ($db) = @_;
	return "SELECT count(*) = 1 FROM taskflow.worker_status"
	  . " WHERE database = '$db' AND state = 'running'";
}

# setup_follow_up(db, chain): two members, two mails and a chain of two auto
# tasks: a welcome at once (entries of an "always" chain happen as soon as
# the chain exists) and a follow-up three days later at 10:00.
sub setup_follow_up
{
	my ($db, $chain) = @_;
	$node->safe_psql($db, <<"SQL");
INSERT INTO taskflow.member (external_id, email, name, status) VALUES
	('$db-1', 'yamada\@example.jp', '山田太郎', 'trial'),
	('$db-2', 'sato\@example.jp', '佐藤花子', 'trial');
SELECT taskflow.create_template('$chain:ようこそ', '{{name}}様、ようこそ',
	E'{{name}}様\\n\\nご登録ありがとうございます。',
	sender_name => '事務局', sender_address => 'info\@example.jp');
SELECT taskflow.create_template('$chain:フォロー', '{{name}}様、その後いかがですか',
	E'{{name}}様\\n\\nご不明な点はお気軽にお問い合わせください。',
	sender_name => '事務局', sender_address => 'info\@example.jp');
SELECT taskflow.create_task('$chain:歓迎', 'auto', template => '$chain:ようこそ',
	actions => '[{"add_tag": "歓迎済"}]');
SELECT taskflow.create_task('$chain:フォロー', 'auto', template => '$chain:フォロー');
SELECT taskflow.create_chain('$chain', tasks => ARRAY['$chain:歓迎', '$chain:フォロー'],
	waits => ARRAY[NULL, '3 days at 10:00'], time_zone => 'Asia/Tokyo');
SQL
	return;
}

# applied(db, task): "name|actor" of the members the task was applied to.
sub applied
{
	my ($db, $task) = @_;
	return $node->safe_psql($db, <<"SQL");
SELECT m.name || '|' || h.actor FROM taskflow.history h
  JOIN taskflow.member m USING (member_id)
 WHERE h.event = 'applied' AND h.task_name = '$task' ORDER BY m.name
SQL
}

# ---- 1. a due step is applied within 2 s of its due time ---------------------

TaskflowTest::create_database($node, 'app1');
ok(defined TaskflowTest::wait_for($node, 'app1', running('app1'), seconds => 5),
	'CREATE EXTENSION: a scheduler runs for app1');
my $pid1 = TaskflowTest::scheduler_pid($node, 'app1');
like($pid1, qr/^\d+$/, 'pg_stat_activity shows one taskflow scheduler in app1');

# A new "always" chain enters its members at once: the change wakes the
# scheduler, although the next entry check by the clock is a day away.
setup_follow_up('app1', '新規会員フォロー');
my $took = TaskflowTest::wait_for($node, 'app1',
	"SELECT count(*) = 2 FROM taskflow.history WHERE event = 'applied'"
	  . " AND task_name = '新規会員フォロー:歓迎'", seconds => 5);
ok(defined $took, 'a new chain: its members enter and get the first task');
my $entry_delay = $node->safe_psql('app1', <<'SQL');
SELECT round(extract(epoch FROM max(h.at) - c.created_at), 3)
  FROM taskflow.history h JOIN taskflow.chain c USING (chain_id)
 WHERE h.event = 'entered' AND c.name = '新規会員フォロー' GROUP BY c.created_at
SQL
note("new chain: entries applied ${entry_delay}s after the chain was created");
cmp_ok($entry_delay, '<', 2, 'a new chain is entered within 2 s (entry interval 1 day, safety interval 1 hour)');
is(applied('app1', '新規会員フォロー:歓迎'), "佐藤花子|taskflow\n山田太郎|taskflow",
	'the welcome is applied by the worker (actor taskflow)');
is($node->safe_psql('app1',
	"SELECT string_agg(recipient || ' ' || subject, ', ' ORDER BY recipient) FROM taskflow.outbox"),
	'sato@example.jp 佐藤花子様、ようこそ, yamada@example.jp 山田太郎様、ようこそ',
	'the welcome mails are in the outbox');

# The follow-up is three days away; bring it to three seconds from now.
$node->safe_psql('app1', <<'SQL');
UPDATE taskflow.chain_member SET due_at = clock_timestamp() + interval '3 seconds'
 WHERE chain_id = (SELECT chain_id FROM taskflow.chain WHERE name = '新規会員フォロー');
CREATE TABLE public.due_log AS
SELECT member_id, due_at FROM taskflow.chain_member
 WHERE chain_id = (SELECT chain_id FROM taskflow.chain WHERE name = '新規会員フォロー');
SQL
is(applied('app1', '新規会員フォロー:フォロー'), '', 'the follow-up is not applied before it is due');
ok(defined TaskflowTest::wait_for($node, 'app1',
	"SELECT count(*) = 2 FROM taskflow.outbox o JOIN public.due_log USING (member_id)"
	  . " WHERE o.subject LIKE '%その後いかがですか'", seconds => 8),
	'the follow-up mails appear in the outbox without anyone calling the engine');
my $seen = $node->safe_psql('app1',
	"SELECT round(extract(epoch FROM clock_timestamp() - max(due_at)), 3) FROM public.due_log");
my ($min_delay, $max_delay) = split /\|/, $node->safe_psql('app1', <<'SQL');
SELECT round(extract(epoch FROM min(h.at - d.due_at)), 3),
	   round(extract(epoch FROM max(h.at - d.due_at)), 3)
  FROM taskflow.history h JOIN public.due_log d USING (member_id)
 WHERE h.event = 'applied' AND h.task_name = '新規会員フォロー:フォロー'
SQL
note("due step: applied ${min_delay}..${max_delay}s after due (history.at - due_at); "
	  . "committed and seen by a client at most ${seen}s after due");
cmp_ok($min_delay, '>=', 0, 'the follow-up is never applied before its due time');
cmp_ok($max_delay, '<', 2, 'the follow-up is applied within 2 s of its due time');
cmp_ok($seen, '<', 2, 'its outbox rows are committed within 2 s of the due time');
is(applied('app1', '新規会員フォロー:フォロー'), "佐藤花子|taskflow\n山田太郎|taskflow",
	'history: the follow-up applied once to each member, by the worker');
is($node->safe_psql('app1', <<'SQL'),
SELECT string_agg(m.name || ' ' || cm.state, ', ' ORDER BY m.name)
  FROM taskflow.chain_member cm JOIN taskflow.member m USING (member_id)
SQL
	'佐藤花子 done, 山田太郎 done', 'both members finished the chain');
is(TaskflowTest::scheduler_pid($node, 'app1'), $pid1, 'the same scheduler did all of it');

# A commit that changes nothing due wakes the scheduler for a run that
# finds nothing: worker_status keeps what the last run with work did.
my $runs = $node->safe_psql('app1',
	"SELECT runs FROM taskflow.worker_status WHERE database = 'app1'");
$node->safe_psql('app1', 'UPDATE taskflow.member SET name = name WHERE false');
ok(defined TaskflowTest::wait_for($node, 'app1',
		"SELECT runs > $runs FROM taskflow.worker_status WHERE database = 'app1'",
		seconds => 10),
	'a change wakes the scheduler for a run that finds nothing due');
is($node->safe_psql('app1',
		"SELECT last_applied FROM taskflow.worker_status WHERE database = 'app1'"),
	'2', 'worker_status keeps the counts of the last run that did something');

# ---- 2. an operator's processing is acted on at once -------------------------

# A manual task (the parcel is sent by hand), then a mail 10 minutes after.
# The members have been pending for an hour (a superuser moves the instant
# back), and the operator processes them with the instant the parcels went
# out, 10 minutes ago: the mail is due at once, and only the processing's
# commit can wake the scheduler for it (safety interval 1 hour).
$node->safe_psql('app1', <<'SQL');
CREATE ROLE tf010_ope LOGIN IN ROLE taskflow_operator;
INSERT INTO taskflow.member (external_id, email, name, status) VALUES
	('app1-3', 'suzuki@example.jp', '鈴木一郎', 'trial');
SELECT taskflow.create_template('到着確認メール', '{{name}}様、資料は届きましたか',
	E'{{name}}様\n\n先日お送りした資料はお手元に届きましたでしょうか。',
	sender_name => '事務局', sender_address => 'info@example.jp');
SELECT taskflow.create_task('資料発送', 'manual', assignee => '発送担当');
SELECT taskflow.create_task('到着確認', 'auto', template => '到着確認メール');
SELECT taskflow.create_chain('資料請求フォロー', tasks => ARRAY['資料発送', '到着確認'],
	waits => ARRAY[NULL, '10 minutes'], time_zone => 'Asia/Tokyo');
SQL
ok(defined TaskflowTest::wait_for($node, 'app1',
	"SELECT count(*) = 3 FROM taskflow.pending_tasks WHERE task = '資料発送'", seconds => 5),
	'the new chain puts its three members on the pending list at once');
$node->safe_psql('app1', <<'SQL');
UPDATE taskflow.chain_member SET waiting_since = waiting_since - interval '1 hour'
 WHERE state = 'pending';
SET ROLE tf010_ope;
SELECT taskflow.process('資料発送', NULL, clock_timestamp() - interval '10 minutes');
SQL
ok(defined TaskflowTest::wait_for($node, 'app1',
	"SELECT count(*) = 3 FROM taskflow.history WHERE event = 'applied'"
	  . " AND task_name = '到着確認'", seconds => 5),
	'the step after the processed manual task is applied by the worker');
my $manual_delay = $node->safe_psql('app1', <<'SQL');
SELECT round(extract(epoch FROM max(a.at - (p.at + interval '10 minutes'))), 3)
  FROM taskflow.history a JOIN taskflow.history p USING (chain_id, member_id)
 WHERE a.task_name = '到着確認' AND a.event = 'applied'
   AND p.task_name = '資料発送' AND p.event = 'applied'
SQL
note("after process(): next step applied ${manual_delay}s after it fell due");
cmp_ok($manual_delay, '<', 2, 'it is applied within 2 s of the processing');
is($node->safe_psql('app1', <<'SQL'),
SELECT string_agg(h.task_name || ' ' || m.name || ' ' || h.actor, ', '
				  ORDER BY h.task_name, m.name)
  FROM taskflow.history h JOIN taskflow.member m USING (member_id)
 WHERE h.event = 'applied' AND h.chain_name = '資料請求フォロー'
SQL
	'到着確認 佐藤花子 taskflow, 到着確認 山田太郎 taskflow, 到着確認 鈴木一郎 taskflow, '
	  . '資料発送 佐藤花子 tf010_ope, 資料発送 山田太郎 tf010_ope, 資料発送 鈴木一郎 tf010_ope',
	'history: the operator processed the manual task, the worker sent the mail');
is($node->safe_psql('app1',
	"SELECT string_agg(recipient, ', ' ORDER BY recipient) FROM taskflow.outbox WHERE subject LIKE '%資料は届きましたか'"),
	'sato@example.jp, suzuki@example.jp, yamada@example.jp',
	'the arrival mails are in the outbox');

# ---- 3. several databases ---------------------------------------------------

my $log_offset = -s $node->logfile;
TaskflowTest::create_database($node, 'app2');
$node->safe_psql('postgres', 'CREATE DATABASE app3');
ok(defined TaskflowTest::wait_for($node, 'app1', running('app2'), seconds => 5),
	'a second database with taskflow gets its own scheduler');
ok(defined TaskflowTest::wait_for($node, 'app1',
	"SELECT state = 'no taskflow here' FROM taskflow.worker_status WHERE database = 'app3'",
	seconds => 5),
	'a database without taskflow: worker_status says so');
is(TaskflowTest::scheduler_pid($node, 'app3'), '',
	'and no taskflow scheduler is connected to it');
is(status(), "app1|running\napp2|running\napp3|no taskflow here",
	'worker_status: app1 and app2 running, app3 not served');
setup_follow_up('app2', '二番目のチェーン');
ok(defined TaskflowTest::wait_for($node, 'app2',
	"SELECT count(*) = 2 FROM taskflow.history WHERE event = 'applied'", seconds => 5),
	'app2\'s scheduler applies its work');
is(applied('app2', '二番目のチェーン:歓迎'), "佐藤花子|taskflow\n山田太郎|taskflow",
	'history in app2: the welcome applied by the worker');
is(TaskflowTest::scheduler_pid($node, 'app1'), $pid1, 'app1\'s scheduler is unaffected');

# CREATE EXTENSION in app3: picked up without a restart.
$node->safe_psql('app3', 'CREATE EXTENSION taskflow');
$took = TaskflowTest::wait_for($node, 'app1', running('app3'), seconds => 5);
ok(defined $took, 'CREATE EXTENSION in app3: its scheduler starts');
note(sprintf('app3 scheduler running %.2fs after CREATE EXTENSION', $took // -1));
like(TaskflowTest::scheduler_pid($node, 'app3'), qr/^\d+$/,
	'pg_stat_activity: a scheduler is connected to app3');
setup_follow_up('app3', '三番目のチェーン');
ok(defined TaskflowTest::wait_for($node, 'app3',
	"SELECT count(*) = 2 FROM taskflow.history WHERE event = 'applied'", seconds => 5),
	'and it runs app3\'s work');

# DROP EXTENSION: the scheduler goes away.
$node->safe_psql('app3', 'DROP EXTENSION taskflow CASCADE');
ok(defined TaskflowTest::wait_for($node, 'postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler'"
	  . " AND datname = 'app3'", seconds => 5),
	'DROP EXTENSION in app3: its scheduler exits');
ok(defined TaskflowTest::wait_for($node, 'app1',
	"SELECT state = 'no taskflow here' FROM taskflow.worker_status WHERE database = 'app3'",
	seconds => 5),
	'worker_status: app3 no longer served');

# CREATE EXTENSION again: served again, and the old data is gone with the
# old extension (nothing left to apply).
$node->safe_psql('app3', 'CREATE EXTENSION taskflow');
ok(defined TaskflowTest::wait_for($node, 'app1', running('app3'), seconds => 5),
	'CREATE EXTENSION again in app3: its scheduler is back');
setup_follow_up('app3', '四番目のチェーン');
ok(defined TaskflowTest::wait_for($node, 'app3',
	"SELECT count(*) = 2 FROM taskflow.history WHERE event = 'applied'", seconds => 5),
	'and runs the new work');
$node->safe_psql('app3', 'DROP EXTENSION taskflow CASCADE');
ok(defined TaskflowTest::wait_for($node, 'app1',
	"SELECT state = 'no taskflow here' FROM taskflow.worker_status WHERE database = 'app3'",
	seconds => 5),
	'DROP EXTENSION again: app3 is not served');

# Two databases get taskflow while the launcher is held up (a DBA's
# transaction locks pg_database, which the launcher reads): once it gets
# on, both are served.
$node->safe_psql('postgres', 'CREATE DATABASE app4');
$node->safe_psql('postgres', 'CREATE DATABASE app5');
ok(defined TaskflowTest::wait_for($node, 'app1',
	"SELECT count(*) = 2 FROM taskflow.worker_status WHERE database IN ('app4', 'app5')"
	  . " AND state = 'no taskflow here'", seconds => 5),
	'app4 and app5, without taskflow, are not served');
my @sessions = map { $node->background_psql($_) } qw(app4 app5);
my $gate = $node->background_psql('postgres');
$gate->query_safe('BEGIN; LOCK TABLE pg_database IN ACCESS EXCLUSIVE MODE;');
$_->query_safe('CREATE EXTENSION taskflow') for @sessions;
$gate->query_safe('COMMIT');
$_->quit for (@sessions, $gate);
ok(defined TaskflowTest::wait_for($node, 'app1',
	"SELECT count(*) = 2 FROM taskflow.worker_status WHERE database IN ('app4', 'app5')"
	  . " AND state = 'running'", seconds => 5),
	'CREATE EXTENSION in two databases before the launcher\'s next scan: both served');
$node->safe_psql('postgres', "DROP DATABASE $_") for qw(app4 app5);

# DROP DATABASE of a served database is not blocked by its scheduler.
my $pid2 = TaskflowTest::scheduler_pid($node, 'app2');
like($pid2, qr/^\d+$/, 'app2 has its scheduler');
my $launcher = TaskflowTest::launcher_pid($node);
my $t0 = Time::HiRes::time();
my ($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE app2');
my $drop_secs = Time::HiRes::time() - $t0;
is($rc, 0, 'DROP DATABASE app2 succeeds while its scheduler runs') or diag($err);
note(sprintf('DROP DATABASE app2 took %.2fs', $drop_secs));
cmp_ok($drop_secs, '<', 3, 'DROP DATABASE is prompt');
ok(defined TaskflowTest::wait_for($node, 'app1',
	"SELECT count(*) = 0 FROM taskflow.worker_status WHERE database IS NULL OR database = 'app2'",
	seconds => 5),
	'worker_status forgets the dropped database');

# app1 keeps working after all of this: a new member of an always chain
# enters on change.
$node->safe_psql('app1', <<'SQL');
INSERT INTO taskflow.member (external_id, email, name, status) VALUES
	('app1-4', 'takahashi@example.jp', '高橋美咲', 'trial');
SELECT taskflow.alter_chain('新規会員フォロー', entry_interval => '1 second');
SQL
ok(defined TaskflowTest::wait_for($node, 'app1',
	"SELECT count(*) = 1 FROM taskflow.history h JOIN taskflow.member m USING (member_id)"
	  . " WHERE m.name = '高橋美咲' AND h.event = 'applied'", seconds => 5),
	'app1 still applies new work');

# No crash loop: the same launcher and app1 scheduler, no restarts, nothing
# crashed; only the dropped databases' schedulers were stopped.
is(TaskflowTest::launcher_pid($node), $launcher, 'the launcher is the same process');
is(TaskflowTest::scheduler_pid($node, 'app1'), $pid1, 'app1\'s scheduler is the same process');
is(TaskflowTest::scheduler_pid($node, 'app2'), '', 'no scheduler for the dropped database');
is($node->safe_psql('app1',
	"SELECT runs > 0 AND last_error IS NULL FROM taskflow.worker_status WHERE database = 'app1'"),
	't', 'app1\'s scheduler has run without errors');
my $log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/terminated by signal|PANIC|server process .* was terminated/,
	'the server log shows no crash');
my @exits = ($log =~ /background worker "taskflow (?:scheduler|launcher)" \(PID \d+\) exited with exit code [^0]/g);
cmp_ok(scalar(@exits), '<=', 3,
	'only the schedulers stopped for the three DROP DATABASE exited with an error')
  or diag(join("\n", @exits));

# A DROP DATABASE that fails (a client is connected) stops the scheduler
# only for the attempt: the database is served again at once.
my $client = $node->background_psql('app1');
($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE app1');
isnt($rc, 0, 'DROP DATABASE app1 fails while a client is connected');
like($err, qr/is being accessed by other users/, 'because of that client');
$client->quit;
$took = TaskflowTest::wait_for($node, 'app1',
	"SELECT pid IS NOT NULL AND pid <> $pid1 FROM taskflow.worker_status WHERE database = 'app1'",
	seconds => 5);
ok(defined $took, 'after the failed DROP DATABASE app1 has a scheduler again');
note(sprintf('app1 served again %.2fs after the failed DROP DATABASE', $took // -1));
$node->safe_psql('app1', <<'SQL');
INSERT INTO taskflow.member (external_id, email, name, status) VALUES
	('app1-5', 'tanaka@example.jp', '田中健太', 'trial');
SQL
ok(defined TaskflowTest::wait_for($node, 'app1',
	"SELECT count(*) = 1 FROM taskflow.history h JOIN taskflow.member m USING (member_id)"
	  . " WHERE m.name = '田中健太' AND h.event = 'applied'", seconds => 5),
	'and its work is done');

# ---- 4. taskflow.enabled = off -----------------------------------------------

# Both views say that automation is switched off (not "running" with a
# next wake-up that passes while nothing happens), nothing runs, and
# switching it back on runs what became due meanwhile.
$node->safe_psql('postgres', "ALTER SYSTEM SET taskflow.delivery_workers = 1");
$node->safe_psql('postgres', "ALTER SYSTEM SET taskflow.enabled = off");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok(defined TaskflowTest::wait_for($node, 'app1',
		"SELECT state = 'disabled' AND pid IS NOT NULL AND next_wakeup_at IS NULL"
		  . " AND last_error LIKE 'taskflow.enabled is off%'"
		  . " FROM taskflow.worker_status WHERE database = 'app1'", seconds => 5),
	'taskflow.enabled = off: worker_status says disabled, with no next wake-up, and why');
ok(defined TaskflowTest::wait_for($node, 'app1',
		"SELECT count(*) = 1 AND bool_and(state = 'disabled' AND next_wakeup_at IS NULL)"
		  . " FROM taskflow.delivery_status", seconds => 5),
	'delivery_status: the delivery worker says disabled too');
$node->safe_psql('app1', <<'SQL');
INSERT INTO taskflow.member (external_id, email, name, status) VALUES
	('app1-6', 'ito@example.jp', '伊藤さくら', 'trial');
SQL
my $applied_ito = "SELECT count(*) = 1 FROM taskflow.history h JOIN taskflow.member m USING (member_id)"
  . " WHERE m.name = '伊藤さくら' AND h.event = 'applied'";
ok(TaskflowTest::holds($node, 'app1', $applied_ito =~ s/= 1/= 0/r, seconds => 2),
	'while disabled, a new member of an always chain is not entered');
$node->safe_psql('postgres', "ALTER SYSTEM RESET taskflow.enabled");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok(defined TaskflowTest::wait_for($node, 'app1',
		"SELECT state = 'running' AND next_wakeup_at IS NOT NULL AND last_error IS NULL"
		  . " FROM taskflow.worker_status WHERE database = 'app1'", seconds => 5),
	'switched on again: running');
ok(defined TaskflowTest::wait_for($node, 'app1', $applied_ito, seconds => 5),
	'and the new member gets the welcome');
is($node->safe_psql('app1', "SELECT string_agg(state, ',') FROM taskflow.delivery_status"),
	'running', 'the delivery worker is running again');

$node->stop;
done_testing();
