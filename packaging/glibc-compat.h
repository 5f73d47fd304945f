/* Force-included (gcc -include) into every better-sqlite3 translation unit by stage.sh.
 * The build host has a new glibc (Debian 12: 2.36); symbols that got a new version after 2.28
 * would make the addon refuse to load on the older images the official Node runtime supports
 * (its floor is glibc 2.28). Bind them to the old versions that every glibc of the architecture
 * has: GLIBC_2.2.5 on x86_64, GLIBC_2.17 (the first aarch64 glibc) on aarch64.
 * stat64/fstat64/lstat64 have no old version: -Wl,--wrap sends them to glibc-compat.c. */
#ifndef SLICEID_GLIBC_COMPAT_H
#define SLICEID_GLIBC_COMPAT_H
#if defined(__x86_64__) && defined(__linux__)
#define SLICEID_GLIBC_BASE "GLIBC_2.2.5"
#elif defined(__aarch64__) && defined(__linux__)
#define SLICEID_GLIBC_BASE "GLIBC_2.17"
#endif
#ifdef SLICEID_GLIBC_BASE
__asm__(".symver pthread_create,pthread_create@" SLICEID_GLIBC_BASE);
__asm__(".symver pthread_join,pthread_join@" SLICEID_GLIBC_BASE);
__asm__(".symver pthread_once,pthread_once@" SLICEID_GLIBC_BASE);
__asm__(".symver pthread_mutex_trylock,pthread_mutex_trylock@" SLICEID_GLIBC_BASE);
__asm__(".symver pthread_mutexattr_init,pthread_mutexattr_init@" SLICEID_GLIBC_BASE);
__asm__(".symver pthread_mutexattr_destroy,pthread_mutexattr_destroy@" SLICEID_GLIBC_BASE);
__asm__(".symver pthread_mutexattr_settype,pthread_mutexattr_settype@" SLICEID_GLIBC_BASE);
__asm__(".symver pthread_key_create,pthread_key_create@" SLICEID_GLIBC_BASE);
__asm__(".symver pthread_key_delete,pthread_key_delete@" SLICEID_GLIBC_BASE);
__asm__(".symver pthread_getspecific,pthread_getspecific@" SLICEID_GLIBC_BASE);
__asm__(".symver pthread_setspecific,pthread_setspecific@" SLICEID_GLIBC_BASE);
__asm__(".symver pthread_detach,pthread_detach@" SLICEID_GLIBC_BASE);
__asm__(".symver dlopen,dlopen@" SLICEID_GLIBC_BASE);
__asm__(".symver dlclose,dlclose@" SLICEID_GLIBC_BASE);
__asm__(".symver dlsym,dlsym@" SLICEID_GLIBC_BASE);
__asm__(".symver dlerror,dlerror@" SLICEID_GLIBC_BASE);
__asm__(".symver exp,exp@" SLICEID_GLIBC_BASE);
__asm__(".symver log,log@" SLICEID_GLIBC_BASE);
__asm__(".symver log2,log2@" SLICEID_GLIBC_BASE);
__asm__(".symver pow,pow@" SLICEID_GLIBC_BASE);
#endif
#endif
