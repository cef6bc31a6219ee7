/* Shared by tfctl's command groups. */
#ifndef TFCTL_H
#define TFCTL_H

/* Exit statuses of every tfctl command (operations-v1). */
enum tfctl_exit {
	TFCTL_OK = 0,     /* success */
	TFCTL_NO = 1,     /* the answer is "no": a failed check */
	TFCTL_USAGE = 2,  /* bad usage or unreadable input */
};

/* Command groups: argv[0] is the first word after the group's name. */
int tfctl_policy(int argc, char **argv);
int tfctl_policy_new(int argc, char **argv);   /* policy_new.c, for tfctl_policy */
int tfctl_key(int argc, char **argv);
int tfctl_verify(int argc, char **argv);
int tfctl_trace(int argc, char **argv);
int tfctl_alerts(int argc, char **argv);
int tfctl_quarantine(int argc, char **argv);
int tfctl_report(int argc, char **argv);

#endif
