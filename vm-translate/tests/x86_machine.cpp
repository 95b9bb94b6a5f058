#include "x86_machine.hpp"

#include <fmt/format.h>
#include <unicorn/unicorn.h>

#include <cstring>

#include "vm/core/memory.hpp"

namespace vm::translate::test {

Machine::Machine() {
  regs.rip = kCodeBase;
  regs.gpr[4] = kStackBase + kStackSize / 2;
}

Outcome run_ours(std::span<const uint8_t> code, Machine& m) {
  core::RegionMemory mem;
  std::vector<uint8_t> code_region(kCodeSize, 0xcc);
  std::memcpy(code_region.data(), code.data(), std::min<size_t>(code.size(), kCodeSize));
  (void)mem.add_region(core::GuestAddr(kCodeBase), std::move(code_region), core::kPermRead | core::kPermExec);
  (void)mem.add_region(core::GuestAddr(kDataBase), m.data, core::kPermRW);
  (void)mem.add_region(core::GuestAddr(kStackBase), m.stack, core::kPermRW);
  RunResult r = run_interpreter(mem, m.regs, core::GuestAddr(kCodeBase + code.size()), 100000);
  m.data = mem.find(core::GuestAddr(kDataBase))->bytes;
  m.stack = mem.find(core::GuestAddr(kStackBase))->bytes;
  Outcome out;
  out.completed = r.reason == RunResult::Reason::Stop;
  out.pc = r.pc.value();
  if (!out.completed) out.what = fmt::format("{}: {}", run_reason_name(r.reason), r.message);
  return out;
}

struct Unicorn::Impl {
  uc_engine* uc = nullptr;
};

namespace {

constexpr int kGprIds[16] = {UC_X86_REG_RAX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RBX,
                             UC_X86_REG_RSP, UC_X86_REG_RBP, UC_X86_REG_RSI, UC_X86_REG_RDI,
                             UC_X86_REG_R8,  UC_X86_REG_R9,  UC_X86_REG_R10, UC_X86_REG_R11,
                             UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15};

}  // namespace

Unicorn::Unicorn() : impl_(std::make_unique<Impl>()) {
  if (uc_open(UC_ARCH_X86, UC_MODE_64, &impl_->uc) != UC_ERR_OK) throw std::runtime_error("uc_open failed");
  uc_ctl_set_cpu_model(impl_->uc, UC_CPU_X86_HASWELL);
  uc_mem_map(impl_->uc, kCodeBase, kCodeSize, UC_PROT_READ | UC_PROT_EXEC);
  uc_mem_map(impl_->uc, kDataBase, kDataSize, UC_PROT_READ | UC_PROT_WRITE);
  uc_mem_map(impl_->uc, kStackBase, kStackSize, UC_PROT_READ | UC_PROT_WRITE);
}

Unicorn::~Unicorn() { uc_close(impl_->uc); }

Outcome Unicorn::run(std::span<const uint8_t> code, Machine& m) {
  uc_engine* uc = impl_->uc;
  std::vector<uint8_t> code_region(kCodeSize, 0xcc);
  std::memcpy(code_region.data(), code.data(), std::min<size_t>(code.size(), kCodeSize));
  uc_mem_write(uc, kCodeBase, code_region.data(), code_region.size());
  uc_ctl_remove_cache(uc, kCodeBase, kCodeBase + kCodeSize);
  uc_mem_write(uc, kDataBase, m.data.data(), m.data.size());
  uc_mem_write(uc, kStackBase, m.stack.data(), m.stack.size());
  for (int i = 0; i < 16; ++i) uc_reg_write(uc, kGprIds[i], &m.regs.gpr[i]);
  uint64_t rflags = core::get_rflags(m.regs);
  uc_reg_write(uc, UC_X86_REG_RFLAGS, &rflags);
  uc_reg_write(uc, UC_X86_REG_FS_BASE, &m.regs.fs_base);
  uc_reg_write(uc, UC_X86_REG_GS_BASE, &m.regs.gs_base);
  for (int i = 0; i < 16; ++i) {
    uint64_t v[2] = {m.regs.xmm[i].lo, m.regs.xmm[i].hi};
    uc_reg_write(uc, UC_X86_REG_XMM0 + i, v);
  }
  uint32_t mxcsr = m.regs.mxcsr;
  uc_reg_write(uc, UC_X86_REG_MXCSR, &mxcsr);

  uc_err err = uc_emu_start(uc, m.regs.rip, kCodeBase + code.size(), 0, 100000);

  for (int i = 0; i < 16; ++i) uc_reg_read(uc, kGprIds[i], &m.regs.gpr[i]);
  uc_reg_read(uc, UC_X86_REG_RIP, &m.regs.rip);
  uc_reg_read(uc, UC_X86_REG_RFLAGS, &rflags);
  core::set_rflags(m.regs, rflags);
  uc_reg_read(uc, UC_X86_REG_FS_BASE, &m.regs.fs_base);
  uc_reg_read(uc, UC_X86_REG_GS_BASE, &m.regs.gs_base);
  for (int i = 0; i < 16; ++i) {
    uint64_t v[2] = {0, 0};
    uc_reg_read(uc, UC_X86_REG_XMM0 + i, v);
    m.regs.xmm[i] = {v[0], v[1]};
  }
  uc_reg_read(uc, UC_X86_REG_MXCSR, &mxcsr);
  m.regs.mxcsr = mxcsr;
  uc_mem_read(uc, kDataBase, m.data.data(), m.data.size());
  uc_mem_read(uc, kStackBase, m.stack.data(), m.stack.size());
  Outcome out;
  out.pc = m.regs.rip;
  out.completed = err == UC_ERR_OK && m.regs.rip == kCodeBase + code.size();
  if (!out.completed) out.what = fmt::format("unicorn: {}", uc_strerror(err));
  return out;
}

std::string compare(const Machine& a, const Machine& b, uint32_t flag_mask_out, bool compare_xmm) {
  std::string diff;
  for (const core::RegInfo& ri : core::kX86Regs) {
    if (ri.kind == core::RegKind::V128 && !compare_xmm) continue;
    if (ri.id == core::X86Reg::Mxcsr) {
      // The sticky exception flags (bits 0..5) are not modelled by vm-ir.
      if ((a.regs.mxcsr & ~0x3fu) != (b.regs.mxcsr & ~0x3fu))
        diff += fmt::format("  mxcsr: ours {:#x} oracle {:#x}\n", a.regs.mxcsr, b.regs.mxcsr);
      continue;
    }
    if (ri.kind == core::RegKind::Flag) {
      static constexpr unsigned kBits[] = {core::kFlagBitCf, core::kFlagBitPf, core::kFlagBitAf, core::kFlagBitZf,
                                           core::kFlagBitSf, core::kFlagBitOf, core::kFlagBitDf};
      unsigned bit = kBits[static_cast<unsigned>(ri.id) - static_cast<unsigned>(core::X86Reg::Cf)];
      if (flag_mask_out & (1u << bit)) continue;
    }
    const uint8_t* pa = core::reg_ptr(a.regs, ri.id);
    const uint8_t* pb = core::reg_ptr(b.regs, ri.id);
    if (std::memcmp(pa, pb, ri.size) != 0) {
      uint64_t va[2] = {0, 0}, vb[2] = {0, 0};
      std::memcpy(va, pa, ri.size);
      std::memcpy(vb, pb, ri.size);
      diff += ri.size > 8 ? fmt::format("  {}: ours {:016x}{:016x} oracle {:016x}{:016x}\n", ri.name, va[1], va[0], vb[1], vb[0])
                          : fmt::format("  {}: ours {:#x} oracle {:#x}\n", ri.name, va[0], vb[0]);
    }
  }
  auto mem = [&](const char* name, uint64_t base, const std::vector<uint8_t>& x, const std::vector<uint8_t>& y) {
    for (size_t i = 0; i < x.size(); ++i)
      if (x[i] != y[i]) {
        diff += fmt::format("  {} byte {:#x}: ours {:02x} oracle {:02x}\n", name, base + i, x[i], y[i]);
        return;
      }
  };
  mem("data", kDataBase, a.data, b.data);
  mem("stack", kStackBase, a.stack, b.stack);
  return diff;
}

std::string describe(const Machine& m) {
  std::string s;
  for (const core::RegInfo& ri : core::kX86Regs) {
    if (ri.kind == core::RegKind::V128) continue;
    uint64_t v = 0;
    std::memcpy(&v, core::reg_ptr(m.regs, ri.id), ri.size);
    s += fmt::format("{}={:#x} ", ri.name, v);
  }
  return s;
}

}  // namespace vm::translate::test
