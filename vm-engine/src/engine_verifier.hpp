// The execution engine's --verify-jit co-simulation (internal to
// vm-engine, included by execution_engine.cpp only).
#pragma once

#include <cstring>
#include <map>
#include <string>

#include <fmt/format.h>

#include "vm/engine/execution_engine.hpp"
#include "vm/ir/interpreter.hpp"
#include "vm/mem/page_table.hpp"

namespace vm::engine {

// --verify-jit: the interpreter's run of a block over an overlay of guest
// memory (reads see the block's own earlier writes, nothing reaches the
// address space), then a field-by-field comparison with the compiled run.
class ExecutionEngine::Verifier final : public core::GuestMemory {
public:
  Verifier(mem::AddressSpace& space, const ir::HelperTable& helpers) : space_(&space), interp_(*this, helpers) {}

  core::Result<void> read(core::GuestAddr addr, std::span<uint8_t> out) override {
    if (auto r = space_->read(addr, out); !r) return r;
    for (size_t i = 0; i < out.size(); ++i)
      if (auto it = written_.find(addr.value() + i); it != written_.end()) out[i] = it->second;
    return {};
  }
  core::Result<void> fetch(core::GuestAddr addr, std::span<uint8_t> out) override { return space_->fetch(addr, out); }
  core::Result<void> write(core::GuestAddr addr, std::span<const uint8_t> data) override {
    for (size_t done = 0; done < data.size();) {  // every page first: a faulting write changes nothing
      uint64_t a = addr.value() + done;
      if (auto ok = mem::check_access(space_->page_table().get(a >> 12), core::GuestAddr(a), core::Access::Write); !ok)
        return ok;
      done += 4096 - (a & 4095);
    }
    for (size_t i = 0; i < data.size(); ++i) written_[addr.value() + i] = data[i];
    return {};
  }

  // Runs the interpreter on a copy of `state`.
  ir::ExecResult run(const ir::IRBlock& block, core::X86State& copy) {
    written_.clear();
    return interp_.run(block, copy);
  }

  // The first difference, or an empty string.
  std::string compare(const ir::ExecResult& want, const core::X86State& want_state, const ir::ExecResult& got,
                      const core::X86State& got_state) {
    if (want.kind != got.kind)
      return fmt::format("exit kind: interpreter {}, jit {}", static_cast<int>(want.kind), static_cast<int>(got.kind));
    if (want.kind == ir::TermKind::Trap) {
      if (want.trap != got.trap)
        return fmt::format("trap: interpreter {}, jit {}", ir::trap_reason_name(want.trap), ir::trap_reason_name(got.trap));
      if (want.fault_addr != got.fault_addr)
        return fmt::format("fault address: interpreter {:#x}, jit {:#x}", want.fault_addr.value_or(core::GuestAddr(0)),
                           got.fault_addr.value_or(core::GuestAddr(0)));
    }
    const auto* w = reinterpret_cast<const uint8_t*>(&want_state);
    const auto* g = reinterpret_cast<const uint8_t*>(&got_state);
    for (const core::RegInfo& ri : core::kX86Regs) {
      if (std::memcmp(w + ri.offset, g + ri.offset, ri.size) == 0) continue;
      return fmt::format("{}: interpreter {}, jit {}", ri.name, hex(w + ri.offset, ri.size), hex(g + ri.offset, ri.size));
    }
    if (std::memcmp(w, g, sizeof(core::X86State)) != 0) return "guest state outside the named registers";
    for (const auto& [addr, byte] : written_) {
      uint8_t real = 0;
      if (auto r = space_->read(core::GuestAddr(addr), std::span<uint8_t>(&real, 1)); !r || real != byte)
        return fmt::format("memory at {:#x}: interpreter wrote {:#04x}, jit left {:#04x}", addr, byte, real);
    }
    return {};
  }

private:
  static std::string hex(const uint8_t* p, uint32_t n) {  // little-endian value, most significant byte first
    std::string s = "0x";
    for (uint32_t i = n; i-- > 0;) s += fmt::format("{:02x}", p[i]);
    return s;
  }

  mem::AddressSpace* space_;
  ir::Interpreter interp_;
  std::map<uint64_t, uint8_t> written_;
};

}  // namespace vm::engine
