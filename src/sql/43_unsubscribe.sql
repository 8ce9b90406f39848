-- taskflow install script, part 43: unsubscribe tokens for the
-- List-Unsubscribe link ({{token}} in a channel's unsubscribe_url).
--
-- A token is a keyed SHA-256 of the member id with a random secret made on
-- first use and readable only by the extension owner, so a link cannot
-- be forged for another member.  The application's unsubscribe endpoint
-- checks it with taskflow.unsubscribe_with_token().

CREATE TABLE taskflow.unsubscribe_secret (
	id			boolean PRIMARY KEY DEFAULT true CHECK (id),	/* one row */
	secret		text NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE taskflow.unsubscribe_secret IS
	'The key of unsubscribe tokens (one row, made on first use; rotate with taskflow.rotate_unsubscribe_secret())';
-- dumped so links already sent still work after a restore; the row is made
-- on first use, not by CREATE EXTENSION, so a restore brings back the old one
SELECT pg_catalog.pg_extension_config_dump('taskflow.unsubscribe_secret', '');
REVOKE ALL ON taskflow.unsubscribe_secret FROM PUBLIC;

-- A new random secret.
CREATE FUNCTION taskflow._new_unsubscribe_secret()
RETURNS text
LANGUAGE sql VOLATILE
RETURN pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
	pg_catalog.gen_random_uuid()::text OPERATOR(pg_catalog.||) pg_catalog.gen_random_uuid()::text
	OPERATOR(pg_catalog.||) pg_catalog.clock_timestamp()::text, 'UTF8')), 'hex');

-- The unsubscribe token of a member.
CREATE FUNCTION taskflow.unsubscribe_token(member_id bigint)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	key text;
BEGIN
	SELECT s.secret INTO key FROM taskflow.unsubscribe_secret s;
	IF NOT FOUND THEN
		INSERT INTO taskflow.unsubscribe_secret AS s (secret)
		VALUES (taskflow._new_unsubscribe_secret())
		ON CONFLICT (id) DO NOTHING;
		SELECT s.secret INTO key FROM taskflow.unsubscribe_secret s;
	END IF;
	RETURN encode(sha256(convert_to(key OPERATOR(pg_catalog.||) ':'
									OPERATOR(pg_catalog.||) unsubscribe_token.member_id::text, 'UTF8')), 'hex');
END
$$;
COMMENT ON FUNCTION taskflow.unsubscribe_token(bigint) IS
	'The token that proves an unsubscribe link was sent to this member';

-- Unsubscribes the member when the token is theirs; false (nothing done)
-- when it is not, or the member was already unsubscribed.
CREATE FUNCTION taskflow.unsubscribe_with_token(member_id bigint, token text,
												reason text DEFAULT 'unsubscribe link')
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF token IS NULL OR token OPERATOR(pg_catalog.<>) taskflow.unsubscribe_token(member_id) THEN
		RETURN false;
	END IF;
	RETURN taskflow.unsubscribe(member_id, taskflow.clock(), reason);
END
$$;
COMMENT ON FUNCTION taskflow.unsubscribe_with_token(bigint, text, text) IS
	'For the unsubscribe endpoint: unsubscribes when the token is the member''s (RFC 8058 one-click)';

-- Makes a new secret: links sent before stop working.
CREATE FUNCTION taskflow.rotate_unsubscribe_secret()
RETURNS void
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	INSERT INTO taskflow.unsubscribe_secret AS s (secret) VALUES (taskflow._new_unsubscribe_secret())
	ON CONFLICT (id) DO UPDATE SET secret = EXCLUDED.secret, created_at = pg_catalog.now();
END;

REVOKE ALL ON FUNCTION taskflow._new_unsubscribe_secret(), taskflow.unsubscribe_token(bigint),
	taskflow.unsubscribe_with_token(bigint, text, text),
	taskflow.rotate_unsubscribe_secret() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION taskflow.unsubscribe_token(bigint),
	taskflow.unsubscribe_with_token(bigint, text, text) TO taskflow_app;
