/* thread.c - see thread.h. */
#include "thread.h"

#include <sched.h>
#include <unistd.h>

bool
thread_attr_elsewhere(pthread_attr_t *attr)
{
	cpu_set_t cpus;
	int here = sched_getcpu();

	if (here < 0 || sched_getaffinity(0, sizeof(cpus), &cpus) != 0 ||
	    CPU_COUNT(&cpus) < 2 || !CPU_ISSET(here, &cpus))
		return false;
	CPU_CLR(here, &cpus);
	if (pthread_attr_init(attr) != 0)
		return false;
	if (pthread_attr_setaffinity_np(attr, sizeof(cpus), &cpus) != 0) {
		pthread_attr_destroy(attr);
		return false;
	}
	return true;
}

void
thread_settle(void)
{
	cpu_set_t cpus;

	/* The main thread's id is the process id. */
	if (sched_getaffinity(getpid(), sizeof(cpus), &cpus) == 0)
		(void)pthread_setaffinity_np(pthread_self(), sizeof(cpus),
		    &cpus);
}
