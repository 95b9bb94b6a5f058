// VM_ASSERT: checks our own invariants (never guest-controlled conditions,
// which must become Error values). Active in the dev and sanitizer presets.
#pragma once

#include <cstdio>
#include <cstdlib>

#if defined(VM_ENABLE_ASSERTS) && VM_ENABLE_ASSERTS
#define VM_ASSERT(cond, msg)                                                                  \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "%s:%d: internal assertion failed: %s (%s)\n", __FILE__, __LINE__, \
                   #cond, msg);                                                               \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)
#else
#define VM_ASSERT(cond, msg) ((void)0)
#endif
