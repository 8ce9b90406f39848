/*
 * preview_scope.h
 *		Which members a preview simulates (see preview_scope.c).
 */
#ifndef TASKFLOW_PREVIEW_SCOPE_H
#define TASKFLOW_PREVIEW_SCOPE_H

#include "memberset.h"

extern void TaskflowPreviewScopeBegin(MemberSet members);
extern void TaskflowPreviewScopeEnd(void);
extern MemberSet TaskflowPreviewScope(void);
extern MemberSet TaskflowScoped(MemberSet only);

#endif							/* TASKFLOW_PREVIEW_SCOPE_H */
