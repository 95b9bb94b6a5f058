// TlbBridge: a softmmu MemoryContext backed by a vm-mem Tlb, the fast way to
// run compiled code over an AddressSpace. Generated code hits the Tlb's
// entries inline; a miss calls Tlb::read / write, which refill the entry
// (so the next access hits) and report faults exactly. Atomics that miss
// use Tlb::translate for a host pointer (an access crossing a page falls
// back to a non-atomic read-modify-write). Owned by one guest CPU thread,
// like its Tlb.
#pragma once

#include "vm/ir/interpreter.hpp"
#include "vm/mem/tlb.hpp"
#include "vm/translate/lowering.hpp"

namespace vm::engine {

class TlbBridge {
public:
  explicit TlbBridge(mem::Tlb& tlb, const ir::HelperTable& helpers = ir::HelperTable::defaults());
  TlbBridge(const TlbBridge&) = delete;
  TlbBridge& operator=(const TlbBridge&) = delete;
  translate::MemoryContext& context() { return ctx_; }
  [[nodiscard]] mem::Tlb& tlb() { return *tlb_; }

private:
  mem::Tlb* tlb_;
  translate::MemoryContext ctx_;
};

}  // namespace vm::engine
