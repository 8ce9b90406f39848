-- taskflow install script, part 40: delivery channels.
--
-- A channel is where messages go: an SMTP relay (kind smtp, url smtp://… or
-- smtps://…) or an HTTP endpoint such as a LINE or SMS gateway (kind
-- webhook, url https://…), with its guardrails (rate limit, daily quota,
-- quiet hours, frequency cap), its retry policy and its test recipients.
-- 'email' and 'webhook' exist from the start; users add more.  A channel
-- names server files (password_file, webhook_secret_file) the delivery
-- worker reads, so only superusers write channels, through
-- taskflow.configure_channel() and taskflow.drop_channel().  The state
-- machine that uses them is src/sql/41_delivery.sql; see doc/delivery.md.

-- External relays on other machines drain the outbox through
-- taskflow.claim_messages() / complete_messages() as a member of this role.
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles
				   WHERE rolname OPERATOR(pg_catalog.=) 'taskflow_relay') THEN
		CREATE ROLE taskflow_relay NOLOGIN;
	END IF;
END
$roles$;
GRANT USAGE ON SCHEMA taskflow TO taskflow_relay;

CREATE TABLE taskflow.channel (
	name		text PRIMARY KEY
				CHECK (name OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]{0,62}$'),
	kind		text NOT NULL
				CHECK (kind OPERATOR(pg_catalog.=) ANY (ARRAY['smtp', 'webhook'])),
	description text,
	url			text,
	require_starttls boolean NOT NULL DEFAULT true,
	username	text,
	password_file text,
	webhook_secret_file text,
	connect_timeout_ms integer NOT NULL DEFAULT 10000,
	timeout_ms	integer NOT NULL DEFAULT 60000,
	connections integer NOT NULL DEFAULT 4,
	rate_per_second integer,
	daily_quota integer,
	quota_time_zone text NOT NULL,
	quiet_start time,
	quiet_end	time,
	max_per_member integer,
	per_member_window interval,
	max_attempts integer NOT NULL DEFAULT 8,
	backoff_base interval NOT NULL DEFAULT '1 minute',
	backoff_max interval NOT NULL DEFAULT '6 hours',
	test_recipients text[],
	message_id_domain text,
	list_id		text,
	unsubscribe_url text,
	enabled		boolean NOT NULL DEFAULT true,
	builtin		boolean NOT NULL DEFAULT false,
	-- the rate limit's window: the second it counts and the claims in it
	rate_window_start timestamptz,
	rate_window_count integer NOT NULL DEFAULT 0,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	recipient_property text,
	CHECK ((quiet_start IS NULL) OPERATOR(pg_catalog.=) (quiet_end IS NULL)),
	CHECK ((max_per_member IS NULL) OPERATOR(pg_catalog.=) (per_member_window IS NULL))
);
COMMENT ON TABLE taskflow.channel IS
	'Delivery channels (SMTP relays, webhooks) with guardrails and retry policy; write them with taskflow.configure_channel()';
COMMENT ON COLUMN taskflow.channel.password_file IS
	'A server file holding the SMTP password, read by the delivery worker at connect time';
COMMENT ON COLUMN taskflow.channel.quiet_start IS
	'Quiet hours start, local time in the chain''s time zone; messages are deferred, never dropped';
COMMENT ON COLUMN taskflow.channel.test_recipients IS
	'Where messages of chains marked test go instead of to the member';
COMMENT ON COLUMN taskflow.channel.recipient_property IS
	'The custom property holding each member''s address on this channel (a phone number, a LINE id); NULL: the e-mail address';

-- The built-in channels; configure them with taskflow.configure_channel().
-- The daily quota counts days in the server's time zone until configured.
INSERT INTO taskflow.channel (name, kind, description, quota_time_zone, builtin)
SELECT x.name, x.kind, x.description, s.reset_val, true
  FROM (VALUES ('email', 'smtp', 'E-mail through an SMTP relay'),
			   ('webhook', 'webhook', 'HTTP POST of a JSON body (LINE, SMS gateways)'))
	   AS x (name, kind, description),
	   pg_catalog.pg_settings s
 WHERE s.name OPERATOR(pg_catalog.=) 'TimeZone';

-- Templates name their channel.
ALTER TABLE taskflow.template
	ADD CONSTRAINT template_channel_fkey FOREIGN KEY (channel)
	REFERENCES taskflow.channel (name) ON UPDATE CASCADE;

-- pg_dump keeps every channel, the built-in ones too (their configuration
-- is user data).  CREATE EXTENSION in the restored database creates the
-- built-in rows first; the dumped row then replaces it.
CREATE FUNCTION taskflow._channel_restore()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NEW.builtin THEN
		DELETE FROM taskflow.channel c
		 WHERE c.name OPERATOR(pg_catalog.=) NEW.name AND c.builtin;
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER restore_builtin BEFORE INSERT ON taskflow.channel
	FOR EACH ROW EXECUTE FUNCTION taskflow._channel_restore();

SELECT pg_catalog.pg_extension_config_dump('taskflow.channel', '');

-- Event kinds of delivery outcomes on the member's timeline (mail_sent and
-- mail_failed are in part 10).
INSERT INTO taskflow.event_kind (kind, description, builtin) VALUES
	('mail_deferred', 'A message could not be delivered yet and will be retried', true),
	('mail_cancelled', 'A message was not sent (unsubscribed, suppressed, cancelled)', true);

---------------------------------------------------------------- validation

-- Raises unless a path names an existing regular file on the server.
CREATE FUNCTION taskflow._check_server_file(channel_name text, setting text, path text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	st record;
BEGIN
	IF path OPERATOR(pg_catalog.!~) '^/' OR path OPERATOR(pg_catalog.~) '[[:cntrl:]]' THEN
		RAISE EXCEPTION '% of channel "%" must be an absolute path, not %', setting, channel_name,
			to_json(path)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Name a file on the database server, for example /etc/taskflow/smtp-password; the delivery worker reads it.';
	END IF;
	SELECT * INTO st FROM pg_catalog.pg_stat_file(path, true);
	IF st.size IS NULL THEN
		RAISE EXCEPTION '% of channel "%": file "%" does not exist', setting, channel_name, path
			USING ERRCODE = 'undefined_file',
				  HINT = 'Create the file on the database server first, readable by the server''s operating-system user.';
	END IF;
	IF st.isdir THEN
		RAISE EXCEPTION '% of channel "%": "%" is a directory', setting, channel_name, path
			USING ERRCODE = 'wrong_object_type',
				  HINT = 'Name the file that holds the secret.';
	END IF;
END
$$;

-- Raises unless the URL fits the channel's kind: smtp://host[:port] or
-- smtps://host[:port] for smtp, http(s)://host[:port][/path] for webhook;
-- credentials never in the URL.
CREATE FUNCTION taskflow._check_channel_url(c taskflow.channel)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	m text[];
	scheme text := lower(substring(c.url FROM '^([A-Za-z][A-Za-z0-9+.-]*)://'));
BEGIN
	IF c.url IS NULL THEN
		RETURN;
	END IF;
	IF scheme IS NULL OR NOT scheme OPERATOR(pg_catalog.=) ANY
		(CASE c.kind WHEN 'smtp' THEN ARRAY['smtp', 'smtps'] ELSE ARRAY['http', 'https'] END) THEN
		RAISE EXCEPTION 'url % does not fit % channel "%"', to_json(c.url), c.kind, c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = CASE c.kind WHEN 'smtp'
							  THEN 'An smtp channel has url smtp://host:587 (STARTTLS) or smtps://host:465 (TLS).'
							  ELSE 'A webhook channel has url https://host/path.' END;
	END IF;
	-- before anything else: a line break would let the url add protocol lines
	IF c.url OPERATOR(pg_catalog.~) '[[:cntrl:][:space:]]' THEN
		RAISE EXCEPTION 'url % of channel "%" contains a line break, control character or space',
			to_json(c.url), c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A url is one word, for example smtp://mail.example.jp:587 or https://gateway.example.jp/send.';
	END IF;
	IF c.url OPERATOR(pg_catalog.~) '^[^/]*//[^/?#]*@' THEN
		RAISE EXCEPTION 'url of channel "%" contains credentials', c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give username => ... and password_file => ''/path/to/file''; a password never goes into a table.';
	END IF;
	m := regexp_match(c.url, CASE c.kind
		WHEN 'smtp' THEN '^[a-z]+://([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:([0-9]{1,5}))?/?$'
		ELSE '^[a-z]+://([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:([0-9]{1,5}))?(/[^[:space:][:cntrl:]#]*)?$' END, 'i');
	IF m IS NULL THEN
		RAISE EXCEPTION 'invalid url % for channel "%"', to_json(c.url), c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = CASE c.kind WHEN 'smtp'
							  THEN 'Write smtp://host[:port] or smtps://host[:port], without a path.'
							  ELSE 'Write https://host[:port]/path, without spaces.' END;
	END IF;
	IF m[4] IS NOT NULL AND (m[4]::integer OPERATOR(pg_catalog.<) 1
							 OR m[4]::integer OPERATOR(pg_catalog.>) 65535) THEN
		RAISE EXCEPTION 'port % in the url of channel "%" is out of range', m[4], c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A port is between 1 and 65535.';
	END IF;
END
$$;

-- Raises unless an optional integer setting is within [low, high].
CREATE FUNCTION taskflow._check_channel_range(channel_name text, setting text, value bigint,
											  low bigint, high bigint, hint text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF value OPERATOR(pg_catalog.<) low OR value OPERATOR(pg_catalog.>) high THEN
		RAISE EXCEPTION '% % of channel "%" is out of range (% to %)', setting, value, channel_name,
			low, high
			USING ERRCODE = 'invalid_parameter_value', HINT = hint;
	END IF;
END
$$;

-- Raises unless the guardrails of a channel are consistent: rate, quota,
-- quiet hours, frequency cap.
CREATE FUNCTION taskflow._check_channel_guardrails(c taskflow.channel)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM taskflow._check_channel_range(c.name, 'rate_per_second', c.rate_per_second, 1, 100000,
		'Messages per second the channel may start; reset it (reset => ARRAY[''rate_per_second'']) for no limit.');
	PERFORM taskflow._check_channel_range(c.name, 'daily_quota', c.daily_quota, 1, 100000000,
		'Messages per day (in quota_time_zone); reset it (reset => ARRAY[''daily_quota'']) for no quota.');
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_timezone_names z
				   WHERE z.name OPERATOR(pg_catalog.=) c.quota_time_zone) THEN
		RAISE EXCEPTION 'unknown time zone % for the daily quota of channel "%"',
			coalesce(quote_literal(c.quota_time_zone), 'NULL'), c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use a name from pg_timezone_names, for example Asia/Tokyo.';
	END IF;
	IF (c.quiet_start IS NULL) OPERATOR(pg_catalog.<>) (c.quiet_end IS NULL) THEN
		RAISE EXCEPTION 'quiet hours of channel "%" need both quiet_start and quiet_end', c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example quiet_start => ''21:00'', quiet_end => ''08:00'' (local time of each chain).';
	END IF;
	IF c.quiet_start OPERATOR(pg_catalog.=) c.quiet_end THEN
		RAISE EXCEPTION 'quiet hours of channel "%" start and end at the same time (%)', c.name,
			to_char(c.quiet_start, 'HH24:MI')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give a start and an end that differ; reset both for no quiet hours.';
	END IF;
	IF (c.max_per_member IS NULL) OPERATOR(pg_catalog.<>) (c.per_member_window IS NULL) THEN
		RAISE EXCEPTION 'the frequency cap of channel "%" needs both max_per_member and per_member_window', c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example max_per_member => 3, per_member_window => ''1 day''.';
	END IF;
	PERFORM taskflow._check_channel_range(c.name, 'max_per_member', c.max_per_member, 1, 10000,
		'How many marketing messages a member may get within per_member_window.');
	IF c.per_member_window OPERATOR(pg_catalog.<) interval '1 minute'
	   OR c.per_member_window OPERATOR(pg_catalog.>) interval '366 days' THEN
		RAISE EXCEPTION 'per_member_window % of channel "%" is out of range', c.per_member_window, c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use between 1 minute and 366 days, for example ''1 day'' or ''7 days''.';
	END IF;
END
$$;

-- Raises unless the retry policy and limits of a channel are sensible.
CREATE FUNCTION taskflow._check_channel_retries(c taskflow.channel)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM taskflow._check_channel_range(c.name, 'connect_timeout_ms', c.connect_timeout_ms, 100, 600000,
		'Milliseconds to wait for a connection, for example 10000.');
	PERFORM taskflow._check_channel_range(c.name, 'timeout_ms', c.timeout_ms, 100, 3600000,
		'Milliseconds one message may take in all, for example 60000.');
	IF c.timeout_ms OPERATOR(pg_catalog.<) c.connect_timeout_ms THEN
		RAISE EXCEPTION 'timeout_ms (%) of channel "%" is shorter than its connect_timeout_ms (%)',
			c.timeout_ms, c.name, c.connect_timeout_ms
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'timeout_ms covers the whole message, connecting included.';
	END IF;
	PERFORM taskflow._check_channel_range(c.name, 'connections', c.connections, 1, 64,
		'Parallel connections per delivery worker, for example 4.');
	PERFORM taskflow._check_channel_range(c.name, 'max_attempts', c.max_attempts, 1, 100,
		'Attempts before a temporarily failing message is given up (failed), for example 8.');
	IF c.backoff_base OPERATOR(pg_catalog.<) interval '1 second'
	   OR c.backoff_max OPERATOR(pg_catalog.>) interval '7 days'
	   OR c.backoff_max OPERATOR(pg_catalog.<) c.backoff_base THEN
		RAISE EXCEPTION 'backoff of channel "%" is out of range (base %, max %)', c.name,
			c.backoff_base, c.backoff_max
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'backoff_base is at least 1 second, backoff_max at least backoff_base and at most 7 days.';
	END IF;
END
$$;

-- Raises unless the texts a channel puts into mail are valid: test
-- recipients, Message-ID domain, List-Id, unsubscribe URL.
CREATE FUNCTION taskflow._check_channel_mail(c taskflow.channel)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	bad text;
BEGIN
	IF c.test_recipients IS NOT NULL THEN
		IF cardinality(c.test_recipients) OPERATOR(pg_catalog.=) 0 THEN
			RAISE EXCEPTION 'test_recipients of channel "%" is empty', c.name
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Give at least one address, or reset test_recipients: mail of test chains is then not sent at all.';
		END IF;
		SELECT r INTO bad FROM unnest(c.test_recipients) r
		 WHERE r IS NULL OR CASE c.kind WHEN 'smtp' THEN NOT taskflow.is_valid_email(r)
									 ELSE r OPERATOR(pg_catalog.~) '[[:cntrl:][:space:]]' OR r OPERATOR(pg_catalog.=) '' END
		 LIMIT 1;
		IF FOUND THEN
			RAISE EXCEPTION 'invalid test recipient % for channel "%"', coalesce(to_json(bad)::text, 'NULL'), c.name
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = CASE c.kind WHEN 'smtp' THEN 'Each test recipient is one address like staff@example.jp.'
								  ELSE 'Each test recipient is one recipient id, without spaces.' END;
		END IF;
	END IF;
	IF c.message_id_domain OPERATOR(pg_catalog.!~)
	   '^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$' THEN
		RAISE EXCEPTION 'invalid message_id_domain % for channel "%"', to_json(c.message_id_domain), c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A domain name like mail.example.jp; Message-IDs are <outbox_id.chain_id@domain>.';
	END IF;
	IF c.list_id OPERATOR(pg_catalog.~) '[[:cntrl:]]'
	   OR c.list_id OPERATOR(pg_catalog.!~) '^([^<>]*<)?[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+)+>?$'
	   OR (c.list_id OPERATOR(pg_catalog.~) '<') OPERATOR(pg_catalog.<>) (c.list_id OPERATOR(pg_catalog.~) '>$') THEN
		RAISE EXCEPTION 'invalid list_id % for channel "%"', to_json(c.list_id), c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A List-Id (RFC 2919) like ''会員サイトのお知らせ <news.example.jp>'' or ''news.example.jp'', on one line.';
	END IF;
	IF c.unsubscribe_url IS NOT NULL THEN
		IF c.unsubscribe_url OPERATOR(pg_catalog.!~) '^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^[:space:][:cntrl:]<>"]*)?$' THEN
			RAISE EXCEPTION 'invalid unsubscribe_url % for channel "%"', to_json(c.unsubscribe_url), c.name
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'An https:// URL without spaces, for example https://example.jp/unsubscribe?m={{member_id}}&t={{token}}.';
		END IF;
		SELECT x[1] INTO bad FROM regexp_matches(c.unsubscribe_url, '\{\{([^}]*)\}\}', 'g') x
		 WHERE NOT x[1] OPERATOR(pg_catalog.=) ANY (ARRAY['member_id', 'token']) LIMIT 1;
		IF FOUND THEN
			RAISE EXCEPTION 'unknown placeholder {{%}} in the unsubscribe_url of channel "%"', bad, c.name
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'The placeholders are {{member_id}} and {{token}}.';
		END IF;
	END IF;
END
$$;

-- Raises unless a channel's recipient property is a custom property that
-- can hold its members' addresses: of type email on an e-mail channel,
-- text or email on a webhook one.
CREATE FUNCTION taskflow._check_channel_recipient(c taskflow.channel)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t text;
BEGIN
	IF c.recipient_property IS NULL THEN
		RETURN;
	END IF;
	SELECT p.type INTO t FROM taskflow.custom_property p
	 WHERE p.name OPERATOR(pg_catalog.=) c.recipient_property;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown property "%" for the recipients of channel "%"',
						c.recipient_property, c.name
			USING ERRCODE = 'undefined_object',
				  HINT = 'Define it first with taskflow.define_property(), for example (''phone'', ''text'').';
	END IF;
	IF t OPERATOR(pg_catalog.<>) ALL (CASE c.kind WHEN 'smtp' THEN ARRAY['email']
												  ELSE ARRAY['text', 'email'] END) THEN
		RAISE EXCEPTION 'property "%" of type % cannot hold the recipients of channel "%"',
						c.recipient_property, t, c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = CASE c.kind WHEN 'smtp' THEN 'An e-mail channel needs a property of type email.'
							  ELSE 'A webhook channel needs a property of type text or email.' END;
	END IF;
END
$$;

-- Raises, with a clear message, unless a channel is valid.
CREATE FUNCTION taskflow._check_channel(c taskflow.channel)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF c.name IS NULL OR c.name OPERATOR(pg_catalog.!~) '^[a-z][a-z0-9_]{0,62}$' THEN
		RAISE EXCEPTION 'invalid channel name %', coalesce(to_json(c.name)::text, 'NULL')
			USING ERRCODE = 'invalid_name',
				  HINT = 'A channel name is lower-case letters, digits and _, starting with a letter (for example line or sms).';
	END IF;
	IF c.kind IS NULL OR NOT c.kind OPERATOR(pg_catalog.=) ANY (ARRAY['smtp', 'webhook']) THEN
		RAISE EXCEPTION 'invalid kind % for channel "%"', coalesce(quote_literal(c.kind), 'NULL'), c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The kinds are ''smtp'' (mail through an SMTP relay) and ''webhook'' (HTTP POST).';
	END IF;
	PERFORM taskflow._check_channel_url(c);
	IF c.username OPERATOR(pg_catalog.~) '[[:cntrl:]]' OR c.username OPERATOR(pg_catalog.=) '' THEN
		RAISE EXCEPTION 'invalid username for channel "%"', c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A user name is one line of text.';
	END IF;
	IF c.kind OPERATOR(pg_catalog.=) 'webhook'
	   AND (c.username IS NOT NULL OR c.password_file IS NOT NULL) THEN
		RAISE EXCEPTION 'username and password_file are for smtp channels; "%" is a webhook channel', c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A webhook signs its requests with the secret in webhook_secret_file.';
	END IF;
	IF c.kind OPERATOR(pg_catalog.=) 'smtp' AND c.webhook_secret_file IS NOT NULL THEN
		RAISE EXCEPTION 'webhook_secret_file is for webhook channels; "%" is an smtp channel', c.name
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF c.password_file IS NOT NULL THEN
		PERFORM taskflow._check_server_file(c.name, 'password_file', c.password_file);
	END IF;
	IF c.webhook_secret_file IS NOT NULL THEN
		PERFORM taskflow._check_server_file(c.name, 'webhook_secret_file', c.webhook_secret_file);
	END IF;
	IF c.kind OPERATOR(pg_catalog.=) 'webhook' AND c.url IS NOT NULL AND c.webhook_secret_file IS NULL THEN
		RAISE EXCEPTION 'webhook channel "%" needs webhook_secret_file', c.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Every request is signed (X-Taskflow-Signature: sha256=HMAC of the body) with the secret in that server file.';
	END IF;
	PERFORM taskflow._check_channel_retries(c);
	PERFORM taskflow._check_channel_guardrails(c);
	PERFORM taskflow._check_channel_mail(c);
	PERFORM taskflow._check_channel_recipient(c);
END
$$;

---------------------------------------------------------------- functions

-- The settings configure_channel() can reset to their defaults.
CREATE FUNCTION taskflow._channel_defaults()
RETURNS taskflow.channel
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	d taskflow.channel;
BEGIN
	d.require_starttls := true;
	d.connect_timeout_ms := 10000;
	d.timeout_ms := 60000;
	d.connections := 4;
	d.quota_time_zone := (SELECT s.reset_val FROM pg_catalog.pg_settings s
						   WHERE s.name OPERATOR(pg_catalog.=) 'TimeZone');
	d.max_attempts := 8;
	d.backoff_base := interval '1 minute';
	d.backoff_max := interval '6 hours';
	d.enabled := true;
	d.builtin := false;
	d.rate_window_count := 0;
	d.created_at := pg_catalog.now();
	d.updated_at := pg_catalog.now();
	RETURN d;
END
$$;

-- Resets the named settings of a channel to their defaults (NULL for the
-- optional ones).
CREATE FUNCTION taskflow._channel_reset(c taskflow.channel, settings text[])
RETURNS taskflow.channel
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	d taskflow.channel := taskflow._channel_defaults();
	s text;
	resettable CONSTANT text[] := ARRAY['description', 'url', 'require_starttls', 'username',
		'password_file', 'webhook_secret_file', 'connect_timeout_ms', 'timeout_ms', 'connections',
		'rate_per_second', 'daily_quota', 'quota_time_zone', 'quiet_start', 'quiet_end',
		'max_per_member', 'per_member_window', 'max_attempts', 'backoff_base', 'backoff_max',
		'test_recipients', 'message_id_domain', 'list_id', 'unsubscribe_url', 'enabled',
		'recipient_property'];
BEGIN
	IF settings IS NULL OR cardinality(settings) OPERATOR(pg_catalog.=) 0 THEN
		RETURN c;
	END IF;
	FOREACH s IN ARRAY settings LOOP
		IF s IS NULL OR NOT s OPERATOR(pg_catalog.=) ANY (resettable) THEN
			RAISE EXCEPTION 'cannot reset % of channel "%"', coalesce(quote_literal(s), 'NULL'), c.name
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'reset names settings of configure_channel(): ' OPERATOR(pg_catalog.||)
							 array_to_string(resettable, ', ') OPERATOR(pg_catalog.||) '.';
		END IF;
	END LOOP;
	-- one assignment per setting: (jsonb_populate_record over the row)
	RETURN jsonb_populate_record(c, (SELECT jsonb_object_agg(k, to_jsonb(d) OPERATOR(pg_catalog.->) k)
									   FROM unnest(settings) k));
END
$$;

-- Creates or changes a channel.  NULL leaves a setting as it is (a new
-- channel gets the default); reset => ARRAY['quiet_start', 'quiet_end']
-- puts settings back to their default (no limit, for the guardrails).
-- Superusers only: a channel names server files the worker reads.
CREATE FUNCTION taskflow.configure_channel(name text,
										   kind text DEFAULT NULL,
										   url text DEFAULT NULL,
										   require_starttls boolean DEFAULT NULL,
										   username text DEFAULT NULL,
										   password_file text DEFAULT NULL,
										   webhook_secret_file text DEFAULT NULL,
										   connect_timeout_ms integer DEFAULT NULL,
										   timeout_ms integer DEFAULT NULL,
										   connections integer DEFAULT NULL,
										   rate_per_second integer DEFAULT NULL,
										   daily_quota integer DEFAULT NULL,
										   quota_time_zone text DEFAULT NULL,
										   quiet_start time DEFAULT NULL,
										   quiet_end time DEFAULT NULL,
										   max_per_member integer DEFAULT NULL,
										   per_member_window interval DEFAULT NULL,
										   max_attempts integer DEFAULT NULL,
										   backoff_base interval DEFAULT NULL,
										   backoff_max interval DEFAULT NULL,
										   test_recipients text[] DEFAULT NULL,
										   message_id_domain text DEFAULT NULL,
										   list_id text DEFAULT NULL,
										   unsubscribe_url text DEFAULT NULL,
										   enabled boolean DEFAULT NULL,
										   description text DEFAULT NULL,
										   reset text[] DEFAULT NULL,
										   recipient_property text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c taskflow.channel;
	old taskflow.channel;
	p jsonb;
BEGIN
	IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r
			 WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
		RAISE EXCEPTION 'only superusers can configure channels'
			USING ERRCODE = 'insufficient_privilege',
				  HINT = 'A channel names server files the delivery worker reads (password_file, webhook_secret_file); ask the DBA.';
	END IF;
	SELECT * INTO old FROM taskflow.channel x
	 WHERE x.name OPERATOR(pg_catalog.=) configure_channel.name FOR UPDATE;
	IF FOUND THEN
		c := old;
	ELSE
		c := taskflow._channel_defaults();
		c.name := configure_channel.name;
		c.kind := coalesce(kind, CASE WHEN url OPERATOR(pg_catalog.~*) '^smtps?://' THEN 'smtp'
									   WHEN url OPERATOR(pg_catalog.~*) '^https?://' THEN 'webhook' END);
		IF c.kind IS NULL AND url IS NOT NULL THEN
			RAISE EXCEPTION 'new channel % needs a kind', coalesce(to_json(c.name)::text, 'NULL')
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('The url %s does not tell it.', to_json(url)),
					  HINT = 'Give kind => ''smtp'' or ''webhook'', or a url starting with smtp://, smtps:// or https://.';
		ELSIF c.kind IS NULL THEN
			RAISE EXCEPTION 'new channel % needs a kind', coalesce(to_json(c.name)::text, 'NULL')
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Give kind => ''smtp'' or ''webhook'', or a url starting with smtp://, smtps:// or https://.';
		END IF;
	END IF;
	c := taskflow._channel_reset(c, reset);
	-- the given settings; '' clears an optional text
	p := jsonb_strip_nulls(jsonb_build_object(
		'kind', kind, 'url', url, 'require_starttls', require_starttls, 'username', username,
		'password_file', password_file, 'webhook_secret_file', webhook_secret_file,
		'connect_timeout_ms', connect_timeout_ms, 'timeout_ms', timeout_ms,
		'connections', connections, 'rate_per_second', rate_per_second,
		'daily_quota', daily_quota, 'quota_time_zone', quota_time_zone,
		'quiet_start', quiet_start, 'quiet_end', quiet_end, 'max_per_member', max_per_member,
		'per_member_window', per_member_window, 'max_attempts', max_attempts,
		'backoff_base', backoff_base, 'backoff_max', backoff_max,
		'test_recipients', test_recipients, 'message_id_domain', message_id_domain,
		'list_id', list_id, 'unsubscribe_url', unsubscribe_url, 'enabled', enabled,
		'description', description, 'recipient_property', recipient_property));
	c := jsonb_populate_record(c, p);
	c.url := nullif(c.url, '');
	c.username := nullif(c.username, '');
	c.password_file := nullif(c.password_file, '');
	c.webhook_secret_file := nullif(c.webhook_secret_file, '');
	c.message_id_domain := nullif(c.message_id_domain, '');
	c.list_id := nullif(c.list_id, '');
	c.unsubscribe_url := nullif(c.unsubscribe_url, '');
	c.description := nullif(c.description, '');
	c.recipient_property := nullif(btrim(c.recipient_property), '');
	PERFORM taskflow._check_channel(c);
	IF old.name IS NOT NULL AND c.kind OPERATOR(pg_catalog.<>) old.kind THEN
		PERFORM taskflow._refuse_kind_change(old);
	END IF;
	IF old.name IS NULL THEN
		INSERT INTO taskflow.channel SELECT (c).*;
	ELSE
		c.updated_at := pg_catalog.now();
		UPDATE taskflow.channel x SET (kind, description, url, require_starttls, username,
			password_file, webhook_secret_file, connect_timeout_ms, timeout_ms, connections,
			rate_per_second, daily_quota, quota_time_zone, quiet_start, quiet_end,
			max_per_member, per_member_window, max_attempts, backoff_base, backoff_max,
			test_recipients, message_id_domain, list_id, unsubscribe_url, enabled, updated_at,
			recipient_property)
		  = (c.kind, c.description, c.url, c.require_starttls, c.username,
			c.password_file, c.webhook_secret_file, c.connect_timeout_ms, c.timeout_ms, c.connections,
			c.rate_per_second, c.daily_quota, c.quota_time_zone, c.quiet_start, c.quiet_end,
			c.max_per_member, c.per_member_window, c.max_attempts, c.backoff_base, c.backoff_max,
			c.test_recipients, c.message_id_domain, c.list_id, c.unsubscribe_url, c.enabled,
			c.updated_at, c.recipient_property)
		 WHERE x.name OPERATOR(pg_catalog.=) c.name;
	END IF;
END
$$;
COMMENT ON FUNCTION taskflow.configure_channel IS
	'Creates or changes a delivery channel (superusers only); NULL leaves a setting, reset => ARRAY[...] restores defaults';

-- Refuses to change the kind of a channel that is built in or in use: the
-- rendering of its templates (text or JSON) depends on the kind.
CREATE FUNCTION taskflow._refuse_kind_change(c taskflow.channel)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	used_by text;
BEGIN
	SELECT t.name INTO used_by FROM taskflow.template t
	 WHERE t.channel OPERATOR(pg_catalog.=) c.name ORDER BY t.name LIMIT 1;
	IF c.builtin OR used_by IS NOT NULL THEN
		RAISE EXCEPTION 'cannot change the kind of channel "%"', c.name
			USING ERRCODE = 'object_in_use',
				  DETAIL = CASE WHEN c.builtin THEN 'It is a built-in channel.'
								ELSE format('Template "%s" uses it.', used_by) END,
				  HINT = 'Create a new channel of the other kind instead.';
	END IF;
END
$$;

-- Drops a channel, refused for the built-in ones, while a template uses it
-- or while it has messages not yet sent.
CREATE FUNCTION taskflow.drop_channel(name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c taskflow.channel;
	used_by text;
	waiting bigint;
BEGIN
	IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r
			 WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
		RAISE EXCEPTION 'only superusers can drop channels'
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	SELECT * INTO c FROM taskflow.channel x WHERE x.name OPERATOR(pg_catalog.=) drop_channel.name FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'channel "%" does not exist', drop_channel.name
			USING ERRCODE = 'undefined_object';
	END IF;
	IF c.builtin THEN
		RAISE EXCEPTION 'channel "%" is built in and cannot be dropped', c.name
			USING ERRCODE = 'object_in_use',
				  HINT = 'Disable it instead: taskflow.configure_channel(''' OPERATOR(pg_catalog.||) c.name
						 OPERATOR(pg_catalog.||) ''', enabled => false).';
	END IF;
	SELECT t.name INTO used_by FROM taskflow.template t
	 WHERE t.channel OPERATOR(pg_catalog.=) c.name ORDER BY t.name LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'channel "%" is used by template "%"', c.name, used_by
			USING ERRCODE = 'dependent_objects_still_exist',
				  HINT = 'Give the template another channel (taskflow.alter_template()) or drop it first.';
	END IF;
	SELECT count(*) INTO waiting FROM taskflow.outbox o
	 WHERE o.channel OPERATOR(pg_catalog.=) c.name
	   AND o.state OPERATOR(pg_catalog.=) ANY (ARRAY['pending', 'deferred', 'sending']);
	IF waiting OPERATOR(pg_catalog.>) 0 THEN
		RAISE EXCEPTION 'channel "%" still has messages to send (%)', c.name, waiting
			USING ERRCODE = 'object_in_use',
				  HINT = 'Let them be sent, or cancel them with taskflow.cancel_message().';
	END IF;
	DELETE FROM taskflow.channel x WHERE x.name OPERATOR(pg_catalog.=) c.name;
END
$$;
COMMENT ON FUNCTION taskflow.drop_channel(text) IS
	'Drops a channel that is not built in, not used by a template and has nothing left to send';

------------------------------------------------------------------ privileges

REVOKE ALL ON TABLE taskflow.channel FROM PUBLIC;
GRANT SELECT ON taskflow.channel TO taskflow_app, taskflow_operator, taskflow_relay;

REVOKE ALL ON FUNCTION
	taskflow._channel_restore(),
	taskflow._check_server_file(text, text, text),
	taskflow._check_channel_url(taskflow.channel),
	taskflow._check_channel_range(text, text, bigint, bigint, bigint, text),
	taskflow._check_channel_guardrails(taskflow.channel),
	taskflow._check_channel_retries(taskflow.channel),
	taskflow._check_channel_mail(taskflow.channel),
	taskflow._check_channel_recipient(taskflow.channel),
	taskflow._check_channel(taskflow.channel),
	taskflow._channel_defaults(),
	taskflow._channel_reset(taskflow.channel, text[]),
	taskflow._refuse_kind_change(taskflow.channel),
	taskflow.configure_channel(text, text, text, boolean, text, text, text, integer, integer,
							   integer, integer, integer, text, time, time, integer, interval,
							   integer, interval, interval, text[], text, text, text, boolean,
							   text, text[], text),
	taskflow.drop_channel(text)
	FROM PUBLIC;
-- everyone may call them and is told clearly that only superusers may
GRANT EXECUTE ON FUNCTION
	taskflow.configure_channel(text, text, text, boolean, text, text, text, integer, integer,
							   integer, integer, integer, text, time, time, integer, interval,
							   integer, interval, interval, text[], text, text, text, boolean,
							   text, text[], text),
	taskflow.drop_channel(text)
	TO taskflow_app, taskflow_operator;
