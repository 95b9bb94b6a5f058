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
#include <bit>
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
    auto b = static_cast<unsigned>(std::bit_width(size - 1));  // 2^(b-1) < size <= 2^b
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
  // A thread's free blocks per class (no lock: only its thread touches the
  // bins). The counters are atomics so stats() may read them from another
  // thread, but only the owner writes them, with plain load + store.
  struct ThreadCache {
    struct Bin {
      uint32_t count = 0;
      uint32_t capacity = 0;
      void** slots = nullptr;
    };
    std::array<Bin, kNumClasses> bins;
    std::array<std::atomic<uint64_t>, kNumClasses> allocs{};
    std::array<std::atomic<uint64_t>, kNumClasses> frees{};
    std::atomic<uint64_t> refills{0}, flushes{0};
    std::unique_ptr<void*[]> storage;
    bool in_use = false;  // guarded by the pool's caches_mutex_
    ThreadCache();
  };

private:
  struct Central {
    std::mutex mutex;
    std::vector<void*> free;  // blocks returned by thread caches
    Slab* current = nullptr;  // slab being carved
    uint32_t bump = 0;        // next uncarved block of `current`
  };

  explicit MemoryPool(MemoryPoolConfig config);

  ThreadCache& thread_cache();
  ThreadCache& thread_cache_slow();
  core::Result<void*> allocate_general(size_t size, size_t alignment);
  core::Result<void*> allocate_refill(unsigned cls);
  core::Result<void> deallocate_other(void* ptr);
  static void count(std::atomic<uint64_t>& c) {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  core::Result<void> refill(ThreadCache& tc, unsigned cls);
  void flush(ThreadCache& tc, unsigned cls, uint32_t keep);
  core::Result<Slab*> new_slab(unsigned cls);
  core::Result<void*> allocate_large(size_t size);
  core::Result<void> deallocate_large(void* ptr, size_t expected_bytes);
  core::Result<void> free_error(const void* ptr, int expected_class, uint8_t state);
  void push_free(void* ptr, unsigned cls);
  static size_t effective_size(size_t size, size_t alignment);
  friend struct ThreadCacheRegistry;
  void release_cache(ThreadCache* tc);

  MemoryPoolConfig config_;
  uint64_t id_ = 0;
  uint8_t* arena_ = nullptr;        // slab-aligned start of the usable arena
  void* arena_mapping_ = nullptr;   // what mmap returned (for munmap)
  size_t arena_mapping_bytes_ = 0;
  uint64_t max_slabs_ = 0;
  uint64_t arena_bytes_ = 0;        // max_slabs_ * kSlabBytes
  std::unique_ptr<std::atomic<Slab*>[]> slabs_;  // slab index -> metadata
  // One state byte per 16-byte granule of the arena, set only at block
  // starts: 0 = not a live block, c + 1 = live block of class c. Outside the
  // blocks, so callers cannot corrupt it; freeing needs no slab lookup.
  std::atomic<uint8_t>* state_ = nullptr;
  size_t state_bytes_ = 0;
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

namespace detail {
// The cache of the pool this thread used last: the fast paths below check
// only this. Trivial and constant-initialised, so access is one %fs load.
struct PoolCacheRef {
  uint64_t pool_id = 0;
  MemoryPool::ThreadCache* cache = nullptr;
};
extern thread_local constinit PoolCacheRef tl_pool_cache;
}  // namespace detail

// Fast paths, inline so that constant sizes fold: a small request with
// default alignment whose class has a cached block takes no lock and no
// locked instruction; a free is one atomic exchange of the block's state
// byte (which both checks that the block is live and marks it free, so two
// threads racing to free one block cannot both succeed) and a push.
inline core::Result<void*> MemoryPool::allocate(size_t size, size_t alignment) {
  if (size - 1 >= kMaxSmall || alignment - 1 >= kMinBlock || (alignment & (alignment - 1)) != 0) [[unlikely]]
    return allocate_general(size, alignment);
  unsigned cls = class_index(size);
  detail::PoolCacheRef ref = detail::tl_pool_cache;
  if (ref.pool_id != id_) [[unlikely]]
    return allocate_refill(cls);
  ThreadCache::Bin& bin = ref.cache->bins[cls];
  if (bin.count == 0) [[unlikely]]
    return allocate_refill(cls);
  void* p = bin.slots[--bin.count];
  state_[static_cast<uintptr_t>(static_cast<uint8_t*>(p) - arena_) / kMinBlock].store(static_cast<uint8_t>(cls + 1),
                                                                                     std::memory_order_relaxed);
  count(ref.cache->allocs[cls]);
  return p;
}

inline core::Result<void> MemoryPool::deallocate(void* ptr) {
  auto off = static_cast<uintptr_t>(static_cast<uint8_t*>(ptr) - arena_);
  if (off >= arena_bytes_ || off % kMinBlock != 0) [[unlikely]]
    return deallocate_other(ptr);
  uint8_t state = state_[off / kMinBlock].exchange(0, std::memory_order_relaxed);
  if (state == 0) [[unlikely]]
    return free_error(ptr, -1, 0);
  unsigned cls = state - 1u;
  detail::PoolCacheRef ref = detail::tl_pool_cache;
  if (ref.pool_id == id_) [[likely]] {
    ThreadCache::Bin& bin = ref.cache->bins[cls];
    if (bin.count != bin.capacity) [[likely]] {
      bin.slots[bin.count++] = ptr;
      count(ref.cache->frees[cls]);
      return {};
    }
  }
  push_free(ptr, cls);
  return {};
}

}  // namespace vm::mem
