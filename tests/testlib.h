/* Shared helpers for kiln's cmocka tests. */
#ifndef KILN_TESTLIB_H
#define KILN_TESTLIB_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/base.h"

/* A fresh temporary directory for one test; removed (recursively) by test_tmpdir_remove. */
char *test_tmpdir_new(void);
void test_tmpdir_remove(char *dir);
/* Write a file below dir (creating parents); aborts the test on failure. */
void test_write_file(const char *dir, const char *rel, const char *content);
/* Assert that err's formatted text contains `needle`, then release it. */
#define assert_err_contains(err, needle) test_assert_err_contains((err), (needle), __FILE__, __LINE__)
void test_assert_err_contains(struct kiln_err *err, const char *needle, const char *file, int line);

#endif
