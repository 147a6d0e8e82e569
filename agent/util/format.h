/* printf-style format checking of the project's own variadic functions. */
#ifndef UKEY_UTIL_FORMAT_H
#define UKEY_UTIL_FORMAT_H

/* Argument `f` is a printf format for the arguments from `a` (0: a
 * va_list). With mingw the format is GNU's, that of its C99 stdio
 * (__USE_MINGW_ANSI_STDIO: %zu, %lld), not msvcrt's, GCC's "printf" there. */
#ifdef __MINGW32__
#define UKEY_PRINTF(f, a) __attribute__((format(gnu_printf, f, a)))
#else
#define UKEY_PRINTF(f, a) __attribute__((format(printf, f, a)))
#endif

#endif
