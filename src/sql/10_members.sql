-- taskflow install script, part 10: the member data model.
--
-- Members with core columns, typed custom properties (stored in one jsonb
-- column, validated on write against taskflow.custom_property), tags (a text[]
-- column with a GIN index), membership groups with dates, and an event
-- timeline.  Statuses and event kinds are data, so users can add their own.

-- Member statuses.  Built-in rows are recreated by CREATE EXTENSION, so
-- pg_dump keeps only the ones users added.
CREATE TABLE taskflow.member_status (
	status		text PRIMARY KEY
				CHECK (status OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]{0,62}$'),
	description text,
	builtin		boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE taskflow.member_status IS
	'Allowed member statuses; add your own with taskflow.define_status()';

INSERT INTO taskflow.member_status (status, description, builtin) VALUES
	('trial', 'On a free trial', true),
	('paid', 'Paying member', true),
	('newsletter', 'Newsletter list only, not a member', true),
	('suspended', 'Membership suspended (for example unpaid)', true),
	('cancelled', 'Membership ended', true);

-- Event kinds of the timeline.
CREATE TABLE taskflow.event_kind (
	kind		text PRIMARY KEY
				CHECK (kind OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]{0,62}$'),
	description text,
	builtin		boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE taskflow.event_kind IS
	'Kinds of timeline events; add your own with taskflow.define_event_kind()';

INSERT INTO taskflow.event_kind (kind, description, builtin) VALUES
	('payment', 'A payment; amount and the period it pays for', true),
	('purchase', 'A purchase', true),
	('booking', 'A booking or reservation', true),
	('form', 'A form entry', true),
	('mail_sent', 'A message was sent', true),
	('mail_opened', 'A message was opened', true),
	('mail_failed', 'A message could not be delivered', true),
	('tag_added', 'A tag was added', true),
	('tag_removed', 'A tag was removed', true),
	('group_joined', 'Joined a membership group', true),
	('group_left', 'Left a membership group', true),
	('unsubscribed', 'Unsubscribed from marketing messages', true),
	('resubscribed', 'Subscribed again', true),
	('note', 'A memo written by staff', true),
	('automation', 'Something taskflow did', true);

-- Typed custom properties.
CREATE TABLE taskflow.custom_property (
	name		text PRIMARY KEY
				CHECK (name OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]{0,62}$'),
	type		text NOT NULL
				CHECK (type OPERATOR(pg_catalog.=) ANY
					   (ARRAY['text', 'email', 'number', 'boolean', 'date', 'list'])),
	allowed_values text[]
				CHECK ((type OPERATOR(pg_catalog.=) 'list')
					   OPERATOR(pg_catalog.=) (allowed_values IS NOT NULL)),
	description text,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE taskflow.custom_property IS
	'Custom member properties and their types; see taskflow.define_property()';

CREATE TABLE taskflow.member (
	member_id	bigserial PRIMARY KEY,
	external_id text UNIQUE,
	email		text,
	name		text,
	name_kana	text,
	status		text NOT NULL DEFAULT 'trial'
				REFERENCES taskflow.member_status (status) ON UPDATE CASCADE,
	joined_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	expires_at	timestamptz,
	birthday	date,
	last_message_at timestamptz,
	unsubscribed_at timestamptz,
	tags		text[] NOT NULL DEFAULT '{}',
	properties	jsonb NOT NULL DEFAULT '{}',
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE taskflow.member IS
	'Members: core columns, tags and typed custom properties';
COMMENT ON COLUMN taskflow.member.external_id IS
	'The application''s own key for the member';
COMMENT ON COLUMN taskflow.member.properties IS
	'Custom property values, keyed by taskflow.custom_property.name';

CREATE INDEX member_tags_idx ON taskflow.member USING gin (tags);
CREATE INDEX member_email_idx ON taskflow.member (pg_catalog.lower(email));
CREATE INDEX member_status_idx ON taskflow.member (status);
CREATE INDEX member_expires_at_idx ON taskflow.member (expires_at);
CREATE INDEX member_joined_at_idx ON taskflow.member (joined_at);

-- Membership groups (会員グループ) and who is in them, with dates.
CREATE TABLE taskflow.member_group (
	group_id	serial PRIMARY KEY,
	name		text NOT NULL UNIQUE
				CHECK (pg_catalog.length(name) OPERATOR(pg_catalog.>) 0),
	description text,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE taskflow.member_group IS 'Membership groups';

CREATE TABLE taskflow.group_membership (
	member_id	bigint NOT NULL
				REFERENCES taskflow.member (member_id) ON DELETE CASCADE,
	group_id	integer NOT NULL
				REFERENCES taskflow.member_group (group_id) ON DELETE CASCADE,
	joined_at	timestamptz NOT NULL,
	left_at		timestamptz,
	PRIMARY KEY (member_id, group_id, joined_at),
	-- named for what it requires: a COPY of a bad row reports the name
	CONSTRAINT group_membership_left_at_not_before_joined_at
		CHECK (left_at IS NULL OR left_at OPERATOR(pg_catalog.>=) joined_at)
);
COMMENT ON TABLE taskflow.group_membership IS
	'Who is or was in which group, from joined_at until left_at';
-- At most one open membership per member and group.
CREATE UNIQUE INDEX group_membership_open_idx
	ON taskflow.group_membership (member_id, group_id) WHERE left_at IS NULL;
CREATE INDEX group_membership_group_idx
	ON taskflow.group_membership (group_id, member_id);

-- The timeline: one row per thing that happened to a member.
CREATE TABLE taskflow.event (
	event_id	bigserial PRIMARY KEY,
	member_id	bigint NOT NULL
				REFERENCES taskflow.member (member_id) ON DELETE CASCADE,
	kind		text NOT NULL REFERENCES taskflow.event_kind (kind),
	occurred_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	amount		numeric,
	period		daterange,
	detail		jsonb NOT NULL DEFAULT '{}',
	-- the role that wrote it: the event trigger forces the writing role's
	-- name unless taskflow's own code (the extension owner) writes, and
	-- that code names the writer; the default is for what it leaves out:
	-- the login role that called one of its SECURITY DEFINER functions
	recorded_by text NOT NULL DEFAULT SESSION_USER,
	recorded_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	-- named for what it requires: a COPY of a bad row reports the name
	CONSTRAINT event_detail_must_be_a_json_object
		CHECK (pg_catalog.jsonb_typeof(detail) OPERATOR(pg_catalog.=) 'object')
);
COMMENT ON TABLE taskflow.event IS
	'Member timeline: payments, purchases, forms, mail, tags, notes, automation';
COMMENT ON COLUMN taskflow.event.period IS
	'For payments: the dates the payment pays for';
CREATE INDEX event_member_time_idx ON taskflow.event (member_id, occurred_at);
CREATE INDEX event_kind_time_idx ON taskflow.event (kind, occurred_at);

-- pg_dump keeps user data (CREATE EXTENSION recreates built-in rows).
SELECT pg_catalog.pg_extension_config_dump('taskflow.member_status', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('taskflow.event_kind', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('taskflow.custom_property', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.member', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.member_member_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.member_group', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.member_group_group_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.group_membership', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.event', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.event_event_id_seq', '');
