-- taskflow update script: 0.1 (the first release) to 0.2.
--
-- ALTER EXTENSION taskflow UPDATE runs it.  It must leave a database
-- exactly as CREATE EXTENSION taskflow VERSION '0.2' would: test/t/050_upgrade.pl
-- compares every object of the extension (definitions, columns in order,
-- constraints, indexes, triggers, privileges, comments) in an updated
-- database with a fresh install.  Keep the same rules as the install
-- script: every name schema-qualified, operators written
-- OPERATOR(pg_catalog.x), functions with a pinned search_path.  New
-- columns go at the end of their table in src/sql/ too, so both orders
-- agree.  The workers wait while a database is at a version the library
-- does not run against, and go on when this update commits.

\echo Use "ALTER EXTENSION taskflow UPDATE TO '0.2'" to load this file. \quit
