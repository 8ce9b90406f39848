/*
 * memberset.c
 *		Sets of member ids as sorted int64 arrays.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/lsyscache.h"

#include "memberset.h"

/*
 * CompareInt64 orders member ids for qsort.
 */
static int
CompareInt64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * MemberSetEmpty returns a set with no members.
 */
MemberSet
MemberSetEmpty(void)
{
	MemberSet	set = palloc0(sizeof(MemberSetData));

	return set;
}

/*
 * MemberSetFromIds makes a set of n ids (any order, duplicates allowed);
 * the ids array is taken over and sorted in place.
 */
MemberSet
MemberSetFromIds(int64 *ids, int n)
{
	MemberSet	set = MemberSetEmpty();
	int			i;

	set->ids = ids;
	qsort(ids, n, sizeof(int64), CompareInt64);
	for (i = 0; i < n; i++)
		if (set->count == 0 || set->ids[set->count - 1] != ids[i])
			set->ids[set->count++] = ids[i];
	return set;
}

/*
 * MemberSetFromDatum reads a bigint[] (NULL or NULL elements count as
 * nothing) into a sorted set without duplicates.
 */
MemberSet
MemberSetFromDatum(Datum array, bool isnull)
{
	Datum	   *elems;
	bool	   *nulls;
	int64	   *ids;
	int			n;
	int			i;
	int			kept = 0;

	if (isnull)
		return MemberSetEmpty();
	deconstruct_array(DatumGetArrayTypeP(array), INT8OID, 8, FLOAT8PASSBYVAL,
					  TYPALIGN_DOUBLE, &elems, &nulls, &n);
	ids = palloc(sizeof(int64) * Max(n, 1));
	for (i = 0; i < n; i++)
		if (!nulls[i])
			ids[kept++] = DatumGetInt64(elems[i]);
	return MemberSetFromIds(ids, kept);
}

/*
 * MemberSetToDatum builds the bigint[] parameter for a statement.
 */
Datum
MemberSetToDatum(MemberSet set)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(set->count, 1));
	int			i;

	for (i = 0; i < set->count; i++)
		elems[i] = Int64GetDatum(set->ids[i]);
	return PointerGetDatum(construct_array(elems, set->count, INT8OID, 8,
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * MemberSetMinus returns the members of a that are not in b (both sorted).
 */
MemberSet
MemberSetMinus(MemberSet a, MemberSet b)
{
	MemberSet	result = MemberSetEmpty();
	int			i = 0;
	int			j = 0;

	result->ids = palloc(sizeof(int64) * Max(a->count, 1));
	while (i < a->count)
	{
		if (j >= b->count || a->ids[i] < b->ids[j])
			result->ids[result->count++] = a->ids[i++];
		else if (a->ids[i] == b->ids[j])
		{
			i++;
			j++;
		}
		else
			j++;
	}
	return result;
}

/*
 * MemberSetIntersect returns the members in both a and b (both sorted).
 */
MemberSet
MemberSetIntersect(MemberSet a, MemberSet b)
{
	MemberSet	result = MemberSetEmpty();
	int			i = 0;
	int			j = 0;

	result->ids = palloc(sizeof(int64) * Max(Min(a->count, b->count), 1));
	while (i < a->count && j < b->count)
	{
		if (a->ids[i] < b->ids[j])
			i++;
		else if (a->ids[i] > b->ids[j])
			j++;
		else
		{
			result->ids[result->count++] = a->ids[i];
			i++;
			j++;
		}
	}
	return result;
}
