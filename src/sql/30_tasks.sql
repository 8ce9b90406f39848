-- taskflow install script, part 30: tasks (タスク).
--
-- A task says what happens to a member: STEP1 a target criteria, STEP3 data
-- changes (actions), STEP4 an optional message from a template.  Its mode is
-- auto (全自動), manual (waits in the pending list for an operator) or
-- criteria_only (a saved search, never run).  Tasks are written only through
-- taskflow.create_task / alter_task / drop_task, which run as the extension
-- owner and record the calling role as the owner.

CREATE TABLE taskflow.task (
	task_id		serial PRIMARY KEY,
	name		text NOT NULL UNIQUE,
	description text,
	mode		text NOT NULL
				CHECK (mode OPERATOR(pg_catalog.=) ANY (ARRAY['auto', 'manual', 'criteria_only'])),
	criteria_id integer REFERENCES taskflow.criteria (criteria_id),
	actions		jsonb NOT NULL DEFAULT '[]',
	template_id integer REFERENCES taskflow.template (template_id),
	show_on_dashboard boolean NOT NULL DEFAULT true,
	assignee	text,
	priority	integer NOT NULL DEFAULT 0,
	on_mismatch text NOT NULL DEFAULT 'leave'
				CHECK (on_mismatch OPERATOR(pg_catalog.=) ANY (ARRAY['leave', 'wait'])),
	owner		regrole NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at	timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE taskflow.task IS
	'Tasks: target criteria (STEP1), actions (STEP3), message template (STEP4), mode';

SELECT pg_catalog.pg_extension_config_dump('taskflow.task', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.task_task_id_seq', '');

-- Resolves a task name for the caller, who must have the owner's privileges.
CREATE FUNCTION taskflow._task_for(caller regrole, task_name text, for_change boolean)
RETURNS taskflow.task
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t taskflow.task;
BEGIN
	IF task_name IS NULL THEN
		RAISE EXCEPTION 'a task name is required'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO t FROM taskflow.task WHERE name OPERATOR(pg_catalog.=) task_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'task "%" does not exist', task_name
			USING ERRCODE = 'undefined_object';
	END IF;
	IF NOT pg_has_role(caller, t.owner, 'USAGE') THEN
		RAISE EXCEPTION 'permission denied for task "%"', task_name
			USING ERRCODE = 'insufficient_privilege',
				  HINT = format('Only members of role %s may %s it.', t.owner,
								CASE WHEN for_change THEN 'change' ELSE 'use' END);
	END IF;
	RETURN t;
END
$$;

-- Checks a task definition and returns the ids it refers to; raises on
-- anything wrong, naming the task and the problem.
CREATE FUNCTION taskflow._check_task(caller regrole, task_name text, mode text,
									 criteria text, actions jsonb, template text,
									 assignee text, priority integer, on_mismatch text,
									 OUT criteria_id integer, OUT template_id integer)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c record;
BEGIN
	IF task_name IS NULL OR btrim(task_name) OPERATOR(pg_catalog.=) ''
	   OR length(task_name) OPERATOR(pg_catalog.>) 200
	   OR task_name OPERATOR(pg_catalog.~) '[[:cntrl:]]' THEN
		RAISE EXCEPTION 'invalid task name %', coalesce(to_json(task_name)::text, 'NULL')
			USING ERRCODE = 'invalid_name',
				  HINT = 'A task name is 1 to 200 characters without control characters.';
	END IF;
	IF mode IS NULL OR NOT mode OPERATOR(pg_catalog.=) ANY (ARRAY['auto', 'manual', 'criteria_only']) THEN
		RAISE EXCEPTION 'invalid mode % for task "%"', coalesce(quote_literal(mode), 'NULL'), task_name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The modes are auto (全自動), manual (処理待ち) and criteria_only (検索条件のみ).';
	END IF;
	IF on_mismatch IS NULL OR NOT on_mismatch OPERATOR(pg_catalog.=) ANY (ARRAY['leave', 'wait']) THEN
		RAISE EXCEPTION 'invalid on_mismatch % for task "%"', coalesce(quote_literal(on_mismatch), 'NULL'), task_name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use leave (the member leaves the chain) or wait (the member waits until it matches).';
	END IF;
	IF priority IS NULL THEN
		RAISE EXCEPTION 'priority of task "%" cannot be null', task_name
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF assignee IS NOT NULL AND (btrim(assignee) OPERATOR(pg_catalog.=) ''
								 OR assignee OPERATOR(pg_catalog.~) '[[:cntrl:]]') THEN
		RAISE EXCEPTION 'invalid assignee % for task "%"', to_json(assignee), task_name
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	IF criteria IS NOT NULL THEN
		SELECT cr.criteria_id AS id, cr.owner INTO c
		  FROM taskflow.criteria cr WHERE cr.name OPERATOR(pg_catalog.=) criteria;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'criteria "%" of task "%" does not exist', criteria, task_name
				USING ERRCODE = 'undefined_object',
					  HINT = 'Save it first with taskflow.save_criteria().';
		END IF;
		IF NOT pg_has_role(caller, c.owner, 'USAGE') THEN
			RAISE EXCEPTION 'permission denied for criteria "%"', criteria
				USING ERRCODE = 'insufficient_privilege',
					  HINT = format('A task may only use criteria of roles you belong to (owner: %s).', c.owner);
		END IF;
		criteria_id := c.id;
	ELSIF mode OPERATOR(pg_catalog.=) 'criteria_only' THEN
		RAISE EXCEPTION 'criteria_only task "%" needs a criteria', task_name
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	IF template IS NOT NULL THEN
		PERFORM FROM taskflow.template t WHERE t.name OPERATOR(pg_catalog.=) template;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'template "%" of task "%" does not exist', template, task_name
				USING ERRCODE = 'undefined_object',
					  HINT = 'Create it first with taskflow.create_template().';
		END IF;
		-- only a template of a role the caller belongs to
		template_id := (taskflow._template_for(caller, template, false)).template_id;
	END IF;

	-- actions are compiled (and so checked) by the engine's own compiler,
	-- as the caller, so unknown tables or missing privileges show up now
	PERFORM taskflow._check_action_keys(task_name, actions);
	PERFORM taskflow._check_actions(caller, task_name, actions);
END
$$;

-- create_task, as the extension owner on behalf of caller.
CREATE FUNCTION taskflow._create_task(caller regrole, name text, mode text,
									  criteria text, actions jsonb, template text,
									  description text, show_on_dashboard boolean,
									  assignee text, priority integer, on_mismatch text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ids record;
	new_id integer;
BEGIN
	ids := taskflow._check_task(caller, name, mode, criteria, coalesce(actions, '[]'),
								template, assignee, priority, on_mismatch);
	INSERT INTO taskflow.task AS t (name, description, mode, criteria_id, actions, template_id,
									show_on_dashboard, assignee, priority, on_mismatch, owner)
	VALUES (btrim(_create_task.name), description, mode, ids.criteria_id,
			coalesce(actions, '[]'), ids.template_id, coalesce(show_on_dashboard, true),
			assignee, priority, on_mismatch, caller)
	RETURNING t.task_id INTO new_id;
	RETURN new_id;
EXCEPTION WHEN unique_violation THEN
	RAISE EXCEPTION 'task "%" already exists', name
		USING ERRCODE = 'duplicate_object',
			  HINT = 'Change it with taskflow.alter_task().';
END
$$;

CREATE FUNCTION taskflow.create_task(name text,
									 mode text,
									 criteria text DEFAULT NULL,
									 actions jsonb DEFAULT '[]',
									 template text DEFAULT NULL,
									 description text DEFAULT NULL,
									 show_on_dashboard boolean DEFAULT true,
									 assignee text DEFAULT NULL,
									 priority integer DEFAULT 0,
									 on_mismatch text DEFAULT 'leave')
RETURNS integer
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_api_call';
COMMENT ON FUNCTION taskflow.create_task IS
	'Creates a task: mode auto | manual | criteria_only, STEP1 criteria, STEP3 actions, STEP4 template';

-- alter_task: NULL arguments leave a setting unchanged; clear_criteria /
-- clear_template remove them.  A mode change takes effect on the next run;
-- members already pending stay pending until processed.
CREATE FUNCTION taskflow._alter_task(caller regrole, name text, mode text,
									 criteria text, actions jsonb, template text,
									 description text, show_on_dashboard boolean,
									 assignee text, priority integer, on_mismatch text,
									 clear_criteria boolean, clear_template boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t taskflow.task := taskflow._task_for(caller, name, true);
	crit_name text;
	tmpl_name text;
	ids record;
BEGIN
	SELECT c.name INTO crit_name FROM taskflow.criteria c
	 WHERE c.criteria_id OPERATOR(pg_catalog.=) t.criteria_id;
	SELECT tm.name INTO tmpl_name FROM taskflow.template tm
	 WHERE tm.template_id OPERATOR(pg_catalog.=) t.template_id;
	crit_name := CASE WHEN clear_criteria THEN NULL ELSE coalesce(criteria, crit_name) END;
	tmpl_name := CASE WHEN clear_template THEN NULL ELSE coalesce(template, tmpl_name) END;
	t.mode := coalesce(mode, t.mode);
	t.actions := coalesce(actions, t.actions);
	t.description := coalesce(description, t.description);
	t.show_on_dashboard := coalesce(show_on_dashboard, t.show_on_dashboard);
	t.assignee := coalesce(assignee, t.assignee);
	t.priority := coalesce(priority, t.priority);
	t.on_mismatch := coalesce(on_mismatch, t.on_mismatch);
	-- checked as the task's owner, whose privileges the task keeps: its
	-- actions' trial run must not run a role's SQL with the privileges of
	-- whoever changes the task (a superuser changing its priority)
	ids := taskflow._check_task(t.owner, t.name, t.mode, crit_name, t.actions, tmpl_name,
								t.assignee, t.priority, t.on_mismatch);
	IF t.mode OPERATOR(pg_catalog.=) 'criteria_only' THEN
		PERFORM taskflow._refuse_if_in_chain(t.task_id, t.name);
	END IF;
	-- a new criteria must suit every chain that uses the task
	PERFORM taskflow._check_runs_as(c, t, ids.criteria_id)
	   FROM taskflow.chain c
	  WHERE c.chain_id OPERATOR(pg_catalog.=) ANY (SELECT s.chain_id FROM taskflow.chain_step s
													 WHERE s.task_id OPERATOR(pg_catalog.=) t.task_id);
	UPDATE taskflow.task AS u
	   SET mode = t.mode, criteria_id = ids.criteria_id, actions = t.actions,
		   template_id = ids.template_id, description = t.description,
		   show_on_dashboard = t.show_on_dashboard, assignee = t.assignee,
		   priority = t.priority, on_mismatch = t.on_mismatch, updated_at = pg_catalog.now()
	 WHERE u.task_id OPERATOR(pg_catalog.=) t.task_id;
END
$$;

CREATE FUNCTION taskflow.alter_task(name text,
									mode text DEFAULT NULL,
									criteria text DEFAULT NULL,
									actions jsonb DEFAULT NULL,
									template text DEFAULT NULL,
									description text DEFAULT NULL,
									show_on_dashboard boolean DEFAULT NULL,
									assignee text DEFAULT NULL,
									priority integer DEFAULT NULL,
									on_mismatch text DEFAULT NULL,
									clear_criteria boolean DEFAULT false,
									clear_template boolean DEFAULT false)
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_api_call';
COMMENT ON FUNCTION taskflow.alter_task IS
	'Changes a task; NULL leaves a setting as it is. A mode change applies from the next run';

-- drop_task: refused while a chain uses the task.
CREATE FUNCTION taskflow._drop_task(caller regrole, name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t taskflow.task := taskflow._task_for(caller, name, true);
BEGIN
	PERFORM taskflow._refuse_if_in_chain(t.task_id, t.name);
	DELETE FROM taskflow.task WHERE task_id OPERATOR(pg_catalog.=) t.task_id;
END
$$;

CREATE FUNCTION taskflow.drop_task(name text)
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'taskflow_api_call';
