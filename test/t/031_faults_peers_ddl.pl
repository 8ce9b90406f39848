# 031_faults_peers_ddl.pl — the outside world failing, and DBAs changing
# things under a running worker:
#	1. the SMTP server down for a while, then up; a slow SMTP server (it
#	   answers after the channel's timeout: the sends time out and are
#	   retried, and succeed once it is fast again); a webhook peer answering
#	   500 for a while, then 200 — nothing is lost, nothing is sent twice
#	   beyond the messages that were in flight (and those carry their one
#	   Message-ID / Idempotency-Key);
#	2. a "disk full" on the outbox (a trigger raising an error): the step
#	   is rolled back as a whole (no history, no member change, no row in
#	   the application's table), retried 10 seconds later however often the
#	   scheduler wakes, and applied once the trigger is gone;
#	3. while the workers run: a column a criteria uses renamed (an
#	   application's own column of taskflow.member), the owner of a chain
#	   dropped (refused in its database; done from another one after DROP
#	   OWNED) — clear errors recorded,
#	   the chain paused with the reason, the others go on; DROP DATABASE
#	   and DROP EXTENSION (rolled back, then committed) of databases whose
#	   scheduler is mid-run and delivery worker mid-batch: prompt, no
#	   deadlock, no error, the workers stopped first and not restarted (or
#	   back after the rollback); no crash and no restart loop anywhere.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use DeliveryTest;

my $file_start = Time::HiRes::time();
my $node = DeliveryTest::node('ddl', conf => <<'CONF');
taskflow.safety_interval = '1h'
taskflow.entry_interval = '1d'
CONF
my $smtp = DeliveryTest::start_smtp($node);
my $hook = DeliveryTest::start_webhook($node, name => 'line', secret => 'line-secret', status => 500);
sub psql { return DeliveryTest::psql($node, shift) }
my $log_start = -s $node->logfile;

psql(<<"SQL");
SELECT taskflow.configure_channel('email', url => '$smtp->{url}', require_starttls => false,
	connect_timeout_ms => 500, timeout_ms => 10000, message_id_domain => 'mail.example.jp',
	backoff_base => '1 second', backoff_max => '2 seconds', max_attempts => 30);
SELECT taskflow.configure_channel('line', kind => 'webhook', url => '$hook->{url}',
	webhook_secret_file => '$hook->{secret_file}', message_id_domain => 'hook.example.jp',
	backoff_base => '1 second', backoff_max => '2 seconds', max_attempts => 30);
CREATE SCHEMA shop;
CREATE TABLE shop.step_log (member_id bigint NOT NULL, step text NOT NULL, at timestamptz NOT NULL);
SQL
my $sched = TaskflowTest::scheduler_pid($node, 'app');

# people(prefix, n): n members "name email" with Japanese names.
sub people
{
	my ($prefix, $n) = @_;
	my @family = qw(山田 佐藤 鈴木 高橋 田中 伊藤 渡辺 中村);
	return [ map { [ $family[ $_ % @family ] . "$prefix$_", "$prefix$_\@example.jp" ] } 1 .. $n ];
}

# copies(peer, chain): Message-ID => how many times the SMTP server got it,
# for the chain's messages.
sub copies
{
	my ($chain) = @_;
	my %ids = map { $_ => 0 } split /\n/, psql(<<"SQL");
SELECT o.message_id FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id)
 WHERE c.name = '$chain' ORDER BY 1
SQL
	for my $m (DeliveryTest::mails($smtp))
	{
		$ids{ $m->{message_id} }++ if exists $ids{ $m->{message_id} };
	}
	return \%ids;
}

# ---- 1a. the SMTP server down, then up --------------------------------------

DeliveryTest::stop_peer($smtp);
DeliveryTest::mail_chain($node, name => '停止中の案内', members => people('down', 6));
ok( defined DeliveryTest::wait_for($node, <<'SQL', seconds => 15),
SELECT bool_and(o.state = 'deferred' AND o.attempts >= 2)
  FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id) WHERE c.name = '停止中の案内'
SQL
	'SMTP server down: every message is tried, fails, and waits for its next try');
like(psql(q{SELECT string_agg(DISTINCT state_reason || ' / ' || last_reply, ', ') FROM taskflow.outbox}),
	qr/connect/i, 'the reason says the server could not be reached');
my $t0 = Time::HiRes::time();
DeliveryTest::start_peer($smtp);
ok( defined DeliveryTest::wait_for($node, <<'SQL', seconds => 15),
SELECT bool_and(o.state = 'sent')
  FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id) WHERE c.name = '停止中の案内'
SQL
	'the server back: every message is sent');
note(sprintf('all sent %.1fs after the SMTP server came back', Time::HiRes::time() - $t0));
my $copies = copies('停止中の案内');
is(join(' ', map { $copies->{$_} } sort keys %$copies), '1 1 1 1 1 1',
	'the Maildir holds each of the six messages exactly once');

# ---- 1b. a slow SMTP server ----------------------------------------------------

# It waits 3 s before answering DATA; the channel gives a message 1 s.
psql(q{SELECT taskflow.configure_channel('email', timeout_ms => 1000)});
DeliveryTest::set_rules($smtp, { delay => 3 });
DeliveryTest::mail_chain($node, name => '低速時の案内', members => people('slow', 4));
ok( defined DeliveryTest::wait_for($node, <<'SQL', seconds => 15),
SELECT count(DISTINCT a.outbox_id) = 4 FROM taskflow.delivery_attempt a
  JOIN taskflow.outbox o USING (outbox_id) JOIN taskflow.chain c USING (chain_id)
 WHERE c.name = '低速時の案内' AND a.outcome = 'temporary'
SQL
	'a slow server: each message times out and is deferred');
like(psql(<<'SQL'), qr/time/i, 'the attempt\'s reply says it timed out');
SELECT a.reply FROM taskflow.delivery_attempt a JOIN taskflow.outbox o USING (outbox_id)
  JOIN taskflow.chain c USING (chain_id)
 WHERE c.name = '低速時の案内' AND a.outcome = 'temporary' LIMIT 1
SQL
is(psql(<<'SQL'), '0', 'none was given up or marked sent while the server was slow');
SELECT count(*) FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id)
 WHERE c.name = '低速時の案内' AND o.state NOT IN ('deferred', 'sending', 'pending')
SQL
DeliveryTest::set_rules($smtp, {});
$t0 = Time::HiRes::time();
ok( defined DeliveryTest::wait_for($node, <<'SQL', seconds => 20),
SELECT bool_and(o.state = 'sent')
  FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id) WHERE c.name = '低速時の案内'
SQL
	'the server fast again: every message is sent');
note(sprintf('all sent %.1fs after the server became fast again', Time::HiRes::time() - $t0));
$copies = copies('低速時の案内');
my %timeouts = map { split /\|/ } split /\n/, psql(<<'SQL');
SELECT o.message_id || '|' || count(*) FILTER (WHERE a.outcome = 'temporary')
  FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id)
  JOIN taskflow.delivery_attempt a USING (outbox_id)
 WHERE c.name = '低速時の案内' GROUP BY o.message_id
SQL
note('copies in the Maildir per message (a timed-out message may have been stored by the '
	  . 'server after the sender gave up): '
	  . join(', ', map { "$copies->{$_} of $_ (timed out $timeouts{$_}x)" } sort keys %$copies));
is(scalar(grep { $copies->{$_} < 1 } keys %$copies), 0, 'the Maildir holds every message');
is(scalar(grep { $copies->{$_} > 1 + $timeouts{$_} } keys %$copies), 0,
	'a message is there more than once only for the attempts that timed out in flight');
psql(q{SELECT taskflow.configure_channel('email', timeout_ms => 10000)});

# ---- 1c. a webhook answering 500, then 200 ------------------------------------

my $body = '{"to": "{{email}}", "messages": [{"type": "text", "text": "{{name}}様、ご予約を承りました。"}]}';
DeliveryTest::mail_chain($node, name => '予約通知', channel => 'line', body_text => $body,
	members => people('line', 4));
ok( defined DeliveryTest::wait_for($node, <<'SQL', seconds => 15),
SELECT bool_and(o.state = 'deferred' AND o.attempts >= 2 AND o.last_smtp_code = 500)
  FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id) WHERE c.name = '予約通知'
SQL
	'the webhook answers 500: every message is retried and stays deferred');
DeliveryTest::stop_peer($hook);
$hook->{args} = [ grep { $_ ne '--status' && $_ ne '500' } @{ $hook->{args} } ];
DeliveryTest::start_peer($hook);
ok( defined DeliveryTest::wait_for($node, <<'SQL', seconds => 15),
SELECT bool_and(o.state = 'sent' AND o.last_smtp_code = 200)
  FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id) WHERE c.name = '予約通知'
SQL
	'the webhook answers 200 again: every message is sent');
my @req = DeliveryTest::requests($hook);
my (%ok, %failed);
$_->{status} == 200 ? $ok{ $_->{key} }++ : $failed{ $_->{key} }++ foreach @req;
is( join(' ', sort keys %ok),
	psql(q{SELECT string_agg(message_id, ' ' ORDER BY message_id) FROM taskflow.outbox WHERE channel = 'line'}),
	'each message reached the receiver under its Message-ID as Idempotency-Key');
is(join(' ', map { $ok{$_} } sort keys %ok), '1 1 1 1', 'each was accepted exactly once');
ok(!grep({ ($failed{$_} // 0) < 2 } keys %ok), 'after at least two 500s, with the same key');
ok(!grep({ !$_->{signature_ok} } @req), 'every request carried a valid signature');

# ---- 2. disk full on the outbox ------------------------------------------------

# A trigger stands for a full disk: every insert into the outbox fails.
psql(<<'SQL');
CREATE FUNCTION shop.disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'could not extend file "base/16384/outbox": No space left on device'
		USING ERRCODE = 'disk_full', HINT = 'Check free disk space.';
END $$;
CREATE TRIGGER disk_full BEFORE INSERT ON taskflow.outbox
	FOR EACH ROW EXECUTE FUNCTION shop.disk_full();
INSERT INTO taskflow.member (external_id, email, name, status, tags) VALUES
	('full-1', 'full1@example.jp', '山田太郎', 'paid', '{満杯}'),
	('full-2', 'full2@example.jp', '佐藤花子', 'paid', '{満杯}');
SELECT taskflow.save_criteria('満杯対象', $$has_tag(tags, '満杯')$$);
SELECT taskflow.create_template('満杯', '{{name}}様へのお知らせ', E'{{name}}様\n\nお知らせです。',
	sender_name => '事務局', sender_address => 'info@example.jp');
SELECT taskflow.create_task('満杯', 'auto', criteria => '満杯対象', template => '満杯',
	actions => $a$[{"add_tag": "通知済"},
		{"sql": "INSERT INTO shop.step_log SELECT m, '満杯', $2 FROM unnest($1) AS m"}]$a$);
-- an entry check every second: the scheduler wakes often
SELECT taskflow.create_chain('満杯', tasks => ARRAY['満杯'], entry_interval => '1 second',
	pause_after_failures => 3);
SQL
my $full_errors = q{SELECT count(*) FROM taskflow.chain_error e JOIN taskflow.chain c USING (chain_id)
	WHERE c.name = '満杯'};
ok(defined DeliveryTest::wait_for($node, "SELECT ($full_errors) = 1", seconds => 5),
	'the insert into the outbox fails: the error is recorded');
my $t_full = Time::HiRes::time();
is(psql(<<'SQL'),
SELECT e.sqlstate || ' ' || e.message || ' / ' || e.hint || ' / ' || s.position
  FROM taskflow.chain_error e JOIN taskflow.chain c USING (chain_id)
  JOIN taskflow.chain_step s ON s.step_id = e.step_id
 WHERE c.name = '満杯'
SQL
	'53100 could not extend file "base/16384/outbox": No space left on device / Check free disk space. / 1',
	'taskflow.chain_error: the SQLSTATE, the message, the hint and the step');

# the rest of part 2 after 3a and 3b (the retry comes 10 s later)

# ---- 3a. a column a criteria uses is renamed -----------------------------------

# The application added its own column to the member table and a criteria
# reads it; then it renames the column.
psql(<<'SQL');
ALTER TABLE taskflow.member ADD COLUMN crm_rank text;
INSERT INTO taskflow.member (external_id, email, name, status, crm_rank) VALUES
	('crm-1', 'crm1@example.jp', '中村一郎', 'paid', 'A'),
	('crm-2', 'crm2@example.jp', '小林二郎', 'paid', 'B');
SELECT taskflow.save_criteria('ランクA', $$crm_rank = 'A'$$);
SELECT taskflow.create_task('ランクA特典', 'auto', criteria => 'ランクA',
	actions => '[{"add_tag": "特典"}]');
SELECT taskflow.create_chain('ランクA特典', tasks => ARRAY['ランクA特典'],
	entry_interval => '1 second', pause_after_failures => 1);
SQL
ok( defined DeliveryTest::wait_for($node,
		q{SELECT tags = '{特典}' FROM taskflow.member WHERE external_id = 'crm-1'}),
	'a criteria on the application\'s own column of taskflow.member works');
psql(<<'SQL');
ALTER TABLE taskflow.member RENAME COLUMN crm_rank TO crm_grade;
INSERT INTO taskflow.member (external_id, email, name, status, crm_grade) VALUES
	('crm-3', 'crm3@example.jp', '加藤三郎', 'paid', 'A');
SQL
ok( defined DeliveryTest::wait_for($node,
		q{SELECT paused_reason IS NOT NULL FROM taskflow.chain WHERE name = 'ランクA特典'}),
	'the column renamed: the chain fails and is paused (pause_after_failures 1)');
is(psql(<<'SQL'),
SELECT e.sqlstate || ' ' || e.message || ' / ' || e.hint || E'\n' || c.paused_reason
  FROM taskflow.chain_error e JOIN taskflow.chain c USING (chain_id)
 WHERE c.name = 'ランクA特典'
SQL
	qq{42703 column "crm_rank" does not exist / Perhaps you meant to reference the column "member.crm_grade".\n}
	  . 'paused after 1 consecutive failures; last: column "crm_rank" does not exist',
	'chain_error names the missing column and the new one; the chain says why it is paused');
is(psql(q{SELECT count(*) FROM taskflow.member WHERE external_id = 'crm-3' AND tags = '{}'}), '1',
	'the new member was not touched');

# ---- 3b. the owner of a chain is dropped ----------------------------------------

psql(<<'SQL');
CREATE ROLE tf031_shop LOGIN IN ROLE taskflow_app;
CREATE ROLE tf031_heir LOGIN IN ROLE taskflow_app;
GRANT USAGE ON SCHEMA shop TO tf031_shop;
GRANT INSERT ON shop.step_log TO tf031_shop;
INSERT INTO taskflow.member (external_id, email, name, status, tags) VALUES
	('shop-1', 'shop1@example.jp', '吉田花子', 'paid', '{来店}'),
	('shop-2', 'shop2@example.jp', '山本次郎', 'paid', '{来店}');
SET ROLE tf031_shop;
SELECT taskflow.save_criteria('来店客', $$has_tag(tags, '来店')$$);
SELECT taskflow.create_template('来店御礼', '{{name}}様、ご来店ありがとうございました',
	E'{{name}}様\n\nまたのお越しをお待ちしております。',
	sender_name => '店舗', sender_address => 'shop@example.jp');
SELECT taskflow.create_task('来店記録', 'auto', criteria => '来店客',
	actions => $a$[{"sql": "INSERT INTO shop.step_log SELECT m, '来店', $2 FROM unnest($1) AS m"}]$a$);
SELECT taskflow.create_task('来店御礼', 'auto', template => '来店御礼');
SELECT taskflow.create_chain('来店フォロー', tasks => ARRAY['来店記録', '来店御礼'],
	waits => ARRAY[NULL, '1 hours'], time_zone => 'Asia/Tokyo');
SQL
ok( defined DeliveryTest::wait_for($node,
		q{SELECT count(*) = 2 FROM shop.step_log WHERE step = '来店'}),
	'tf031_shop\'s chain runs');
my $shop_oid = psql(q{SELECT oid FROM pg_roles WHERE rolname = 'tf031_shop'});
# DROP ROLE here is refused while the role owns taskflow objects (and
# REASSIGN OWNED would give them to the heir): the owner is dropped from
# another database, which taskflow cannot see from there.
my (undef, undef, $drop_err) = $node->psql('app', 'DROP ROLE tf031_shop');
like($drop_err, qr/role "tf031_shop" cannot be dropped because it owns taskflow objects in this database/,
	'DROP ROLE of the chain\'s owner in its database is refused');
psql(<<'SQL');
DROP OWNED BY tf031_shop;
SQL
$node->safe_psql('postgres', 'DROP ROLE tf031_shop');
psql(<<'SQL');
UPDATE taskflow.chain_member SET due_at = clock_timestamp()
 WHERE chain_id = (SELECT chain_id FROM taskflow.chain WHERE name = '来店フォロー');
SQL
ok( defined DeliveryTest::wait_for($node,
		q{SELECT paused_reason IS NOT NULL FROM taskflow.chain WHERE name = '来店フォロー'}),
	'DROP ROLE of its owner: the chain is paused when its next step falls due');
is(psql(q{SELECT paused_reason FROM taskflow.chain WHERE name = '来店フォロー'}),
	qq{the owner role (OID $shop_oid) of chain "来店フォロー" no longer exists},
	'with the reason');
is(psql(<<'SQL'), '0', 'its step was not applied and no mail queued');
SELECT count(*) FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id)
 WHERE c.name = '来店フォロー'
SQL

# The worker goes on with the others: a new chain is served at once.
psql(<<'SQL');
INSERT INTO taskflow.member (external_id, email, name, status, tags) VALUES
	('ok-1', 'ok1@example.jp', '井上美咲', 'paid', '{通常}');
SELECT taskflow.create_task('通常処理', 'auto', actions => '[{"add_tag": "処理済"}]');
SELECT taskflow.create_chain('通常処理', tasks => ARRAY['通常処理']);
SQL
ok( defined DeliveryTest::wait_for($node,
		q{SELECT tags = '{処理済,通常}' FROM taskflow.member WHERE external_id = 'ok-1'}),
	'the worker goes on with the other chains (a new chain is applied at once)');

# ---- 2 (continued). the disk-full chain is retried, and applied once the disk has room

ok( defined DeliveryTest::wait_for($node, "SELECT ($full_errors) >= 2",
		seconds => 15),
	'the failing chain is retried later');
my $gap = psql(<<'SQL');
SELECT round(extract(epoch FROM max(e.at) - min(e.at)), 1)
  FROM taskflow.chain_error e JOIN taskflow.chain c USING (chain_id) WHERE c.name = '満杯'
SQL
note("the first two failures were ${gap}s apart (the scheduler woke every second)");
cmp_ok($gap, '>=', 9, 'about 10 s after the failure, not at every wake-up of the scheduler');
is(psql(<<'SQL'), '0 0 0 0 ',
SELECT (SELECT count(*) FROM taskflow.history h JOIN taskflow.chain c USING (chain_id)
		 WHERE c.name = '満杯' AND h.event = 'applied') || ' '
	   || (SELECT count(*) FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id)
			WHERE c.name = '満杯') || ' '
	   || (SELECT count(*) FROM shop.step_log WHERE step = '満杯') || ' '
	   || (SELECT count(*) FROM taskflow.member WHERE '通知済' = ANY (tags)) || ' '
	   || coalesce((SELECT paused_reason FROM taskflow.chain WHERE name = '満杯'), '')
SQL
	'meanwhile nothing of the step stays: no history, no outbox row, no row in the application\'s table, no tag; the chain is not paused');
psql('DROP TRIGGER disk_full ON taskflow.outbox');

# (its next retry comes 10 s after its last failure: meanwhile, 3c)

# ---- 3c. DROP EXTENSION and DROP DATABASE of busy databases ------------------------

# busy_db(db): taskflow with 60 members entering a chain whose step takes
# 0.3 s a batch (batches of 10: a run of about 2 s), and mail to a slow
# SMTP server.
$node->append_conf('postgresql.conf',
	"taskflow.batch_size = 10\ntaskflow.delivery_batch_size = 10\n");
$node->reload;
sub busy_db
{
	my ($db) = @_;
	TaskflowTest::create_database($node, $db);
	$node->safe_psql($db, <<"SQL");
SELECT taskflow.configure_channel('email', url => '$smtp->{url}', require_starttls => false,
	connections => 1);
CREATE SCHEMA shop;
CREATE TABLE shop.step_log (member_id bigint, at timestamptz);
INSERT INTO taskflow.member (external_id, email, name, status)
SELECT 'b-' || g, 'busy' || g || '\@example.jp', '会員' || g, 'paid' FROM generate_series(1, 60) AS g;
SELECT taskflow.create_template('一斉', '{{name}}様へ', E'{{name}}様\\n\\nお知らせです。',
	sender_name => '事務局', sender_address => 'info\@example.jp');
SELECT taskflow.create_task('一斉', 'auto', template => '一斉',
	actions => \$a\$[{"sql": "INSERT INTO shop.step_log SELECT m, \$2 FROM unnest(\$1) AS m, pg_sleep(0.3)"}]\$a\$);
SELECT taskflow.create_chain('一斉', tasks => ARRAY['一斉'], entry_interval => '1 second');
SQL
	return;
}
DeliveryTest::set_rules($smtp, { delay => 0.2 });
busy_db('dropdb');
busy_db('dropext');

# busy(db): the delivery worker sends the first mails, and new members
# arrive: the scheduler is in the middle of a run while the delivery
# worker sends.
my $wave = 0;
sub busy
{
	my ($db) = @_;
	DeliveryTest::wait_for($node, <<"SQL", seconds => 15) // return undef;
SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = '$db'
   AND backend_type = 'taskflow delivery' AND query LIKE 'taskflow delivery: sending%'
SQL
	$wave++;
	$node->safe_psql($db, <<"SQL");
INSERT INTO taskflow.member (external_id, email, name, status)
SELECT 'n$wave-' || g, 'new$wave-' || g || '\@example.jp', '新会員' || g, 'paid'
  FROM generate_series(1, 40) AS g;
SQL
	return DeliveryTest::wait_for($node, <<"SQL", seconds => 5);
SELECT count(*) FILTER (WHERE backend_type = 'taskflow scheduler' AND state = 'active'
						  AND backend_xid IS NOT NULL) = 1
   AND count(*) FILTER (WHERE backend_type = 'taskflow delivery'
						  AND query LIKE 'taskflow delivery: sending%') = 1
  FROM pg_stat_activity WHERE datname = '$db'
SQL
}
# no_workers_in(db): a query: are none of db's workers running?
sub no_workers_in
{
	my ($db) = @_;
	return "SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = '$db'"
	  . " AND backend_type IN ('taskflow scheduler', 'taskflow delivery')";
}

my $log_offset = -s $node->logfile;
ok(defined busy('dropdb'), 'dropdb: the scheduler runs and the delivery worker sends');
$t0 = Time::HiRes::time();
my ($rc, $err);
($rc, undef, $err) = $node->psql('postgres', 'DROP DATABASE dropdb');
my $drop_db = Time::HiRes::time() - $t0;
is($rc, 0, 'DROP DATABASE of a database whose workers are busy succeeds') or diag($err);
note(sprintf('DROP DATABASE took %.2fs', $drop_db));
cmp_ok($drop_db, '<', 5, 'DROP DATABASE is prompt');
ok( defined DeliveryTest::wait_for($node,
		q{SELECT count(*) = 0 FROM taskflow.worker_status WHERE database = 'dropdb'}),
	'worker_status forgets the dropped database');
# dba(db, sql): runs a DBA's script in the background; returns a sub that
# waits for it and returns (ok, stdout, stderr).
sub dba
{
	my ($db, $sql) = @_;
	my ($out, $err) = ('', '');
	my $file = DeliveryTest::write_file($node->basedir . "/dba_$db.sql", $sql, 0644);
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr($db), '-f', $file ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	return sub { my $ok = $h->finish; return ($ok, $out, $err) };
}
my $in_drop = q{SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = 'dropext'
	AND query LIKE 'SELECT pg_sleep(2)%'};

# DROP EXTENSION in a DBA's transaction that is rolled back: the workers
# are stopped for the drop, and come back when it fails.
ok(defined busy('dropext'), 'dropext: the scheduler runs and the delivery worker sends');
my $ext_offset = -s $node->logfile;
my $done = dba('dropext', <<'SQL');
BEGIN;
DROP EXTENSION taskflow CASCADE;
SELECT pg_sleep(2);
ROLLBACK;
SQL
ok(defined DeliveryTest::wait_for($node, $in_drop, seconds => 10), 'DROP EXTENSION, not yet committed');
is(psql(no_workers_in('dropext')), 't', 'the workers of dropext are stopped for the drop');
my ($ok) = $done->();
ok($ok, 'the DBA rolls the drop back');
my $back = DeliveryTest::wait_for($node, <<'SQL', seconds => 10);
SELECT count(*) = 2 FROM pg_stat_activity WHERE datname = 'dropext'
   AND backend_type IN ('taskflow scheduler', 'taskflow delivery')
SQL
ok(defined $back, 'the drop rolled back: the scheduler and the delivery worker run again');
note(sprintf('back %.1fs after the rollback', $back // -1));
$node->safe_psql('dropext', q{INSERT INTO taskflow.member (external_id, email, name, status)
	VALUES ('after', 'after@example.jp', '木村さくら', 'paid')});
ok( defined DeliveryTest::wait_for($node, <<'SQL', seconds => 10),
SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = 'dropext'
				  AND backend_type = 'taskflow delivery' AND query LIKE 'taskflow delivery: sending%')
SQL
	'and go on sending');

# DROP EXTENSION committed, its transaction open a moment.
ok(defined busy('dropext'), 'dropext: the scheduler runs and the delivery worker sends');
$done = dba('dropext', <<'SQL');
BEGIN;
SELECT extract(epoch FROM clock_timestamp());
DROP EXTENSION taskflow CASCADE;
SELECT extract(epoch FROM clock_timestamp());
SELECT pg_sleep(2);
COMMIT;
SQL
ok(defined DeliveryTest::wait_for($node, $in_drop, seconds => 10), 'DROP EXTENSION, not yet committed');
ok(TaskflowTest::holds($node, 'app', no_workers_in('dropext'), seconds => 1),
	'meanwhile no worker of dropext runs (none is started again before the commit)');
my ($out);
($ok, $out, $err) = $done->();
ok($ok, 'DROP EXTENSION taskflow while its workers were busy succeeds') or diag($err);
my ($before, $after) = grep { /^\d/ } split /\n/, $out;
my $drop_ext = ($after // 99) - ($before // 0);
note(sprintf('DROP EXTENSION took %.2fs (then its transaction stayed open 2 s)', $drop_ext));
cmp_ok($drop_ext, '<', 5, 'DROP EXTENSION is prompt');
ok(TaskflowTest::holds($node, 'app', no_workers_in('dropext'), seconds => 2),
	'after the commit no worker of dropext is started again (watched for 2 s)');
is(psql(q{SELECT state || ' ' || coalesce(last_error, '(no error)') FROM taskflow.worker_status
		   WHERE database = 'dropext'}),
	'no taskflow here (no error)', 'worker_status: dropext is not served, and no error');
my $ext_log = slurp_file($node->logfile, $ext_offset);
unlike($ext_log, qr/taskflow scheduler: run failed|deadlock|taskflow delivery worker \d+: .*failed/,
	'no run failed, no deadlock, nothing failed to be written back');

my $log = slurp_file($node->logfile, $log_offset);
my @exits = $log =~ /background worker "taskflow [a-z]+" \(PID (\d+)\) exited with exit code [^0]/g;
my @stopped = $log =~ /\[(\d+)\] FATAL:  terminating background worker "taskflow [a-z]+" due to administrator command/g;
note(scalar(@exits) . ' workers exited with an error code, each stopped for a drop: ' . join(' ', @exits));
is(join(' ', sort @exits), join(' ', sort @stopped),
	'the workers that exited with an error are exactly those stopped for the drops (no crash, no restart loop)');

# ---- 2 (end). the disk has room again ------------------------------------------

ok( defined DeliveryTest::wait_for($node, <<'SQL', seconds => 15),
SELECT count(*) = 2 FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id)
 WHERE c.name = '満杯' AND o.state = 'sent'
SQL
	'the disk has room again: the step is applied at the next retry and its mail sent');
my $retry = psql(<<'SQL');
SELECT round(extract(epoch FROM (SELECT min(h.at) FROM taskflow.history h JOIN taskflow.chain c USING (chain_id)
								  WHERE c.name = '満杯' AND h.event = 'applied')
				 - (SELECT max(e.at) FROM taskflow.chain_error e JOIN taskflow.chain c USING (chain_id)
					 WHERE c.name = '満杯')), 1)
SQL
note("applied ${retry}s after the last failure");
ok($retry >= 9.5 && $retry < 15, 'at the retry 10 s after the last failure');
is(psql(<<'SQL'),
SELECT string_agg(m.name || ' ' || h.event, ', ' ORDER BY m.name, h.history_id)
  FROM taskflow.history h JOIN taskflow.chain c USING (chain_id) JOIN taskflow.member m USING (member_id)
 WHERE c.name = '満杯'
SQL
	'佐藤花子 entered, 佐藤花子 applied, 佐藤花子 finished, 山田太郎 entered, 山田太郎 applied, 山田太郎 finished',
	'history: each member entered and had the step applied once');
is(psql(<<'SQL'), '2 2 0', 'the application\'s table and the tags: once each; failures cleared');
SELECT (SELECT count(*) FROM shop.step_log WHERE step = '満杯') || ' '
	   || (SELECT count(*) FROM taskflow.member WHERE '通知済' = ANY (tags)) || ' '
	   || (SELECT consecutive_failures FROM taskflow.chain WHERE name = '満杯')
SQL

# ---- no crash, no restart loop ------------------------------------------------------

$log = slurp_file($node->logfile, $log_start);
unlike($log, qr/terminated by signal|PANIC|server process .* was terminated/,
	'the server log shows no crash');
is(TaskflowTest::scheduler_pid($node, 'app'), $sched, 'app\'s scheduler ran through all of it');
is(psql(q{SELECT last_error IS NULL FROM taskflow.worker_status WHERE database = 'app'}), 't',
	'worker_status: no run of app\'s scheduler failed (the errors were the chains\')');

$node->stop;
my $took = Time::HiRes::time() - $file_start;
note(sprintf('031_faults_peers_ddl.pl took %.1fs', $took));
diag(sprintf('031_faults_peers_ddl.pl: %.1fs', $took));
done_testing();
