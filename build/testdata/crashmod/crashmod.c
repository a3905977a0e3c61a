// SPDX-License-Identifier: GPL-2.0
/*
 * crashmod: crash the kernel on purpose at module load time, so that
 * kregress can test its build of out-of-tree modules and capture real
 * console logs of known crashes.
 *
 *   insmod crashmod.ko crash=double_lock   take a spinlock twice
 *   insmod crashmod.ko crash=null_deref    dereference NULL
 *   insmod crashmod.ko                     load cleanly, do nothing
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/spinlock.h>
#include <linux/string.h>

static char *crash = "none";
module_param(crash, charp, 0444);
MODULE_PARM_DESC(crash, "crash to cause at load: none, double_lock or null_deref");

struct crashmod_obj {
	spinlock_t lock;
	int count;
	int *counter;
};

static struct crashmod_obj crashmod_obj = {
	.lock = __SPIN_LOCK_UNLOCKED(crashmod_obj.lock),
};

/*
 * The crashing functions are noinline and, where the compiler has it,
 * __noipa, so that they keep their own names (no .constprop or .isra
 * clones) and their own frames in stack traces.
 */
#ifndef __noipa
#define __noipa
#endif

/*
 * The mistake: spin_lock where spin_unlock belongs. Lockdep reports
 * "possible recursive locking detected"; without lockdep the CPU spins.
 */
static noinline __noipa void crashmod_double_lock(struct crashmod_obj *obj)
{
	spin_lock(&obj->lock);
	obj->count++;
	spin_lock(&obj->lock);
	obj->count++;	/* not reached; keeps the call above from being a tail call */
}

/* Reads through obj->counter, which nobody set: a NULL pointer dereference. */
static noinline __noipa int crashmod_null_deref(struct crashmod_obj *obj)
{
	return READ_ONCE(*obj->counter) + 1;
}

static int __init crashmod_init(void)
{
	pr_info("crashmod: loaded, crash=%s\n", crash);
	if (strcmp(crash, "double_lock") == 0)
		crashmod_double_lock(&crashmod_obj);
	else if (strcmp(crash, "null_deref") == 0)
		pr_info("crashmod: read %d\n", crashmod_null_deref(&crashmod_obj));
	else if (strcmp(crash, "none") != 0)
		return -EINVAL;
	return 0;
}

static void __exit crashmod_exit(void)
{
	pr_info("crashmod: unloaded\n");
}

module_init(crashmod_init);
module_exit(crashmod_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Crash the kernel on purpose, for testing crash capture");
