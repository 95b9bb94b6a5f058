// MemoryPool: the engine's allocator for fixed-shape host memory that is
// allocated and freed often, above all softmmu guest page frames (4 KiB,
// page aligned; AddressSpace takes them from here) and JIT code/data buffers.
//
// Requests of 16 B - 64 KiB are served from 44 size classes, each carved out
// of 256 KiB slabs inside one reserved virtual arena, through a per-thread
// cache of free blocks (no lock, no atomic read-modify-write on allocate).
// Larger requests get their own page-backed span (mmap). Misuse that would be
// undefined behaviour with malloc - double free, freeing a pointer the pool
// never gave out or an interior pointer, a size that does not match the
// allocation - is detected and returned as an Error; the pool's own metadata
// lives outside the blocks, so a caller cannot corrupt it by writing into a
// freed block.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "vm/core/error.hpp"

namespace vm::mem {

struct MemoryPoolConfig {
  // Virtual address space reserved for slabs (committed only when touched).
  uint64_t arena_bytes = uint64_t{16} << 30;
};

struct MemoryPoolStats {
  uint64_t allocations = 0;        // successful allocate() calls
  uint64_t deallocations = 0;      // successful deallocate() calls
  uint64_t bytes_in_use = 0;       // live bytes, rounded up to the size class / page
  uint64_t large_in_use = 0;       // live page-backed spans (> 64 KiB)
  uint64_t slabs = 0;              // 256 KiB slabs carved from the arena so far
  uint64_t reserved_bytes = 0;     // slab bytes + live span bytes
  uint64_t cache_refills = 0;      // thread-cache refills from the shared lists
  uint64_t cache_flushes = 0;      // thread-cache overflows returned to the shared lists
  uint64_t double_frees = 0;       // errors detected, by kind
  uint64_t foreign_frees = 0;
  uint64_t size_mismatches = 0;
  uint64_t threads = 0;            // thread caches created
};

class MemoryPool {
public:
  static constexpr size_t kMinBlock = 16;
  static constexpr size_t kMaxSmall = 64 * 1024;
  static constexpr size_t kSlabBytes = 256 * 1024;
  static constexpr unsigned kNumClasses = 44;
  static constexpr size_t kMaxAlignment = 4096;

  // The pool lives at a fixed address (thread caches point to it).
  static core::Result<std::unique_ptr<MemoryPool>> create(MemoryPoolConfig config = {});
  ~MemoryPool();
  MemoryPool(const MemoryPool&) = delete;
  MemoryPool& operator=(const MemoryPool&) = delete;

  // `alignment` is a power of two <= 4096. Blocks of a power-of-two size are
  // aligned to that size (a 4096-byte block is a page), everything to 16.
  // Fails for size 0, bad alignment, or when memory is exhausted.
  core::Result<void*> allocate(size_t size, size_t alignment = 16);

  // Frees a block. The sized form also checks that `size` / `alignment`
  // describe the same block the allocation produced.
  core::Result<void> deallocate(void* ptr);
  core::Result<void> deallocate(void* ptr, size_t size, size_t alignment = 16);

  // Usable bytes of a live block (its size class, or its span's page-rounded size).
  [[nodiscard]] core::Result<size_t> block_size(const void* ptr) const;
  [[nodiscard]] bool owns(const void* ptr) const;
  [[nodiscard]] MemoryPoolStats stats() const;

  // Size class of a request (class index, class bytes); for tests and docs.
  static constexpr unsigned class_index(size_t size) {
    if (size <= 128) return static_cast<unsigned>((size + 15) >> 4) - (size == 0 ? 0 : 1);
    unsigned b = bit_width_of(size - 1);  // 2^(b-1) < size <= 2^b
    unsigned sub = static_cast<unsigned>((size - 1) >> (b - 3)) - 4;
    return 8 + (b - 8) * 4 + sub;
  }
  static constexpr size_t class_bytes(unsigned index) {
    if (index < 8) return (index + 1) * 16;
    unsigned b = 8 + (index - 8) / 4;
    unsigned sub = (index - 8) % 4;
    return (size_t{1} << (b - 1)) + (sub + 1) * (size_t{1} << (b - 3));
  }

  struct Slab;
  struct ThreadCache;

private:
  struct Central {
    std::mutex mutex;
    std::vector<void*> free;  // blocks returned by thread caches
    Slab* current = nullptr;  // slab being carved
    uint32_t bump = 0;        // next uncarved block of `current`
  };

  explicit MemoryPool(MemoryPoolConfig config);
  static constexpr unsigned bit_width_of(uint64_t v) {
    unsigned n = 0;
    while (v != 0) { v >>= 1; ++n; }
    return n;
  }

  ThreadCache& thread_cache();
  ThreadCache& thread_cache_slow();
  core::Result<void> refill(ThreadCache& tc, unsigned cls);
  void flush(ThreadCache& tc, unsigned cls, uint32_t keep);
  core::Result<Slab*> new_slab(unsigned cls);
  core::Result<void*> allocate_large(size_t size);
  core::Result<void> deallocate_large(void* ptr, size_t expected_bytes);
  core::Result<void> deallocate_small(void* ptr, int expected_class);
  static size_t effective_size(size_t size, size_t alignment);
  friend struct ThreadCacheRegistry;
  void release_cache(ThreadCache* tc);

  MemoryPoolConfig config_;
  uint64_t id_ = 0;
  uint8_t* arena_ = nullptr;        // slab-aligned start of the usable arena
  void* arena_mapping_ = nullptr;   // what mmap returned (for munmap)
  size_t arena_mapping_bytes_ = 0;
  uint64_t max_slabs_ = 0;
  std::unique_ptr<std::atomic<Slab*>[]> slabs_;  // slab index -> metadata
  std::atomic<uint64_t> next_slab_{0};
  std::array<Central, kNumClasses> central_;

  mutable std::mutex caches_mutex_;
  std::vector<std::unique_ptr<ThreadCache>> caches_;

  mutable std::mutex large_mutex_;
  std::unordered_map<uintptr_t, size_t> large_;  // span start -> mapped bytes
  uint64_t large_bytes_ = 0;

  std::atomic<uint64_t> large_allocs_{0}, large_frees_{0};
  std::atomic<uint64_t> double_frees_{0}, foreign_frees_{0}, size_mismatches_{0};
};

}  // namespace vm::mem
