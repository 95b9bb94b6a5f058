// guest_memory_bench: the cost of one checked guest access through
// vm::core::RegionMemory, the reference memory used by the interpreter,
// loaders and `vm exec`. Every read/write/fetch looks the region up, checks
// permissions for the whole range and then copies, so the small sizes show
// the fixed per-access overhead and 4096 shows the copy bandwidth.
//
// The memory holds several regions (code, data, stack) so the lookup is a
// real binary search, and the accessed addresses walk through the data
// region rather than hitting one cache line, as guest loads do.
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include <fmt/format.h>

#include "vm/core/guest_addr.hpp"
#include "vm/core/memory.hpp"

namespace {

using vm::core::Access;
using vm::core::GuestAddr;
using vm::core::RegionMemory;

constexpr GuestAddr kCodeBase{0x400000};
constexpr GuestAddr kDataBase{0x600000};
constexpr GuestAddr kStackBase{0x7ffff0000000};
constexpr uint64_t kRegionSize = 1 << 20;
// Accesses walk a 256 KiB window of the region: bigger than L1/L2 on most
// hosts, so the copy is not measured from a single hot line.
constexpr uint64_t kWindow = 256 * 1024;
constexpr size_t kMaxAccess = 4096;

// A memory laid out like a small static binary: text (r-x), data (rw-),
// an unmapped gap, and a stack (rw-).
RegionMemory make_memory() {
  RegionMemory mem;
  auto check = [](const vm::core::Result<void>& r) {
    if (!r) {
      fmt::print(stderr, "guest_memory_bench: set-up failed: {}\n", r.error());
      std::abort();
    }
  };
  check(mem.add_region(kCodeBase, kRegionSize, vm::core::kPermRead | vm::core::kPermExec));
  check(mem.add_region(kDataBase, kRegionSize, vm::core::kPermRW));
  check(mem.add_region(kStackBase, kRegionSize, vm::core::kPermRW));
  return mem;
}

void run_access(benchmark::State& state, Access kind) {
  const auto size = static_cast<size_t>(state.range(0));
  RegionMemory mem = make_memory();
  const GuestAddr base = kind == Access::Fetch ? kCodeBase : kDataBase;
  std::array<uint8_t, kMaxAccess> buffer{};
  for (size_t i = 0; i < size; ++i) buffer[i] = static_cast<uint8_t>(i * 7 + 1);
  std::span<uint8_t> bytes(buffer.data(), size);

  // The step keeps accesses naturally aligned for their size and spreads
  // them over the window; 4096-byte accesses step by one page.
  const uint64_t step = size < 64 ? 64 : size;
  uint64_t offset = 0;
  for (auto _ : state) {
    const GuestAddr addr = base + offset;
    vm::core::Result<void> r = kind == Access::Read    ? mem.read(addr, bytes)
                               : kind == Access::Write ? mem.write(addr, bytes)
                                                       : mem.fetch(addr, bytes);
    if (!r) {
      state.SkipWithError(r.error().to_string().c_str());
      break;
    }
    benchmark::DoNotOptimize(buffer.data());
    benchmark::ClobberMemory();
    offset = (offset + step) % kWindow;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(size));
}

void guest_memory_read(benchmark::State& state) { run_access(state, Access::Read); }
void guest_memory_write(benchmark::State& state) { run_access(state, Access::Write); }
void guest_memory_fetch(benchmark::State& state) { run_access(state, Access::Fetch); }

// A faulting access (unmapped gap between data and stack) must stay cheap
// enough that guests which probe memory are not dominated by error building.
void guest_memory_fault(benchmark::State& state) {
  RegionMemory mem = make_memory();
  std::array<uint8_t, 8> buffer{};
  const GuestAddr unmapped = kDataBase + kRegionSize + 0x1000;
  for (auto _ : state) {
    auto r = mem.read(unmapped, buffer);
    benchmark::DoNotOptimize(r);
  }
}

}  // namespace

BENCHMARK(guest_memory_read)->Arg(1)->Arg(8)->Arg(64)->Arg(4096);
BENCHMARK(guest_memory_write)->Arg(1)->Arg(8)->Arg(64)->Arg(4096);
BENCHMARK(guest_memory_fetch)->Arg(1)->Arg(8)->Arg(64)->Arg(4096);
BENCHMARK(guest_memory_fault);

BENCHMARK_MAIN();
