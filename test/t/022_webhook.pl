# 022_webhook.pl — a webhook channel (a LINE or SMS gateway) driven by the
# delivery worker against a local HTTP server on 127.0.0.1 that checks the
# signature: the JSON payload rendered by the template arrives intact, with
# Content-Type application/json, an X-Taskflow-Signature the receiver can
# verify with the shared secret, and an Idempotency-Key (the Message-ID)
# that stays the same on every retry; 500 is retried until 200; 400 fails
# the message at once; a wrong secret is refused by the receiver (401) and
# the message fails.

use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use DeliveryTest;

my $node = DeliveryTest::node('webhook');
my $hook = DeliveryTest::start_webhook($node, name => 'line', secret => 'line-secret-値',
	fail_first => 2);
my $refusing = DeliveryTest::start_webhook($node, name => 'sms', status => 400);
my $wrong_secret = DeliveryTest::write_file($node->basedir . '/wrong-secret', "not-the-secret\n");
sub psql { return DeliveryTest::psql($node, shift) }

psql(<<"SQL");
SELECT taskflow.configure_channel('line', kind => 'webhook', url => '$hook->{url}',
	webhook_secret_file => '$hook->{secret_file}', message_id_domain => 'hook.example.jp',
	backoff_base => '1 second', backoff_max => '1 minute');
SELECT taskflow.configure_channel('sms', kind => 'webhook', url => '$refusing->{url}',
	webhook_secret_file => '$refusing->{secret_file}', backoff_base => '1 second');
SELECT taskflow.configure_channel('line_bad', kind => 'webhook', url => '$hook->{url}',
	webhook_secret_file => '$wrong_secret', backoff_base => '1 second');
SQL

my $body = '{"to": "{{email}}", "messages": [{"type": "text", '
  . '"text": "{{name}}様、ご予約ありがとうございます。"}]}';

# ---- 1. payload, signature, idempotency key, retries -----------------------

my $t0 = Time::HiRes::time();
DeliveryTest::mail_chain($node, name => '予約通知', channel => 'line', body_text => $body,
	members => [ [ '山田太郎', 'yamada@example.jp' ], [ '佐藤花子', 'sato@example.jp' ] ]);
my $took = DeliveryTest::wait_for($node,
	q{SELECT count(*) = 2 FROM taskflow.outbox WHERE channel = 'line' AND state = 'sent'},
	seconds => 15);
ok(defined $took, 'both webhook messages are sent in the end');
note(sprintf('two messages, each answered 500, 500, then 200: all sent %.1fs after the chain was created',
		Time::HiRes::time() - $t0));

my @req = DeliveryTest::requests($hook);
is(scalar @req, 6, 'the receiver got three requests per message');
ok(!grep({ !$_->{signature_ok} } @req), 'every request carries a valid signature');
ok(!grep({ $_->{content_type} !~ m{^application/json} } @req), 'every request is application/json');
is(join(' ', sort { $a cmp $b } keys %{ { map { ($_->{recipient} // '') => 1 } @req } }),
	'sato@example.jp yamada@example.jp',
	'every request names its member\'s address (X-Taskflow-Recipient)');
my %by_key;
push @{ $by_key{ $_->{key} } }, $_ foreach @req;
is( join(' ', sort keys %by_key),
	psql(q{SELECT string_agg(message_id, ' ' ORDER BY message_id) FROM taskflow.outbox
			WHERE channel = 'line'}),
	'the Idempotency-Key is the message\'s Message-ID');
foreach my $key (sort keys %by_key)
{
	my @r = @{ $by_key{$key} };
	is(join(',', map { $_->{status} } @r), '500,500,200', "$key: 500, 500, then 200");
	is(scalar(keys %{ { map { $_->{raw} => 1 } @r } }), 1, "$key: the same body on every attempt");
}
my %payload = map { $_->{body}{to} => $_->{body} } grep { $_->{status} == 200 } @req;
is_deeply(
	$payload{'yamada@example.jp'},
	{ to => 'yamada@example.jp',
	  messages => [ { type => 'text', text => '山田太郎様、ご予約ありがとうございます。' } ] },
	'the JSON payload arrives as rendered, Japanese text intact');
is( psql(q{SELECT string_agg(a.outcome || ' ' || a.smtp_code, ', ' ORDER BY a.attempt_id)
			 FROM taskflow.delivery_attempt a JOIN taskflow.outbox o USING (outbox_id)
			WHERE o.recipient = 'sato@example.jp'}),
	'temporary 500, temporary 500, sent 200',
	'the attempts: two temporary failures (500), then sent (200)');

# ---- 2. 400: failed at once; a wrong secret: refused -------------------------

DeliveryTest::mail_chain($node, name => 'SMS通知', channel => 'sms', body_text => $body,
	members => [ [ '鈴木一郎', 'suzuki@example.jp' ] ]);
ok( defined DeliveryTest::wait_for($node,
		q{SELECT state || ' ' || attempts || ' ' || last_smtp_code = 'failed 1 400'
			FROM taskflow.outbox WHERE channel = 'sms'}),
	'400: the message fails at once, not retried');
like(psql(q{SELECT last_reply FROM taskflow.outbox WHERE channel = 'sms'}),
	qr/^HTTP\/1\.[01] 400/, 'the reply keeps the status line');

DeliveryTest::mail_chain($node, name => '署名確認', channel => 'line_bad', body_text => $body,
	members => [ [ '高橋美咲', 'takahashi@example.jp' ] ]);
ok( defined DeliveryTest::wait_for($node,
		q{SELECT state || ' ' || last_smtp_code = 'failed 401'
			FROM taskflow.outbox WHERE channel = 'line_bad'}),
	'signed with another secret: the receiver refuses it (401) and the message fails');
ok((grep { $_->{key} && !$_->{signature_ok} && $_->{status} == 401 } DeliveryTest::requests($hook)),
	'the receiver saw a signature it could not verify');

is( psql(q{SELECT count(*) FROM pg_settings WHERE setting LIKE '%line-secret%'}) . ' '
	  . psql(q{SELECT count(*) FROM taskflow.channel c WHERE c::text LIKE '%line-secret%'}),
	'0 0', 'the secret is in no setting and no table');

$node->stop;
done_testing();
