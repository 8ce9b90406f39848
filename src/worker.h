/*
 * worker.h
 *		What the engine needs to know about running inside a worker.
 */
#ifndef TASKFLOW_WORKER_H
#define TASKFLOW_WORKER_H

/* true in a scheduler: the engine then arms the per-chain timeout */
extern bool taskflow_in_worker;

#endif							/* TASKFLOW_WORKER_H */
