-- taskflow install script, part 91: who sees which rows.
--
-- Several application roles may share one database (a shop and a school,
-- each with its own role in taskflow_app).  Each sees only its own tasks,
-- chains, templates and what its chains did (member states, history,
-- messages, errors, delivery attempts): the rows of objects owned by a role
-- whose privileges it has.  Operators (taskflow_operator) see every row:
-- they work the pending list of every chain.  Relays (taskflow_relay) see
-- every message: they deliver them all.  Members, events, groups, criteria
-- names (criteria_list) and settings are shared by the whole database.
--
-- Superusers and the extension owner, who own these tables, are not
-- subject to row security (the engine and the workers see everything);
-- the views read the tables as the calling role (security_invoker), and the
-- functions that report on chains and templates (explain, preview_template,
-- preview, run) check the caller themselves.

-- Whether caller may see the rows of objects owned by owner: it has the
-- owner's privileges, or is an operator (superusers: always).  For a
-- dropped owner: operators and superusers only.
CREATE FUNCTION taskflow._may_see(caller regrole, owner regrole)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN COALESCE(pg_catalog.pg_has_role(caller::pg_catalog.oid, 'taskflow_operator', 'USAGE'), false)
	OR CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) owner::pg_catalog.oid)
			THEN COALESCE(pg_catalog.pg_has_role(caller::pg_catalog.oid, owner::pg_catalog.oid, 'USAGE'), false)
			ELSE false END;
COMMENT ON FUNCTION taskflow._may_see(regrole, regrole) IS
	'Whether a role may see the rows of objects another role owns (its privileges, or an operator)';

-- The same for the current role: the row security policies below.
CREATE FUNCTION taskflow._may_see(owner regrole)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN taskflow._may_see((SELECT r.oid FROM pg_catalog.pg_roles r
						   WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER)::regrole, owner);
COMMENT ON FUNCTION taskflow._may_see(regrole) IS
	'Whether the current role may see the rows of objects a role owns';
REVOKE ALL ON FUNCTION taskflow._may_see(regrole, regrole), taskflow._may_see(regrole) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION taskflow._may_see(regrole, regrole), taskflow._may_see(regrole)
	TO taskflow_app, taskflow_operator, taskflow_relay;

-- Policies are per role: a role sees the rows any of its roles' policies
-- allow.  A role with none of the three roles sees no row, even if the
-- DBA granted it SELECT (grant it taskflow_operator to read everything).

-- Definitions with an owner.
CREATE POLICY own ON taskflow.task FOR SELECT TO taskflow_app
	USING (taskflow._may_see(owner));
CREATE POLICY every ON taskflow.task FOR SELECT TO taskflow_operator USING (true);
ALTER TABLE taskflow.task ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON taskflow.chain FOR SELECT TO taskflow_app
	USING (taskflow._may_see(owner));
CREATE POLICY every ON taskflow.chain FOR SELECT TO taskflow_operator USING (true);
ALTER TABLE taskflow.chain ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON taskflow.template FOR SELECT TO taskflow_app
	USING (taskflow._may_see(owner));
CREATE POLICY every ON taskflow.template FOR SELECT TO taskflow_operator USING (true);
ALTER TABLE taskflow.template ENABLE ROW LEVEL SECURITY;

-- What a chain has and did: seen with the chain (itself row-secured).
-- history keeps a dropped chain's name: its rows are the operators' then.
CREATE POLICY own ON taskflow.chain_step FOR SELECT TO taskflow_app
	USING (EXISTS (SELECT FROM taskflow.chain c WHERE c.chain_id OPERATOR(pg_catalog.=) chain_step.chain_id));
CREATE POLICY every ON taskflow.chain_step FOR SELECT TO taskflow_operator USING (true);
ALTER TABLE taskflow.chain_step ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON taskflow.chain_member FOR SELECT TO taskflow_app
	USING (EXISTS (SELECT FROM taskflow.chain c WHERE c.chain_id OPERATOR(pg_catalog.=) chain_member.chain_id));
CREATE POLICY every ON taskflow.chain_member FOR SELECT TO taskflow_operator USING (true);
ALTER TABLE taskflow.chain_member ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON taskflow.chain_error FOR SELECT TO taskflow_app
	USING (EXISTS (SELECT FROM taskflow.chain c WHERE c.chain_id OPERATOR(pg_catalog.=) chain_error.chain_id));
CREATE POLICY every ON taskflow.chain_error FOR SELECT TO taskflow_operator USING (true);
ALTER TABLE taskflow.chain_error ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON taskflow.history FOR SELECT TO taskflow_app
	USING (EXISTS (SELECT FROM taskflow.chain c WHERE c.chain_id OPERATOR(pg_catalog.=) history.chain_id));
CREATE POLICY every ON taskflow.history FOR SELECT TO taskflow_operator USING (true);
ALTER TABLE taskflow.history ENABLE ROW LEVEL SECURITY;

-- Messages: with their chain; relays and operators see every message.
CREATE POLICY own ON taskflow.outbox FOR SELECT TO taskflow_app
	USING (EXISTS (SELECT FROM taskflow.chain c WHERE c.chain_id OPERATOR(pg_catalog.=) outbox.chain_id));
CREATE POLICY every ON taskflow.outbox FOR SELECT TO taskflow_operator, taskflow_relay USING (true);
ALTER TABLE taskflow.outbox ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON taskflow.delivery_attempt FOR SELECT TO taskflow_app
	USING (EXISTS (SELECT FROM taskflow.outbox o WHERE o.outbox_id OPERATOR(pg_catalog.=) delivery_attempt.outbox_id));
CREATE POLICY every ON taskflow.delivery_attempt FOR SELECT TO taskflow_operator, taskflow_relay USING (true);
ALTER TABLE taskflow.delivery_attempt ENABLE ROW LEVEL SECURITY;

-- The views over them read as the calling role, so its rows only.
ALTER VIEW taskflow.pending_tasks SET (security_invoker = true);
ALTER VIEW taskflow.dashboard SET (security_invoker = true);
ALTER VIEW taskflow.chain_summary SET (security_invoker = true);
ALTER VIEW taskflow.member_state SET (security_invoker = true);
ALTER VIEW taskflow.member_activity SET (security_invoker = true);
