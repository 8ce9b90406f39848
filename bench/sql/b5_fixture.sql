-- bench/sql/b5_fixture.sql — benchmark 5 (delivery): :n pending outbox rows
-- for the 'email' channel (pointed at :'smtp_url', disabled until the
-- measurement starts), one per member, with a Japanese subject and body.
SELECT taskflow.create_template('b5:案内', '{{name}}様、今月のご案内',
	E'{{name}}様\n\nいつもご利用ありがとうございます。\n今月のご案内をお送りします。',
	sender_name => '会員事務局', sender_address => 'info@example.jp');
SELECT taskflow.configure_channel('email', url => :'smtp_url', require_starttls => false,
	connections => :connections, enabled => false);
INSERT INTO taskflow.outbox (chain_id, step_id, member_id, iteration, template_id, channel,
	   recipient, sender_name, sender_address, subject, body_text, state, created_at,
	   not_before, time_zone)
SELECT 0, 0, m.member_id, 1, t.template_id, 'email', m.email, '会員事務局', 'info@example.jp',
	   m.name || '様、今月のご案内',
	   m.name || E'様\n\nいつもご利用ありがとうございます。\n今月のご案内をお送りします。\n\n'
	   || repeat(E'会員サイトでは新しい講座を公開しました。ぜひご覧ください。\n', 8),
	   'pending', now(), now(), 'Asia/Tokyo'
  FROM taskflow.member m, taskflow.template t
 WHERE m.member_id <= :n AND t.name = 'b5:案内';
