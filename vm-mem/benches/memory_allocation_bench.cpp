// MemoryPool against glibc malloc and mimalloc, same loops, same binary, so
// the ratios come from one run on this (shared, noisy) machine.
//
// Linking libmimalloc replaces malloc for the whole process, so the glibc
// peer calls glibc's own entry points (__libc_malloc / __libc_free) and the
// mimalloc peer calls mi_malloc / mi_free.
#include <benchmark/benchmark.h>
#include <mimalloc.h>

#include <array>
#include <cstring>
#include <memory>

#include "vm/mem/memory_pool.hpp"

extern "C" void* __libc_malloc(size_t size);
extern "C" void __libc_free(void* ptr);

namespace {

using vm::mem::MemoryPool;

MemoryPool& pool() {
  static std::unique_ptr<MemoryPool> p = *MemoryPool::create();
  return *p;
}

struct Pool {
  static void* alloc(size_t n) { return *pool().allocate(n); }
  static void free(void* p) { (void)pool().deallocate(p); }
};
struct Glibc {
  static void* alloc(size_t n) { return __libc_malloc(n); }
  static void free(void* p) { __libc_free(p); }
};
struct Mimalloc {
  static void* alloc(size_t n) { return mi_malloc(n); }
  static void free(void* p) { mi_free(p); }
};

// One allocate + free of state.range(0) bytes per iteration.
template <class A>
void allocation(benchmark::State& state) {
  auto n = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    void* p = A::alloc(n);
    benchmark::DoNotOptimize(p);
    A::free(p);
  }
  state.SetItemsProcessed(state.iterations());
}

// Steady-state churn: 256 live blocks of mixed sizes (16 B - 4 KiB); each
// iteration frees the oldest and allocates a replacement of the same size
// and touches it.
template <class A>
void reuse(benchmark::State& state) {
  constexpr size_t kLive = 256;
  std::array<void*, kLive> live{};
  std::array<size_t, kLive> sizes{};
  for (size_t i = 0; i < kLive; ++i) {
    sizes[i] = size_t{16} << (i % 9);
    live[i] = A::alloc(sizes[i]);
  }
  size_t i = 0;
  for (auto _ : state) {
    A::free(live[i]);
    live[i] = A::alloc(sizes[i]);
    static_cast<char*>(live[i])[0] = 1;
    benchmark::DoNotOptimize(live[i]);
    i = (i + 1) % kLive;
  }
  for (void* p : live) A::free(p);
  state.SetItemsProcessed(state.iterations());
}

// 100 allocations of mixed sizes, then 100 frees, per iteration.
template <class A>
void batch_100(benchmark::State& state) {
  std::array<void*, 100> ptrs{};
  for (auto _ : state) {
    for (size_t i = 0; i < ptrs.size(); ++i) ptrs[i] = A::alloc(size_t{16} << (i % 8));
    benchmark::DoNotOptimize(ptrs.data());
    for (void* p : ptrs) A::free(p);
  }
  state.SetItemsProcessed(state.iterations() * 100);
}

void memory_pool_allocation(benchmark::State& s) { allocation<Pool>(s); }
void malloc_allocation(benchmark::State& s) { allocation<Glibc>(s); }
void mimalloc_allocation(benchmark::State& s) { allocation<Mimalloc>(s); }
void memory_pool_reuse(benchmark::State& s) { reuse<Pool>(s); }
void malloc_reuse(benchmark::State& s) { reuse<Glibc>(s); }
void mimalloc_reuse(benchmark::State& s) { reuse<Mimalloc>(s); }
void memory_pool_batch_100(benchmark::State& s) { batch_100<Pool>(s); }
void malloc_batch_100(benchmark::State& s) { batch_100<Glibc>(s); }
void mimalloc_batch_100(benchmark::State& s) { batch_100<Mimalloc>(s); }

// The sized deallocate (with its class check) and a softmmu page frame.
void memory_pool_sized_free(benchmark::State& state) {
  for (auto _ : state) {
    void* p = *pool().allocate(64);
    benchmark::DoNotOptimize(p);
    (void)pool().deallocate(p, 64);
  }
}
void memory_pool_page_frame(benchmark::State& state) {
  for (auto _ : state) {
    void* p = *pool().allocate(4096, 4096);
    benchmark::DoNotOptimize(p);
    (void)pool().deallocate(p, 4096, 4096);
  }
}

}  // namespace

BENCHMARK(memory_pool_allocation)->Arg(64)->Arg(1024)->Arg(4096)->Arg(65536);
BENCHMARK(malloc_allocation)->Arg(64)->Arg(1024)->Arg(4096)->Arg(65536);
BENCHMARK(mimalloc_allocation)->Arg(64)->Arg(1024)->Arg(4096)->Arg(65536);
BENCHMARK(memory_pool_allocation)->Name("memory_pool_allocation_mt")->Arg(64)->Threads(1)->Threads(2);
BENCHMARK(malloc_allocation)->Name("malloc_allocation_mt")->Arg(64)->Threads(1)->Threads(2);
BENCHMARK(memory_pool_reuse);
BENCHMARK(malloc_reuse);
BENCHMARK(mimalloc_reuse);
BENCHMARK(memory_pool_batch_100);
BENCHMARK(malloc_batch_100);
BENCHMARK(mimalloc_batch_100);
BENCHMARK(memory_pool_sized_free);
BENCHMARK(memory_pool_page_frame);

BENCHMARK_MAIN();
