// libFuzzer target: IR text -> parser -> printer round trip -> verifier ->
// interpreter. Any input must give a parse error with a position, or blocks
// that re-print identically; verified blocks must run without host UB
// (built with ASan+UBSan), whatever they do to the guest.
#include <cstdlib>
#include <string_view>

#include "vm/core/memory.hpp"
#include "vm/ir/interpreter.hpp"
#include "vm/ir/text.hpp"
#include "vm/ir/verifier.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto blocks = vm::ir::parse_blocks(text);
  if (!blocks) {
    if (blocks.error().message.find(':') == std::string::npos) std::abort();  // errors name line:column
    return 0;
  }
  for (const auto& b : *blocks) {
    auto again = vm::ir::parse(vm::ir::print(b));
    if (!again || !(*again == b)) std::abort();
    if (!vm::ir::verify(b)) continue;
    vm::core::RegionMemory mem;
    (void)mem.add_region(vm::core::GuestAddr(0x10000), 0x1000, vm::core::kPermRW);
    vm::core::X86State state;
    vm::ir::HelperTable helpers = vm::ir::HelperTable::defaults();
    vm::ir::Interpreter(mem, helpers).run(b, state);
  }
  return 0;
}
