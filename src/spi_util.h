/*
 * spi_util.h
 *		Small wrappers around SPI for the engine's fixed statements.
 */
#ifndef TASKFLOW_SPI_UTIL_H
#define TASKFLOW_SPI_UTIL_H

#include "postgres.h"

#include "executor/spi.h"

#include "memberset.h"

extern uint64 TaskflowExec(const char *sql, int nargs, Oid *types,
						   Datum *values, const char *nulls);
extern uint64 TaskflowExecSaved(SPIPlanPtr *plan, const char *sql, int nargs,
								Oid *types, Datum *values, const char *nulls);
extern MemberSet TaskflowQueryMembers(const char *sql, int nargs, Oid *types,
									  Datum *values, const char *nulls);

#endif							/* TASKFLOW_SPI_UTIL_H */
