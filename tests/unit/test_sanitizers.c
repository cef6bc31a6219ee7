/* Unit tests for the sanitizer build (configure --enable-sanitizers): the
 * checks that outside input can reach abort the program. A double cast to an
 * integer type that cannot hold it is left out of -fsanitize=undefined, so
 * configure names float-cast-overflow too; without it the cast goes through
 * and yields a made-up number. Without sanitizers there is nothing to test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#ifdef TF_SANITIZERS
/* volatile, so that the compiler neither folds the cast nor warns of it. */
static volatile double huge = 1e300;
static volatile long long sink;

/* Runs the cast in a child, which exits 0 only if the cast went through. */
static void float_cast_overflow_aborts(void **state)
{
	pid_t pid;
	int status = 0;

	(void)state;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fprintf(stderr, "test_sanitizers: a runtime error report is expected next\n");
		sink = (long long)huge;
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
#else
static void float_cast_overflow_aborts(void **state)
{
	(void)state;
	skip();
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(float_cast_overflow_aborts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
