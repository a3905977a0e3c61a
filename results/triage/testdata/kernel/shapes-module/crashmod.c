// SPDX-License-Identifier: GPL-2.0
/* Test module: makes a real kernel print the report shapes kregress's
 * triage must title. mode=dentry: one dput too many on a dentry of path
 * (its refcount underflows at unmount); mode=spin: spin with preemption
 * off for spin_seconds (soft lockup and RCU stall in a module). */
#include <linux/module.h>
#include <linux/namei.h>
#include <linux/dcache.h>
#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/preempt.h>

static char *mode = "dentry";
module_param(mode, charp, 0444);
static char *path = "/mnt/t/file";
module_param(path, charp, 0444);
static int spin_seconds = 30;
module_param(spin_seconds, int, 0444);

static noinline void crashmod_put_twice(struct dentry *d)
{
	dput(d);
	/* the bug: one reference too many dropped, behind dput's back */
	spin_lock(&d->d_lock);
	d->d_lockref.count--;
	spin_unlock(&d->d_lock);
}

static noinline void crashmod_spin(void)
{
	unsigned long end = jiffies + spin_seconds * HZ;

	preempt_disable();
	while (time_before(jiffies, end))
		cpu_relax();
	preempt_enable();
}

static int __init crashmod_init(void)
{
	struct path p;
	int err;

	if (!strcmp(mode, "spin")) {
		crashmod_spin();
		return 0;
	}
	err = kern_path(path, 0, &p);
	if (err)
		return err;
	crashmod_put_twice(p.dentry);
	mntput(p.mnt);
	return 0;
}

static void __exit crashmod_exit(void)
{
}

module_init(crashmod_init);
module_exit(crashmod_exit);
MODULE_LICENSE("GPL");
