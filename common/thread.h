/*
 * thread.h - where fidx's short-lived worker threads start.
 *
 * Owns: the placement attribute given to helper threads.
 * Never touches: what the threads run, their number, their joining.
 *
 * Linux starts a new thread on its creator's CPU and moves it only when
 * the balancer notices. On a VM whose other vCPU sits idle that took
 * milliseconds: measured on this project's 2-vCPU machine, `fidx filter`'s
 * helper began its chunk 1.5-3.7 ms late, after the creator had finished
 * its own, so "parallel" work ran serially. Helpers made with this
 * attribute start on any allowed CPU but the creator's, and call
 * thread_settle() first thing, so that afterwards they may run anywhere
 * again: with more helpers than CPUs, or in a cpuset, a mask kept for
 * life would crowd them onto the CPUs left.
 */
#ifndef FIDX_THREAD_H
#define FIDX_THREAD_H

#include <pthread.h>
#include <stdbool.h>

/*
 * Initialises attr to keep a thread off the calling thread's current CPU.
 * False when that cannot help (one CPU allowed, no affinity support) or
 * fails: then attr is not initialised and the caller passes NULL.
 */
bool thread_attr_elsewhere(pthread_attr_t *attr);

/*
 * Gives the calling thread back every CPU the process's main thread may
 * use. Harmless in a thread made without the attribute.
 */
void thread_settle(void);

#endif
