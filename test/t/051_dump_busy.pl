# 051_dump_busy.pl — pg_dump of a busy database, pg_restore where workers run.
#
# A four-step chain (a welcome mail, a guide mail, a record, a follow-up
# mail; every step also writes to the application's own table) runs for
# 300 members while the scheduler applies steps that come due at random
# instants and the delivery worker sends the mail to a local SMTP server
# (aiosmtpd writing a Maildir).  In the middle of that, pg_dump -Fc.
#
# The dump is restored with pg_restore into a new database of the same
# server (table by table, the default) and with pg_restore
# --single-transaction into a database of a second server; both servers'
# workers are running.  Then:
#
#  - the dump is consistent: every member's place in the chain matches the
#    steps its history says were applied, each applied step has its row in
#    the application's table and its outbox row, nothing half-applied;
#  - the restore does not start the automation: pg_restore reports no error
#    (a scheduler entering members between the COPY of taskflow.chain and
#    of taskflow.chain_member made it fail with duplicate keys), the
#    restored databases are held ('held' in worker_status, with the command
#    to resume), and for seconds no step is applied and no message claimed
#    or sent there, although many steps and messages are due;
#  - after the DBA points the copy's channel at another SMTP server and runs
#    SELECT taskflow.resume_automation(), the copy carries on: every member
#    gets every step exactly once (the steps applied before the dump are not
#    applied again, none is skipped), and its messages not sent before the
#    dump go to the new server, each once.

use strict;
use warnings;

use POSIX qw(WNOHANG);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use DeliveryTest;

my $file_start = Time::HiRes::time();
my $members = 300;

my $conf = <<'CONF';
taskflow.safety_interval = '1h'
taskflow.entry_interval = '1d'
taskflow.batch_size = 40
taskflow.delivery_batch_size = 50
CONF
my $node = DeliveryTest::node('busy', conf => $conf);
# the second server, and the databases the DBA creates to restore into
# (their schedulers look and find no taskflow there: CREATE EXTENSION, run
# by pg_restore, then starts one at once)
my $node2 = DeliveryTest::node('other', conf => $conf);
$node->safe_psql('postgres', 'CREATE DATABASE copy1');
$node2->safe_psql('postgres', 'CREATE DATABASE copy2');
my $smtp = DeliveryTest::start_smtp($node);
DeliveryTest::set_rules($smtp, { delay => 0.01 });
sub psql { return DeliveryTest::psql($node, shift) }

# ---- the busy source database ----------------------------------------------

psql(<<"SQL");
SELECT taskflow.configure_channel('email', url => '$smtp->{url}', require_starttls => false,
	connections => 2, message_id_domain => 'mail.example.jp',
	backoff_base => '1 second', backoff_max => '2 seconds');
CREATE SCHEMA shop;
CREATE TABLE shop.step_log (member_id bigint NOT NULL, step text NOT NULL,
	at timestamptz NOT NULL, UNIQUE (member_id, step));
SELECT taskflow.create_template('複製:歓迎', '{{name}}様、ご入会ありがとうございます',
	E'{{name}}様\\n\\nご入会ありがとうございます。',
	sender_name => '会員サイト事務局', sender_address => 'info\@example.jp');
SELECT taskflow.create_template('複製:案内', '{{name}}様、ご利用案内をお送りします',
	E'{{name}}様\\n\\n会員サイトのご利用案内です。',
	sender_name => '会員サイト事務局', sender_address => 'info\@example.jp');
SELECT taskflow.create_template('複製:到着確認', '{{name}}様、資料は届きましたか',
	E'{{name}}様\\n\\n先日お送りした資料はお手元に届きましたでしょうか。',
	sender_name => '会員サイト事務局', sender_address => 'info\@example.jp');
-- every step writes to the application's table, in the step's transaction
SELECT taskflow.create_task('複製:歓迎', 'auto', template => '複製:歓迎',
	actions => \$\$[{"add_tag": "歓迎済"},
		{"sql": "INSERT INTO shop.step_log SELECT m, '歓迎', \$2 FROM unnest(\$1) AS m, pg_sleep(0.02)"}]\$\$);
SELECT taskflow.create_task('複製:案内', 'auto', template => '複製:案内',
	actions => \$\$[{"sql": "INSERT INTO shop.step_log SELECT m, '案内', \$2 FROM unnest(\$1) AS m, pg_sleep(0.02)"}]\$\$);
SELECT taskflow.create_task('複製:記録', 'auto',
	actions => \$\$[{"add_tag": "案内済"},
		{"sql": "INSERT INTO shop.step_log SELECT m, '記録', \$2 FROM unnest(\$1) AS m, pg_sleep(0.02)"}]\$\$);
SELECT taskflow.create_task('複製:到着確認', 'auto', template => '複製:到着確認',
	actions => \$\$[{"sql": "INSERT INTO shop.step_log SELECT m, '到着確認', \$2 FROM unnest(\$1) AS m, pg_sleep(0.02)"}]\$\$);
INSERT INTO taskflow.member (external_id, email, name, status)
SELECT 'd-' || g, 'd' || g || '\@example.jp', '会員' || g, 'trial'
  FROM generate_series(1, $members) AS g;
SELECT taskflow.create_chain('入会フォロー',
	tasks => ARRAY['複製:歓迎', '複製:案内', '複製:記録', '複製:到着確認'],
	waits => ARRAY[NULL, '1 hours', '2 hours', '3 days at 10:00'], time_zone => 'Asia/Tokyo',
	entry_interval => '1 second');
SQL
DeliveryTest::wait_for($node,
	"SELECT count(*) = $members FROM taskflow.chain_member", seconds => 20)
  or BAIL_OUT('the members did not enter the chain');

# The driver: a session that keeps making a few waiting members' next step
# due within the next second, at random instants, until it is stopped.
my $driver_sql = $node->basedir . '/driver.sql';
DeliveryTest::write_file($driver_sql, <<'SQL' x 300, 0644);
UPDATE taskflow.chain_member SET due_at = clock_timestamp() + random() * interval '1 second'
 WHERE member_id IN (SELECT member_id FROM taskflow.chain_member
					  WHERE state = 'waiting' AND due_at > clock_timestamp() + interval '1 second'
					  ORDER BY random() LIMIT 8);
SELECT pg_sleep(0.05);
SQL
my $driver = fork() // die "fork: $!";
if (!$driver)
{
	open(STDIN, '<', '/dev/null');
	open(STDOUT, '>', '/dev/null');
	exec('psql', '-XAtq', '-d', $node->connstr('app'), '-f', $driver_sql)
	  or POSIX::_exit(1);
}

# Dump when every step is in progress: some members done, mail sent and
# mail still waiting.
DeliveryTest::wait_for($node, <<'SQL', seconds => 30)
SELECT count(DISTINCT s.position) >= 3 AND bool_or(cm.state = 'done')
   AND (SELECT count(*) FILTER (WHERE state = 'sent') > 20
		   AND count(*) FILTER (WHERE state <> 'sent') > 5 FROM taskflow.outbox)
  FROM taskflow.chain_member cm LEFT JOIN taskflow.chain_step s USING (step_id)
SQL
  or diag('the source is not as busy as wanted');
my $dump = $node->basedir . '/busy.dump';
my $before = psql('SELECT count(*) FROM taskflow.history');
my $t0 = Time::HiRes::time();
my ($rc, $out, $err) = TaskflowTest::run_cmd(
	[ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('app') ]);
is($rc, 0, 'pg_dump -Fc of the busy database succeeds') or diag($err);
note(sprintf('pg_dump took %.2f s', Time::HiRes::time() - $t0));
my $after = psql('SELECT count(*) FROM taskflow.history');
cmp_ok($after, '>', $before, 'the scheduler applied steps while pg_dump ran or just before');
is(psql('SELECT count(*) FROM taskflow.chain_error'), '0', 'the source has had no chain error');

# ---- restore on the same server, table by table ------------------------------

TaskflowTest::wait_for($node, 'app',
	"SELECT state = 'no taskflow here' FROM taskflow.worker_status WHERE database = 'copy1'",
	seconds => 10)
  or diag('the launcher did not look at copy1');
$t0 = Time::HiRes::time();
($rc, $out, $err) = TaskflowTest::run_cmd(
	[ 'pg_restore', '-d', $node->connstr('copy1'), $dump ]);
is($rc, 0, 'pg_restore into a database of the same server succeeds');
is($err, '', 'pg_restore reports no error') or diag($err);
note(sprintf('pg_restore took %.2f s', Time::HiRes::time() - $t0));

# copy(sql): the output of sql in copy1.
sub copy { return $node->safe_psql('copy1', shift) }

# A snapshot of everything the engine and delivery write, to compare later.
my $restored_state;
my $state_sql = q{
	SELECT (SELECT count(*) FROM taskflow.history) || ' history, '
		|| (SELECT count(*) FROM shop.step_log) || ' step_log, '
		|| (SELECT count(*) FROM taskflow.chain_member) || ' in chain, '
		|| (SELECT string_agg(state || ':' || n, ',' ORDER BY state)
			  FROM (SELECT state, count(*) AS n FROM taskflow.outbox GROUP BY state) o)
		|| ', ' || (SELECT count(*) FROM taskflow.delivery_attempt) || ' attempts, '
		|| (SELECT sum(attempts) FROM taskflow.outbox) || ' tries, '
		|| (SELECT count(*) FROM taskflow.chain_error) || ' chain errors'};

# unchanged(node, db, seconds): true when $state_sql keeps returning what
# it returned at restore for that many seconds (polled every 50 ms).  The
# leases of the original's delivery worker may only expire meanwhile (a
# copy's worker releases them: nobody there holds them).
sub unchanged
{
	my ($n, $db, $seconds) = @_;
	my $deadline = Time::HiRes::time() + $seconds;
	while (Time::HiRes::time() < $deadline)
	{
		my $now = $n->safe_psql($db, $state_sql);
		if ($now ne $restored_state)
		{
			diag("$db changed: $now");
			return 0;
		}
		Time::HiRes::usleep(50_000);
	}
	return 1;
}
$restored_state = copy($state_sql);
note("copy1 as restored: $restored_state");

# Nothing ran on the half-loaded copy: a run there failed, for example on
# an outbox id its sequence, not restored yet, gave again.
is( copy(q{SELECT count(*) || ' errors, ' || (SELECT sum(consecutive_failures) FROM taskflow.chain)
				  || ' failures' FROM taskflow.chain_error}),
	'0 errors, 0 failures', 'the copy has no chain error, as the source has none');

# The dump caught the chain in the middle of its work.
is( copy(q{SELECT count(DISTINCT coalesce(s.position, 0)) >= 3
			 FROM taskflow.chain_member cm LEFT JOIN taskflow.chain_step s USING (step_id)}),
	't', 'the dump holds members at three or more places of the chain');
is( copy(q{SELECT count(*) FILTER (WHERE state = 'sent') > 0
			  AND count(*) FILTER (WHERE state <> 'sent') > 0 FROM taskflow.outbox}),
	't', 'the dump holds mail already sent and mail not sent yet');

# ---- the dump is consistent ---------------------------------------------------

# Each member's applied steps are exactly the steps before its current one
# (all four once it is done), each once.
my $consistency_sql = q{
	WITH applied AS (
		SELECT h.member_id, array_agg(s.position ORDER BY s.position) AS done
		  FROM taskflow.history h JOIN taskflow.chain_step s USING (step_id)
		 WHERE h.event = 'applied' GROUP BY h.member_id),
	place AS (
		SELECT cm.member_id, cm.state, s.position
		  FROM taskflow.chain_member cm LEFT JOIN taskflow.chain_step s USING (step_id))
	SELECT count(*) FROM place p LEFT JOIN applied a USING (member_id)
	 WHERE coalesce(a.done, '{}') IS DISTINCT FROM
		   CASE WHEN p.state = 'done' THEN ARRAY[1, 2, 3, 4]
				ELSE ARRAY(SELECT generate_series(1, p.position - 1)) END};
is(copy($consistency_sql), '0',
	"every member's place in the chain matches the steps its history says were applied");
is( copy(q{SELECT count(*) FROM taskflow.history h
			 JOIN taskflow.chain_step s USING (step_id) JOIN taskflow.task t USING (task_id)
			 LEFT JOIN shop.step_log l ON l.member_id = h.member_id
				   AND l.step = split_part(t.name, ':', 2)
			WHERE h.event = 'applied' AND l.member_id IS NULL}),
	'0', 'every applied step has its row in the application\'s table');
is( copy(q{SELECT (SELECT count(*) FROM shop.step_log)
				= (SELECT count(*) FROM taskflow.history WHERE event = 'applied')}),
	't', 'and the application\'s table has no row of a step not applied (nothing half-applied)');
is( copy(q{SELECT count(*) FROM (
			SELECT h.* FROM taskflow.history h
			  JOIN taskflow.chain_step s USING (step_id) JOIN taskflow.task t USING (task_id)
			 WHERE h.event = 'applied' AND t.template_id IS NOT NULL) h
			 FULL JOIN taskflow.outbox o
				ON (o.chain_id, o.member_id, o.iteration, o.step_id)
				 = (h.chain_id, h.member_id, h.iteration, h.step_id)
			WHERE h.history_id IS NULL OR o.outbox_id IS NULL}),
	'0', 'every applied mail step has its outbox row, and every outbox row its applied step');
is( copy(q{SELECT count(*) FROM taskflow.member
			WHERE ('歓迎済' = ANY (tags)) IS DISTINCT FROM EXISTS (
				SELECT FROM shop.step_log l WHERE l.member_id = member.member_id AND l.step = '歓迎')}),
	'0', 'tags written by the steps match the applied steps');

# ---- the restored database waits for the DBA ----------------------------------

like( copy(q{SELECT state || ': ' || coalesce(last_error, '')
			   FROM taskflow.worker_status WHERE database = 'copy1'}),
	qr/^held: .*restored.*taskflow\.resume_automation\(\)/,
	'worker_status shows copy1 held, with the reason and the command to resume');
is( copy(q{SELECT count(*) > 20 FROM taskflow.chain_member
			WHERE state = 'waiting' AND due_at <= now()}),
	't', 'many steps are due in the copy');
like( copy(q{SELECT e.reason FROM taskflow.explain(
			  (SELECT min(member_id) FROM taskflow.chain_member WHERE state = 'waiting')) e LIMIT 1}),
	qr/^automation held \(restored from a dump.*\): nothing runs until taskflow\.resume_automation\(\); /,
	'explain() says why nothing happens: the copy is held, and how to resume it');
ok( TaskflowTest::wait_for($node, 'copy1', q{
	SELECT count(*) FILTER (WHERE backend_type = 'taskflow scheduler') = 1
	   AND count(*) FILTER (WHERE backend_type = 'taskflow delivery') = 1
	  FROM pg_stat_activity WHERE datname = 'copy1'}, seconds => 10),
	'the copy\'s scheduler and delivery worker run');
ok(unchanged($node, 'copy1', 3),
	'for 3 s the copy applies no step, claims and sends no message');

# ---- the same dump, in one transaction, into a second server -------------------

# (not pg_restore -j: parallel workers load the extension's tables without
# their foreign-key order, and fail whether or not workers run)
TaskflowTest::wait_for($node2, 'app',
	"SELECT state = 'no taskflow here' FROM taskflow.worker_status WHERE database = 'copy2'",
	seconds => 10)
  or diag('the launcher did not look at copy2');
($rc, $out, $err) = TaskflowTest::run_cmd(
	[ 'pg_restore', '--single-transaction', '-d', $node2->connstr('copy2'), $dump ]);
is($rc, 0, 'pg_restore --single-transaction into a second server succeeds');
is($err, '', 'and reports no error') or diag($err);
is($node2->safe_psql('copy2', $state_sql), $restored_state,
	'the second copy holds the same as the first');
like( $node2->safe_psql('copy2',
		q{SELECT state || ': ' || coalesce(last_error, '') FROM taskflow.worker_status
		   WHERE database = 'copy2'}),
	qr/^held: restored from a dump/, 'the second copy is held too');
ok( TaskflowTest::wait_for($node2, 'copy2', q{
	SELECT count(*) FILTER (WHERE backend_type = 'taskflow scheduler') = 1
	   AND count(*) FILTER (WHERE backend_type = 'taskflow delivery') = 1
	  FROM pg_stat_activity WHERE datname = 'copy2'}, seconds => 10),
	'its scheduler and delivery worker run');
ok(unchanged($node2, 'copy2', 2), 'and for 2 s they do nothing there');
$node2->stop;

# ---- the source carries on; stop driving it --------------------------------------

kill 'KILL', $driver;
waitpid($driver, 0);

# ---- the DBA resumes the copy -------------------------------------------------------

copy(q{CREATE TABLE public.at_restore AS
		SELECT history_id, member_id, step_id, iteration, at FROM taskflow.history
		 WHERE event = 'applied'});
copy(q{CREATE TABLE public.sent_at_restore AS
		SELECT outbox_id FROM taskflow.outbox WHERE state = 'sent'});
my $smtp2 = DeliveryTest::start_smtp($node, name => 'staging');
copy("SELECT taskflow.configure_channel('email', url => '$smtp2->{url}', connections => 4)");
is( copy('SELECT taskflow.resume_automation() IS NOT NULL'), 't',
	'resume_automation() releases the hold');
ok( TaskflowTest::wait_for($node, 'copy1',
		q{SELECT state = 'running' AND last_error IS NULL FROM taskflow.worker_status
		   WHERE database = 'copy1'}, seconds => 5),
	'worker_status shows copy1 running');

# The rest of the chain, made due now (every 0.2 s, as steps are applied),
# until every member is done and every message sent: 40 s at most.
my ($done, $last) = (undef, '');
my $t_resume = Time::HiRes::time();
while (Time::HiRes::time() - $t_resume < 40)
{
	$last = copy(q{
		UPDATE taskflow.chain_member SET due_at = clock_timestamp()
		 WHERE state = 'waiting' AND due_at > clock_timestamp();
		SELECT (SELECT count(*) FROM taskflow.chain_member WHERE state <> 'done') || ' not done, '
			|| (SELECT count(*) FROM taskflow.outbox WHERE state <> 'sent') || ' not sent'});
	if ($last eq '0 not done, 0 not sent')
	{
		$done = Time::HiRes::time() - $t_resume;
		last;
	}
	Time::HiRes::usleep(200_000);
}
ok(defined $done, 'after resuming, every member of the copy finishes the chain and all its mail is sent')
  or diag("after 40 s: $last");
note(sprintf('the copy finished in %.1f s after resuming', $done // 40));

is( copy(q{SELECT count(*) FROM public.at_restore r
			LEFT JOIN taskflow.history h USING (history_id, member_id, step_id, iteration, at)
		   WHERE h.history_id IS NULL}),
	'0', 'the steps applied before the dump are still recorded as they were');
is( copy(q{SELECT string_agg(DISTINCT n::text, ',') FROM (
			SELECT count(*) FILTER (WHERE h.event = 'applied') AS n
			  FROM taskflow.member m LEFT JOIN taskflow.history h USING (member_id)
			 GROUP BY m.member_id) x}),
	'4', 'every member of the copy has each of the four steps applied exactly once');
is( copy(q{SELECT count(*) FROM taskflow.history WHERE iteration <> 1 OR event = 'entered'
			AND member_id IN (SELECT member_id FROM taskflow.history WHERE event = 'entered'
							   GROUP BY member_id HAVING count(*) > 1)}),
	'0', 'nobody entered the chain a second time');
is( copy(q{SELECT count(*) || ' ' || count(DISTINCT (member_id, step)) FROM shop.step_log}),
	(4 * $members) . ' ' . (4 * $members),
	'the application\'s table has each step of each member once');
is(copy($consistency_sql), '0', 'the copy\'s chain state matches its history');

# The new server received each message the copy had not sent, and the new
# ones, once; the dumped sent messages were not sent again.
my $expected_ids = copy(q{SELECT string_agg(message_id, ' ' ORDER BY message_id)
	FROM taskflow.outbox WHERE outbox_id NOT IN (SELECT outbox_id FROM public.sent_at_restore)});
my @got = sort map { $_->{message_id} } DeliveryTest::received($smtp2);
my %seen;
my @twice = grep { $seen{$_}++ } @got;
is(join(' ', sort keys %seen), $expected_ids,
	'the new SMTP server received exactly the messages the copy had not sent');
is(scalar(@twice), 0, 'each of them once') or diag("twice: @twice");

$node->stop;
note(sprintf('051 took %.1f s', Time::HiRes::time() - $file_start));
done_testing();
