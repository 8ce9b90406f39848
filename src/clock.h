/*
 * clock.h
 *		The engine's clock: the instant taskflow is running "as of".
 */
#ifndef TASKFLOW_CLOCK_H
#define TASKFLOW_CLOCK_H

#include "datatype/timestamp.h"

extern void TaskflowClockInit(void);
extern TimestampTz TaskflowClockNow(void);
extern int	TaskflowClockPush(TimestampTz instant);
extern void TaskflowClockPop(int nest_level);

#endif							/* TASKFLOW_CLOCK_H */
