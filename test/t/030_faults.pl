# 030_faults.pl — kill -9, again and again, while the work is being done.
#
# A chain of four steps runs for members who keep arriving: a welcome mail
# (automatic), a parcel sent by staff (manual: operators call
# taskflow.process() for a few members at a time, and also taskflow.run()),
# a record right after it (automatic), and a follow-up mail days later
# (automatic; the test brings the due time forward).  Every step also
# writes a row to the application's own table.  The delivery worker sends
# the mail to a local SMTP server (aiosmtpd, answering a little slowly).
#
# Meanwhile, in several rounds and at random moments, the launcher, the
# scheduler (in the middle of a run that has written rows), the delivery
# worker (in the middle of sending a batch) and a client backend (in the
# middle of taskflow.process() or taskflow.run()) are killed with SIGKILL;
# each kill makes the postmaster restart every process.
#
# Once everything has settled, every member has had each step exactly once
# (history, the application's table, the outbox), no message was lost or
# queued twice, and the SMTP server's Maildir holds every message at least
# once; a message it holds twice was in flight at a kill (its attempt was
# cut off and closed as expired), and both copies carry the message's one
# Message-ID.
#
# TF030_SEED=n replays the same random moments.

use strict;
use warnings;

use POSIX qw(WNOHANG);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use DeliveryTest;

my $file_start = Time::HiRes::time();
my $seed = $ENV{TF030_SEED} // int(Time::HiRes::time() * 1000) % 1_000_000;
srand($seed);
note("random seed $seed (TF030_SEED=$seed replays it)");

my $rounds = 5;    # each round kills each kind once, in a random order
my $wave = 20;     # members arriving per round

# Small batches (many subtransactions, short delivery batches); the long
# intervals make sure that what happens is on time or on change.
my $node = DeliveryTest::node('kill', conf => <<'CONF');
taskflow.safety_interval = '1h'
taskflow.entry_interval = '1d'
taskflow.batch_size = 10
taskflow.delivery_batch_size = 8
CONF
my $smtp = DeliveryTest::start_smtp($node);
DeliveryTest::set_rules($smtp, { delay => 0.03 });
sub psql { return DeliveryTest::psql($node, shift) }

# up(): the server accepts connections again and app's scheduler and
# delivery worker run (after a crash the postmaster restarts everything).
sub up
{
	my $took = DeliveryTest::wait_for($node, <<'SQL', seconds => 30);
SELECT count(*) FILTER (WHERE backend_type = 'taskflow scheduler') = 1
   AND count(*) FILTER (WHERE backend_type = 'taskflow delivery') = 1
  FROM pg_stat_activity WHERE datname = 'app'
SQL
	die 'the workers did not come back' unless defined $took;
	return $took;
}

# ---- the scenario -----------------------------------------------------------

psql(<<"SQL");
SELECT taskflow.configure_channel('email', url => '$smtp->{url}', require_starttls => false,
	connections => 2, connect_timeout_ms => 2000, timeout_ms => 10000,
	message_id_domain => 'mail.example.jp', backoff_base => '1 second',
	backoff_max => '2 seconds', max_attempts => 50);
CREATE SCHEMA shop;
CREATE TABLE shop.step_log (member_id bigint NOT NULL, step text NOT NULL,
	at timestamptz NOT NULL, logged_by text NOT NULL DEFAULT current_user);
SELECT taskflow.create_template('障害:歓迎', '{{name}}様、ご入会ありがとうございます',
	E'{{name}}様\\n\\nご入会ありがとうございます。',
	sender_name => '会員サイト事務局', sender_address => 'info\@example.jp');
SELECT taskflow.create_template('障害:発送', '{{name}}様、資料を発送しました',
	E'{{name}}様\\n\\n資料を本日発送いたしました。',
	sender_name => '会員サイト事務局', sender_address => 'info\@example.jp');
SELECT taskflow.create_template('障害:到着確認', '{{name}}様、資料は届きましたか',
	E'{{name}}様\\n\\n先日お送りした資料はお手元に届きましたでしょうか。',
	sender_name => '会員サイト事務局', sender_address => 'info\@example.jp');
-- every step writes to the application's table (and takes a moment, like
-- a real back-office call): a kill often falls in the middle of one
SELECT taskflow.create_task('障害:歓迎', 'auto', template => '障害:歓迎',
	actions => \$\$[{"add_tag": "歓迎済"},
		{"sql": "INSERT INTO shop.step_log (member_id, step, at) SELECT m, '歓迎', \$2 FROM unnest(\$1) AS m, pg_sleep(0.1)"}]\$\$);
SELECT taskflow.create_task('障害:発送', 'manual', template => '障害:発送', assignee => '発送担当',
	actions => \$\$[{"sql": "INSERT INTO shop.step_log (member_id, step, at) SELECT m, '発送', \$2 FROM unnest(\$1) AS m, pg_sleep(0.3)"}]\$\$);
SELECT taskflow.create_task('障害:記録', 'auto',
	actions => \$\$[{"add_tag": "発送済"},
		{"sql": "INSERT INTO shop.step_log (member_id, step, at) SELECT m, '記録', \$2 FROM unnest(\$1) AS m, pg_sleep(0.1)"}]\$\$);
SELECT taskflow.create_task('障害:到着確認', 'auto', template => '障害:到着確認',
	actions => \$\$[{"sql": "INSERT INTO shop.step_log (member_id, step, at) SELECT m, '到着確認', \$2 FROM unnest(\$1) AS m, pg_sleep(0.1)"}]\$\$);
SQL

# members(round): the wave of members that arrives in a round.
sub members
{
	my ($round) = @_;
	psql(<<"SQL");
INSERT INTO taskflow.member (external_id, email, name, status)
SELECT 'r$round-' || g, 'r$round.m' || g || '\@example.jp', '会員' || '$round' || '-' || g, 'trial'
  FROM generate_series(1, $wave) AS g;
SQL
	return;
}
members(0);
psql(<<'SQL');
SELECT taskflow.create_chain('資料送付', tasks => ARRAY['障害:歓迎', '障害:発送', '障害:記録', '障害:到着確認'],
	waits => ARRAY[NULL, '0 hours', '0 hours', '3 days at 10:00'], time_zone => 'Asia/Tokyo',
	entry_interval => '1 second', pause_after_failures => 1000);
SQL

# follow_ups_due(): the members waiting for the follow-up get it within
# the next two seconds (each at a random instant).
sub follow_ups_due
{
	psql(<<'SQL');
UPDATE taskflow.chain_member cm SET due_at = clock_timestamp() + random() * interval '2 seconds'
  FROM taskflow.chain_step s JOIN taskflow.task t USING (task_id)
 WHERE s.step_id = cm.step_id AND t.name = '障害:到着確認' AND cm.state = 'waiting'
SQL
	return;
}

# The operators: a psql session that processes a few pending members at a
# time and runs the engine, again and again, until it is killed.
my $client_sql = $node->basedir . '/client.sql';
{
	my $one = <<'SQL';
SELECT taskflow.process('障害:発送', ARRAY(SELECT member_id FROM taskflow.pending_tasks
	WHERE task = '障害:発送' ORDER BY random() LIMIT 4))
 WHERE EXISTS (SELECT FROM taskflow.pending_tasks WHERE task = '障害:発送');
SELECT count(*) FROM taskflow.run();
SELECT pg_sleep(0.05);
SQL
	DeliveryTest::write_file($client_sql, $one x 400, 0644);
}
my $client_log = $node->basedir . '/client.log';
my $client;    # the pid of the operators' psql

# start_client: starts the operators' session unless it runs (a crash
# restart ends it: psql exits when its connection is lost).
sub start_client
{
	return if $client && waitpid($client, WNOHANG) == 0;
	$client = fork() // die "fork: $!";
	return if $client;
	open(STDIN, '<', '/dev/null');
	open(STDOUT, '>>', $client_log);
	open(STDERR, '>&', \*STDOUT);
	exec('psql', '-XAtq', '-d', $node->connstr('app') . ' application_name=tf030_client',
		'-f', $client_sql) or POSIX::_exit(1);
}

sub stop_client
{
	return unless $client;
	kill 'KILL', $client;
	waitpid($client, 0);
	$client = undef;
	return;
}

# ---- the kills --------------------------------------------------------------

# What a kind of process is busy doing when it is worth killing.
# (a client: in odd rounds in taskflow.process(), in even rounds in
# taskflow.run(); in both after it has locked rows, so it has a transaction)
my %busy = (
	launcher => q{backend_type = 'taskflow launcher'},
	scheduler => q{backend_type = 'taskflow scheduler' AND datname = 'app'
		AND state = 'active' AND backend_xid IS NOT NULL},
	delivery => q{backend_type = 'taskflow delivery' AND datname = 'app' AND state = 'active'
		AND query LIKE 'taskflow delivery: sending%'},
	client1 => q{application_name = 'tf030_client' AND state = 'active'
		AND query LIKE '%taskflow.process%' AND backend_xid IS NOT NULL
		AND clock_timestamp() - query_start < interval '200 ms'},
	client0 => q{application_name = 'tf030_client' AND state = 'active'
		AND query LIKE '%taskflow.run%' AND backend_xid IS NOT NULL},
);
my %any = (
	launcher => q{backend_type = 'taskflow launcher'},
	scheduler => q{backend_type = 'taskflow scheduler' AND datname = 'app'},
	delivery => q{backend_type = 'taskflow delivery' AND datname = 'app'},
	client => q{application_name = 'tf030_client'},
);
my (%killed, %mid_work, @pids, @xids);
my $log_offset = -s $node->logfile;

# kill_when(busy, any, seconds): polls pg_stat_activity in the server (a
# DO block, no round trip) until a process is busy, then kills it with
# SIGKILL at once (COPY TO PROGRAM, as the server's user); after the
# seconds, kills one that is idle.  Returns (busy, pid, xid) from the file
# the shell wrote just before the kill.
my $kill_out = $node->basedir . '/kill.out';

sub kill_when
{
	my ($busy, $any, $seconds) = @_;
	unlink $kill_out;
	$node->psql('postgres', <<"SQL", stderr => \my $ignored);    # it dies in the crash
DO \$do\$
DECLARE
	r record;
	busy boolean := true;
	deadline timestamptz := clock_timestamp() + interval '$seconds seconds';
BEGIN
	LOOP
		PERFORM pg_stat_clear_snapshot();
		SELECT pid, backend_xid INTO r FROM pg_stat_activity WHERE $busy LIMIT 1;
		EXIT WHEN FOUND OR clock_timestamp() > deadline;
		PERFORM pg_sleep(0.005);
	END LOOP;
	IF r.pid IS NULL THEN
		PERFORM pg_stat_clear_snapshot();
		SELECT pid, NULL::xid AS backend_xid INTO r FROM pg_stat_activity WHERE $any LIMIT 1;
		busy := false;
	END IF;
	IF r.pid IS NOT NULL THEN
		EXECUTE format('COPY (SELECT 1 WHERE false) TO PROGRAM %L',
			format('echo %s %s %s > %s; kill -KILL %s', busy::int, r.pid,
				   coalesce(r.backend_xid::text, '-'), '$kill_out', r.pid));
	END IF;
END
\$do\$
SQL
	return (0, '', '') unless -e $kill_out;
	my ($b, $pid, $xid) = split ' ', slurp_file($kill_out);
	return ($b, $pid, $xid eq '-' ? '' : $xid);
}

up();
my $t_kills = Time::HiRes::time();
note(sprintf('set up in %.1fs', $t_kills - $file_start));
for my $round (1 .. $rounds)
{
	members($round);
	follow_ups_due();
	my @kinds = map { $_->[1] } sort { $a->[0] <=> $b->[0] }
	  map { [ rand(), $_ ] } qw(launcher scheduler delivery client);
	for my $kind (@kinds)
	{
		start_client();
		Time::HiRes::usleep(int(rand(600_000)));    # a random moment
		my $offset = -s $node->logfile;
		my ($busy, $pid, $xid) =
		  kill_when($busy{$kind} // $busy{ $kind . $round % 2 }, $any{$kind}, 4);
		unless ($pid)
		{
			note("round $round: no $kind process to kill"
				  . ($kind eq 'client' ? ' (see client.log)' : ''));
			next;
		}
		$killed{$kind}++;
		$mid_work{$kind}++ if $busy;
		push @pids, [ $kind, $pid ];
		push @xids, [ $kind eq 'client' ? ($round % 2 ? 'process' : 'run') : $kind, $xid ]
		  if $xid ne '' && $kind ne 'launcher';
		# the postmaster notices the death, stops everything and starts again
		my $deadline = Time::HiRes::time() + 20;
		Time::HiRes::usleep(20_000)
		  while slurp_file($node->logfile, $offset) !~ /all server processes terminated; reinitializing/
		  && Time::HiRes::time() < $deadline;
		my $back = up();
		note(sprintf('round %d: killed the %s (pid %d%s%s); workers back %.1fs later',
				$round, $kind eq 'client' ? ($round % 2 ? 'client in process()' : 'client in run()') : $kind,
				$pid, $kind eq 'launcher' ? '' : $busy ? ', mid-work' : ', idle',
				$xid ne '' ? ", transaction $xid" : '', $back));
	}
}
note(sprintf('%d kills in %.1fs', scalar @pids, Time::HiRes::time() - $t_kills));
stop_client();

# ---- settling ---------------------------------------------------------------

# The operators process everyone still pending, the follow-ups fall due,
# and the delivery worker sends what is left.
my $n = ($rounds + 1) * $wave;
my $t_settle = Time::HiRes::time();
my $settled;
while (Time::HiRes::time() - $t_settle < 60)
{
	psql(<<'SQL');
SELECT taskflow.process('障害:発送');
UPDATE taskflow.chain_member cm SET due_at = clock_timestamp()
  FROM taskflow.chain_step s JOIN taskflow.task t USING (task_id)
 WHERE s.step_id = cm.step_id AND t.name = '障害:到着確認' AND cm.state = 'waiting'
   AND cm.due_at > clock_timestamp();
SQL
	$settled = psql(<<"SQL");
SELECT (SELECT count(*) FROM taskflow.chain_member WHERE state = 'done') = $n
   AND (SELECT count(*) FILTER (WHERE state <> 'sent') FROM taskflow.outbox) = 0
SQL
	last if $settled eq 't';
	Time::HiRes::usleep(300_000);
}
is($settled, 't', "after the kills all $n members finish the chain and every message is sent");
note(sprintf('settled %.1fs after the last kill', Time::HiRes::time() - $t_settle));

# ---- what the members got -----------------------------------------------------

is(psql(<<'SQL'), "$n $n $n 0",
SELECT count(*) FILTER (WHERE event = 'entered') || ' '
	   || count(*) FILTER (WHERE event = 'finished') || ' '
	   || count(DISTINCT member_id) || ' '
	   || count(*) FILTER (WHERE iteration <> 1)
  FROM taskflow.history
SQL
	'history: every member entered once and finished once, in one iteration');
is(psql(<<'SQL'), '0',
SELECT count(*) FROM (SELECT FROM taskflow.history WHERE event = 'applied'
					   GROUP BY chain_id, member_id, step_id, iteration HAVING count(*) > 1) d
SQL
	'no step applied twice to a member');
is(psql(<<'SQL'), '0 0',
WITH expected AS (
	SELECT m.member_id, s.step_id FROM taskflow.member m
	 CROSS JOIN taskflow.chain_step s),
	 got AS (SELECT member_id, step_id FROM taskflow.history WHERE event = 'applied')
SELECT (SELECT count(*) FROM (TABLE expected EXCEPT ALL TABLE got) a) || ' '
	   || (SELECT count(*) FROM (TABLE got EXCEPT ALL TABLE expected) b)
SQL
	'history: the applied steps are exactly every member times every step');
is(psql(<<'SQL'), "$n 歓迎,発送,記録,到着確認",
SELECT count(*) || ' ' || min(steps) FROM (
	SELECT member_id, string_agg(step, ',' ORDER BY at, CASE step WHEN '歓迎' THEN 1
		WHEN '発送' THEN 2 WHEN '記録' THEN 3 ELSE 4 END) AS steps
	  FROM shop.step_log GROUP BY member_id) s
 WHERE steps = '歓迎,発送,記録,到着確認'
SQL
	'the application\'s table: each member has each step once, in order');
is(psql(q{SELECT count(*) FROM shop.step_log}), 4 * $n,
	'and nothing else (no action ran twice)');
is(psql(q{SELECT count(*) FROM taskflow.member WHERE tags = ARRAY['歓迎済', '発送済']}), $n,
	'every member has the tags of the steps');
is(psql(<<'SQL'), 3 * $n . ' 0 ' . 3 * $n,
SELECT count(*) || ' '
	   || (SELECT count(*) FROM (SELECT FROM taskflow.outbox
								  GROUP BY member_id, step_id, iteration HAVING count(*) > 1) d)
	   || ' ' || count(DISTINCT message_id)
  FROM taskflow.outbox
SQL
	'outbox: three messages per member, none queued twice, each with its own Message-ID');

# ---- what the SMTP server got -------------------------------------------------

my %row = map { my ($id, $to, $subject, $expired) = split /\|/; $id => [ $to, $subject, $expired ] }
  split /\n/, psql(<<'SQL');
SELECT o.message_id, o.recipient, o.subject,
	   (SELECT count(*) FROM taskflow.delivery_attempt a
		 WHERE a.outbox_id = o.outbox_id AND a.outcome = 'expired')
  FROM taskflow.outbox o ORDER BY o.outbox_id
SQL
my @mails = DeliveryTest::mails($smtp);
my (%copies, %ids_of, @strangers);
for my $m (@mails)
{
	$copies{ $m->{message_id} }++;
	$ids_of{ $m->{subject} }{ $m->{message_id} } = 1;
	push @strangers, $m->{message_id} unless $row{ $m->{message_id} };
}
is(scalar(grep { !$copies{$_} } keys %row), 0,
	'the Maildir holds every message of the outbox');
is(scalar @strangers, 0, 'and nothing that is not in the outbox');
my @twice = grep { $copies{$_} > 1 } keys %copies;
my @unexplained = grep { $row{$_} && $row{$_}[2] == 0 } @twice;
note(sprintf('%d mails in the Maildir for %d messages; %d messages arrived twice or more, '
	  . 'each in flight at a kill', scalar @mails, scalar keys %row, scalar @twice));
is(scalar @unexplained, 0,
	'a message arrived more than once only when it was in flight at a kill (an expired attempt)')
  or diag(join("\n", @unexplained));
is(scalar(grep { $row{$_} && $copies{$_} > 1 + $row{$_}[2] } @twice), 0,
	'and never more often than it was cut off');
# (a subject names the member: it identifies the mail)
is(scalar(grep { keys %{ $ids_of{$_} } != 1 } keys %ids_of), 0,
	'every copy of a mail carries the same Message-ID');
is(scalar(grep { my $ids = $ids_of{ $row{$_}[1] } // {}; !$ids->{$_} } keys %row), 0,
	'the Message-ID of each mail is its outbox row\'s');

# ---- the kills themselves -----------------------------------------------------

for my $kind (qw(launcher scheduler delivery client))
{
	cmp_ok($killed{$kind} // 0, '>=', $rounds, "the $kind was killed $rounds times");
}
# (mid-work: a scheduler or client with a transaction that has written —
# its xid —, a delivery worker sending a batch)
for my $kind (qw(scheduler delivery client))
{
	cmp_ok($mid_work{$kind} // 0, '>=', 1,
		"at least once the $kind was killed in the middle of its work");
}
ok((grep { $_->[0] eq 'process' } @xids) && (grep { $_->[0] eq 'run' } @xids),
	'a client was killed inside taskflow.process() and inside taskflow.run()');
my $log = slurp_file($node->logfile, $log_offset);
is(scalar(grep { $log !~ /\(PID $_->[1]\) was terminated by signal 9/ } @pids), 0,
	'the server log shows each killed process terminated by signal 9');
my $reinit = () = $log =~ /all server processes terminated; reinitializing/g;
my $signals = () = $log =~ /was terminated by signal/g;
is("$signals $reinit", scalar(@pids) . ' ' . scalar(@pids),
	'one crash restart per kill, and no other crash (no crash loop)');
is(psql(q{SELECT count(*) FROM taskflow.chain_error}), '0',
	'no chain error recorded: a kill is not a failure of the chain');
is(psql(q{SELECT count(*) FROM taskflow.outbox WHERE state = 'sending'}), '0',
	'no message left leased');

$node->stop;
my $took = Time::HiRes::time() - $file_start;
note(sprintf('030_faults.pl took %.1fs', $took));
diag(sprintf('030_faults.pl: %.1fs', $took));
done_testing();
