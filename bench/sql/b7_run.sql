-- bench/sql/b7_run.sql — benchmark 7's baseline: the year the preview
-- shows, run by the engine for real, in a copy of the preview's database.
--
-- The chains get the entry checks the preview simulates (src/preview.c):
-- the first at the start of the range, as the worker's would be (with the
-- chain's own entry interval, which is also how far back an anchor chain
-- counts a step missed); after it, "always" and anchor chains every
-- :'entry_step' (the preview's default, one day) instead of every
-- taskflow.entry_interval (5 minutes).  Left at 5 minutes the real run is
-- not the year the preview shows, and makes an engine run every 5 minutes
-- (14 days took 4,033 runs and 219 s on this 2-core machine, so a year
-- would take about 1.5 hours).
UPDATE taskflow.chain c SET last_entry_at = NULL
 WHERE c.schedule <> 'daily' AND c.last_entry_at IS NOT NULL;
CREATE TABLE public.b7_entry_step AS SELECT :'entry_step'::interval AS step;

-- The engine as the scheduler runs it: taskflow.run(t), then
-- taskflow.next_wakeup(t), one transaction per instant, committed; from
-- from_at to to_at inclusive, stepping the clock exactly as
-- pg_temp.run_until in sql/preview.sql does (and the preview itself),
-- with the entry checks made coarse after the first run.
-- Returns how many instants it ran.  CALLed at top level, so that COMMIT
-- is allowed.
CREATE PROCEDURE public.b7_run(from_at timestamptz, to_at timestamptz, INOUT runs integer DEFAULT 0)
LANGUAGE plpgsql AS $$
DECLARE
	t timestamptz := from_at;
	n timestamptz;
BEGIN
	runs := 0;
	WHILE t IS NOT NULL AND t <= to_at LOOP
		PERFORM taskflow.run(t);
		runs := runs + 1;
		IF runs = 1 THEN
			UPDATE taskflow.chain c
			   SET entry_interval = GREATEST(COALESCE(c.entry_interval,
													  current_setting('taskflow.entry_interval')::interval),
											 (SELECT step FROM public.b7_entry_step))
			 WHERE c.schedule <> 'daily';
		END IF;
		n := taskflow.next_wakeup(t);
		COMMIT;
		t := CASE WHEN n IS NULL THEN NULL WHEN n > t THEN n ELSE t + interval '1 second' END;
	END LOOP;
END
$$;
