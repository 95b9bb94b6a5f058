// Cost of each flush kind against TLB size, and of refilling afterwards.
#include <benchmark/benchmark.h>

#include "bench_support.hpp"
#include "vm/mem/concurrent_tlb.hpp"
#include "vm/mem/tlb.hpp"

namespace {

using vm::core::Access;
using vm::core::GuestAddr;
using vm::mem::ConcurrentTlb;
using vm::mem::kPageSize;
using vm::mem::Tlb;
using vm::mem::TlbConfig;
using vm::mem::bench::BenchPages;

BenchPages& pages() {
  static BenchPages p(8192);
  return p;
}

// A table pinned at 2^bits entries (no resizing), filled completely.
Tlb filled_tlb(unsigned bits) {
  Tlb tlb(pages().pt, TlbConfig{.initial_bits = bits, .min_bits = bits, .max_bits = bits});
  for (uint64_t v = 0; v < (uint64_t{1} << bits); ++v)
    benchmark::DoNotOptimize(*tlb.translate(GuestAddr(v * kPageSize), 8, Access::Read));
  return tlb;
}

unsigned bits_of(const benchmark::State& state) { return static_cast<unsigned>(state.range(0)); }

void tlb_flush_all(benchmark::State& state) {
  Tlb tlb = filled_tlb(bits_of(state));
  for (auto _ : state) tlb.flush_all();
  state.counters["entries"] = static_cast<double>(tlb.entries());
}

void tlb_flush_page(benchmark::State& state) {
  Tlb tlb = filled_tlb(bits_of(state));
  uint64_t v = 0;
  for (auto _ : state) {
    tlb.flush_page(GuestAddr(v * kPageSize));
    v = (v + 1) & 1023;
  }
}

// 16 pages: flushed slot by slot.
void tlb_flush_range_16(benchmark::State& state) {
  Tlb tlb = filled_tlb(bits_of(state));
  uint64_t v = 0;
  for (auto _ : state) {
    tlb.flush_range(GuestAddr(v * kPageSize), 16 * kPageSize);
    v = (v + 16) & 1023;
  }
}

// 16 MiB (4,096 pages): larger than small tables, so it scans the table.
void tlb_flush_range_16m(benchmark::State& state) {
  Tlb tlb = filled_tlb(bits_of(state));
  for (auto _ : state) tlb.flush_range(GuestAddr(0), uint64_t{16} << 20);
}

// New tag: O(1), plus one real clear every 1,024 calls (tag wrap-around).
void tlb_flush_generation(benchmark::State& state) {
  Tlb tlb = filled_tlb(bits_of(state));
  for (auto _ : state) tlb.flush_generation();
}

// Flush, then touch 64 pages again: the price of the flush including the
// misses it causes.
template <class Flush>
void refill_after(benchmark::State& state, Flush flush) {
  Tlb tlb = filled_tlb(bits_of(state));
  for (auto _ : state) {
    flush(tlb);
    for (uint64_t v = 0; v < 64; ++v) benchmark::DoNotOptimize(*tlb.translate(GuestAddr(v * kPageSize), 8, Access::Read));
  }
  state.SetItemsProcessed(state.iterations() * 64);
}

void tlb_refill_after_flush_all(benchmark::State& state) {
  refill_after(state, [](Tlb& t) { t.flush_all(); });
}

void tlb_refill_after_flush_generation(benchmark::State& state) {
  refill_after(state, [](Tlb& t) { t.flush_generation(); });
}

void fill(ConcurrentTlb& tlb) {
  for (uint64_t v = 0; v < tlb.entries(); ++v)
    benchmark::DoNotOptimize(*tlb.translate(GuestAddr(v * kPageSize), 8, Access::Read));
}

void concurrent_tlb_flush_all(benchmark::State& state) {
  ConcurrentTlb tlb(pages().pt, bits_of(state));
  fill(tlb);
  for (auto _ : state) tlb.flush_all();
}

void concurrent_tlb_flush_page(benchmark::State& state) {
  ConcurrentTlb tlb(pages().pt, bits_of(state));
  fill(tlb);
  uint64_t v = 0;
  for (auto _ : state) {
    tlb.flush_page(GuestAddr(v * kPageSize));
    v = (v + 1) & 1023;
  }
}

void concurrent_tlb_flush_range_16m(benchmark::State& state) {
  ConcurrentTlb tlb(pages().pt, bits_of(state));
  fill(tlb);
  for (auto _ : state) tlb.flush_range(GuestAddr(0), uint64_t{16} << 20);
}

void sizes(benchmark::internal::Benchmark* b) {
  for (int bits : {6, 8, 10, 12}) b->Arg(bits);
  b->ArgName("bits");
}

}  // namespace

BENCHMARK(tlb_flush_all)->Apply(sizes);
BENCHMARK(tlb_flush_page)->Apply(sizes);
BENCHMARK(tlb_flush_range_16)->Apply(sizes);
BENCHMARK(tlb_flush_range_16m)->Apply(sizes);
BENCHMARK(tlb_flush_generation)->Apply(sizes);
BENCHMARK(tlb_refill_after_flush_all)->Apply(sizes);
BENCHMARK(tlb_refill_after_flush_generation)->Apply(sizes);
BENCHMARK(concurrent_tlb_flush_all)->Apply(sizes);
BENCHMARK(concurrent_tlb_flush_page)->Apply(sizes);
BENCHMARK(concurrent_tlb_flush_range_16m)->Apply(sizes);

BENCHMARK_MAIN();
