// Linked into better-sqlite3 by stage.sh (with -Wl,--wrap=stat64,--wrap=fstat64,--wrap=lstat64)
// so that the addon built on a new Debian asks no more of the image than the official Node runtime
// does: glibc 2.28 and the libstdc++ of GCC 8 (GLIBCXX_3.4.25). x86_64 and aarch64.
#include <sys/stat.h>
#include <new>

extern "C" {
// glibc 2.33 made stat64 & co. real functions (stat64@GLIBC_2.33); before that they were inline
// wrappers around __xstat64 & co., which every glibc since 2.2.5 still exports.
int __xstat64(int ver, const char *path, struct stat64 *buf);
int __fxstat64(int ver, int fd, struct stat64 *buf);
int __lxstat64(int ver, const char *path, struct stat64 *buf);
#if defined(__aarch64__)
__asm__(".symver __xstat64,__xstat64@GLIBC_2.17");
__asm__(".symver __fxstat64,__fxstat64@GLIBC_2.17");
__asm__(".symver __lxstat64,__lxstat64@GLIBC_2.17");
#define SLICEID_STAT_VER 0 /* _STAT_VER_KERNEL of the generic Linux ABI (aarch64) */
#else
__asm__(".symver __xstat64,__xstat64@GLIBC_2.2.5");
__asm__(".symver __fxstat64,__fxstat64@GLIBC_2.2.5");
__asm__(".symver __lxstat64,__lxstat64@GLIBC_2.2.5");
#define SLICEID_STAT_VER 1 /* _STAT_VER_LINUX on x86_64 */
#endif
__attribute__((visibility("hidden"))) int __wrap_stat64(const char *path, struct stat64 *buf) {
  return __xstat64(SLICEID_STAT_VER, path, buf);
}
__attribute__((visibility("hidden"))) int __wrap_fstat64(int fd, struct stat64 *buf) {
  return __fxstat64(SLICEID_STAT_VER, fd, buf);
}
__attribute__((visibility("hidden"))) int __wrap_lstat64(const char *path, struct stat64 *buf) {
  return __lxstat64(SLICEID_STAT_VER, path, buf);
}
}

// GCC 11 made `new T[n]` call std::__throw_bad_array_new_length (GLIBCXX_3.4.29); a local
// definition keeps the reference inside the addon.
namespace std {
__attribute__((visibility("hidden"), noreturn)) void __throw_bad_array_new_length() { throw std::bad_array_new_length(); }
}  // namespace std
