/*
 * memberset.h
 *		Sets of member ids, the unit the engine works on: every statement of
 *		a step takes the whole batch as one bigint[] parameter.
 */
#ifndef TASKFLOW_MEMBERSET_H
#define TASKFLOW_MEMBERSET_H

#include "postgres.h"

typedef struct MemberSetData
{
	int			count;
	int64	   *ids;			/* sorted ascending, no duplicates */
} MemberSetData;

typedef MemberSetData *MemberSet;

extern MemberSet MemberSetFromIds(int64 *ids, int n);
extern MemberSet MemberSetFromDatum(Datum array, bool isnull);
extern Datum MemberSetToDatum(MemberSet set);
extern MemberSet MemberSetMinus(MemberSet a, MemberSet b);
extern MemberSet MemberSetIntersect(MemberSet a, MemberSet b);
extern MemberSet MemberSetEmpty(void);

#endif							/* TASKFLOW_MEMBERSET_H */
