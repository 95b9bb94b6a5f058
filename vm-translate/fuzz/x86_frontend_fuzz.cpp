// libFuzzer target: arbitrary bytes as guest code through the x86 frontend
// (Zydis decode, block formation, lifter), the verifier, and one run of
// each lifted block on the interpreter. Any crash, sanitizer report, or a
// lifted block that does not verify is a bug.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "vm/core/memory.hpp"
#include "vm/ir/interpreter.hpp"
#include "vm/ir/verifier.hpp"
#include "vm/translate/x86.hpp"

namespace {

constexpr uint64_t kCode = 0x10000;
constexpr uint64_t kData = 0x200000;

// Helpers that do not touch the host TSC, so runs are reproducible.
uint64_t fixed_tsc(vm::core::X86State*, uint64_t, uint64_t, uint64_t) { return 0x123456789; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > 4096) return 0;
  vm::core::RegionMemory mem;
  if (!mem.add_region(vm::core::GuestAddr(kCode), std::vector<uint8_t>(data, data + size), vm::core::kPermRead | vm::core::kPermExec))
    return 0;
  (void)mem.add_region(vm::core::GuestAddr(kData), 0x2000, vm::core::kPermRW);
  vm::ir::HelperTable helpers = vm::ir::HelperTable::defaults();
  helpers.fns[static_cast<size_t>(vm::ir::Helper::Rdtsc)] = fixed_tsc;
  helpers.fns[static_cast<size_t>(vm::ir::Helper::Rdtscp)] = fixed_tsc;
  vm::ir::Interpreter interp(mem, helpers);

  // Decode from a few starting offsets: instruction boundaries differ.
  for (uint64_t off = 0; off < size && off < 4; ++off) {
    auto block = vm::translate::decode_block(mem, vm::core::GuestAddr(kCode + off));
    if (!block) continue;  // fetch fault: a valid outcome
    if (auto ok = vm::ir::verify(*block); !ok) {
      std::fprintf(stderr, "lifted block does not verify: %s\n", ok.error().message.c_str());
      std::abort();
    }
    vm::core::X86State st;
    for (int i = 0; i < 16; ++i) st.gpr[i] = kData + 0x100 * static_cast<uint64_t>(i);
    st.rip = kCode + off;
    (void)interp.run(*block, st);
  }
  return 0;
}
