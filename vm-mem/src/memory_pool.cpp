#include "vm/mem/memory_pool.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "vm/core/assert.hpp"

namespace vm::mem {

using core::ErrorCode;
using core::fail;
using core::failf;

namespace {

constexpr unsigned kSlabShift = 18;
constexpr unsigned kGranuleShift = 4;  // one state byte per 16 bytes
static_assert((size_t{1} << kGranuleShift) == MemoryPool::kMinBlock);
static_assert(MemoryPool::kNumClasses < 255);
static_assert((size_t{1} << kSlabShift) == MemoryPool::kSlabBytes);
static_assert(MemoryPool::class_bytes(MemoryPool::kNumClasses - 1) == MemoryPool::kMaxSmall);
static_assert(MemoryPool::class_index(MemoryPool::kMaxSmall) == MemoryPool::kNumClasses - 1);
static_assert(MemoryPool::class_index(16) == 0 && MemoryPool::class_index(17) == 1);
static_assert(MemoryPool::class_index(129) == 8 && MemoryPool::class_bytes(8) == 160);

// Division by a class size for offsets < 2^18: (offset * magic) >> 40 with
// magic = ceil(2^40 / size) is exact because the rounding error stays below
// 2^-22 while the fractional part of offset / size is at most 1 - 2^-16.
constexpr unsigned kMagicShift = 40;

constexpr uint32_t cache_capacity(size_t block) {
  return static_cast<uint32_t>(std::clamp<size_t>(32768 / block, 4, 128));
}

uint64_t next_pool_id() {
  static std::atomic<uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

}  // namespace

struct MemoryPool::Slab {
  uint8_t* start = nullptr;
  uint32_t cls = 0;
  uint32_t block = 0;
  uint32_t capacity = 0;
  uint64_t magic = 0;
};

MemoryPool::ThreadCache::ThreadCache() {
  size_t total = 0;
  for (unsigned c = 0; c < kNumClasses; ++c) total += cache_capacity(class_bytes(c));
  storage = std::make_unique<void*[]>(total);
  size_t at = 0;
  for (unsigned c = 0; c < kNumClasses; ++c) {
    bins[c].capacity = cache_capacity(class_bytes(c));
    bins[c].slots = storage.get() + at;
    at += bins[c].capacity;
  }
}

// Which pools are alive, so a thread that exits can hand its caches back to
// the pools that still exist (and skip the ones already destroyed).
struct ThreadCacheRegistry {
  static std::mutex& mutex() {
    static auto* m = new std::mutex;  // leaked: used by thread exits after static destruction
    return *m;
  }
  static std::unordered_map<uint64_t, MemoryPool*>& pools() {
    static auto* p = new std::unordered_map<uint64_t, MemoryPool*>;
    return *p;
  }
  static void thread_exit(uint64_t id, MemoryPool::ThreadCache* tc) {
    std::lock_guard lock(mutex());
    auto it = pools().find(id);
    if (it != pools().end()) it->second->release_cache(tc);
  }
};

namespace detail {
thread_local constinit PoolCacheRef tl_pool_cache{};
}  // namespace detail

namespace {

using detail::PoolCacheRef;
using CacheRef = PoolCacheRef;

struct ThreadCaches {
  std::vector<CacheRef> refs;
  ~ThreadCaches() {
    detail::tl_pool_cache = {};
    for (const CacheRef& r : refs) ThreadCacheRegistry::thread_exit(r.pool_id, r.cache);
  }
};
thread_local ThreadCaches tl_caches;

}  // namespace

core::Result<std::unique_ptr<MemoryPool>> MemoryPool::create(MemoryPoolConfig config) {
  if (config.arena_bytes < kSlabBytes)
    return failf(ErrorCode::InvalidArgument, "memory pool arena of {} bytes is smaller than one slab",
                 config.arena_bytes);
  std::unique_ptr<MemoryPool> pool(new MemoryPool(config));
  size_t bytes = (config.arena_bytes & ~(kSlabBytes - 1)) + kSlabBytes;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return failf(ErrorCode::OutOfMemory, "cannot reserve a memory pool arena of {} bytes: {}", bytes,
                 std::strerror(errno));
  pool->arena_mapping_ = p;
  pool->arena_mapping_bytes_ = bytes;
  auto base = (reinterpret_cast<uintptr_t>(p) + kSlabBytes - 1) & ~(uintptr_t{kSlabBytes} - 1);
  pool->arena_ = reinterpret_cast<uint8_t*>(base);
  pool->max_slabs_ = config.arena_bytes >> kSlabShift;
  pool->arena_bytes_ = pool->max_slabs_ << kSlabShift;
  pool->state_bytes_ = pool->arena_bytes_ >> kGranuleShift;
  void* st = mmap(nullptr, pool->state_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                  -1, 0);
  if (st == MAP_FAILED)
    return failf(ErrorCode::OutOfMemory, "cannot reserve {} bytes of pool block states: {}", pool->state_bytes_,
                 std::strerror(errno));
  pool->state_ = static_cast<std::atomic<uint8_t>*>(st);
  pool->slabs_ = std::make_unique<std::atomic<Slab*>[]>(pool->max_slabs_);
  for (uint64_t i = 0; i < pool->max_slabs_; ++i) pool->slabs_[i].store(nullptr, std::memory_order_relaxed);
  {
    std::lock_guard lock(ThreadCacheRegistry::mutex());
    ThreadCacheRegistry::pools()[pool->id_] = pool.get();
  }
  return pool;
}

MemoryPool::MemoryPool(MemoryPoolConfig config) : config_(config), id_(next_pool_id()) {}

MemoryPool::~MemoryPool() {
  {
    std::lock_guard lock(ThreadCacheRegistry::mutex());
    ThreadCacheRegistry::pools().erase(id_);
  }
  if (detail::tl_pool_cache.pool_id == id_) detail::tl_pool_cache = {};
  uint64_t n = std::min(next_slab_.load(), max_slabs_);
  for (uint64_t i = 0; i < n; ++i) delete slabs_[i].load(std::memory_order_relaxed);
  for (auto& [start, bytes] : large_) munmap(reinterpret_cast<void*>(start), bytes);
  if (arena_mapping_ != nullptr) munmap(arena_mapping_, arena_mapping_bytes_);
  if (state_ != nullptr) munmap(state_, state_bytes_);
}

MemoryPool::ThreadCache& MemoryPool::thread_cache() {
  if (detail::tl_pool_cache.pool_id == id_) [[likely]]
    return *detail::tl_pool_cache.cache;
  return thread_cache_slow();
}

MemoryPool::ThreadCache& MemoryPool::thread_cache_slow() {
  for (const CacheRef& r : tl_caches.refs) {
    if (r.pool_id == id_) {
      detail::tl_pool_cache = r;
      return *r.cache;
    }
  }
  ThreadCache* tc = nullptr;
  {
    std::lock_guard lock(caches_mutex_);
    for (auto& c : caches_) {
      if (!c->in_use) {
        tc = c.get();
        break;
      }
    }
    if (tc == nullptr) {
      caches_.push_back(std::make_unique<ThreadCache>());
      tc = caches_.back().get();
    }
    tc->in_use = true;
  }
  tl_caches.refs.push_back(CacheRef{id_, tc});
  detail::tl_pool_cache = CacheRef{id_, tc};
  return *tc;
}

void MemoryPool::release_cache(ThreadCache* tc) {
  for (unsigned c = 0; c < kNumClasses; ++c) flush(*tc, c, 0);
  std::lock_guard lock(caches_mutex_);
  tc->in_use = false;
}

size_t MemoryPool::effective_size(size_t size, size_t alignment) {
  if (alignment <= kMinBlock) return size;
  return std::bit_ceil(std::max(size, alignment));
}

core::Result<void*> MemoryPool::allocate_general(size_t size, size_t alignment) {
  if (size == 0) return fail(ErrorCode::InvalidArgument, "allocation of 0 bytes");
  if (!std::has_single_bit(alignment) || alignment > kMaxAlignment)
    return failf(ErrorCode::InvalidArgument, "alignment {} is not a power of two up to {}", alignment, kMaxAlignment);
  size = effective_size(size, alignment);
  if (size > kMaxSmall) return allocate_large(size);
  return allocate(size);  // now a plain small request
}

core::Result<void*> MemoryPool::allocate_refill(unsigned cls) {
  ThreadCache& tc = thread_cache();  // also makes this pool the thread's current one
  if (tc.bins[cls].count == 0) {
    if (auto r = refill(tc, cls); !r) return std::unexpected(std::move(r.error()));
  }
  return allocate(class_bytes(cls));
}

void MemoryPool::push_free(void* ptr, unsigned cls) {
  ThreadCache& tc = thread_cache();
  ThreadCache::Bin& bin = tc.bins[cls];
  if (bin.count == bin.capacity) [[unlikely]]
    flush(tc, cls, bin.capacity / 2);
  bin.slots[bin.count++] = ptr;
  count(tc.frees[cls]);
}

core::Result<void> MemoryPool::deallocate_other(void* ptr) {
  if (ptr == nullptr) return fail(ErrorCode::InvalidArgument, "deallocate of a null pointer");
  auto off = static_cast<uintptr_t>(static_cast<uint8_t*>(ptr) - arena_);
  if (off < arena_bytes_) return free_error(ptr, -1, 0);  // inside a block
  return deallocate_large(ptr, 0);
}

core::Result<void> MemoryPool::deallocate(void* ptr, size_t size, size_t alignment) {
  if (ptr == nullptr) return fail(ErrorCode::InvalidArgument, "deallocate of a null pointer");
  if (size == 0 || !std::has_single_bit(alignment) || alignment > kMaxAlignment) {
    size_mismatches_.fetch_add(1, std::memory_order_relaxed);
    return failf(ErrorCode::InvalidArgument, "deallocate with size {} / alignment {} that no allocation has", size,
                 alignment);
  }
  size = effective_size(size, alignment);
  auto off = static_cast<uintptr_t>(static_cast<uint8_t*>(ptr) - arena_);
  if (off >= arena_bytes_) {
    size_t pages = (size + 4095) & ~size_t{4095};
    return deallocate_large(ptr, size > kMaxSmall ? pages : 1);
  }
  if (off % kMinBlock != 0) return free_error(ptr, -1, 0);
  int expected = size > kMaxSmall ? -2 : static_cast<int>(class_index(size));
  std::atomic<uint8_t>& state = state_[off >> kGranuleShift];
  uint8_t seen = state.load(std::memory_order_relaxed);
  if (seen == 0 || static_cast<int>(seen) - 1 != expected) return free_error(ptr, expected, seen);
  // Another thread may free it between the load and here: the exchange decides.
  if (state.exchange(0, std::memory_order_relaxed) == 0) return free_error(ptr, expected, 0);
  push_free(ptr, seen - 1u);
  return {};
}

// Works out which misuse it was (cold path). `state` is the block's state
// byte as seen by the caller (0: not live).
core::Result<void> MemoryPool::free_error(const void* ptr, int expected_class, uint8_t state) {
  if (state != 0) {
    size_mismatches_.fetch_add(1, std::memory_order_relaxed);
    if (expected_class == -2)
      return failf(ErrorCode::InvalidArgument, "deallocate of {:p} with a size above 64 KiB, but it is a {}-byte block",
                   ptr, class_bytes(state - 1u));
    return failf(ErrorCode::InvalidArgument, "deallocate of {:p} as a {}-byte block, but it is a {}-byte block", ptr,
                 class_bytes(static_cast<unsigned>(expected_class)), class_bytes(state - 1u));
  }
  auto off = static_cast<uintptr_t>(static_cast<const uint8_t*>(ptr) - arena_);
  Slab* slab = slabs_[off >> kSlabShift].load(std::memory_order_acquire);
  if (slab == nullptr) {
    foreign_frees_.fetch_add(1, std::memory_order_relaxed);
    return failf(ErrorCode::InvalidArgument, "deallocate of {:p}, which this pool never allocated", ptr);
  }
  uint64_t in_slab = off & (kSlabBytes - 1);
  uint64_t idx = (in_slab * slab->magic) >> kMagicShift;
  if (idx * slab->block != in_slab || idx >= slab->capacity) {
    foreign_frees_.fetch_add(1, std::memory_order_relaxed);
    return failf(ErrorCode::InvalidArgument, "deallocate of {:p}, which is not the start of a {}-byte block", ptr,
                 slab->block);
  }
  double_frees_.fetch_add(1, std::memory_order_relaxed);
  return failf(ErrorCode::InvalidArgument, "double free of {:p} (or a block that was never allocated)", ptr);
}

core::Result<void> MemoryPool::refill(ThreadCache& tc, unsigned cls) {
  Central& c = central_[cls];
  ThreadCache::Bin& bin = tc.bins[cls];
  uint32_t want = std::max<uint32_t>(1, bin.capacity / 2);
  std::lock_guard lock(c.mutex);
  while (bin.count < want && !c.free.empty()) {
    bin.slots[bin.count++] = c.free.back();
    c.free.pop_back();
  }
  while (bin.count < want) {
    if (c.current == nullptr || c.bump == c.current->capacity) {
      auto slab = new_slab(cls);
      if (!slab) {
        if (bin.count > 0) break;  // serve what we have; the next refill reports
        return std::unexpected(std::move(slab.error()));
      }
      c.current = *slab;
      c.bump = 0;
    }
    bin.slots[bin.count++] = c.current->start + size_t{c.bump++} * c.current->block;
  }
  count(tc.refills);
  return {};
}

void MemoryPool::flush(ThreadCache& tc, unsigned cls, uint32_t keep) {
  ThreadCache::Bin& bin = tc.bins[cls];
  if (bin.count <= keep) return;
  Central& c = central_[cls];
  std::lock_guard lock(c.mutex);
  c.free.insert(c.free.end(), bin.slots + keep, bin.slots + bin.count);
  bin.count = keep;
  count(tc.flushes);
}

core::Result<MemoryPool::Slab*> MemoryPool::new_slab(unsigned cls) {
  uint64_t index = next_slab_.fetch_add(1, std::memory_order_relaxed);
  if (index >= max_slabs_) {
    next_slab_.store(max_slabs_, std::memory_order_relaxed);
    return failf(ErrorCode::OutOfMemory, "memory pool arena of {} bytes is exhausted", config_.arena_bytes);
  }
  auto slab = std::make_unique<Slab>();
  slab->start = arena_ + (index << kSlabShift);
  slab->cls = cls;
  slab->block = static_cast<uint32_t>(class_bytes(cls));
  slab->capacity = static_cast<uint32_t>(kSlabBytes / slab->block);
  slab->magic = ((uint64_t{1} << kMagicShift) + slab->block - 1) / slab->block;
  Slab* raw = slab.release();
  slabs_[index].store(raw, std::memory_order_release);
  return raw;
}

core::Result<void*> MemoryPool::allocate_large(size_t size) {
  size_t bytes = (size + 4095) & ~size_t{4095};
  if (bytes < size) return fail(ErrorCode::OutOfMemory, "allocation size overflows");
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return failf(ErrorCode::OutOfMemory, "cannot map a span of {} bytes: {}", bytes, std::strerror(errno));
  {
    std::lock_guard lock(large_mutex_);
    large_[reinterpret_cast<uintptr_t>(p)] = bytes;
    large_bytes_ += bytes;
  }
  large_allocs_.fetch_add(1, std::memory_order_relaxed);
  return p;
}

// expected_bytes: 0 = unchecked, 1 = the caller claimed a small size, else the page-rounded size.
core::Result<void> MemoryPool::deallocate_large(void* ptr, size_t expected_bytes) {
  size_t bytes = 0;
  {
    std::lock_guard lock(large_mutex_);
    auto it = large_.find(reinterpret_cast<uintptr_t>(ptr));
    if (it == large_.end()) {
      foreign_frees_.fetch_add(1, std::memory_order_relaxed);
      return failf(ErrorCode::InvalidArgument,
                   "deallocate of {:p}, which this pool never allocated (or already freed)", ptr);
    }
    if (expected_bytes != 0 && expected_bytes != it->second) {
      size_mismatches_.fetch_add(1, std::memory_order_relaxed);
      return failf(ErrorCode::InvalidArgument, "deallocate of the {}-byte span {:p} with a different size", it->second,
                   ptr);
    }
    bytes = it->second;
    large_.erase(it);
    large_bytes_ -= bytes;
  }
  munmap(ptr, bytes);
  large_frees_.fetch_add(1, std::memory_order_relaxed);
  return {};
}

core::Result<size_t> MemoryPool::block_size(const void* ptr) const {
  auto off = static_cast<uintptr_t>(static_cast<const uint8_t*>(ptr) - arena_);
  if (off < arena_bytes_) {
    if (off % kMinBlock == 0) {
      uint8_t state = state_[off >> kGranuleShift].load(std::memory_order_relaxed);
      if (state != 0) return class_bytes(state - 1u);
    }
  } else {
    std::lock_guard lock(large_mutex_);
    auto it = large_.find(reinterpret_cast<uintptr_t>(ptr));
    if (it != large_.end()) return it->second;
  }
  return failf(ErrorCode::NotFound, "{:p} is not a live block of this pool", ptr);
}

bool MemoryPool::owns(const void* ptr) const { return block_size(ptr).has_value(); }

MemoryPoolStats MemoryPool::stats() const {
  MemoryPoolStats s;
  {
    std::lock_guard lock(caches_mutex_);
    s.threads = caches_.size();
    for (const auto& tc : caches_) {
      for (unsigned c = 0; c < kNumClasses; ++c) {
        uint64_t a = tc->allocs[c].load(std::memory_order_relaxed);
        uint64_t f = tc->frees[c].load(std::memory_order_relaxed);
        s.allocations += a;
        s.deallocations += f;
        s.bytes_in_use += (a - f) * class_bytes(c);  // wraps per cache, sums right overall
      }
      s.cache_refills += tc->refills.load(std::memory_order_relaxed);
      s.cache_flushes += tc->flushes.load(std::memory_order_relaxed);
    }
  }
  s.slabs = std::min(next_slab_.load(std::memory_order_relaxed), max_slabs_);
  s.reserved_bytes = s.slabs * kSlabBytes;
  {
    std::lock_guard lock(large_mutex_);
    s.large_in_use = large_.size();
    s.bytes_in_use += large_bytes_;
    s.reserved_bytes += large_bytes_;
  }
  s.allocations += large_allocs_.load(std::memory_order_relaxed);
  s.deallocations += large_frees_.load(std::memory_order_relaxed);
  s.double_frees = double_frees_.load(std::memory_order_relaxed);
  s.foreign_frees = foreign_frees_.load(std::memory_order_relaxed);
  s.size_mismatches = size_mismatches_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace vm::mem
