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
int tfctl_key(int argc, char **argv);
int tfctl_verify(int argc, char **argv);
int tfctl_trace(int argc, char **argv);
int tfctl_alerts(int argc, char **argv);
int tfctl_quarantine(int argc, char **argv);
int tfctl_report(int argc, char **argv);
int tfctl_console(int argc, char **argv);

/* tfctl policy check (policy_check.c) and new (policy_new.c), and the
 * usage error of the policy group (prints what is wrong and the usage;
 * returns TFCTL_USAGE). */
int tfctl_policy_check(int argc, char **argv);
int tfctl_policy_new(int argc, char **argv);
int tfctl_policy_usage(const char *what);

/* tfctl trace join (join_cmd.c): the exports of several brokers, joined
 * by message id; needs no store. */
int tfctl_trace_join(int argc, char **argv);

#endif
