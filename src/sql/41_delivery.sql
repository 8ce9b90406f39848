-- taskflow install script, part 41: the outbox state machine.
--
--   pending ──claim──▶ sending ──complete──▶ sent
--      ▲                 │  │                failed     (5xx; or 4xx max_attempts times)
--      │                 │  └──complete──▶ deferred   (4xx, network, timeout: backoff)
--      └── retry ────────┘ lease expired ─▶ deferred  (reclaimed; the next claim takes it)
--   pending/deferred ──claim──▶ cancelled (unsubscribed, suppressed) | deferred (guardrails)
--
-- Delivery workers, and external relays on other machines, drain the
-- outbox with two calls, each a short transaction of a few set-based
-- statements: taskflow.claim_messages() leases a batch (FOR UPDATE SKIP
-- LOCKED) after applying suppression and the guardrails, and
-- taskflow.complete_messages() writes back a whole batch of results.  Every
-- instant is a parameter, so tests and relays pass their own.  See
-- doc/delivery.md.

-- One row per delivery attempt: opened by the claim, closed by the
-- completion (or by the next claim, when the lease expired first).
CREATE TABLE taskflow.delivery_attempt (
	attempt_id	bigserial PRIMARY KEY,
	outbox_id	bigint NOT NULL REFERENCES taskflow.outbox (outbox_id) ON DELETE CASCADE,
	attempt		integer NOT NULL,
	worker		text NOT NULL,
	recipient	text,
	started_at	timestamptz NOT NULL,
	finished_at timestamptz,
	outcome		text
				CHECK (outcome OPERATOR(pg_catalog.=) ANY
					   (ARRAY['sent', 'temporary', 'permanent', 'cancelled', 'expired'])),
	smtp_code	integer,
	enhanced_code text,
	reply		text
);
COMMENT ON TABLE taskflow.delivery_attempt IS
	'Delivery attempts: worker, start, end, outcome (sent, temporary, permanent, expired lease), reply code and text';
COMMENT ON COLUMN taskflow.delivery_attempt.smtp_code IS
	'The SMTP reply code (or HTTP status for a webhook) of the attempt';
-- at most one attempt of a message is open at a time
CREATE UNIQUE INDEX delivery_attempt_open_idx ON taskflow.delivery_attempt (outbox_id)
	WHERE finished_at IS NULL;
CREATE INDEX delivery_attempt_outbox_idx ON taskflow.delivery_attempt (outbox_id, attempt_id);

-- Addresses never sent marketing mail again: hard bounces (5.1.x), and
-- what staff add (complaints).
CREATE TABLE taskflow.suppression (
	address		text PRIMARY KEY
				CHECK (address OPERATOR(pg_catalog.=) pg_catalog.lower(pg_catalog.btrim(address))),
	reason		text NOT NULL,
	at			timestamptz NOT NULL,
	outbox_id	bigint
);
COMMENT ON TABLE taskflow.suppression IS
	'Suppressed addresses (lower case): hard bounces and manual entries; no marketing mail goes to them';

SELECT pg_catalog.pg_extension_config_dump('taskflow.delivery_attempt', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.delivery_attempt_attempt_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.suppression', '');

------------------------------------------------------------------ policy

-- The wait before the next attempt after a temporary failure:
-- least(backoff_max, backoff_base * 2^(attempts-1)) * (1 + jitter), the
-- jitter in [0, 0.25) derived from hashint8(outbox_id + attempts), so that
-- retries of many messages spread out yet every run computes the same.
CREATE FUNCTION taskflow.retry_delay(outbox_id bigint, attempts integer,
									 backoff_base interval, backoff_max interval)
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN LEAST(backoff_max,
			 backoff_base OPERATOR(pg_catalog.*)
			 pg_catalog.power(2::float8,
							  LEAST(GREATEST(attempts OPERATOR(pg_catalog.-) 1, 0), 20)::float8))
	   OPERATOR(pg_catalog.*)
	   (1::float8 OPERATOR(pg_catalog.+)
		((pg_catalog.hashint8(outbox_id OPERATOR(pg_catalog.+) attempts)
		  OPERATOR(pg_catalog.&) 65535)::float8 OPERATOR(pg_catalog./) 262144::float8));
COMMENT ON FUNCTION taskflow.retry_delay(bigint, integer, interval, interval) IS
	'Backoff after a temporary failure: least(max, base * 2^(attempts-1)) plus a deterministic jitter of 0 to 25%';

-- When quiet hours that contain as_of end (the next quiet_end, local time
-- in tz), or NULL when as_of is outside them.  Quiet hours may span
-- midnight (21:00–08:00).
CREATE FUNCTION taskflow.quiet_hours_end(as_of timestamptz, quiet_start time, quiet_end time, tz text)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE
	WHEN quiet_start IS NULL OR quiet_end IS NULL THEN NULL
	WHEN CASE WHEN quiet_start OPERATOR(pg_catalog.<) quiet_end
			  THEN (as_of AT TIME ZONE tz)::time OPERATOR(pg_catalog.>=) quiet_start
				   AND (as_of AT TIME ZONE tz)::time OPERATOR(pg_catalog.<) quiet_end
			  ELSE (as_of AT TIME ZONE tz)::time OPERATOR(pg_catalog.>=) quiet_start
				   OR (as_of AT TIME ZONE tz)::time OPERATOR(pg_catalog.<) quiet_end END
	THEN (((as_of AT TIME ZONE tz)::date OPERATOR(pg_catalog.+)
		   CASE WHEN (as_of AT TIME ZONE tz)::time OPERATOR(pg_catalog.<) quiet_end THEN 0 ELSE 1 END)
		  OPERATOR(pg_catalog.+) quiet_end) AT TIME ZONE tz
	END;
COMMENT ON FUNCTION taskflow.quiet_hours_end(timestamptz, time, time, text) IS
	'End of the quiet hours containing an instant (local times in tz), or NULL outside them';

-- Raises unless the worker name and instant of a claim or completion are
-- given.
CREATE FUNCTION taskflow._check_worker(worker text, as_of timestamptz)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF worker IS NULL OR btrim(worker) OPERATOR(pg_catalog.=) ''
	   OR worker OPERATOR(pg_catalog.~) '[[:cntrl:]]' OR length(worker) OPERATOR(pg_catalog.>) 200 THEN
		RAISE EXCEPTION 'invalid worker name %', coalesce(to_json(worker)::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Name each worker or relay uniquely, for example ''relay-osaka-1'': only the worker holding a lease may complete it.';
	END IF;
	IF as_of IS NULL THEN
		RAISE EXCEPTION 'as_of cannot be NULL'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Leave it out for now().';
	END IF;
	-- an infinite instant would lease messages forever, or date them never
	IF NOT isfinite(as_of) THEN
		RAISE EXCEPTION 'as_of cannot be %', as_of
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Leave it out for now().';
	END IF;
END
$$;

------------------------------------------------------------------ queue

-- A message the engine queues already cancelled (the member has no e-mail
-- address, or unsubscribed before the step: src/step.c) is written to the
-- member's timeline as mail_cancelled, like one cancelled at claim time,
-- so the member's activity shows that no mail went out.  Recorded by whoever
-- applied the step ('taskflow', or the operator of a manual task); not for
-- test chains, whose mail the member would not have received.
CREATE FUNCTION taskflow._outbox_cancelled()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	INSERT INTO taskflow.event (member_id, kind, occurred_at, detail, recorded_by)
	VALUES (NEW.member_id, 'mail_cancelled', NEW.created_at,
			jsonb_strip_nulls(jsonb_build_object('outbox_id', NEW.outbox_id, 'channel', NEW.channel,
				'subject', NEW.subject, 'recipient', NEW.recipient, 'reason', NEW.state_reason)),
			coalesce((SELECT h.actor FROM taskflow.history h
					   WHERE h.chain_id OPERATOR(pg_catalog.=) NEW.chain_id
						 AND h.member_id OPERATOR(pg_catalog.=) NEW.member_id
						 AND h.iteration OPERATOR(pg_catalog.=) NEW.iteration
						 AND h.step_id OPERATOR(pg_catalog.=) NEW.step_id
						 AND h.event OPERATOR(pg_catalog.=) 'applied'),
					 'taskflow'));
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION taskflow._outbox_cancelled() IS
	'Trigger: a message queued as cancelled leaves mail_cancelled on the member''s timeline';
CREATE TRIGGER outbox_cancelled AFTER INSERT ON taskflow.outbox
	FOR EACH ROW
	WHEN (NEW.state OPERATOR(pg_catalog.=) 'cancelled' AND NOT NEW.is_test)
	EXECUTE FUNCTION taskflow._outbox_cancelled();

------------------------------------------------------------------ claim

-- Step 1 of a claim: messages whose lease ended (the worker died or hung)
-- go back to the queue, or fail when they used up their attempts; the
-- open attempt is closed as 'expired'.
CREATE FUNCTION taskflow._reclaim_leases(ch taskflow.channel, worker text, as_of timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	WITH x AS (
		SELECT o.outbox_id, o.lease_owner FROM taskflow.outbox o
		 WHERE o.channel OPERATOR(pg_catalog.=) ch.name
		   AND o.state OPERATOR(pg_catalog.=) 'sending'
		   AND o.lease_expires_at OPERATOR(pg_catalog.<=) as_of
		 FOR UPDATE SKIP LOCKED),
	u AS (
		UPDATE taskflow.outbox o
		   SET state = CASE WHEN o.attempts OPERATOR(pg_catalog.>=) ch.max_attempts
							THEN 'failed' ELSE 'deferred' END,
			   state_reason = format('lease of worker %s expired', to_json(x.lease_owner))
							  OPERATOR(pg_catalog.||)
							  CASE WHEN o.attempts OPERATOR(pg_catalog.>=) ch.max_attempts
								   THEN format(' (attempt %s of %s)', o.attempts, ch.max_attempts)
								   ELSE '' END,
			   not_before = o.lease_expires_at, lease_owner = NULL, lease_expires_at = NULL
		  FROM x
		 WHERE o.outbox_id OPERATOR(pg_catalog.=) x.outbox_id
		RETURNING o.outbox_id, o.member_id, o.channel, o.subject, o.recipient, o.is_test,
				  o.state, o.state_reason, o.attempts),
	a AS (
		UPDATE taskflow.delivery_attempt a
		   SET finished_at = as_of, outcome = 'expired',
			   reply = 'no result before the lease expired'
		  FROM u
		 WHERE a.outbox_id OPERATOR(pg_catalog.=) u.outbox_id AND a.finished_at IS NULL)
	INSERT INTO taskflow.event (member_id, kind, occurred_at, detail, recorded_by)
	SELECT u.member_id, 'mail_failed', as_of,
		   jsonb_strip_nulls(jsonb_build_object('outbox_id', u.outbox_id, 'channel', u.channel,
				'subject', u.subject, 'recipient', u.recipient, 'attempt', u.attempts,
				'reason', u.state_reason)),
		   worker
	  FROM u
	 WHERE u.state OPERATOR(pg_catalog.=) 'failed' AND NOT u.is_test;
END
$$;

-- Step 2: each message goes to its member's address as it is now, not as
-- it was when queued: a member who corrected the address while the
-- message waited (quiet hours, a cap, the quota, a retry) gets it at the
-- new one, which the suppression check below then looks at.  The address
-- is the member's e-mail, or the channel's recipient property (a phone
-- number for an SMS gateway).  A test chain's message already routed to a
-- tester keeps its tester and gets the new address in original_recipient;
-- a member without an address now leaves the message without recipient
-- (cancelled below).
CREATE FUNCTION taskflow._claim_recipients(ids bigint[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	UPDATE taskflow.outbox o
	   SET recipient = CASE WHEN o.original_recipient IS NOT NULL AND a.address IS NOT NULL
							THEN o.recipient ELSE a.address END,
		   original_recipient = CASE WHEN o.original_recipient IS NOT NULL THEN a.address END
	  FROM (SELECT x.outbox_id,
				   CASE WHEN ch.recipient_property IS NULL THEN m.email
						ELSE nullif(btrim(m.properties OPERATOR(pg_catalog.->>) ch.recipient_property), '')
						END AS address
			  FROM taskflow.outbox x
			  JOIN taskflow.member m ON m.member_id OPERATOR(pg_catalog.=) x.member_id
			  JOIN taskflow.channel ch ON ch.name OPERATOR(pg_catalog.=) x.channel
			 WHERE x.outbox_id OPERATOR(pg_catalog.=) ANY (ids)) a
	 WHERE o.outbox_id OPERATOR(pg_catalog.=) a.outbox_id
	   AND coalesce(o.original_recipient, o.recipient) IS DISTINCT FROM a.address;
END
$$;

-- Step 3: messages that must not be sent are cancelled (and written to the
-- member's timeline): marketing mail to an unsubscribed member or a
-- suppressed address, a message without recipient, a test chain's message
-- when the channel has no test recipients.
CREATE FUNCTION taskflow._claim_cancel(ch taskflow.channel, worker text, ids bigint[],
									   as_of timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	WITH r AS (
		SELECT o.outbox_id,
			   CASE WHEN o.recipient IS NULL OR btrim(o.recipient) OPERATOR(pg_catalog.=) ''
					THEN 'no recipient'
					WHEN NOT o.transactional AND m.unsubscribed_at IS NOT NULL
					THEN 'member unsubscribed'
					WHEN NOT o.transactional AND s.address IS NOT NULL
					THEN format('address suppressed (%s)', s.reason)
					WHEN o.is_test AND ch.test_recipients IS NULL
					THEN format('test chain, and channel "%s" has no test recipients', ch.name)
			   END AS reason
		  FROM taskflow.outbox o
		  JOIN taskflow.member m ON m.member_id OPERATOR(pg_catalog.=) o.member_id
		  LEFT JOIN taskflow.suppression s
				 ON s.address OPERATOR(pg_catalog.=)
					lower(btrim(coalesce(o.original_recipient, o.recipient)))
		 WHERE o.outbox_id OPERATOR(pg_catalog.=) ANY (ids)),
	c AS (
		UPDATE taskflow.outbox o SET state = 'cancelled', state_reason = r.reason
		  FROM r
		 WHERE o.outbox_id OPERATOR(pg_catalog.=) r.outbox_id AND r.reason IS NOT NULL
		RETURNING o.outbox_id, o.member_id, o.channel, o.subject, o.recipient, o.is_test,
				  o.state_reason)
	INSERT INTO taskflow.event (member_id, kind, occurred_at, detail, recorded_by)
	SELECT c.member_id, 'mail_cancelled', as_of,
		   jsonb_strip_nulls(jsonb_build_object('outbox_id', c.outbox_id, 'channel', c.channel,
				'subject', c.subject, 'recipient', c.recipient, 'reason', c.state_reason)),
		   worker
	  FROM c
	 WHERE NOT c.is_test;
END
$$;

-- Step 4: the guardrails that defer marketing mail to a member: quiet
-- hours (in the chain's time zone) and the frequency cap.  Transactional
-- messages pass.  Test and production mail are counted apart.
CREATE FUNCTION taskflow._claim_member_guardrails(ch taskflow.channel, ids bigint[],
												  as_of timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF ch.quiet_start IS NOT NULL THEN
		UPDATE taskflow.outbox o
		   SET state = 'deferred', not_before = q.quiet_end,
			   state_reason = format('quiet hours %s-%s (%s)', to_char(ch.quiet_start, 'HH24:MI'),
									 to_char(ch.quiet_end, 'HH24:MI'), q.tz)
		  FROM (SELECT x.outbox_id, z.tz,
					   taskflow.quiet_hours_end(as_of, ch.quiet_start, ch.quiet_end, z.tz) AS quiet_end
				  FROM taskflow.outbox x
				 CROSS JOIN LATERAL (SELECT coalesce(x.time_zone, ch.quota_time_zone) AS tz) z
				 WHERE x.outbox_id OPERATOR(pg_catalog.=) ANY (ids)) q
		 WHERE o.outbox_id OPERATOR(pg_catalog.=) q.outbox_id AND q.quiet_end IS NOT NULL
		   AND o.state OPERATOR(pg_catalog.=) ANY (ARRAY['pending', 'deferred'])
		   AND NOT o.transactional;
	END IF;
	IF ch.max_per_member IS NOT NULL THEN
		UPDATE taskflow.outbox o
		   SET state = 'deferred',
			   not_before = coalesce(w.oldest, as_of) OPERATOR(pg_catalog.+) ch.per_member_window,
			   state_reason = format('frequency cap: %s per %s', ch.max_per_member, ch.per_member_window)
		  FROM (SELECT c.outbox_id, c.n, u.used, u.oldest
				  FROM (SELECT x.outbox_id, x.member_id, x.is_test,
							   row_number() OVER (PARTITION BY x.member_id, x.is_test
												  ORDER BY x.not_before, x.outbox_id) AS n
						  FROM taskflow.outbox x
						 WHERE x.outbox_id OPERATOR(pg_catalog.=) ANY (ids)
						   AND x.state OPERATOR(pg_catalog.=) ANY (ARRAY['pending', 'deferred'])
						   AND x.not_before OPERATOR(pg_catalog.<=) as_of
						   AND NOT x.transactional) c
				 CROSS JOIN LATERAL (
					SELECT count(*) AS used, min(y.sent_at) AS oldest
					  FROM taskflow.outbox y
					 WHERE y.member_id OPERATOR(pg_catalog.=) c.member_id
					   AND y.channel OPERATOR(pg_catalog.=) ch.name
					   AND y.is_test OPERATOR(pg_catalog.=) c.is_test
					   AND NOT y.transactional
					   AND ((y.state OPERATOR(pg_catalog.=) 'sent'
							 AND y.sent_at OPERATOR(pg_catalog.>) (as_of OPERATOR(pg_catalog.-) ch.per_member_window))
							OR y.state OPERATOR(pg_catalog.=) 'sending')) u) w
		 WHERE o.outbox_id OPERATOR(pg_catalog.=) w.outbox_id
		   AND (w.used OPERATOR(pg_catalog.+) w.n) OPERATOR(pg_catalog.>) ch.max_per_member;
	END IF;
END
$$;

-- Step 5: the daily quota of the channel (per-message billing): messages
-- sent today (in quota_time_zone) and in flight count; the rest of the
-- batch waits for the next day.
CREATE FUNCTION taskflow._claim_quota(ch taskflow.channel, ids bigint[], as_of timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	today date := (as_of AT TIME ZONE ch.quota_time_zone)::date;
	used bigint;
BEGIN
	IF ch.daily_quota IS NULL THEN
		RETURN;
	END IF;
	-- two counts, each over its partial index
	used := (SELECT count(*) FROM taskflow.outbox o
			  WHERE o.channel OPERATOR(pg_catalog.=) ch.name AND o.state OPERATOR(pg_catalog.=) 'sent'
				AND o.sent_at OPERATOR(pg_catalog.>=) (today::timestamp AT TIME ZONE ch.quota_time_zone))
			OPERATOR(pg_catalog.+)
			(SELECT count(*) FROM taskflow.outbox o
			  WHERE o.channel OPERATOR(pg_catalog.=) ch.name AND o.state OPERATOR(pg_catalog.=) 'sending');
	UPDATE taskflow.outbox o
	   SET state = 'deferred',
		   not_before = (today OPERATOR(pg_catalog.+) 1)::timestamp AT TIME ZONE ch.quota_time_zone,
		   state_reason = format('daily quota of %s reached', ch.daily_quota)
	  FROM (SELECT x.outbox_id, row_number() OVER (ORDER BY x.not_before, x.outbox_id) AS n
			  FROM taskflow.outbox x
			 WHERE x.outbox_id OPERATOR(pg_catalog.=) ANY (ids)
			   AND x.state OPERATOR(pg_catalog.=) ANY (ARRAY['pending', 'deferred'])
			   AND x.not_before OPERATOR(pg_catalog.<=) as_of) r
	 WHERE o.outbox_id OPERATOR(pg_catalog.=) r.outbox_id
	   AND (used OPERATOR(pg_catalog.+) r.n) OPERATOR(pg_catalog.>) ch.daily_quota;
END
$$;

-- How many messages the channel's rate limit still allows in the second
-- of as_of (at most max).
CREATE FUNCTION taskflow._rate_budget(ch taskflow.channel, max integer, as_of timestamptz)
RETURNS integer
LANGUAGE sql STABLE
RETURN CASE
	WHEN ch.rate_per_second IS NULL THEN max
	WHEN ch.rate_window_start OPERATOR(pg_catalog.=)
		 pg_catalog.to_timestamp(pg_catalog.floor(EXTRACT(epoch FROM as_of))::float8)
	THEN LEAST(max, GREATEST(ch.rate_per_second OPERATOR(pg_catalog.-) ch.rate_window_count, 0))
	ELSE LEAST(max, ch.rate_per_second) END;

-- Leases up to max ready messages of a channel to a worker for lease, as of
-- an instant, and returns them ('sending', attempts counted, recipient
-- rewritten for test chains, Message-ID set).  In order: expired leases
-- are reclaimed; each recipient is read again from the member row;
-- unsubscribed members and suppressed addresses cancelled
-- (marketing mail); quiet hours and the frequency cap defer (marketing
-- mail); the daily quota defers to the next day; the rate limit leaves the
-- rest for the next second.  Rows another claim holds are skipped.
CREATE FUNCTION taskflow.claim_messages(channel text, worker text, max integer,
										lease interval DEFAULT '5 minutes',
										as_of timestamptz DEFAULT pg_catalog.now())
RETURNS SETOF taskflow.outbox
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ch taskflow.channel;
	ids bigint[];
	claimed integer;
	window_start timestamptz := to_timestamp(floor(EXTRACT(epoch FROM as_of))::float8);
BEGIN
	PERFORM taskflow._check_worker(worker, as_of);
	IF max IS NULL OR max OPERATOR(pg_catalog.<) 1 OR max OPERATOR(pg_catalog.>) 10000 THEN
		RAISE EXCEPTION 'max must be between 1 and 10000, not %', coalesce(max::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF lease IS NULL OR lease OPERATOR(pg_catalog.<) interval '1 second'
	   OR lease OPERATOR(pg_catalog.>) interval '1 day' THEN
		RAISE EXCEPTION 'lease must be between 1 second and 1 day, not %', coalesce(lease::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Longer than the worker needs to send a batch; a message whose lease ends is sent again.';
	END IF;
	-- one claim per channel at a time: the rate window lives on this row
	SELECT * INTO ch FROM taskflow.channel c
	 WHERE c.name OPERATOR(pg_catalog.=) claim_messages.channel FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'channel "%" does not exist', claim_messages.channel
			USING ERRCODE = 'undefined_object';
	END IF;
	-- a restored copy sends nothing until the DBA resumes it (part 46):
	-- the lock waits for a restore's transaction, the next statement's
	-- snapshot then sees its hold, and no restore commits until this one
	IF NOT ch.enabled THEN
		RETURN;
	END IF;
	LOCK TABLE taskflow.hold IN SHARE MODE;
	IF EXISTS (SELECT FROM taskflow.hold) THEN
		RETURN;
	END IF;

	PERFORM taskflow._reclaim_leases(ch, worker, as_of);
	SELECT array_agg(x.outbox_id) INTO ids FROM (
		SELECT o.outbox_id FROM taskflow.outbox o
		 WHERE o.channel OPERATOR(pg_catalog.=) ch.name
		   AND o.state OPERATOR(pg_catalog.=) ANY (ARRAY['pending', 'deferred'])
		   AND o.not_before OPERATOR(pg_catalog.<=) as_of
		 ORDER BY o.not_before, o.outbox_id
		 LIMIT max
		 FOR UPDATE SKIP LOCKED) x;
	IF ids IS NULL THEN
		RETURN;
	END IF;
	PERFORM taskflow._claim_recipients(ids);
	PERFORM taskflow._claim_cancel(ch, worker, ids, as_of);
	PERFORM taskflow._claim_member_guardrails(ch, ids, as_of);
	PERFORM taskflow._claim_quota(ch, ids, as_of);

	RETURN QUERY
	WITH l AS (
		UPDATE taskflow.outbox o
		   SET state = 'sending', state_reason = NULL,
			   attempts = o.attempts OPERATOR(pg_catalog.+) 1,
			   lease_owner = worker, lease_expires_at = as_of OPERATOR(pg_catalog.+) lease,
			   message_id = coalesce(o.message_id,
					format('<%s.%s@%s>', o.outbox_id, o.chain_id,
						   coalesce(ch.message_id_domain,
									nullif(split_part(o.sender_address, '@', 2), ''),
									'localhost'))),
			   original_recipient = CASE WHEN o.is_test
										 THEN coalesce(o.original_recipient, o.recipient) END,
			   recipient = CASE WHEN o.is_test
								THEN ch.test_recipients[1 OPERATOR(pg_catalog.+)
									 (o.member_id OPERATOR(pg_catalog.%)
									  cardinality(ch.test_recipients))::integer]
								ELSE o.recipient END
		  FROM (SELECT x.outbox_id FROM taskflow.outbox x
				 WHERE x.outbox_id OPERATOR(pg_catalog.=) ANY (ids)
				   AND x.state OPERATOR(pg_catalog.=) ANY (ARRAY['pending', 'deferred'])
				   AND x.not_before OPERATOR(pg_catalog.<=) as_of
				 ORDER BY x.not_before, x.outbox_id
				 LIMIT taskflow._rate_budget(ch, max, as_of)) p
		 WHERE o.outbox_id OPERATOR(pg_catalog.=) p.outbox_id
		RETURNING o.*),
	a AS (
		INSERT INTO taskflow.delivery_attempt (outbox_id, attempt, worker, recipient, started_at)
		SELECT l.outbox_id, l.attempts, worker, l.recipient, as_of FROM l)
	SELECT l.* FROM l ORDER BY l.not_before, l.outbox_id;
	GET DIAGNOSTICS claimed = ROW_COUNT;

	IF ch.rate_per_second IS NOT NULL AND claimed OPERATOR(pg_catalog.>) 0 THEN
		UPDATE taskflow.channel c
		   SET rate_window_count = CASE WHEN c.rate_window_start OPERATOR(pg_catalog.=) window_start
										THEN c.rate_window_count OPERATOR(pg_catalog.+) claimed
										ELSE claimed END,
			   rate_window_start = window_start
		 WHERE c.name OPERATOR(pg_catalog.=) ch.name;
	END IF;
END
$$;
COMMENT ON FUNCTION taskflow.claim_messages(text, text, integer, interval, timestamptz) IS
	'Leases up to max ready messages of a channel to a worker (suppression, guardrails, test routing applied); returns them';

------------------------------------------------------------------ complete

-- A completion's reply as one text, for state_reason and the suppression
-- list: "550 5.1.1 <a@example.jp>: User unknown".  A reply as the delivery
-- workers pass it is the server's whole line, which starts with the code
-- and often the enhanced code ("550-5.1.1 ..." for a multi-line one); a
-- relay may pass it without the code (Python's smtplib) or without
-- either.  What the reply already starts with is not written twice.
CREATE FUNCTION taskflow._reply_text(code integer, enhanced text, reply text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r text := btrim(reply);
BEGIN
	IF code IS NOT NULL AND (r OPERATOR(pg_catalog.=) code::text
							 OR left(r, 4) OPERATOR(pg_catalog.=) ANY
								(ARRAY[code::text OPERATOR(pg_catalog.||) ' ',
									   code::text OPERATOR(pg_catalog.||) '-'])) THEN
		r := ltrim(substr(r, 5));
	END IF;
	IF nullif(enhanced, '') IS NOT NULL
	   AND (r OPERATOR(pg_catalog.=) enhanced
			OR starts_with(r, enhanced OPERATOR(pg_catalog.||) ' ')) THEN
		r := ltrim(substr(r, length(enhanced) OPERATOR(pg_catalog.+) 2));
	END IF;
	RETURN nullif(concat_ws(' ', code, nullif(enhanced, ''), nullif(r, '')), '');
END
$$;
COMMENT ON FUNCTION taskflow._reply_text(integer, text, text) IS
	'A reply code, enhanced code and reply text as one text, without repeating what the reply starts with';

-- Writes back what became of a batch of claimed messages, one array
-- element per message: outcome 'sent', 'temporary' (4xx, network error,
-- timeout: retried after retry_delay(), failed after max_attempts) or
-- 'permanent' (5xx: failed; an enhanced code 5.1.x also suppresses the
-- address).  Closes each attempt and writes the member's timeline.  Only
-- messages leased by this worker and still 'sending' are changed, so a
-- worker whose lease was reclaimed cannot overwrite, and a repeated call
-- changes nothing.  Returns how many messages it completed.
CREATE FUNCTION taskflow.complete_messages(worker text, outbox_ids bigint[], outcomes text[],
										   smtp_codes integer[], enhanced_codes text[],
										   replies text[],
										   as_of timestamptz DEFAULT pg_catalog.now())
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n integer := coalesce(cardinality(outbox_ids), 0);
	bad text;
	done integer;
BEGIN
	PERFORM taskflow._check_worker(worker, as_of);
	IF coalesce(cardinality(outcomes), 0) OPERATOR(pg_catalog.<>) n
	   OR coalesce(cardinality(smtp_codes), n) OPERATOR(pg_catalog.<>) n
	   OR coalesce(cardinality(enhanced_codes), n) OPERATOR(pg_catalog.<>) n
	   OR coalesce(cardinality(replies), n) OPERATOR(pg_catalog.<>) n THEN
		RAISE EXCEPTION 'complete_messages needs one element per message in every array'
			USING ERRCODE = 'array_subscript_error',
				  DETAIL = format('outbox_ids %s, outcomes %s, smtp_codes %s, enhanced_codes %s, replies %s.',
								  n, coalesce(cardinality(outcomes), 0),
								  coalesce(cardinality(smtp_codes)::text, 'NULL'),
								  coalesce(cardinality(enhanced_codes)::text, 'NULL'),
								  coalesce(cardinality(replies)::text, 'NULL')),
				  HINT = 'smtp_codes, enhanced_codes and replies may be NULL as a whole.';
	END IF;
	IF n OPERATOR(pg_catalog.=) 0 THEN
		RETURN 0;
	END IF;
	SELECT x INTO bad FROM unnest(outcomes) x
	 WHERE x IS NULL OR NOT x OPERATOR(pg_catalog.=) ANY (ARRAY['sent', 'temporary', 'permanent'])
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'invalid outcome %', coalesce(quote_literal(bad), 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The outcomes are ''sent'', ''temporary'' (4xx, network error, timeout) and ''permanent'' (5xx).';
	END IF;

	WITH i AS (
		SELECT DISTINCT ON (x.id) x.id, x.outcome, x.code, x.enhanced, x.reply
		  FROM unnest(outbox_ids, outcomes, smtp_codes, enhanced_codes, replies)
			   WITH ORDINALITY AS x (id, outcome, code, enhanced, reply, ord)
		 WHERE x.id IS NOT NULL
		 ORDER BY x.id, x.ord),
	u AS (
		UPDATE taskflow.outbox o
		   SET state = CASE WHEN i.outcome OPERATOR(pg_catalog.=) 'sent' THEN 'sent'
							WHEN i.outcome OPERATOR(pg_catalog.=) 'temporary'
								 AND o.attempts OPERATOR(pg_catalog.<) ch.max_attempts THEN 'deferred'
							ELSE 'failed' END,
			   state_reason = CASE
					WHEN i.outcome OPERATOR(pg_catalog.=) 'sent' THEN NULL
					WHEN i.outcome OPERATOR(pg_catalog.=) 'permanent' THEN 'permanent failure'
					WHEN o.attempts OPERATOR(pg_catalog.<) ch.max_attempts THEN 'temporary failure'
					ELSE format('temporary failure %s times', o.attempts) END
					OPERATOR(pg_catalog.||)
					CASE WHEN i.outcome OPERATOR(pg_catalog.=) 'sent' THEN NULL
						 ELSE coalesce(': ' OPERATOR(pg_catalog.||)
									   taskflow._reply_text(i.code, i.enhanced, i.reply), '') END,
			   not_before = CASE WHEN i.outcome OPERATOR(pg_catalog.=) 'temporary'
									  AND o.attempts OPERATOR(pg_catalog.<) ch.max_attempts
								 THEN as_of OPERATOR(pg_catalog.+)
									  taskflow.retry_delay(o.outbox_id, o.attempts,
														   ch.backoff_base, ch.backoff_max)
								 ELSE o.not_before END,
			   sent_at = CASE WHEN i.outcome OPERATOR(pg_catalog.=) 'sent' THEN as_of ELSE o.sent_at END,
			   last_smtp_code = i.code, last_enhanced_code = i.enhanced, last_reply = i.reply,
			   lease_owner = NULL, lease_expires_at = NULL
		  FROM i, taskflow.channel ch
		 WHERE o.outbox_id OPERATOR(pg_catalog.=) i.id
		   AND ch.name OPERATOR(pg_catalog.=) o.channel
		   AND o.state OPERATOR(pg_catalog.=) 'sending'
		   AND o.lease_owner OPERATOR(pg_catalog.=) worker
		RETURNING o.outbox_id, o.member_id, o.channel, o.subject, o.recipient, o.is_test,
				  o.state, o.state_reason, o.attempts, o.not_before, i.outcome, i.code,
				  i.enhanced, i.reply),
	a AS (
		UPDATE taskflow.delivery_attempt a
		   SET finished_at = as_of, outcome = u.outcome, smtp_code = u.code,
			   enhanced_code = u.enhanced, reply = u.reply
		  FROM u
		 WHERE a.outbox_id OPERATOR(pg_catalog.=) u.outbox_id AND a.finished_at IS NULL),
	s AS (
		INSERT INTO taskflow.suppression AS s (address, reason, at, outbox_id)
		SELECT DISTINCT ON (lower(btrim(u.recipient))) lower(btrim(u.recipient)),
			   concat_ws(' ', 'bounce', taskflow._reply_text(u.code, u.enhanced, u.reply)),
			   as_of, u.outbox_id
		  FROM u
		 WHERE u.outcome OPERATOR(pg_catalog.=) 'permanent' AND NOT u.is_test
		   AND u.enhanced OPERATOR(pg_catalog.~) '^5\.1\.[0-9]{1,3}$'
		   AND u.recipient IS NOT NULL
		 ORDER BY lower(btrim(u.recipient)), u.outbox_id
		ON CONFLICT (address) DO NOTHING),
	e AS (
		INSERT INTO taskflow.event (member_id, kind, occurred_at, detail, recorded_by)
		SELECT u.member_id,
			   CASE u.state WHEN 'sent' THEN 'mail_sent' WHEN 'failed' THEN 'mail_failed'
							ELSE 'mail_deferred' END,
			   as_of,
			   jsonb_strip_nulls(jsonb_build_object('outbox_id', u.outbox_id, 'channel', u.channel,
					'subject', u.subject, 'recipient', u.recipient, 'attempt', u.attempts,
					'smtp_code', u.code, 'enhanced_code', u.enhanced, 'reply', u.reply,
					'retry_at', CASE WHEN u.state OPERATOR(pg_catalog.=) 'deferred'
									 THEN u.not_before END)),
			   worker
		  FROM u
		 WHERE NOT u.is_test)
	SELECT count(*) INTO done FROM u;
	RETURN done;
END
$$;
COMMENT ON FUNCTION taskflow.complete_messages(text, bigint[], text[], integer[], text[], text[], timestamptz) IS
	'Writes back a batch of results (sent, temporary, permanent) for messages this worker leased; returns how many it completed';

-- When the next message of a channel is ready (a ready one: as_of; a
-- lease to reclaim: its expiry), for the worker's sleep.  NULL: nothing
-- to do, or the channel is disabled.
CREATE FUNCTION taskflow.next_delivery_at(channel text,
										  as_of timestamptz DEFAULT pg_catalog.now())
RETURNS timestamptz
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ch taskflow.channel;
	next_at timestamptz;
BEGIN
	SELECT * INTO ch FROM taskflow.channel c WHERE c.name OPERATOR(pg_catalog.=) next_delivery_at.channel;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'channel "%" does not exist', next_delivery_at.channel
			USING ERRCODE = 'undefined_object';
	END IF;
	IF NOT ch.enabled OR as_of IS NULL OR EXISTS (SELECT FROM taskflow.hold) THEN
		RETURN NULL;
	END IF;
	next_at := LEAST(
		(SELECT o.not_before FROM taskflow.outbox o
		  WHERE o.channel OPERATOR(pg_catalog.=) ch.name
			AND o.state OPERATOR(pg_catalog.=) ANY (ARRAY['pending', 'deferred'])
		  ORDER BY o.not_before LIMIT 1),
		(SELECT o.lease_expires_at FROM taskflow.outbox o
		  WHERE o.channel OPERATOR(pg_catalog.=) ch.name
			AND o.state OPERATOR(pg_catalog.=) 'sending'
		  ORDER BY o.lease_expires_at LIMIT 1));
	IF next_at IS NULL THEN
		RETURN NULL;
	END IF;
	IF next_at OPERATOR(pg_catalog.<=) as_of AND taskflow._rate_budget(ch, 1, as_of) OPERATOR(pg_catalog.=) 0 THEN
		-- the rate limit is used up for this second
		RETURN ch.rate_window_start OPERATOR(pg_catalog.+) interval '1 second';
	END IF;
	RETURN GREATEST(next_at, as_of);
END
$$;
COMMENT ON FUNCTION taskflow.next_delivery_at(text, timestamptz) IS
	'When the next message of a channel is ready (as_of when one is ready now); NULL when none';

------------------------------------------------------------------ operators

-- Raises unless caller may cancel or retry a message: operators
-- (taskflow_operator), and members of the role that owns the chain that
-- wrote it; another application role may not touch its messages.
CREATE FUNCTION taskflow._check_message_caller(caller regrole, o taskflow.outbox)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	chain_owner oid;
BEGIN
	IF pg_has_role(caller, 'taskflow_operator', 'USAGE') THEN
		RETURN;
	END IF;
	SELECT c.owner INTO chain_owner FROM taskflow.chain c
	 WHERE c.chain_id OPERATOR(pg_catalog.=) o.chain_id;
	IF EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) chain_owner)
	   AND pg_has_role(caller, chain_owner, 'USAGE') THEN
		RETURN;
	END IF;
	RAISE EXCEPTION 'permission denied for message %', o.outbox_id
		USING ERRCODE = 'insufficient_privilege',
			  DETAIL = CASE WHEN chain_owner IS NULL THEN 'Its chain was dropped.'
							ELSE format('Its chain belongs to role %s.', chain_owner::regrole) END,
			  HINT = 'Operators (taskflow_operator) and members of the role that owns the chain may cancel or retry its messages.';
END
$$;

-- Cancels a message that is not sent yet; returns false when it was
-- already cancelled.  (Like the chain API, the public function is the C
-- dispatcher, which calls this one as the extension owner with the
-- calling role as caller.)
CREATE FUNCTION taskflow._cancel_message(caller regrole, outbox_id bigint, reason text,
										 as_of timestamptz)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	o taskflow.outbox;
	why text := concat_ws(': ', format('cancelled by %s', caller), nullif(reason, ''));
BEGIN
	SELECT * INTO o FROM taskflow.outbox x
	 WHERE x.outbox_id OPERATOR(pg_catalog.=) _cancel_message.outbox_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'message % does not exist', _cancel_message.outbox_id
			USING ERRCODE = 'no_data_found';
	END IF;
	PERFORM taskflow._check_message_caller(caller, o);
	IF as_of IS NULL OR NOT isfinite(as_of) THEN
		RAISE EXCEPTION 'as_of cannot be %', coalesce(as_of::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Leave it out for taskflow.clock().';
	END IF;
	IF o.state OPERATOR(pg_catalog.=) 'cancelled' THEN
		RETURN false;
	END IF;
	IF o.state OPERATOR(pg_catalog.=) 'sending' THEN
		RAISE EXCEPTION 'message % is being sent by worker %', o.outbox_id, to_json(o.lease_owner)
			USING ERRCODE = 'object_in_use',
				  HINT = format('Its result comes back by %s at the latest; cancel it then if it was not sent.',
								o.lease_expires_at);
	END IF;
	IF o.state OPERATOR(pg_catalog.<>) ALL (ARRAY['pending', 'deferred']) THEN
		RAISE EXCEPTION 'message % was already %', o.outbox_id, o.state
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	UPDATE taskflow.outbox x SET state = 'cancelled', state_reason = why
	 WHERE x.outbox_id OPERATOR(pg_catalog.=) o.outbox_id;
	IF NOT o.is_test THEN
		INSERT INTO taskflow.event (member_id, kind, occurred_at, detail, recorded_by)
		VALUES (o.member_id, 'mail_cancelled', as_of,
				jsonb_strip_nulls(jsonb_build_object('outbox_id', o.outbox_id, 'channel', o.channel,
					'subject', o.subject, 'recipient', o.recipient, 'reason', why)),
				caller::text);
	END IF;
	RETURN true;
END
$$;

CREATE FUNCTION taskflow.cancel_message(outbox_id bigint, reason text DEFAULT NULL,
										as_of timestamptz DEFAULT taskflow.clock())
RETURNS boolean
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_api_call';
COMMENT ON FUNCTION taskflow.cancel_message(bigint, text, timestamptz) IS
	'Cancels a message not yet sent (pending or deferred); false when it was already cancelled';

-- Queues a deferred, failed or cancelled message again, as of an instant,
-- with a fresh count of attempts; returns false when it is already
-- pending.  The claim checks suppression and the guardrails again.
CREATE FUNCTION taskflow._retry_message(caller regrole, outbox_id bigint, as_of timestamptz)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	o taskflow.outbox;
BEGIN
	SELECT * INTO o FROM taskflow.outbox x
	 WHERE x.outbox_id OPERATOR(pg_catalog.=) _retry_message.outbox_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'message % does not exist', _retry_message.outbox_id
			USING ERRCODE = 'no_data_found';
	END IF;
	PERFORM taskflow._check_message_caller(caller, o);
	IF as_of IS NULL OR NOT isfinite(as_of) THEN
		RAISE EXCEPTION 'as_of cannot be %', coalesce(as_of::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Leave it out for taskflow.clock().';
	END IF;
	IF o.state OPERATOR(pg_catalog.=) 'pending' THEN
		RETURN false;
	END IF;
	IF o.state OPERATOR(pg_catalog.=) 'sending' THEN
		RAISE EXCEPTION 'message % is being sent by worker %', o.outbox_id, to_json(o.lease_owner)
			USING ERRCODE = 'object_in_use';
	END IF;
	IF o.state OPERATOR(pg_catalog.=) 'sent' THEN
		RAISE EXCEPTION 'message % was already sent', o.outbox_id
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A sent message is not sent again.';
	END IF;
	UPDATE taskflow.outbox x
	   SET state = 'pending', not_before = as_of, attempts = 0,
		   state_reason = format('retried by %s (was %s)', caller, o.state)
	 WHERE x.outbox_id OPERATOR(pg_catalog.=) o.outbox_id;
	RETURN true;
END
$$;

CREATE FUNCTION taskflow.retry_message(outbox_id bigint,
									   as_of timestamptz DEFAULT taskflow.clock())
RETURNS boolean
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_api_call';
COMMENT ON FUNCTION taskflow.retry_message(bigint, timestamptz) IS
	'Queues a deferred, failed or cancelled message again with fresh attempts; false when already pending';

-- Adds an address to the suppression list; false when it was there.
CREATE FUNCTION taskflow.suppress(address text, reason text DEFAULT 'manual',
								  at timestamptz DEFAULT taskflow.clock())
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF address IS NULL OR btrim(address) OPERATOR(pg_catalog.=) ''
	   OR address OPERATOR(pg_catalog.~) '[[:cntrl:]]' THEN
		RAISE EXCEPTION 'invalid address %', coalesce(to_json(address)::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- no address is longer (and a much longer key would not fit the index)
	IF length(btrim(address)) OPERATOR(pg_catalog.>) 254 THEN
		RAISE EXCEPTION 'address "%…" is too long (% characters)', left(btrim(address), 20),
			length(btrim(address))
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'An address or recipient id has at most 254 characters.';
	END IF;
	INSERT INTO taskflow.suppression AS s (address, reason, at)
	VALUES (lower(btrim(address)), coalesce(nullif(reason, ''), 'manual'), coalesce(at, taskflow.clock()))
	ON CONFLICT ON CONSTRAINT suppression_pkey DO NOTHING;
	RETURN FOUND;
END
$$;
COMMENT ON FUNCTION taskflow.suppress(text, text, timestamptz) IS
	'Suppresses an address (no marketing mail to it); false when it already was';

-- Removes an address from the suppression list; false when it was not there.
CREATE FUNCTION taskflow.unsuppress(address text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM taskflow.suppression s
	 WHERE s.address OPERATOR(pg_catalog.=) lower(btrim(unsuppress.address));
	RETURN FOUND;
END
$$;
COMMENT ON FUNCTION taskflow.unsuppress(text) IS
	'Lifts the suppression of an address; false when it was not suppressed';

------------------------------------------------------------------ privileges

REVOKE ALL ON TABLE taskflow.delivery_attempt, taskflow.suppression FROM PUBLIC;
REVOKE ALL ON SEQUENCE taskflow.delivery_attempt_attempt_id_seq FROM PUBLIC;
GRANT SELECT ON taskflow.delivery_attempt, taskflow.suppression
	TO taskflow_app, taskflow_operator, taskflow_relay;

REVOKE ALL ON FUNCTION
	taskflow.retry_delay(bigint, integer, interval, interval),
	taskflow.quiet_hours_end(timestamptz, time, time, text),
	taskflow._check_worker(text, timestamptz),
	taskflow._outbox_cancelled(),
	taskflow._reclaim_leases(taskflow.channel, text, timestamptz),
	taskflow._claim_recipients(bigint[]),
	taskflow._claim_cancel(taskflow.channel, text, bigint[], timestamptz),
	taskflow._claim_member_guardrails(taskflow.channel, bigint[], timestamptz),
	taskflow._claim_quota(taskflow.channel, bigint[], timestamptz),
	taskflow._rate_budget(taskflow.channel, integer, timestamptz),
	taskflow._reply_text(integer, text, text),
	taskflow.claim_messages(text, text, integer, interval, timestamptz),
	taskflow.complete_messages(text, bigint[], text[], integer[], text[], text[], timestamptz),
	taskflow.next_delivery_at(text, timestamptz),
	taskflow._check_message_caller(regrole, taskflow.outbox),
	taskflow._cancel_message(regrole, bigint, text, timestamptz),
	taskflow.cancel_message(bigint, text, timestamptz),
	taskflow._retry_message(regrole, bigint, timestamptz),
	taskflow.retry_message(bigint, timestamptz),
	taskflow.suppress(text, text, timestamptz),
	taskflow.unsuppress(text)
	FROM PUBLIC;
-- delivery workers run as the extension owner; relays elsewhere use this role
GRANT EXECUTE ON FUNCTION
	taskflow.claim_messages(text, text, integer, interval, timestamptz),
	taskflow.complete_messages(text, bigint[], text[], integer[], text[], text[], timestamptz),
	taskflow.next_delivery_at(text, timestamptz)
	TO taskflow_relay;
GRANT EXECUTE ON FUNCTION
	taskflow.retry_delay(bigint, integer, interval, interval),
	taskflow.quiet_hours_end(timestamptz, time, time, text),
	taskflow.next_delivery_at(text, timestamptz),
	taskflow.cancel_message(bigint, text, timestamptz),
	taskflow.retry_message(bigint, timestamptz),
	taskflow.suppress(text, text, timestamptz),
	taskflow.unsuppress(text)
	TO taskflow_app, taskflow_operator;
-- relays read the rows they claimed (and the channel settings)
GRANT SELECT ON taskflow.outbox TO taskflow_relay;
