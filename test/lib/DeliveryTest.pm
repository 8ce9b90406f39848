# DeliveryTest.pm — helpers for taskflow's delivery TAP tests: a node whose
# background workers run, the Python peers of test/ (an aiosmtpd Maildir
# server, a webhook server) on 127.0.0.1, chains that produce mail, and
# bounded waits.
#
#	use DeliveryTest;
#	my $node = DeliveryTest::node('smtp');            # workers on, app db
#	my $smtp = DeliveryTest::start_smtp($node);       # {port, maildir, ...}
#	DeliveryTest::mail_chain($node, name => 'welcome', channel => 'email',
#		members => [['山田太郎', 'yamada@example.jp']]);
#	DeliveryTest::wait_for($node, "SELECT ...", seconds => 10) or ...;
#	my @mails = DeliveryTest::mails($smtp);           # decoded by Python
#
# Every wait is bounded; every server listens on 127.0.0.1 only and is
# stopped at the end (stop_peer, or when the test process exits).

package DeliveryTest;

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Path qw(make_path);
use File::Spec;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();

use TaskflowTest;

our $TESTDIR = File::Spec->rel2abs(File::Spec->catdir(dirname(__FILE__), '..'));

# The Python that has aiosmtpd: Debian's (python3-aiosmtpd), even when
# another python3 comes first in PATH.
our $PYTHON = (-x '/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

my @peers;		# started peers, stopped at exit
my $json = JSON::PP->new->canonical;    # byte strings in, byte strings out

# node(name, conf => "..."): a started node whose launcher, scheduler and
# delivery workers serve every database, restarting after a crash (the
# test framework's default is not to), with short leases; database "app"
# with taskflow.
sub node
{
	my ($name, %opts) = @_;
	my $conf = "taskflow.databases = '*'\n"
	  . "restart_after_crash = on\n"
	  . "taskflow.delivery_lease = '20s'\n"
	  . "log_min_messages = log\n"
	  . ($opts{conf} // '');
	my $node = TaskflowTest::new_node($name, conf => $conf);
	TaskflowTest::create_database($node, 'app');
	return $node;
}

# psql(node, sql): safe_psql in database app.
sub psql
{
	my ($node, $sql) = @_;
	return $node->safe_psql('app', $sql);
}

# wait_for(node, query, seconds => 10, expected => 't'): polls the query in
# database app every 50 ms; returns the seconds it took, or undef after the
# limit (and shows the last output).
sub wait_for
{
	my ($node, $query, %opts) = @_;
	my $seconds = $opts{seconds} // 10;
	my $expected = $opts{expected} // 't';
	my $start = Time::HiRes::time();
	my ($out, $err);

	while (1)
	{
		($out, $err) = ('', '');
		IPC::Run::run(
			[ 'psql', '-XAtq', '-d', $node->connstr('app'), '-c', $query ],
			'>', \$out, '2>', \$err, IPC::Run::timeout($seconds + 10));
		chomp $out;
		my $elapsed = Time::HiRes::time() - $start;
		return $elapsed if $out eq $expected && $err eq '';
		last if $elapsed > $seconds;
		Time::HiRes::usleep(50_000);
	}
	diag("wait_for: no \"$expected\" after ${seconds}s from:\n$query\n"
		  . "last output: $out\nstderr: $err");
	return undef;
}

# write_file(path, text, mode): a file only its owner can read by default.
sub write_file
{
	my ($path, $text, $mode) = @_;
	open(my $fh, '>', "$path.tmp") or die "$path: $!";
	print $fh $text;
	close $fh;
	chmod($mode // 0600, "$path.tmp");
	rename("$path.tmp", $path) or die "$path: $!";
	return $path;
}

# start_peer(script, args, name): runs a test/ peer and waits (10 s at
# most) for its "READY" line.
sub start_peer
{
	my ($peer) = @_;
	my $out = "$peer->{dir}/peer.out";
	unlink $out;
	$peer->{h} = IPC::Run::start(
		[ $PYTHON, "$TESTDIR/$peer->{script}", @{ $peer->{args} } ],
		'<', \undef, '>', $out, '2>>', "$peer->{dir}/peer.err");
	my $deadline = Time::HiRes::time() + 10;
	while (Time::HiRes::time() < $deadline)
	{
		return $peer if -s $out && slurp_file($out) =~ /^READY/m;
		Time::HiRes::usleep(20_000);
	}
	die "$peer->{script} did not start: " . slurp_file("$peer->{dir}/peer.err");
}

# stop_peer(peer): SIGTERM, then SIGKILL after 5 s.
sub stop_peer
{
	my ($peer) = @_;
	return unless $peer->{h};
	$peer->{h}->kill_kill(grace => 5);
	$peer->{h} = undef;
	return;
}

END
{
	stop_peer($_) foreach @peers;
}

# start_smtp(node, auth => 'user:password', name => 'smtp'): the aiosmtpd
# Maildir server on a free port of 127.0.0.1.  Returns {port, maildir, log,
# rules, url}.
sub start_smtp
{
	my ($node, %opts) = @_;
	my $dir = $node->basedir . '/' . ($opts{name} // 'smtp');
	make_path("$dir/maildir");
	my $peer = {
		script => 'smtp_peer.py',
		dir => $dir,
		port => PostgreSQL::Test::Cluster::get_free_port(),
		maildir => "$dir/maildir",
		log => "$dir/messages.jsonl",
		rules => "$dir/rules.json",
	};
	$peer->{url} = "smtp://127.0.0.1:$peer->{port}";
	$peer->{args} = [
		'--port', $peer->{port}, '--maildir', $peer->{maildir},
		'--log', $peer->{log}, '--rules', $peer->{rules},
		$opts{auth} ? ('--auth', $opts{auth}) : () ];
	push @peers, $peer;
	return start_peer($peer);
}

# set_rules(peer, {reject => [...], defer => [...], delay => s}): what the
# SMTP server answers from now on.
sub set_rules
{
	my ($peer, $rules) = @_;
	write_file($peer->{rules}, $json->encode($rules), 0644);
	return;
}

# json_lines(file): the JSON objects of a log, one per line.
sub json_lines
{
	my ($file) = @_;
	return () unless -e $file;
	return map { $json->decode($_) } grep { /\S/ } split /\n/, slurp_file($file);
}

# received(peer): what the SMTP server accepted, in order:
# {session, mail_from, rcpt_to, message_id, size}.
sub received
{
	my ($peer) = @_;
	return json_lines($peer->{log});
}

# mails(peer): the Maildir's messages as a reader sees them (test/
# mail_dump.py: Python's email parser), ordered by Message-ID.
sub mails
{
	my ($peer) = @_;
	my ($rc, $out, $err) =
	  TaskflowTest::run_cmd([ $PYTHON, "$TESTDIR/mail_dump.py", $peer->{maildir} ]);
	die "mail_dump.py failed: $err" if $rc;
	return @{ $json->decode($out) };
}

# start_webhook(node, name => 'hook', secret => '...', fail_first => N,
# status => CODE): the webhook server on a free port of 127.0.0.1, with its
# secret in a file.  Returns {port, url, log, secret_file}.
sub start_webhook
{
	my ($node, %opts) = @_;
	my $dir = $node->basedir . '/' . ($opts{name} // 'hook');
	make_path($dir);
	my $peer = {
		script => 'webhook_peer.py',
		dir => $dir,
		port => PostgreSQL::Test::Cluster::get_free_port(),
		log => "$dir/requests.jsonl",
		secret_file => write_file("$dir/secret", ($opts{secret} // 'hook-secret') . "\n"),
	};
	$peer->{url} = "http://127.0.0.1:$peer->{port}/hook";
	$peer->{args} = [
		'--port', $peer->{port}, '--secret-file', $peer->{secret_file},
		'--log', $peer->{log},
		$opts{fail_first} ? ('--fail-first', $opts{fail_first}) : (),
		$opts{status} ? ('--status', $opts{status}) : () ];
	push @peers, $peer;
	return start_peer($peer);
}

# requests(peer): what the webhook server received, in order.
sub requests
{
	my ($peer) = @_;
	return json_lines($peer->{log});
}

# mail_chain(node, name => 'x', channel => 'email', members => [[name,
# email], ...], subject => ..., body_text => ..., body_html => ..., test =>
# 0): members tagged "name", a template on the channel, an automatic task
# and an "always" chain that sends it to them.  The scheduler applies it at
# once; returns when the outbox holds their messages (10 s at most).
sub mail_chain
{
	my ($node, %o) = @_;
	my $name = $o{name};
	my $q = sub { my $s = shift; return 'NULL' unless defined $s; $s =~ s/'/''/g; return "'$s'"; };
	my $values = join(",\n",
		map { sprintf("(%s, %s, %s, 'paid', ARRAY[%s])",
				$q->("$name-$_->[1]"), $q->($_->[1]), $q->($_->[0]), $q->($name)) }
		  @{ $o{members} });
	psql($node, <<"SQL");
INSERT INTO taskflow.member (external_id, email, name, status, tags) VALUES $values;
SELECT taskflow.save_criteria(${\ $q->("$name 対象")}, ${\ $q->("has_tag(tags, '$name')")});
SELECT taskflow.create_template(${\ $q->($name)},
	subject => ${\ $q->($o{subject} // "【会員サイト】{{name}}様へのお知らせ")},
	body_text => ${\ $q->($o{body_text} // "{{name}}様\n\nいつもご利用ありがとうございます。\n")},
	body_html => ${\ $q->($o{body_html})},
	sender_name => ${\ $q->($o{sender_name} // '会員サイト事務局')},
	sender_address => ${\ $q->($o{sender_address} // 'info@example.jp')},
	reply_to => ${\ $q->($o{reply_to})},
	channel => ${\ $q->($o{channel} // 'email')});
SELECT taskflow.create_task(${\ $q->($name)}, mode => 'auto',
	criteria => ${\ $q->("$name 対象")}, template => ${\ $q->($name)});
SELECT taskflow.create_chain(${\ $q->($name)}, tasks => ARRAY[${\ $q->($name)}],
	schedule => 'always', time_zone => 'Asia/Tokyo',
	test => ${\ ($o{test} ? 'true' : 'false')});
SQL
	my $n = scalar @{ $o{members} };
	wait_for($node,
		"SELECT count(*) = $n FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id)"
		  . " WHERE c.name = " . $q->($name),
		seconds => 10)
	  or die "the chain $name did not queue its $n messages";
	return;
}

# states(node, chain): "state:count" of a chain's messages, e.g. "sent:3".
sub states
{
	my ($node, $chain) = @_;
	$chain =~ s/'/''/g;
	return psql($node, <<"SQL");
SELECT string_agg(state || ':' || n, ' ' ORDER BY state) FROM (
	SELECT o.state, count(*) AS n FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id)
	 WHERE c.name = '$chain' GROUP BY o.state) s
SQL
}

1;
