-- taskflow install script, part 13: helper predicates for criteria.
--
-- Criteria are SQL boolean expressions over a member row.  These helpers
-- cover the common questions so users rarely write subqueries; every one is
-- "as of" taskflow.clock(), so a search as of an instant is exact: events
-- recorded after that instant do not count yet.  Day counts are calendar
-- days in the session's TimeZone (the engine sets the chain's zone).
-- The simple ones are plain SQL expressions the planner inlines, so
-- indexes on the member columns still apply.

-- Calendar days from the day of ts to today (negative when ts is later);
-- NULL for 'infinity' / '-infinity' (no day count: "never expires").
CREATE FUNCTION taskflow.days_since(ts timestamptz)
RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (CASE WHEN pg_catalog.isfinite(ts)
			 THEN taskflow.clock()::date OPERATOR(pg_catalog.-) ts::date END);

-- Calendar days from today to the day of ts (negative when ts is past);
-- NULL for 'infinity' / '-infinity'.
CREATE FUNCTION taskflow.days_until(ts timestamptz)
RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (CASE WHEN pg_catalog.isfinite(ts)
			 THEN ts::date OPERATOR(pg_catalog.-) taskflow.clock()::date END);

-- Calendar days from today to the next anniversary of a date (birthday).
-- A 29 February anniversary falls on 28 February in common years; an
-- infinite date has none (NULL).
CREATE FUNCTION taskflow.days_until_anniversary(d date)
RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN pg_catalog.isfinite(d) THEN (
	SELECT CASE WHEN y.this_year OPERATOR(pg_catalog.>=) y.t
				THEN y.this_year OPERATOR(pg_catalog.-) y.t
				ELSE y.next_year OPERATOR(pg_catalog.-) y.t END
	  FROM (SELECT c.t,
				   (d OPERATOR(pg_catalog.+) make_interval(years => c.age))::date AS this_year,
				   (d OPERATOR(pg_catalog.+) make_interval(years => c.age OPERATOR(pg_catalog.+) 1))::date AS next_year
			  FROM (SELECT taskflow.clock()::date AS t,
						   (extract(year FROM taskflow.clock()::date)
							OPERATOR(pg_catalog.-) extract(year FROM d))::integer AS age) c) y) END;

-- True when ts lies in [clock, clock + span).
CREATE FUNCTION taskflow.within_next(ts timestamptz, span interval)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN ts OPERATOR(pg_catalog.>=) taskflow.clock()
	AND ts OPERATOR(pg_catalog.<) (taskflow.clock() OPERATOR(pg_catalog.+) span);

-- True when ts lies in (clock - span, clock].
CREATE FUNCTION taskflow.within_last(ts timestamptz, span interval)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN ts OPERATOR(pg_catalog.<=) taskflow.clock()
	AND ts OPERATOR(pg_catalog.>) (taskflow.clock() OPERATOR(pg_catalog.-) span);

-- Tag tests on the member's tags column (GIN-indexed).
CREATE FUNCTION taskflow.has_tag(tags text[], tag text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN tags OPERATOR(pg_catalog.@>) ARRAY[tag];

CREATE FUNCTION taskflow.has_any_tag(tags text[], wanted text[])
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN tags OPERATOR(pg_catalog.&&) wanted;

CREATE FUNCTION taskflow.has_all_tags(tags text[], wanted text[])
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN tags OPERATOR(pg_catalog.@>) wanted;

-- Typed reads of custom properties (NULL when the member has no value).
-- Criteria validation checks that the property exists and has that type.
CREATE FUNCTION taskflow.prop_text(properties jsonb, name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN properties OPERATOR(pg_catalog.->>) name;

CREATE FUNCTION taskflow.prop_number(properties jsonb, name text)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (properties OPERATOR(pg_catalog.->>) name)::numeric;

CREATE FUNCTION taskflow.prop_bool(properties jsonb, name text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (properties OPERATOR(pg_catalog.->>) name)::boolean;

CREATE FUNCTION taskflow.prop_date(properties jsonb, name text)
RETURNS date
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (properties OPERATOR(pg_catalog.->>) name)::date;

-- True when the member is in the named group as of the clock.
CREATE FUNCTION taskflow.in_group(member_id bigint, group_name text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN EXISTS (
	SELECT FROM taskflow.group_membership gm
	  JOIN taskflow.member_group g ON g.group_id OPERATOR(pg_catalog.=) gm.group_id
	 WHERE gm.member_id OPERATOR(pg_catalog.=) in_group.member_id
	   AND g.name OPERATOR(pg_catalog.=) in_group.group_name
	   AND gm.joined_at OPERATOR(pg_catalog.<=) taskflow.clock()
	   AND (gm.left_at IS NULL OR gm.left_at OPERATOR(pg_catalog.>) taskflow.clock()));

-- Number of events of a kind, optionally only those within the last span.
CREATE FUNCTION taskflow.event_count(member_id bigint, kind text,
									 within interval DEFAULT NULL)
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (
	SELECT count(*) FROM taskflow.event e
	 WHERE e.member_id OPERATOR(pg_catalog.=) event_count.member_id
	   AND e.kind OPERATOR(pg_catalog.=) event_count.kind
	   AND e.occurred_at OPERATOR(pg_catalog.<=) taskflow.clock()
	   AND (within IS NULL OR e.occurred_at OPERATOR(pg_catalog.>)
							  (taskflow.clock() OPERATOR(pg_catalog.-) within)));

-- When the member's latest event of a kind happened (NULL: never).
CREATE FUNCTION taskflow.last_event_at(member_id bigint, kind text)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (
	SELECT max(e.occurred_at) FROM taskflow.event e
	 WHERE e.member_id OPERATOR(pg_catalog.=) last_event_at.member_id
	   AND e.kind OPERATOR(pg_catalog.=) last_event_at.kind
	   AND e.occurred_at OPERATOR(pg_catalog.<=) taskflow.clock());

-- Number of payments the member has made (有料契約 N カ月目: paid_count = N).
CREATE FUNCTION taskflow.paid_count(member_id bigint)
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
RETURN taskflow.event_count(member_id, 'payment');

-- When the member last paid (NULL: never).
CREATE FUNCTION taskflow.last_payment_at(member_id bigint)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
RETURN taskflow.last_event_at(member_id, 'payment');

-- True when a payment made within the last span exists.
CREATE FUNCTION taskflow.paid_within(member_id bigint, span interval)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN taskflow.event_count(member_id, 'payment', span) OPERATOR(pg_catalog.>) 0;

-- True when a payment covering the given day has arrived.
CREATE FUNCTION taskflow.paid_for(member_id bigint, day date)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN EXISTS (
	SELECT FROM taskflow.event e
	 WHERE e.member_id OPERATOR(pg_catalog.=) paid_for.member_id
	   AND e.kind OPERATOR(pg_catalog.=) 'payment'
	   AND e.period OPERATOR(pg_catalog.@>) paid_for.day
	   AND e.occurred_at OPERATOR(pg_catalog.<=) taskflow.clock());

-- True when the payment for the member's month n (month 1 starts on the
-- join date) has arrived.
CREATE FUNCTION taskflow.paid_for_month(member_id bigint, n integer)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (
	SELECT taskflow.paid_for(m.member_id,
							 (m.joined_at::date OPERATOR(pg_catalog.+)
							  make_interval(months => n OPERATOR(pg_catalog.-) 1))::date)
	  FROM taskflow.member m
	 WHERE m.member_id OPERATOR(pg_catalog.=) paid_for_month.member_id);
