-- catalog_of_taskflow.sql — every object of the taskflow extension in the
-- current database, one line each with its full definition, in a stable
-- order.  test/t/050_upgrade.pl compares its output in a database updated
-- from an older version with a fresh install: any difference is something
-- the update script forgot (or did differently).
--
-- Covered: functions (definition, owner-independent ACL, comment), tables
-- (columns in order with type, default, NOT NULL, identity, collation and
-- comment; constraints; indexes; triggers; policies; row security;
-- reloptions; ACL; comment; whether pg_dump dumps its rows), views
-- (definition, ACL, comment), sequences (parameters, ACL), types (enum
-- labels, domain constraints, composite columns), schemas, and the
-- extension's own configuration (pg_extension_config_dump).
WITH ext AS (
	SELECT e.oid, e.extconfig, e.extcondition
	FROM pg_catalog.pg_extension e WHERE e.extname = 'taskflow'
), member AS (
	SELECT d.classid, d.objid
	FROM pg_catalog.pg_depend d, ext
	WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
	  AND d.refobjid = ext.oid AND d.deptype = 'e'
), rel AS (
	SELECT c.oid, c.relname, c.relkind
	FROM pg_catalog.pg_class c JOIN member m
	  ON m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND m.objid = c.oid
), line AS (
	-- every member object, as pg_describe_object names it
	SELECT pg_catalog.pg_describe_object(m.classid, m.objid, 0) AS object, 'member' AS what,
		   '' AS detail
	FROM member m
	UNION ALL
	-- functions and procedures
	SELECT pg_catalog.pg_describe_object(m.classid, m.objid, 0), 'definition',
		   CASE WHEN p.prokind = 'a' THEN p.prosrc ELSE pg_catalog.pg_get_functiondef(p.oid) END
		   || ' acl=' || COALESCE(p.proacl::text, '')
		   || ' comment=' || COALESCE(pg_catalog.obj_description(p.oid, 'pg_proc'), '')
	FROM member m JOIN pg_catalog.pg_proc p
	  ON m.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND m.objid = p.oid
	UNION ALL
	-- relations: kind, options, ACL, comment, row security, dumped rows
	SELECT pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass, r.oid, 0), 'relation',
		   'kind=' || c.relkind::text || ' persistence=' || c.relpersistence::text
		   || ' options=' || COALESCE(c.reloptions::text, '')
		   || ' rls=' || c.relrowsecurity || '/' || c.relforcerowsecurity
		   || ' acl=' || COALESCE(c.relacl::text, '')
		   || ' comment=' || COALESCE(pg_catalog.obj_description(c.oid, 'pg_class'), '')
		   || ' dumped=' || COALESCE((SELECT 'yes ' || COALESCE(ext.extcondition[i], '')
									  FROM ext, pg_catalog.generate_subscripts(ext.extconfig, 1) AS i
									  WHERE ext.extconfig[i] = c.oid), 'no')
	FROM rel r JOIN pg_catalog.pg_class c ON c.oid = r.oid
	UNION ALL
	-- columns, in their order (dropped ones left out)
	SELECT pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass, r.oid, 0),
		   'column ' || pg_catalog.lpad(pg_catalog.row_number() OVER (PARTITION BY r.oid ORDER BY a.attnum)::text, 3, '0'),
		   a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
		   || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
		   || COALESCE(' default ' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), '')
		   || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
		   || CASE WHEN a.attgenerated <> '' THEN ' generated ' || a.attgenerated::text ELSE '' END
		   || COALESCE(' collate ' || co.collname, '')
		   || ' acl=' || COALESCE(a.attacl::text, '')
		   || ' comment=' || COALESCE(pg_catalog.col_description(r.oid, a.attnum), '')
	FROM rel r
	JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
	LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = r.oid AND ad.adnum = a.attnum
	LEFT JOIN pg_catalog.pg_collation co
	  ON co.oid = a.attcollation AND a.attcollation <> 'pg_catalog.default'::pg_catalog.regcollation
	UNION ALL
	-- constraints of tables and domains
	SELECT pg_catalog.pg_describe_object('pg_catalog.pg_constraint'::pg_catalog.regclass, con.oid, 0), 'constraint',
		   pg_catalog.pg_get_constraintdef(con.oid)
		   || ' comment=' || COALESCE(pg_catalog.obj_description(con.oid, 'pg_constraint'), '')
	FROM pg_catalog.pg_constraint con
	WHERE con.conrelid IN (SELECT oid FROM rel)
	   OR con.contypid IN (SELECT m.objid FROM member m
						   WHERE m.classid = 'pg_catalog.pg_type'::pg_catalog.regclass)
	UNION ALL
	-- indexes
	SELECT pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass, i.indexrelid, 0), 'index',
		   pg_catalog.pg_get_indexdef(i.indexrelid)
	FROM pg_catalog.pg_index i WHERE i.indrelid IN (SELECT oid FROM rel)
	UNION ALL
	-- triggers (not the internal ones of foreign keys)
	SELECT pg_catalog.pg_describe_object('pg_catalog.pg_trigger'::pg_catalog.regclass, t.oid, 0), 'trigger',
		   pg_catalog.pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
	FROM pg_catalog.pg_trigger t
	WHERE t.tgrelid IN (SELECT oid FROM rel) AND NOT t.tgisinternal
	UNION ALL
	-- row security policies
	SELECT pg_catalog.pg_describe_object('pg_catalog.pg_policy'::pg_catalog.regclass, p.oid, 0), 'policy',
		   p.polcmd::text || ' ' || p.polpermissive::text || ' '
		   || (SELECT pg_catalog.string_agg(r.rolname, ',' ORDER BY r.rolname) FROM pg_catalog.pg_roles r
			   WHERE r.oid OPERATOR(pg_catalog.=) ANY (p.polroles))
		   || ' using ' || COALESCE(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '')
		   || ' check ' || COALESCE(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '')
	FROM pg_catalog.pg_policy p WHERE p.polrelid IN (SELECT oid FROM rel)
	UNION ALL
	-- views
	SELECT pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass, r.oid, 0), 'view',
		   pg_catalog.pg_get_viewdef(r.oid)
	FROM rel r WHERE r.relkind IN ('v', 'm')
	UNION ALL
	-- sequences
	SELECT pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass, s.seqrelid, 0), 'sequence',
		   pg_catalog.format_type(s.seqtypid, NULL) || ' start ' || s.seqstart || ' increment ' || s.seqincrement
		   || ' min ' || s.seqmin || ' max ' || s.seqmax || ' cache ' || s.seqcache || ' cycle ' || s.seqcycle
		   || ' owned by ' || COALESCE((SELECT pg_catalog.pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid)
									   FROM pg_catalog.pg_depend d
									   WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
										 AND d.objid = s.seqrelid AND d.deptype IN ('a', 'i')
										 AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
									   LIMIT 1), '')
	FROM pg_catalog.pg_sequence s WHERE s.seqrelid IN (SELECT oid FROM rel)
	UNION ALL
	-- types: enum labels in order, domains' base types, comments
	SELECT pg_catalog.pg_describe_object(m.classid, m.objid, 0), 'type',
		   'typtype=' || t.typtype::text
		   || CASE WHEN t.typtype = 'd' THEN ' base ' || pg_catalog.format_type(t.typbasetype, t.typtypmod)
				   || CASE WHEN t.typnotnull THEN ' not null' ELSE '' END
				   || COALESCE(' default ' || t.typdefault, '') ELSE '' END
		   || CASE WHEN t.typtype = 'e' THEN ' labels ' || (SELECT pg_catalog.string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
														   FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid) ELSE '' END
		   || ' acl=' || COALESCE(t.typacl::text, '')
		   || ' comment=' || COALESCE(pg_catalog.obj_description(t.oid, 'pg_type'), '')
	FROM member m JOIN pg_catalog.pg_type t
	  ON m.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND m.objid = t.oid
	UNION ALL
	-- schemas
	SELECT pg_catalog.pg_describe_object(m.classid, m.objid, 0), 'schema',
		   'acl=' || COALESCE(n.nspacl::text, '')
		   || ' comment=' || COALESCE(pg_catalog.obj_description(n.oid, 'pg_namespace'), '')
	FROM member m JOIN pg_catalog.pg_namespace n
	  ON m.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND m.objid = n.oid
)
SELECT object || ' | ' || what || ' | ' || detail
FROM line
ORDER BY object COLLATE "C", what COLLATE "C", detail COLLATE "C";
