# 021_delivery_faults.pl — what goes wrong between the delivery worker and
# the SMTP server (aiosmtpd on 127.0.0.1), and what the user then sees:
#	- the server is down: messages are deferred with growing delays, then
#	  delivered exactly once when it is back;
#	- 550 5.1.1 fails the message at once and suppresses the address; 450
#	  defers it and it is retried until accepted;
#	- a channel that requires STARTTLS never sends in clear to a server
#	  that does not offer it;
#	- kill -9 of the delivery worker in the middle of a batch (the server
#	  answering slowly): nothing is lost, the leases are reclaimed, every
#	  resend carries the message's Message-ID; while it sends, the worker
#	  holds no transaction open;
#	- two workers (taskflow.delivery_workers = 2) share the outbox: each
#	  message is sent once; lowering the setting stops the extra worker.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use DeliveryTest;

my $node = DeliveryTest::node('faults');
my $smtp = DeliveryTest::start_smtp($node);
sub psql { return DeliveryTest::psql($node, shift) }

psql(<<"SQL");
SELECT taskflow.configure_channel('email', url => '$smtp->{url}', require_starttls => false,
	connect_timeout_ms => 2000, timeout_ms => 10000, message_id_domain => 'mail.example.jp',
	backoff_base => '1 second', backoff_max => '1 minute', max_attempts => 10);
SQL

# ---- 1. the server is down, then up ----------------------------------------

DeliveryTest::stop_peer($smtp);
DeliveryTest::mail_chain($node, name => '障害時',
	members => [ [ '山田太郎', 'yamada@example.jp' ], [ '佐藤花子', 'sato@example.jp' ],
				 [ '鈴木一郎', 'suzuki@example.jp' ] ]);
my $took = DeliveryTest::wait_for($node,
	q{SELECT bool_and(state = 'deferred' AND attempts >= 3) FROM taskflow.outbox},
	seconds => 15);
ok(defined $took, 'server down: each message is tried three times and stays deferred');
like(psql(q{SELECT DISTINCT last_reply FROM taskflow.outbox}),
	qr/connect/i, 'the reply says the server could not be reached');
is( psql(q{SELECT count(*) FROM taskflow.outbox WHERE last_smtp_code IS NOT NULL}),
	'0', 'no SMTP code: it never answered');

# the gaps between a message's attempts grow: 1 s, 2 s, 4 s (+ jitter < 25%)
my $gaps = psql(<<'SQL');
SELECT string_agg(to_char(gap, 'FM990.00'), ' ' ORDER BY attempt) FROM (
	SELECT attempt, extract(epoch FROM started_at - lag(started_at) OVER w) AS gap
	  FROM taskflow.delivery_attempt
	 WHERE outbox_id = (SELECT min(outbox_id) FROM taskflow.outbox)
	WINDOW w AS (ORDER BY attempt)) a
 WHERE gap IS NOT NULL AND attempt <= 3
SQL
my @gap = split / /, $gaps;
note("gaps between the first attempts of one message: $gaps s");
ok(@gap == 2 && $gap[0] >= 1 && $gap[0] < 2 && $gap[1] >= 2 && $gap[1] < 3.5
	  && $gap[1] > $gap[0],
	"the second try about 1 s after the first, the third about 2 s later ($gaps)");
is( psql(q{SELECT bool_and(not_before - now() > interval '1 second') FROM taskflow.outbox}),
	't', 'the next try is scheduled further away');
is( psql(q{SELECT count(*) FROM taskflow.event WHERE kind = 'mail_deferred'}) >= 9 ? 'yes' : 'no',
	'yes', 'each deferral is on the member\'s timeline');

DeliveryTest::start_peer($smtp);
$took = DeliveryTest::wait_for($node,
	q{SELECT bool_and(state = 'sent') FROM taskflow.outbox}, seconds => 15);
ok(defined $took, 'server back: every message is sent on its next try');
note(sprintf('delivered %.1fs after the server came back', $took // -1));
my @got = DeliveryTest::received($smtp);
is(scalar @got, 3, 'the server received three messages: each exactly once');
is( join(' ', sort map { $_->{message_id} } @got),
	psql(q{SELECT string_agg(message_id, ' ' ORDER BY message_id) FROM taskflow.outbox}),
	'with the rows\' Message-IDs');

# ---- 2. 550, 450, and suppression ------------------------------------------

DeliveryTest::set_rules($smtp,
	{ reject => ['unknown@example.jp'], defer => ['busy@example.jp'] });
DeliveryTest::mail_chain($node, name => '宛先確認',
	members => [ [ '高橋美咲', 'unknown@example.jp' ], [ '田中健太', 'busy@example.jp' ],
				 [ '伊藤直子', 'ok@example.jp' ] ]);
ok( defined DeliveryTest::wait_for($node,
		q{SELECT string_agg(recipient || ' ' || state || ' ' || last_smtp_code || ' '
							|| last_enhanced_code, ', ' ORDER BY recipient) =
				 'busy@example.jp deferred 450 4.2.1, ok@example.jp sent 250 2.0.0, '
				 || 'unknown@example.jp failed 550 5.1.1'
			FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id)
		   WHERE c.name = '宛先確認'}),
	'550 5.1.1: failed at once; 450 4.2.1: deferred; the other sent');
is( psql(q{SELECT attempts FROM taskflow.outbox WHERE recipient = 'unknown@example.jp'}),
	'1', 'the 550 is not retried');
like( psql(q{SELECT last_reply FROM taskflow.outbox WHERE recipient = 'unknown@example.jp'}),
	qr/^550 5\.1\.1 <unknown\@example\.jp>: Recipient address rejected/,
	'the server\'s reply text is kept');
is( psql(q{SELECT count(*) FROM taskflow.suppression WHERE address = 'unknown@example.jp'}),
	'1', 'the bad mailbox (5.1.x) is suppressed');
ok( defined DeliveryTest::wait_for($node,
		q{SELECT attempts >= 2 FROM taskflow.outbox WHERE recipient = 'busy@example.jp'}),
	'the 450 is retried');
DeliveryTest::set_rules($smtp, {});
ok( defined DeliveryTest::wait_for($node,
		q{SELECT state = 'sent' FROM taskflow.outbox WHERE recipient = 'busy@example.jp'},
		seconds => 10),
	'once the server accepts it, the deferred message is sent');
is( psql(q{SELECT string_agg(m.email || ':' || e.kind, ' ' ORDER BY m.email, e.event_id)
			 FROM taskflow.event e JOIN taskflow.member m USING (member_id)
			WHERE m.email IN ('unknown@example.jp', 'ok@example.jp')
			  AND e.kind LIKE 'mail%'}),
	'ok@example.jp:mail_sent unknown@example.jp:mail_failed',
	'the timeline: mail_failed for the bad mailbox, mail_sent for the other');

# ---- 3. STARTTLS required, not offered -------------------------------------

psql(<<"SQL");
SELECT taskflow.configure_channel('secure', kind => 'smtp', url => '$smtp->{url}',
	require_starttls => true, backoff_base => '1 minute');
SQL
my $before = scalar DeliveryTest::received($smtp);
DeliveryTest::mail_chain($node, name => '暗号化必須', channel => 'secure',
	members => [ [ '渡辺さくら', 'watanabe@example.jp' ] ]);
ok( defined DeliveryTest::wait_for($node,
		q{SELECT state = 'deferred' FROM taskflow.outbox WHERE channel = 'secure'}),
	'require_starttls against a server without STARTTLS: the message is deferred');
like(psql(q{SELECT last_reply FROM taskflow.outbox WHERE channel = 'secure'}),
	qr/STARTTLS|SSL/i, 'the reply says why');
is(scalar(DeliveryTest::received($smtp)), $before, 'nothing was sent in clear');
psql(q{SELECT taskflow.configure_channel('secure', enabled => false)});

# ---- 4. kill -9 in the middle of a batch -----------------------------------

my $n = 30;
psql(q{SELECT taskflow.configure_channel('email', connections => 2)});
DeliveryTest::set_rules($smtp, { delay => 0.2 });
my $start_count = scalar DeliveryTest::received($smtp);
DeliveryTest::mail_chain($node, name => '一斉送信',
	members => [ map { [ "会員K$_", "k$_\@example.jp" ] } 1 .. $n ]);

# the worker sends (2 connections, 0.2 s per message): catch it mid-batch
my ($pid, $xact, $xid);
my $deadline = Time::HiRes::time() + 10;
while (Time::HiRes::time() < $deadline)
{
	($pid, $xact, $xid) = split /\|/, $node->safe_psql('postgres', <<'SQL');
SELECT pid, coalesce(xact_start::text, 'none'), coalesce(backend_xid::text, 'none')
  FROM pg_stat_activity
 WHERE backend_type = 'taskflow delivery' AND datname = 'app' AND state = 'active'
   AND query LIKE 'taskflow delivery: sending % messages through channel email'
SQL
	last if $pid && scalar(DeliveryTest::received($smtp)) > $start_count + 2;
	Time::HiRes::usleep(20_000);
}
ok($pid, 'the worker is in the middle of sending a batch');
is("$xact $xid", 'none none', 'while it sends, it holds no transaction (no xact_start, no xid)');
my $log_offset = -s $node->logfile;
kill 'KILL', $pid if $pid;
my $sent_before_kill = scalar(DeliveryTest::received($smtp)) - $start_count;
note("killed delivery worker $pid after $sent_before_kill of $n messages reached the server");
my $t0 = Time::HiRes::time();
ok(defined DeliveryTest::wait_for($node, 'SELECT 1', expected => '1', seconds => 30),
	'the server is back after the crash');
DeliveryTest::set_rules($smtp, {});
$took = DeliveryTest::wait_for($node,
	"SELECT count(*) = $n FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id)"
	  . " WHERE c.name = '一斉送信' AND o.state = 'sent'",
	seconds => 40);
ok(defined $took, "after the restart all $n messages are sent: nothing lost");
note(sprintf('kill -9 to all sent: %.1fs', Time::HiRes::time() - $t0));
my @wave = grep { $_->{rcpt_to}[0] =~ /^k\d+\@/ } DeliveryTest::received($smtp);
my %ids;
$ids{ $_->{message_id} }++ foreach @wave;
is( join(' ', sort keys %ids),
	psql(q{SELECT string_agg(o.message_id, ' ' ORDER BY o.message_id) FROM taskflow.outbox o
			 JOIN taskflow.chain c USING (chain_id) WHERE c.name = '一斉送信'}),
	'every message reached the server, under its own Message-ID');
my @again = grep { $ids{$_} > 1 } keys %ids;
note(sprintf('%d messages reached the server twice (sent in the killed batch before it was written back), each under the same Message-ID',
		scalar @again));
ok(!grep({ $ids{$_} > 2 } keys %ids), 'none reached it more than twice');
cmp_ok(scalar @again, '<=', $sent_before_kill + 2,
	'only messages of the killed batch were sent again (at-least-once: the batch was not written back)');
my $log = slurp_file($node->logfile, $log_offset);
like($log, qr/taskflow delivery.*\(PID $pid\) was terminated by signal 9/,
	'the server log shows the delivery worker killed');
like($log, qr/taskflow delivery worker 1: released \d+ messages leased by an earlier worker 1/,
	'the restarted worker released the dead one\'s leases at once');
cmp_ok(psql(q{SELECT count(*) FROM taskflow.delivery_attempt WHERE outcome = 'expired'}),
	'>=', 1, 'the attempts cut off by the kill are closed as expired');
is( psql(q{SELECT count(*) FROM taskflow.outbox WHERE state = 'sending'}),
	'0', 'no message left leased');

# ---- 5. two workers share the outbox ---------------------------------------

$node->append_conf('postgresql.conf',
	"taskflow.delivery_workers = 2\ntaskflow.delivery_batch_size = 5\n");
$node->reload;
ok( defined DeliveryTest::wait_for($node,
		"SELECT count(*) = 2 FROM pg_stat_activity"
		  . " WHERE backend_type = 'taskflow delivery' AND datname = 'app'"),
	'taskflow.delivery_workers = 2 (reload): a second worker starts');
DeliveryTest::set_rules($smtp, { delay => 0.05 });
my $base = scalar DeliveryTest::received($smtp);
DeliveryTest::mail_chain($node, name => '分担送信',
	members => [ map { [ "会員W$_", "w$_\@example.jp" ] } 1 .. 40 ]);
ok( defined DeliveryTest::wait_for($node,
		q{SELECT count(*) = 40 FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id)
		   WHERE c.name = '分担送信' AND o.state = 'sent'}, seconds => 20),
	'two workers: all 40 messages sent');
my @shared = grep { $_->{rcpt_to}[0] =~ /^w\d+\@/ } DeliveryTest::received($smtp);
my %once;
$once{ $_->{message_id} }++ foreach @shared;
is(scalar(@shared) . ' ' . scalar(keys %once), '40 40', 'each exactly once');
is( psql(q{SELECT count(DISTINCT split_part(a.worker, ' (', 1)) FROM taskflow.delivery_attempt a
			 JOIN taskflow.outbox o USING (outbox_id) JOIN taskflow.chain c USING (chain_id)
			WHERE c.name = '分担送信'}),
	'2', 'both workers sent some of them (SKIP LOCKED splits the batches)');
$node->append_conf('postgresql.conf', "taskflow.delivery_workers = 1\n");
$node->reload;
ok( defined DeliveryTest::wait_for($node,
		"SELECT count(*) = 1 FROM pg_stat_activity"
		  . " WHERE backend_type = 'taskflow delivery' AND datname = 'app'"),
	'back to 1: the second worker exits');

$node->stop;
done_testing();
