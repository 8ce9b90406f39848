/*
 * criteria.h
 *		Saved search criteria: boolean expressions over one member row,
 *		validated when saved and run as their owner as of an instant.
 */
#ifndef TASKFLOW_CRITERIA_H
#define TASKFLOW_CRITERIA_H

#include "datatype/timestamp.h"
#include "nodes/nodes.h"
#include "nodes/pg_list.h"

/* A saved criteria, as searches and the engine need it. */
typedef struct CriteriaData
{
	int32		criteria_id;
	char	   *name;
	Oid			owner;			/* the role it runs as */
	char	   *normalized;		/* deparsed, schema-qualified expression */
} CriteriaData;

typedef CriteriaData *Criteria;

extern char *CriteriaValidate(const char *expression, Oid owner,
							  const char *name, List **properties);
extern Criteria CriteriaLookup(const char *name);
extern int	CriteriaEnvPush(const char *search_path);
extern void CriteriaEnvPop(int nest_level);

/* criteria_hint.c */
extern Node *CriteriaAnalyzeNormalized(const char *normalized, bool *has_sublinks);
extern bool CriteriaReadsOnlyTheRow(const char *normalized);
extern bool CriteriaReadsOnlyItsMember(const char *normalized);
extern char *CriteriaIndexHint(const char *normalized);

#endif							/* TASKFLOW_CRITERIA_H */
