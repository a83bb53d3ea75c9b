# KMEM_CHECK_PTHREAD
# ------------------
# Find the flags for POSIX threads: -pthread where the compiler takes it,
# else -lpthread.  Sets PTHREAD_CFLAGS and PTHREAD_LIBS.
AC_DEFUN([KMEM_CHECK_PTHREAD], [
  AC_CACHE_CHECK([how to build with POSIX threads], [kmem_cv_pthread], [
    kmem_cv_pthread=no
    kmem_save_CFLAGS=$CFLAGS
    kmem_save_LIBS=$LIBS
    for kmem_flag in -pthread -lpthread; do
      CFLAGS="$kmem_save_CFLAGS $kmem_flag"
      LIBS="$kmem_save_LIBS $kmem_flag"
      AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <pthread.h>
static void *run(void *arg) { return arg; }]],
          [[pthread_t t; pthread_create(&t, 0, run, 0); pthread_join(t, 0);]])],
        [kmem_cv_pthread=$kmem_flag; break])
    done
    CFLAGS=$kmem_save_CFLAGS
    LIBS=$kmem_save_LIBS])
  AS_IF([test "x$kmem_cv_pthread" = xno],
        [AC_MSG_ERROR([POSIX threads are required])])
  AS_IF([test "x$kmem_cv_pthread" = x-pthread],
        [PTHREAD_CFLAGS=-pthread; PTHREAD_LIBS=-pthread],
        [PTHREAD_CFLAGS=; PTHREAD_LIBS=$kmem_cv_pthread])
  AC_SUBST([PTHREAD_CFLAGS])
  AC_SUBST([PTHREAD_LIBS])
])
