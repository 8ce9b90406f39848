/*
 * spi_util.c
 *		Small wrappers around SPI for the engine's fixed statements.
 */
#include "postgres.h"

#include "executor/spi.h"

#include "spi_util.h"

/*
 * TaskflowExec runs one statement with parameters and returns the number of
 * rows it processed; SPI failures become errors.
 */
uint64
TaskflowExec(const char *sql, int nargs, Oid *types, Datum *values,
			 const char *nulls)
{
	int			rc;

	rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
	if (rc < 0)
		elog(ERROR, "taskflow: SPI failed (%s) running: %s",
			 SPI_result_code_string(rc), sql);
	return SPI_processed;
}

/*
 * TaskflowQueryMembers runs a query whose first column of its first row is
 * a bigint[] of member ids (NULL: none) and returns it as a set.
 */
MemberSet
TaskflowQueryMembers(const char *sql, int nargs, Oid *types, Datum *values,
					 const char *nulls)
{
	MemberSet	set;
	bool		isnull = true;
	Datum		d = (Datum) 0;

	TaskflowExec(sql, nargs, types, values, nulls);
	if (SPI_processed > 0)
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
						  &isnull);
	set = MemberSetFromDatum(d, isnull);
	SPI_freetuptable(SPI_tuptable);
	return set;
}

/*
 * TaskflowExecSaved runs one of the engine's fixed statements with a
 * generic plan prepared once per backend (*plan, kept with SPI_keepplan;
 * the plan cache re-plans it after DDL), for the statements every run makes
 * whatever is due: parsing and planning them again at every scheduler
 * wake-up cost more than running them.  Only for statements whose plan
 * does not depend on their parameters' values.  Returns the number of rows
 * processed.
 */
uint64
TaskflowExecSaved(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types,
				  Datum *values, const char *nulls)
{
	int			rc;

	if (*plan == NULL)
	{
		SPIPlanPtr	prepared = SPI_prepare_cursor(sql, nargs, types,
												  CURSOR_OPT_GENERIC_PLAN);

		if (prepared == NULL)
			elog(ERROR, "taskflow: SPI_prepare failed (%s) for: %s",
				 SPI_result_code_string(SPI_result), sql);
		if (SPI_keepplan(prepared) != 0)
			elog(ERROR, "taskflow: SPI_keepplan failed");
		*plan = prepared;
	}
	rc = SPI_execute_plan(*plan, values, nulls, false, 0);
	if (rc < 0)
		elog(ERROR, "taskflow: SPI failed (%s) running: %s",
			 SPI_result_code_string(rc), sql);
	return SPI_processed;
}
