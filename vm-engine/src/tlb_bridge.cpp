// TlbBridge slow paths: thin adapters from the MemoryContext calling
// convention to vm-mem's Tlb.
#include "vm/engine/tlb_bridge.hpp"

#include <cstring>

namespace vm::engine {
namespace {

mem::Tlb& tlb_of(translate::MemoryContext* m) { return static_cast<TlbBridge*>(m->user)->tlb(); }

uint32_t fault(translate::MemoryContext* m, const core::Error& e, uint64_t addr, core::Access access) {
  m->fault_addr = e.addr ? e.addr->value() : addr;
  m->fault_access = static_cast<uint32_t>(access);
  return 1;
}

uint32_t load_slow(translate::MemoryContext* m, uint64_t addr, uint64_t size, void* out) {
  auto r = tlb_of(m).read(core::GuestAddr(addr), std::span<uint8_t>(static_cast<uint8_t*>(out), size));
  return r ? 0 : fault(m, r.error(), addr, core::Access::Read);
}

uint32_t store_slow(translate::MemoryContext* m, uint64_t addr, uint64_t size, const void* in) {
  auto r = tlb_of(m).write(core::GuestAddr(addr), std::span<const uint8_t>(static_cast<const uint8_t*>(in), size));
  return r ? 0 : fault(m, r.error(), addr, core::Access::Write);
}

uint64_t apply(uint32_t op, uint64_t o, uint64_t v) {
  switch (static_cast<ir::RmwOp>(op)) {
    case ir::RmwOp::Xchg: return v;
    case ir::RmwOp::Add: return o + v;
    case ir::RmwOp::Sub: return o - v;
    case ir::RmwOp::And: return o & v;
    case ir::RmwOp::Or: return o | v;
    case ir::RmwOp::Xor: return o ^ v;
  }
  return v;
}

template <class T>
T atomic_on(T* p, uint32_t op, const uint8_t* operands) {
  T v, desired;
  std::memcpy(&v, operands, sizeof(T));
  std::memcpy(&desired, operands + 16, sizeof(T));
  if (op == translate::kAtomicSlowCmpxchg) {
    T expected = v;
    __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return expected;  // the old value whether or not it matched
  }
  T old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
  while (!__atomic_compare_exchange_n(p, &old, static_cast<T>(apply(op, old, v)), false, __ATOMIC_SEQ_CST,
                                      __ATOMIC_SEQ_CST)) {
  }
  return old;
}

uint32_t atomic_slow(translate::MemoryContext* m, uint64_t addr, uint64_t size, uint32_t op, const void* operands,
                     void* old_out) {
  auto& tlb = tlb_of(m);
  const auto* ops = static_cast<const uint8_t*>(operands);
  // Fault order as in the interpreter: a read check, then a write check.
  uint8_t old[16] = {};
  if (auto r = tlb.read(core::GuestAddr(addr), std::span<uint8_t>(old, size)); !r)
    return fault(m, r.error(), addr, core::Access::Read);
  bool aligned = (addr & (size - 1)) == 0 && size <= 8;
  if (aligned) {
    auto p = tlb.translate(core::GuestAddr(addr), static_cast<uint32_t>(size), core::Access::Write);
    if (!p) return fault(m, p.error(), addr, core::Access::Write);
    uint64_t r = 0;
    switch (size) {
      case 1: r = atomic_on(reinterpret_cast<uint8_t*>(*p), op, ops); break;
      case 2: r = atomic_on(reinterpret_cast<uint16_t*>(*p), op, ops); break;
      case 4: r = atomic_on(reinterpret_cast<uint32_t*>(*p), op, ops); break;
      default: r = atomic_on(reinterpret_cast<uint64_t*>(*p), op, ops); break;
    }
    std::memcpy(old_out, &r, size);
    return 0;
  }
  // 16-byte or misaligned: not atomic (single guest thread per Tlb).
  uint8_t neu[16] = {};
  if (op == translate::kAtomicSlowCmpxchg) {
    std::memcpy(neu, std::memcmp(old, ops, size) == 0 ? ops + 16 : old, size);
  } else {
    uint64_t o = 0, v = 0;
    std::memcpy(&o, old, size);
    std::memcpy(&v, ops, size);
    uint64_t n = apply(op, o, v);
    std::memcpy(neu, &n, size);
  }
  if (auto r = tlb.write(core::GuestAddr(addr), std::span<const uint8_t>(neu, size)); !r)
    return fault(m, r.error(), addr, core::Access::Write);
  std::memcpy(old_out, old, size);
  return 0;
}

}  // namespace

TlbBridge::TlbBridge(mem::Tlb& tlb, const ir::HelperTable& helpers) : tlb_(&tlb) {
  ctx_.tlb = tlb.fast();
  ctx_.helpers = helpers.fns.data();
  ctx_.load_slow = &load_slow;
  ctx_.store_slow = &store_slow;
  ctx_.atomic_slow = &atomic_slow;
  ctx_.user = this;
}

}  // namespace vm::engine
