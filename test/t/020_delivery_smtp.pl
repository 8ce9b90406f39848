# 020_delivery_smtp.pl — mail produced by a chain reaches a real SMTP server
# (aiosmtpd on 127.0.0.1, writing a Maildir) through the delivery worker,
# and reads right in a mail client: Japanese subject, sender name and body
# decode exactly with Python's email parser; text then HTML; the headers;
# the envelope.  Then: connections are reused and used in parallel, the
# SMTP password comes only from its file (and a new one applies at once),
# and the guardrails hold with the real worker: an unsubscribe after
# queueing, test routing (no List-Unsubscribe in test mail), the rate
# limit, quiet hours and the daily quota.  A held database sends nothing,
# and delivery_status says why.

use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use DeliveryTest;

my $node = DeliveryTest::node('smtp');
my $smtp = DeliveryTest::start_smtp($node, auth => 'taskflow:s3cret-pass');
my $password_file =
  DeliveryTest::write_file($node->basedir . '/smtp-password', "s3cret-pass\n");
my $json = JSON::PP->new->canonical;    # byte strings in, byte strings out
sub psql { return DeliveryTest::psql($node, shift) }

psql(<<"SQL");
SELECT taskflow.configure_channel('email', url => '$smtp->{url}', require_starttls => false,
	username => 'taskflow', password_file => '$password_file', connections => 4,
	message_id_domain => 'mail.example.jp',
	list_id => '会員サイトのお知らせ <news.example.jp>',
	unsubscribe_url => 'https://example.jp/unsubscribe?m={{member_id}}',
	backoff_base => '1 second', backoff_max => '2 seconds');
SQL

# ---- 1. the workers ------------------------------------------------------

ok( defined DeliveryTest::wait_for($node,
		"SELECT count(*) = 1 FROM pg_stat_activity"
		  . " WHERE backend_type = 'taskflow delivery' AND datname = 'app'"),
	'one delivery worker runs in app, shown in pg_stat_activity as "taskflow delivery"');

# ---- 2. a Japanese mail, as a mail client reads it -------------------------

my $subject = '【会員サイト】{{name}}様、無料体験のご案内です。期間中はすべての動画講座を何度でもご覧いただけます';
my $t0 = Time::HiRes::time();
DeliveryTest::mail_chain($node,
	name => '体験案内',
	members => [ [ '山田太郎', 'yamada@example.jp' ], [ '佐藤花子', 'sato@example.jp' ] ],
	subject => $subject,
	body_text => "{{name}}様\n\n無料体験へのお申し込みありがとうございます。\n期間は14日間です。\n",
	body_html => '<p>{{name}}様</p><p>無料体験へのお申し込み<strong>ありがとうございます</strong>。</p>',
	reply_to => 'support@example.jp');
my $took = DeliveryTest::wait_for($node,
	"SELECT count(*) = 2 FROM taskflow.outbox WHERE state = 'sent'", seconds => 10);
ok(defined $took, 'both messages are sent')
  or diag(psql('SELECT * FROM taskflow.delivery_status; SELECT outbox_id, state, last_reply FROM taskflow.outbox'));
note(sprintf('chain created to both mails accepted by the server: %.2fs',
		Time::HiRes::time() - $t0));

my $rows = $json->decode(psql(<<'SQL'));
SELECT json_agg(json_build_object('member_id', member_id, 'recipient', recipient,
		'subject', subject, 'body_text', body_text, 'body_html', body_html,
		'message_id', message_id) ORDER BY recipient)
  FROM taskflow.outbox
SQL
my %mail = map { $_->{message_id} => $_ } DeliveryTest::mails($smtp);
my %envelope = map { $_->{message_id} => $_ } DeliveryTest::received($smtp);
is(scalar keys %mail, 2, 'the Maildir holds two mails');

foreach my $row (@$rows)
{
	my $m = $mail{ $row->{message_id} };
	my $who = $row->{recipient};
	ok($m, "$who: a mail with the row's Message-ID $row->{message_id}") or next;
	like($row->{message_id}, qr/^<\d+\.\d+\@mail\.example\.jp>$/,
		"$who: Message-ID <outbox_id.chain_id\@message_id_domain>");
	my $name = $who =~ /yamada/ ? '山田太郎' : '佐藤花子';
	is($m->{subject}, $row->{subject}, "$who: the Subject decodes exactly to the rendered one");
	like($m->{subject}, qr/^【会員サイト】\Q$name\E様、無料体験/, "$who: merge field filled in the Subject");
	is($m->{from_name}, '会員サイト事務局', "$who: the sender name decodes");
	is($m->{from_address}, 'info@example.jp', "$who: the sender address");
	like($m->{to}, qr/\Q$who\E/, "$who: To");
	is($m->{reply_to}, 'support@example.jp', "$who: Reply-To");
	like($m->{date}, qr/^\w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$/, "$who: an RFC 5322 Date");
	is($m->{mime_version}, '1.0', "$who: MIME-Version");
	is($m->{content_type}, 'multipart/alternative', "$who: multipart/alternative");
	is(join(',', map { $_->{type} } @{ $m->{parts} }), 'text/plain,text/html',
		"$who: the text part first, then the HTML part");
	is(join(',', map { "$_->{charset}/$_->{transfer_encoding}" } @{ $m->{parts} }),
		'utf-8/base64,utf-8/base64', "$who: both parts UTF-8, base64");
	(my $text = $m->{parts}[0]{text}) =~ s/\r\n/\n/g;
	(my $html = $m->{parts}[1]{text}) =~ s/\r\n/\n/g;
	s/\n+\z// for ($text, $html);
	(my $want_text = $row->{body_text}) =~ s/\n+\z//;
	(my $want_html = $row->{body_html}) =~ s/\n+\z//;
	is($text, $want_text, "$who: the text body decodes exactly");
	like($text, qr/^\Q$name\E様\n/, "$who: merge field filled in the body");
	is($html, $want_html, "$who: the HTML body decodes exactly");
	like($m->{list_id}, qr/<news\.example\.jp>/, "$who: List-Id");
	like($m->{list_unsubscribe}, qr{<https://example\.jp/unsubscribe\?m=$row->{member_id}>},
		"$who: List-Unsubscribe with the member's URL");
	is($m->{list_unsubscribe_post}, 'List-Unsubscribe=One-Click', "$who: one-click unsubscribe (RFC 8058)");
	ok($m->{ascii}, "$who: the raw message is pure ASCII");
	ok(!$m->{bare_lf}, "$who: CRLF line endings only");
	cmp_ok($m->{max_line}, '<=', 76, "$who: no line longer than 76 characters");
	my $e = $envelope{ $row->{message_id} };
	is($e->{mail_from}, 'info@example.jp', "$who: envelope sender");
	is_deeply($e->{rcpt_to}, [$who], "$who: envelope recipient");
}
is( psql(q{SELECT count(*) FROM taskflow.event WHERE kind = 'mail_sent'}),
	'2', 'each member\'s timeline shows mail_sent');
is( psql(q{SELECT string_agg(outcome || ' ' || smtp_code || ' ' || reply, ', ')
			 FROM (SELECT DISTINCT outcome, smtp_code, reply FROM taskflow.delivery_attempt) a}),
	'sent 250 250 2.0.0 OK queued',
	'the attempts keep the server\'s reply');

# ---- 3. connections: reused, in parallel ------------------------------------

my $n = 300;
$t0 = Time::HiRes::time();
DeliveryTest::mail_chain($node,
	name => '一斉配信',
	members => [ map { [ sprintf('会員%03d', $_), sprintf('member%03d@example.jp', $_) ] } 1 .. $n ]);
my $queued = Time::HiRes::time() - $t0;
$took = DeliveryTest::wait_for($node,
	"SELECT count(*) = $n FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id)"
	  . " WHERE c.name = '一斉配信' AND o.state = 'sent'",
	seconds => 60);
ok(defined $took, "all $n messages sent");
my @received = DeliveryTest::received($smtp);
my %sessions = map { $_->{session} => 1 } @received;
my %wave_sessions = map { $_->{session} => 1 } grep { $_->{rcpt_to}[0] =~ /^member/ } @received;
cmp_ok(scalar keys %wave_sessions, '>=', 2, 'messages went over several connections at once');
cmp_ok(scalar keys %sessions, '<=', 4,
	'at most channel.connections (4) connections for all ' . scalar(@received)
	  . ' messages: connections are reused across messages and batches');
is(scalar @received, $n + 2, 'every message reached the server once');
my ($batches, $ms) = split /\|/, psql(
	q{SELECT batches, round(last_batch_ms) FROM taskflow.delivery_status WHERE worker = 1});
note(sprintf('%d messages: queued by the scheduler in %.2fs, then sent in %.2fs '
		  . '(%.0f messages/s) over %d connections; %d batches so far, the last took %d ms',
		$n, $queued, $took // -1, $n / (($took // 1) || 1), scalar keys %wave_sessions,
		$batches, $ms));

# ---- 4. the SMTP password comes from its file only -------------------------

is( psql(q{SELECT count(*) FROM pg_settings WHERE setting LIKE '%s3cret-pass%'}) . ' '
	  . psql(q{SELECT count(*) FROM taskflow.channel c WHERE c::text LIKE '%s3cret-pass%'}),
	'0 0', 'the password is in no setting and no table');

DeliveryTest::write_file($password_file, "wrong-pass\n");
DeliveryTest::mail_chain($node, name => 'パスワード確認',
	members => [ [ '鈴木一郎', 'suzuki@example.jp' ] ]);
ok( defined DeliveryTest::wait_for($node,
		q{SELECT last_smtp_code = 535 AND state = 'deferred' FROM taskflow.outbox
		   WHERE recipient = 'suzuki@example.jp'}),
	'a changed password file is read at once: the server refuses it (535), the message is deferred, not failed')
  or diag(psql(q{SELECT outbox_id, recipient, state, last_smtp_code, last_reply FROM taskflow.outbox WHERE outbox_id > 300}));
DeliveryTest::write_file($password_file, "s3cret-pass\n");
ok( defined DeliveryTest::wait_for($node,
		q{SELECT state = 'sent' FROM taskflow.outbox WHERE recipient = 'suzuki@example.jp'},
		seconds => 10),
	'the right password back in the file: the retry is sent');

# ---- 5. guardrails, with the real worker -----------------------------------

# more channels on the same server, one per guardrail
psql(<<"SQL");
SELECT taskflow.configure_channel(c, kind => 'smtp', url => '$smtp->{url}',
	require_starttls => false, username => 'taskflow', password_file => '$password_file',
	backoff_base => '1 second')
  FROM unnest(ARRAY['news', 'qa', 'rate', 'quiet', 'quota']) c;
SELECT taskflow.configure_channel('news', enabled => false);
SELECT taskflow.configure_channel('qa', test_recipients => ARRAY['qa\@example.jp'],
	unsubscribe_url => 'https://example.jp/unsubscribe?m={{member_id}}&t={{token}}');
SELECT taskflow.configure_channel('rate', rate_per_second => 5);
SELECT taskflow.configure_channel('quota', daily_quota => 3, quota_time_zone => 'Asia/Tokyo');
-- quiet from an hour ago to an hour from now, Tokyo time (the chain's zone)
SELECT taskflow.configure_channel('quiet',
	quiet_start => ((now() AT TIME ZONE 'Asia/Tokyo') - interval '1 hour')::time,
	quiet_end => ((now() AT TIME ZONE 'Asia/Tokyo') + interval '1 hour')::time);
SQL

# unsubscribed after the message was queued: never sent
DeliveryTest::mail_chain($node, name => 'メルマガ', channel => 'news',
	members => [ [ '高橋美咲', 'takahashi@example.jp' ], [ '田中健太', 'tanaka@example.jp' ],
				 [ '伊藤直子', 'ito@example.jp' ] ]);
is(DeliveryTest::states($node, 'メルマガ'), 'pending:3', 'channel disabled: three messages wait');
psql(q{SELECT taskflow.unsubscribe(member_id) FROM taskflow.member WHERE email = 'tanaka@example.jp'});
psql(q{SELECT taskflow.configure_channel('news', enabled => true)});
ok( defined DeliveryTest::wait_for($node,
		q{SELECT string_agg(recipient || ':' || state, ' ' ORDER BY recipient) =
				 'ito@example.jp:sent takahashi@example.jp:sent tanaka@example.jp:cancelled'
			FROM taskflow.outbox o JOIN taskflow.chain c USING (chain_id) WHERE c.name = 'メルマガ'}),
	'the member who unsubscribed after queueing is cancelled at claim time, the others sent')
  or diag(psql(q{SELECT outbox_id, recipient, state, state_reason, last_reply FROM taskflow.outbox WHERE channel = 'news'}));
ok(!grep({ $_->{rcpt_to}[0] eq 'tanaka@example.jp' } DeliveryTest::received($smtp)),
	'nothing reached the server for the unsubscribed member');

# a test chain: only the channel's test recipients get its mail
DeliveryTest::mail_chain($node, name => 'テスト配信', channel => 'qa', test => 1,
	members => [ [ '渡辺さくら', 'watanabe@example.jp' ], [ '小林誠', 'kobayashi@example.jp' ] ]);
ok( defined DeliveryTest::wait_for($node, q{SELECT 'sent:2' = }
		  . q{(SELECT string_agg(state || ':' || n, ' ') FROM (SELECT state, count(*) n FROM taskflow.outbox o
			   JOIN taskflow.chain c USING (chain_id) WHERE c.name = 'テスト配信' GROUP BY 1) s)}),
	'the test chain\'s two messages are sent');
my @qa = grep { $_->{rcpt_to}[0] eq 'qa@example.jp' } DeliveryTest::received($smtp);
is(scalar @qa, 2, 'both went to the test recipient qa@example.jp');
ok(!grep({ $_->{rcpt_to}[0] =~ /watanabe|kobayashi/ } DeliveryTest::received($smtp)),
	'none to the members themselves');
is( psql(q{SELECT string_agg(original_recipient || '>' || recipient, ' ' ORDER BY original_recipient)
			 FROM taskflow.outbox WHERE channel = 'qa'}),
	'kobayashi@example.jp>qa@example.jp watanabe@example.jp>qa@example.jp',
	'the outbox keeps the member\'s address as original_recipient');
my %qa_mail = map { $_->{message_id} => $_ } DeliveryTest::mails($smtp);
is( join(' ', sort map { $qa_mail{ $_->{message_id} }{to} } @qa),
	'qa@example.jp qa@example.jp', 'the To header names the test recipient');
ok( !grep({ defined $qa_mail{ $_->{message_id} }{list_unsubscribe}
			  || defined $qa_mail{ $_->{message_id} }{list_unsubscribe_post} } @qa),
	'no List-Unsubscribe (nor one-click Post) in test mail: a tester cannot unsubscribe the real member');

# the rate limit: 5 per second
DeliveryTest::mail_chain($node, name => '速度制限', channel => 'rate',
	members => [ map { [ "会員R$_", "rate$_\@example.jp" ] } 1 .. 12 ]);
$took = DeliveryTest::wait_for($node,
	q{SELECT count(*) = 12 FROM taskflow.outbox WHERE channel = 'rate' AND state = 'sent'},
	seconds => 20);
ok(defined $took, 'rate-limited channel: all 12 messages sent in the end');
# the channel's windows are whole seconds of the clock; a message counts
# in the second it was claimed (its attempt's started_at)
my $per_second = psql(q{SELECT string_agg(n::text, ' ' ORDER BY s) FROM (
	SELECT floor(extract(epoch FROM a.started_at)) s, count(*) n
	  FROM taskflow.delivery_attempt a JOIN taskflow.outbox o USING (outbox_id)
	 WHERE o.channel = 'rate' GROUP BY 1) x});
my @per_second = split / /, $per_second;
ok(@per_second >= 3 && !grep({ $_ > 5 } @per_second),
	"at most 5 claimed in any second of the clock, over at least 3 seconds ($per_second)");
note(sprintf('12 messages at 5/s took %.2fs', $took // -1));

# quiet hours: deferred to their end, not dropped
DeliveryTest::mail_chain($node, name => '深夜配信', channel => 'quiet',
	members => [ [ '加藤愛', 'kato@example.jp' ], [ '山本大輔', 'yamamoto@example.jp' ] ]);
ok( defined DeliveryTest::wait_for($node,
		q{SELECT count(*) = 2 FROM taskflow.outbox
		   WHERE channel = 'quiet' AND state = 'deferred'
			 AND not_before BETWEEN now() + interval '55 minutes' AND now() + interval '61 minutes'}),
	'quiet hours: both messages deferred to the end of the quiet period, an hour from now');
ok(!grep({ $_->{rcpt_to}[0] =~ /kato|yamamoto/ } DeliveryTest::received($smtp)),
	'nothing sent during quiet hours');
psql(q{SELECT taskflow.configure_channel('quiet', reset => ARRAY['quiet_start', 'quiet_end']);
	   SELECT taskflow.retry_message(outbox_id) FROM taskflow.outbox WHERE channel = 'quiet'});
ok( defined DeliveryTest::wait_for($node,
		q{SELECT count(*) = 2 FROM taskflow.outbox WHERE channel = 'quiet' AND state = 'sent'}),
	'quiet hours lifted and the messages retried: both sent');

# the daily quota: 3 today, the rest tomorrow
DeliveryTest::mail_chain($node, name => '上限確認', channel => 'quota',
	members => [ map { [ "会員Q$_", "quota$_\@example.jp" ] } 1 .. 5 ]);
ok( defined DeliveryTest::wait_for($node,
		q{SELECT string_agg(state || ':' || n, ' ' ORDER BY state) = 'deferred:2 sent:3' FROM (
			SELECT state, count(*) n FROM taskflow.outbox WHERE channel = 'quota' GROUP BY 1) s}),
	'daily quota 3: three sent, two deferred');
is( psql(q{SELECT bool_and(not_before = date_trunc('day', now() AT TIME ZONE 'Asia/Tokyo')
							  AT TIME ZONE 'Asia/Tokyo' + interval '1 day')
			 FROM taskflow.outbox WHERE channel = 'quota' AND state = 'deferred'}),
	't', 'the two wait for the next day in the quota\'s time zone');
is(scalar(grep { $_->{rcpt_to}[0] =~ /^quota/ } DeliveryTest::received($smtp)), 3,
	'the server received exactly three of them');

# ---- 6. a held database ----------------------------------------------------

psql(<<"SQL");
SELECT taskflow.configure_channel('held', kind => 'smtp', url => '$smtp->{url}',
	require_starttls => false, username => 'taskflow', password_file => '$password_file',
	enabled => false);
SQL
DeliveryTest::mail_chain($node, name => '点検中の配信', channel => 'held',
	members => [ [ '中村愛', 'nakamura@example.jp' ] ]);
psql(q{SELECT taskflow.hold_automation('点検中');
	   SELECT taskflow.configure_channel('held', enabled => true)});
ok( defined DeliveryTest::wait_for($node,
		q{SELECT bool_and(state = 'held' AND last_error LIKE '点検中 (held since %resume_automation()%')
			FROM taskflow.delivery_status}),
	'held: delivery_status says held, and why, in last_error')
  or diag(psql('SELECT * FROM taskflow.delivery_status'));
sleep(2);
is(DeliveryTest::states($node, '点検中の配信'), 'pending:1', 'nothing is sent while held');
psql(q{SELECT taskflow.resume_automation()});
ok( defined DeliveryTest::wait_for($node,
		q{SELECT state = 'sent' FROM taskflow.outbox WHERE recipient = 'nakamura@example.jp'}),
	'resumed: the message is sent');
is( psql(q{SELECT string_agg(state || ':' || coalesce(last_error, ''), ',') FROM taskflow.delivery_status}),
	'running:', 'delivery_status says running again, with no error');

# ---- 7. no errors ------------------------------------------------------------

is(psql(q{SELECT count(*) FROM taskflow.delivery_status WHERE last_error IS NOT NULL}),
	'0', 'the worker recorded no error');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|PANIC|TRAP:/, 'no crash in the server log');

$node->stop;
done_testing();
