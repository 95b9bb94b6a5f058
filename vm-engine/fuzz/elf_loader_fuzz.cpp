// libFuzzer target: file bytes -> the Linux ELF loader -> the initial stack.
// Any input must either load or give an error with a message; a loaded
// image must lie inside the guest space above the lowest mappable address,
// and its initial stack must be built 16-byte aligned inside the stack.
// Each input is loaded twice: into a 1 GiB direct space (as vm run's
// smallest --address-space) and into a 512 MiB softmmu space, whose page
// frames are allocated when mapped (a smaller space keeps that bounded;
// the stack still needs more than the 256 MiB kept above it).
#include <cstdlib>
#include <span>

#include "vm/engine/linux/elf_loader.hpp"
#include "vm/mem/address_space.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void load(std::span<const uint8_t> file, vm::mem::MemoryStrategy strategy, uint64_t size) {
  using namespace vm;
  mem::AddressSpaceConfig cfg;
  cfg.size = size;
  cfg.strategy = strategy;
  auto space = mem::AddressSpace::create(cfg);
  check(space.has_value());
  auto image = engine::linux::load_elf(**space, file);
  if (!image) {
    check(!image.error().message.empty());
    return;
  }
  check(image->lowest.value() >= 0x10000 && image->lowest.value() < image->brk_start.value());
  check(image->brk_start.value() <= size);
  engine::linux::StackConfig sc;
  sc.size = 1 << 20;
  sc.argv = {"prog", "arg"};
  sc.envp = {"HOME=/"};
  sc.execfn = "prog";
  auto stack = engine::linux::build_initial_stack(**space, *image, sc);
  if (!stack) {
    check(!stack.error().message.empty());
    return;
  }
  check(stack->rsp.value() % 16 == 0);
  check(stack->rsp.value() >= stack->stack_low.value() && stack->rsp.value() < stack->stack_high.value());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> file(data, size);
  load(file, vm::mem::MemoryStrategy::Direct, uint64_t{1} << 30);
  load(file, vm::mem::MemoryStrategy::SoftMmu, uint64_t{512} << 20);
  return 0;
}
