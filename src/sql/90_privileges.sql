-- taskflow install script, part 90: privileges.
--
-- PUBLIC gets nothing.  taskflow_app writes members and their events with
-- plain SQL and manages definitions through functions; taskflow_operator
-- reads.  Internal tables are written only through taskflow's functions.

REVOKE ALL ON ALL TABLES IN SCHEMA taskflow FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA taskflow FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA taskflow FROM PUBLIC;

-- member data: the application writes it, operators read it
GRANT SELECT, INSERT, UPDATE, DELETE
	ON taskflow.member, taskflow.event, taskflow.group_membership
	TO taskflow_app;
GRANT USAGE ON SEQUENCE taskflow.member_member_id_seq, taskflow.event_event_id_seq
	TO taskflow_app;
GRANT SELECT
	ON taskflow.member, taskflow.event, taskflow.group_membership,
	   taskflow.member_group, taskflow.custom_property, taskflow.member_status,
	   taskflow.event_kind, taskflow.tag_usage
	TO taskflow_app, taskflow_operator;

-- helpers usable in criteria and by both roles
GRANT EXECUTE ON FUNCTION
	taskflow.clock(),
	taskflow.days_since(timestamptz), taskflow.days_until(timestamptz),
	taskflow.days_until_anniversary(date),
	taskflow.within_next(timestamptz, interval), taskflow.within_last(timestamptz, interval),
	taskflow.has_tag(text[], text), taskflow.has_any_tag(text[], text[]),
	taskflow.has_all_tags(text[], text[]),
	taskflow.prop_text(jsonb, text), taskflow.prop_number(jsonb, text),
	taskflow.prop_bool(jsonb, text), taskflow.prop_date(jsonb, text),
	taskflow.in_group(bigint, text), taskflow.event_count(bigint, text, interval),
	taskflow.last_event_at(bigint, text), taskflow.paid_count(bigint),
	taskflow.last_payment_at(bigint), taskflow.paid_within(bigint, interval),
	taskflow.paid_for(bigint, date), taskflow.paid_for_month(bigint, integer),
	taskflow.is_valid_email(text), taskflow.is_valid_date(text),
	taskflow.check_property_value(text, jsonb, text), taskflow.group_id(text),
	taskflow.timeline(bigint)
	TO taskflow_app, taskflow_operator;

-- the trigger functions run as whoever writes the member or the event
GRANT EXECUTE ON FUNCTION taskflow.member_before_write(), taskflow.event_before_write(),
	taskflow.group_membership_before_write()
	TO taskflow_app, taskflow_operator;

-- writing member data and definitions
GRANT EXECUTE ON FUNCTION
	taskflow.define_status(text, text), taskflow.define_event_kind(text, text),
	taskflow.define_property(text, text, text[], text),
	taskflow.drop_property(text, boolean),
	taskflow.set_property(bigint, text, anyelement), taskflow.remove_property(bigint, text),
	taskflow.add_tag(bigint, text), taskflow.remove_tag(bigint, text),
	taskflow.create_group(text, text),
	taskflow.join_group(bigint, text, timestamptz), taskflow.leave_group(bigint, text, timestamptz),
	taskflow.record_event(bigint, text, jsonb, timestamptz, numeric, daterange),
	taskflow.record_payment(bigint, numeric, date, date, timestamptz, jsonb),
	taskflow.add_note(bigint, text, timestamptz),
	taskflow.unsubscribe(bigint, timestamptz, text), taskflow.resubscribe(bigint, timestamptz)
	TO taskflow_app;
-- operators write memos
GRANT EXECUTE ON FUNCTION taskflow.add_note(bigint, text, timestamptz),
	taskflow.record_event(bigint, text, jsonb, timestamptz, numeric, daterange)
	TO taskflow_operator;
GRANT INSERT ON taskflow.event TO taskflow_operator;
GRANT USAGE ON SEQUENCE taskflow.event_event_id_seq TO taskflow_operator;
