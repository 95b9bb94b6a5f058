// The Lowerer: builds one LLVM function for a vm-ir block or region (see
// lower.cpp for the design). Internal to the lowering; its member functions
// are defined in lower.cpp (driver, registers, restartable state, exits),
// lower_memory.cpp (guest memory access), lower_values.cpp (integer, float
// and vector operations) and lower_ops.cpp (the per-op dispatch).
#pragma once

#include <algorithm>
#include <array>
#include <functional>
#include <optional>
#include <unordered_map>

#include <llvm/ADT/StringMap.h>
#include <llvm/IR/Constants.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/InlineAsm.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/IntrinsicsAArch64.h>
#include <llvm/IR/IntrinsicsX86.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/MDBuilder.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>

#include "vm/ir/verifier.hpp"
#include "vm/translate/llvm_lowering.hpp"
#include "sync_points.hpp"

namespace vm::translate::detail {

using core::ErrorCode;
using core::RegKind;
using ir::Lane;
using ir::Opcode;
using ir::Rounding;
using ir::TermKind;
using ir::Type;
using llvm::Value;

inline constexpr uint32_t kNearest = 1;  // llvm.set.rounding / FLT_ROUNDS encoding of nearest-even

class Lowerer {
public:
  Lowerer(llvm::Module& module, const LoweringOptions& options)
      : mod_(module), ctx_(module.getContext()), b_(ctx_), opts_(options) {}

  core::Result<LoweredFunction> run(std::span<const ir::IRBlock> blocks);

private:
  struct RegCache {
    Value* value = nullptr;
    bool dirty = false;
  };

  llvm::Module& mod_;
  llvm::LLVMContext& ctx_;
  llvm::IRBuilder<> b_;
  const LoweringOptions& opts_;
  llvm::Function* fn_ = nullptr;
  Value* state_ = nullptr;
  Value* mem_ = nullptr;
  llvm::IntegerType* i8_ = nullptr;
  llvm::IntegerType* i32_ = nullptr;
  llvm::IntegerType* i64_ = nullptr;
  llvm::PointerType* ptr_ = nullptr;
  llvm::FixedVectorType* v128_ = nullptr;
  llvm::AllocaInst* slow_buf_ = nullptr;
  llvm::AllocaInst* sink_slot_ = nullptr;  // fast_isel: where consume_loads stores the loads' xor
  llvm::AllocaInst* operand_buf_ = nullptr;
  Value* guest_base_ = nullptr;
  Value* region_mask_ = nullptr;
  Value* tlb_ = nullptr;
  // SoftMmu alias scopes: a guest access through a TLB entry's host pointer
  // never touches the TLB itself (guest RAM and the TLB are separate host
  // allocations), so the TLB's index mask, table and tag stay in registers
  // across guest stores; only calls (slow paths, helpers) reload them.
  llvm::MDNode* guest_scope_ = nullptr;
  llvm::MDNode* tlb_scope_ = nullptr;
  // SoftMmu: the TlbFast fields (index mask, table, tag) in slots that SROA
  // turns into SSA values, stored at the unit's entry and again after every
  // call that may flush or resize the TLB (slow paths, helpers). An access
  // then reads them from values instead of reloading them through `tlb_`
  // after every join with a slow path.
  std::array<llvm::AllocaInst*, 3> tlb_slots_{};
  void refresh_tlb_slots() {
    if (tlb_ == nullptr) return;
    const size_t offs[3] = {core::kTlbFastIndexMaskOffset, core::kTlbFastTableOffset, core::kTlbFastTagOffset};
    for (size_t i = 0; i < 3; ++i)
      b_.CreateStore(tlb_load(tlb_slots_[i]->getAllocatedType(), tlb_, offs[i]), tlb_slots_[i]);
  }
  bool strict_ = false;

  std::vector<llvm::BasicBlock*> block_entries_;
  std::vector<uint64_t> block_pcs_;
  std::unordered_map<uint64_t, size_t> region_index_;
  std::vector<ChainSlot> chain_slots_;

  // Regions only. Across the region's internal edges a guest register lives
  // in a slot (an alloca that SROA turns into SSA values and phis), not in
  // the state: an internal edge stores nothing to the state, and every exit
  // stores the registers the region writes (`written_`). Returning exits
  // share one block (`common_exit_`) whose phis take the registers' values.
  bool region_ = false;
  size_t cur_block_ = 0;
  std::array<llvm::AllocaInst*, core::kNumX86Regs> slots_{};
  std::array<bool, core::kNumX86Regs> written_{};
  llvm::BasicBlock* common_exit_ = nullptr;
  llvm::PHINode* exit_rip_ = nullptr;
  llvm::PHINode* exit_code_ = nullptr;
  std::array<llvm::PHINode*, core::kNumX86Regs> exit_vals_{};
  // Members that follow a call of the region: where its returns may land.
  std::vector<size_t> return_sites_;
  // Per member, the members its indirect exit compares its target with
  // (indirect_members): for a return, the return sites of the calls whose
  // callee reaches it; for an indirect jump or call, the members among the
  // targets the block took (LoweringOptions::indirect_targets), or every
  // member when those are not known.
  std::vector<std::vector<size_t>> dispatch_targets_;
  void compute_dispatch_targets(std::span<const ir::IRBlock> blocks);

  // SoftMmu: guest accesses of one block at constant offsets from the same
  // value (push/pop sequences, a frame's spills), grouped per direction.
  // The first access of a group checks the TLB once for the bytes the whole
  // group touches; when that hits, every access of the group uses the
  // entry's addend without a check of its own, otherwise each takes its
  // usual path (so faults stay precise). A helper call ends the groups
  // before it, since a helper (a syscall) may change the mappings.
  struct AccessGroup {
    ir::ValueId root = ir::kNoValue;
    int64_t lo = 0, hi = 0;  // byte offsets from root: [lo, hi)
    bool read = false, write = false;  // members that load / store
    uint32_t members = 0;
    Value* hit = nullptr;      // emitted at the first member
    Value* host_lo = nullptr;  // host address of root + lo when hit
  };
  std::vector<AccessGroup> groups_;
  std::vector<int32_t> op_group_;    // per op of the block: its group, or -1
  std::vector<int64_t> op_offset_;   // per op: its access's offset from the group root
  AccessGroup* cur_group_ = nullptr;  // the group of the op being lowered
  int64_t cur_offset_ = 0;

  // LoweringOptions::restartable. `unsynced_`: registers whose value may
  // differ from the state's (set since the last sync point); a sync is due
  // at the next instruction boundary or internal edge once the current
  // instruction has stored to guest memory or called a helper. Regions start
  // each member with the registers that may be unsynced on some internal
  // edge into it (`entry_unsynced_`, a forward dataflow over the members).
  using RegSet = std::array<bool, core::kNumX86Regs>;
  RegSet unsynced_{};
  bool sync_pending_ = false;
  std::vector<RegSet> entry_unsynced_;
  std::vector<bool> entry_span_read_;
  std::vector<SpanReads> entry_span_reads_;  // restartable regions: what the span read, per member (sync_points.hpp)
  SpanReads entry_reads_;                    // the member being lowered's
  // Per block, per op, computed once in run() for the region dataflow and
  // the lowering: an insn marker whose instruction reads memory
  // (insns_reading_memory); restartable only, flags_set_before_observed.
  std::vector<std::vector<bool>> insn_reads_;
  std::vector<std::vector<uint64_t>> flags_reset_;
  size_t cur_op_ = 0;
  bool span_read_ = false;        // an instruction since the last sync point read memory
  Value* load_sink_ = nullptr;    // restartable: xor of the loads not yet taken by an asm (sink_load)
  std::vector<bool> store_syncs_;  // per op of the block: a store that makes a sync point due

  // Per-block state.
  std::array<RegCache, core::kNumX86Regs> regs_{};
  std::vector<Value*> vals_;
  std::vector<Type> types_;
  core::GuestAddr insn_pc_;
  Value* cur_mode_ = nullptr;      // rounding mode currently installed (a constant or a run-time value)
  Value* dyn_mode_ = nullptr;      // mode derived from mxcsr_for_mode_
  Value* mxcsr_for_mode_ = nullptr;

  // ------------------------------------------------------------ basics ----
  Value* mem_field(size_t off) { return b_.CreateConstInBoundsGEP1_64(i8_, mem_, off); }
  Value* state_field(uint64_t off) { return b_.CreateConstInBoundsGEP1_64(i8_, state_, off); }
  llvm::ConstantInt* c32(uint64_t v) { return b_.getInt32(static_cast<uint32_t>(v)); }
  llvm::ConstantInt* c64(uint64_t v) { return b_.getInt64(v); }

  llvm::Type* ty(Type t);
  llvm::Type* lane_elem(Lane l);
  llvm::FixedVectorType* lane_vec(Lane l) { return llvm::FixedVectorType::get(lane_elem(l), ir::lane_count(l)); }
  llvm::FixedVectorType* int_lane_vec(Lane l) {
    return llvm::FixedVectorType::get(b_.getIntNTy(ir::lane_bits(l)), ir::lane_count(l));
  }
  Value* as_lanes(Value* v, Lane l) { return b_.CreateBitCast(v, lane_vec(l)); }
  Value* as_int_lanes(Value* v, Lane l) { return b_.CreateBitCast(v, int_lane_vec(l)); }
  Value* to_v128(Value* v) { return b_.CreateBitCast(v, v128_); }

  // Integer type of the same shape as a float (vector) type.
  llvm::Type* int_like(llvm::Type* t);
  Value* splat_like(llvm::Type* t, uint64_t v);

  // ------------------------------------------------- rounding modes ----
  Value* mode_for(Rounding rm);
  void install_mode(Value* mode);
  // The installed mode as the rounding argument of the constrained ops that
  // follow. A static mode lets LLVM fold constants in that mode; with
  // "dynamic" it folds exact results as if rounding to nearest, which gives
  // x - x = +0 where rounding down wants -0.
  static llvm::RoundingMode constrained_rounding(Value* mode);
  void ensure_rounding(Rounding rm) { install_mode(mode_for(rm)); }
  // Host code outside (exits, helpers, slow paths) runs in the default mode.
  void restore_nearest_for_exit() {
    if (cur_mode_ != c32(kNearest)) b_.CreateIntrinsic(llvm::Intrinsic::set_rounding, {}, {c32(kNearest)});
  }

  void reset_block_state();
  void emit_entry_count(llvm::IRBuilder<>& ib, llvm::BasicBlock* go_on, std::optional<uint64_t> rip);

  // ------------------------------------------------------ registers ----
  static llvm::Align reg_align(const core::RegInfo& ri) {
    return llvm::Align(ri.size >= 16 ? 16 : ri.size);
  }
  llvm::Type* reg_storage_ty(const core::RegInfo& ri);
  Value* get_full(core::X86Reg r);
  // The register's current value, from the cache or (regions) its slot.
  Value* current(size_t i) {
    if (regs_[i].value) return regs_[i].value;
    return b_.CreateLoad(slots_[i]->getAllocatedType(), slots_[i], std::string(core::kX86Regs[i].name));
  }
  Value* load_state_reg(llvm::IRBuilder<>& b, const core::RegInfo& ri);
  void store_state_reg(llvm::IRBuilder<>& b, const core::RegInfo& ri, Value* v) {
    if (ri.kind == RegKind::Flag) v = b.CreateZExt(v, i8_);
    b.CreateAlignedStore(v, b.CreateConstInBoundsGEP1_64(i8_, state_, ri.offset), reg_align(ri));
  }
  // A slot for every register the region reads or writes (MXCSR too: the
  // rounding of float ops may read it), filled from the state on entry.
  void init_region_slots(std::span<const ir::IRBlock> blocks);
  // Regions: the state may have changed under a helper call; refill the slots.
  void reload_slots() {
    for (size_t i = 0; i < slots_.size(); ++i)
      if (slots_[i]) b_.CreateStore(load_state_reg(b_, core::kX86Regs[i]), slots_[i]);
  }
  // Regions: an internal edge leaves the block's changes in the slots.
  void spill_to_slots() {
    for (size_t i = 0; i < regs_.size(); ++i)
      if (regs_[i].dirty) b_.CreateStore(regs_[i].value, slots_[i]);
  }
  // Regions: branches to the shared returning exit (rounding already restored).
  void leave_region(Value* rip, uint64_t code);
  void set_full(core::X86Reg r, Value* v);
  // Writes every dirty register back to the state (the cache stays valid);
  // in a region, every register the region writes.
  void store_dirty();
  void flush_and_forget();

  Value* read_reg(const ir::Op& op);
  void write_reg(const ir::Op& op, Value* v, Type vt);

  // ------------------------------------------------- restartable state ----
  bool restartable() const { return opts_.restartable; }
  // Direct access under restartable: host faults can stop the code at any
  // guest access, so sync points are fenced and dead loads and no-op stores
  // kept. (Softmmu leaves through a fault exit, which LLVM sees.)
  bool direct_restartable() const { return opts_.restartable && opts_.memory == MemoryStrategy::Direct; }
  // Restartable with sync points (all of softmmu's; direct's unless
  // LoweringOptions::sync_points is off).
  bool syncing() const { return opts_.restartable && (opts_.sync_points || opts_.memory != MemoryStrategy::Direct); }

  // A compiler barrier that may read and write the state and all memory:
  // no guest access or state store moves across it. No instructions.
  // A guest load whose value is dead must still happen: under restartable
  // direct access the host fault it raises is the guest's fault (a load
  // that only probes memory, or whose result a later instruction
  // overwrites; LLVM would delete it). Each load's value is folded into
  // `load_sink_` (an xor), which an empty asm takes before every sync point,
  // side exit and block end: the loads cannot be deleted, yet they may still
  // move within their span, whose re-run from the last sync point finds the
  // faulting one in order. Cost, `recursion` at scale 3000: 1.13 -> 1.18 s;
  // an asm per load pinned every load in place instead: 1.13 -> 1.25 s.
  // Under fast_isel the xor goes to a volatile stack slot instead (FastISel
  // rejects an asm with operands); -O0 keeps every store.
  void sink_load(Value* v);
  // `reset`: on the block's straight path (not a side exit's), the loads so
  // far are accounted for.
  void consume_loads(bool reset);
  // The stored value through an asm that returns its operand: LLVM can no
  // longer tell that a store writes back the value just loaded from the
  // same address and drop it as a no-op, so under restartable direct access
  // it still faults on a page that is readable but not writable. (Not a
  // side effect: an unused result is deleted like any value.) Types the
  // host's registers take whole only; others (i128) keep the value as is.
  // Cost, `recursion` at scale 3000, 5 rounds alternating: 1.30 -> 1.34 s.
  Value* opaque(Value* v);
  void barrier();
  // Stores the unsynced registers and `rip` (the next instruction), between
  // barriers. `consume`: the point is on the block's straight path (not on
  // one of several edges), so the registers count as synced afterwards.
  // `skip` (a mask of registers, consuming points only): flags the block
  // sets again before anything observes them (flags_set_before_observed);
  // they stay unsynced.
  void emit_sync(Value* rip, bool consume, uint64_t skip = 0);
  // Regions: for each member, the registers that may be unsynced when an
  // internal edge enters it (entry from outside: none, the state is whole).
  // Mirrors the sync points above: a due sync at an instruction boundary or
  // on an internal edge stores everything; a helper call stores everything.
  // Also whether the span an internal edge continues may have read memory
  // (`entry_span_read_`; false: synced on every such edge, or nothing read
  // since), which decides where a due sync point goes, and what it read
  // (`entry_span_reads_`: locations relative to the registers at the
  // member's entry, or anything), which decides whether the member's stores
  // may overwrite it and need a sync.
  void compute_entry_unsynced(std::span<const ir::IRBlock> blocks);

  // ----------------------------------------------------------- exits ----
  Value* rip_ptr() { return state_field(core::reg_info(core::X86Reg::Rip).offset); }

  // Leaves the function: registers and rip to the state, default rounding, return.
  void emit_return(Value* rip, uint64_t code);
  Value* divide(Opcode opc, Value* a, Value* d);
  // A 128-bit division (the lifter's 64-bit div and idiv, three per idiv):
  // one host 64-bit division when both operands fit 64 bits, as they mostly
  // do, and libgcc's 128-bit routine (__divti3 and co., ten times slower)
  // otherwise. The caller has excluded a zero divisor and the overflowing
  // MIN / -1 at 128 bits; the 64-bit MIN / -1, whose quotient does not fit
  // 64 bits, takes the wide path.
  Value* wide_divide(Opcode opc, Value* a, Value* d);
  // A run-time trap at the current instruction when `cond` holds.
  void side_exit(Value* cond, uint64_t code, const char* name);
  // A softmmu slow path's memory fault (`status` nonzero): a precise side
  // exit, or under restartable a return of fault_code() | kExitRestart that
  // stores nothing (the state already holds the last sync point).
  void fault_exit(Value* status, const char* name);
  // Regions: branches to `next` unless the owner has set mem->exit_request
  // (its translations changed), in which case the region is left for `rip`.
  // The insertion point is left in the leaving block.
  void continue_unless_exit_requested(llvm::BasicBlock* next, Value* rip, uint64_t code);
  // Ends the current basic block by running the unit `callee` next: a
  // `musttail` call, or under chain_by_return its entry handed back to the
  // caller (run_unit).
  void continue_with(Value* callee);
  // A direct exit to a static guest pc: an internal edge of the region, a
  // chain slot, or a plain return.
  void direct_exit(core::GuestAddr target, uint64_t code);

  // Regions: an indirect jump, call or return whose target is a member of
  // the region continues there inside the function, as a back edge would
  // (the slots carry the registers; the owner's exit request, checked once
  // before the switch, leaves the region instead). A return is compared
  // with the return sites only, anything else with every member. Other
  // targets fall through to the caller's exit code.
  void enter_member_if_target(Value* target, uint64_t code, bool is_return);

  // An exit to a pc known only at run time: with inline_jump_cache, a hit in
  // the engine's jump cache is tail-called, anything else returns.
  void indirect_exit(Value* target, uint64_t code, bool is_return);

  // ---------------------------------------------------------- memory ----
  static uint64_t fault_code() { return encode_exit(TermKind::Trap, ir::TrapReason::MemoryFault); }

  // Host pointer for a direct access.
  Value* direct_addr(Value* addr);

  // Tags a load or store with its alias scope (SoftMmu only).
  template <typename I>
  I* scoped(I* inst, bool guest) {
    if (guest_scope_ != nullptr) {
      inst->setMetadata(llvm::LLVMContext::MD_alias_scope, guest ? guest_scope_ : tlb_scope_);
      inst->setMetadata(llvm::LLVMContext::MD_noalias, guest ? tlb_scope_ : guest_scope_);
    }
    return inst;
  }
  Value* tlb_load(llvm::Type* t, Value* base, size_t offset) {
    return scoped(b_.CreateLoad(t, b_.CreateConstInBoundsGEP1_64(i8_, base, offset)), false);
  }

  // SoftMmu: emits the TLB check; returns the hit condition and the host
  // pointer valid when it holds. `comparator_off` picks read or write.
  // `also_read`: the read comparator must match too (a group of loads and stores).
  std::pair<Value*, Value*> tlb_lookup(Value* addr, uint32_t size, size_t comparator_off, bool also_read = false);
  // The same for the bytes [addr, addr + last]; `last` (i64) may be a run-time value.
  std::pair<Value*, Value*> tlb_lookup_span(Value* addr, Value* last, size_t comparator_off, bool also_read);

  // Calls a slow path with the default rounding mode installed.
  Value* call_slow(size_t field, llvm::FunctionType* fty, llvm::ArrayRef<Value*> args);

  // The group's check, at its first member: one TLB lookup for [lo, hi).
  void open_group(AccessGroup& g);
  // The host address of the current grouped access when its group hit.
  Value* group_host() {
    return b_.CreateConstInBoundsGEP1_64(i8_, cur_group_->host_lo, static_cast<uint64_t>(cur_offset_ - cur_group_->lo));
  }

  // The current access of a group (cur_group_): through the group's addend
  // when the group's check hit, else through its own check and slow path.
  // A load when `store_value` is null (returns the value), else a store.
  Value* grouped_access(Value* addr, llvm::Type* t, Value* store_value, uint32_t bytes);

  // Softmmu: the two paths of an access after its TLB check. On return from
  // branch_on_hit the builder is in the fast path (taken on a hit);
  // enter_slow ends it and moves to the slow path; join_values ends that and
  // continues after both, merging a value of each (nullptr: no value).
  struct TlbPaths {
    llvm::BasicBlock* slow;
    llvm::BasicBlock* join;
    llvm::BasicBlock* fast_end = nullptr;
    void enter_slow(llvm::IRBuilder<>& b) {
      fast_end = b.GetInsertBlock();
      b.CreateBr(join);
      b.SetInsertPoint(slow);
    }
    Value* join_values(llvm::IRBuilder<>& b, Value* fast_value, Value* slow_value) {
      llvm::BasicBlock* slow_end = b.GetInsertBlock();
      b.CreateBr(join);
      b.SetInsertPoint(join);
      if (!fast_value) return nullptr;
      llvm::PHINode* phi = b.CreatePHI(fast_value->getType(), 2);
      phi->addIncoming(fast_value, fast_end);
      phi->addIncoming(slow_value, slow_end);
      return phi;
    }
  };
  TlbPaths branch_on_hit(Value* hit, const char* prefix) {
    auto* fast = llvm::BasicBlock::Create(ctx_, std::string(prefix) + "_fast", fn_);
    TlbPaths p{llvm::BasicBlock::Create(ctx_, std::string(prefix) + "_slow", fn_),
               llvm::BasicBlock::Create(ctx_, std::string(prefix) + "_join", fn_)};
    b_.CreateCondBr(hit, fast, p.slow, llvm::MDBuilder(ctx_).createLikelyBranchWeights());
    b_.SetInsertPoint(fast);
    return p;
  }
  Value* emit_load(Value* addr, llvm::Type* t, uint32_t bytes);

  void emit_store(Value* addr, Value* v, uint32_t bytes);

  Value* emit_atomic(const ir::Op& op, Value* addr);
  // vm-ir `fill`: returns the number of elements stored (ir::fill_elements).
  // Two or more elements lie in one page, so they are stored through one
  // host pointer (direct: one masked address; softmmu: one TLB check for the
  // whole span) with 16-byte stores of the repeated value and a tail; a
  // softmmu miss stores element by element through the ordinary store path.
  Value* emit_fill(Value* addr, Value* v, Value* count);
  // Stores `bytes` (a multiple of v's size) of v repeated at host pointer `host`.
  void fill_host(Value* host, Value* v, Value* bytes);
  // vm-ir `copy` of `size`-byte elements: returns the number moved
  // (ir::copy_elements). Both runs lie in one page each when two or more
  // elements move, so one host pointer each (softmmu: a read check for the
  // source span and a write check for the destination span) serves them;
  // any miss moves element by element through the ordinary load and store
  // paths.
  Value* emit_copy(Value* dst, Value* src, Value* count, uint32_t size);
  // Moves `bytes` from host `hs` up to host `hd` with the result of moving
  // `size`-byte elements one by one: 16 bytes at a time and then 8-, 4-, 2-
  // and 1-byte pieces, unless the destination is 1..15 bytes above the
  // source (a 16-byte load would miss bytes that elements before it store),
  // where it goes element by element.
  void copy_host(Value* hd, Value* hs, Value* bytes, uint32_t size);
  // The `widest`-byte steps (16 or 64) and the smaller power-of-two pieces
  // down to `size` bytes of a bulk move of `bytes` (a multiple of `size`):
  // piece(offset, width) emits one step.
  void in_pieces(Value* bytes, uint32_t size, uint32_t widest, const char* name,
                 const std::function<void(Value* off, uint32_t width)>& piece);
  // A loop over the elements [0, n) (n >= 1) of `size` bytes: body(byte
  // offset) emits one; the builder ends after the loop.
  void each_element(Value* n, uint32_t size, const char* name, const std::function<void(Value* off)>& body);
  // ir::fill_elements' limit for a run of `size`-byte elements at addr: the
  // elements that end on its page, at least one.
  Value* page_room(Value* addr, uint32_t size);

  // Aligned accesses are real atomics; a misaligned one (legal on x86, a bus
  // error on other hosts) is done as a plain read-modify-write.
  Value* atomic_on_host(const ir::Op& op, Value* host);
  static llvm::AtomicRMWInst::BinOp rmw_kind(ir::RmwOp op);

  // ----------------------------------------------------- integer ops ----
  Value* arg(const ir::Op& op, int i) { return vals_[op.args[i]]; }
  Type arg_type(const ir::Op& op, int i) { return types_[op.args[i]]; }

  Value* intrinsic(llvm::Intrinsic::ID id, llvm::ArrayRef<llvm::Type*> tys, llvm::ArrayRef<Value*> args) {
    return b_.CreateIntrinsic(id, tys, args);
  }

  // Integer arithmetic on a scalar iN or a vector of iN (lane-wise).
  Value* int_binary(Opcode opc, Value* a, Value* bv);

  Value* int_unary(Opcode opc, Value* a);

  // Selects between i1 values become logic, which FastISel selects (it
  // gives up on `select i1`); other types stay selects.
  Value* select(Value* c, Value* a, Value* bv) {
    if (a->getType()->isIntegerTy(1)) return b_.CreateOr(b_.CreateAnd(c, a), b_.CreateAnd(b_.CreateNot(c), bv));
    return b_.CreateSelect(c, a, bv);
  }

  // Even parity: ctpop on x86-64, where it is one popcnt (or a short
  // sequence without POPCNT); elsewhere, and for FastISel (which rejects
  // ctpop: a SelectionDAG run per block that has one), by folding the bits
  // with shifts and xors.
  Value* parity(Value* a);

  Value* int_compare(ir::CmpPred p, Value* a, Value* bv);

  // A carry-in that is the constant 0 (add, sub, cmp: nearly every use)
  // gets the plain form: Tier::Fast code sees no IR pass to fold it away.
  Value* carry_op(Opcode opc, Value* a, Value* bv, Value* c);

  // ------------------------------------------------------- float ops ----
  // Float bit-pattern helpers (scalar or vector of f32/f64, as integers).
  struct FloatConsts {
    uint64_t sign, abs_mask, inf, quiet, default_nan;
  };
  static FloatConsts fconsts(uint32_t bits);
  Value* is_nan_bits(Value* xi);
  Value* quiet_bits(Value* xi) {
    auto fc = fconsts(xi->getType()->getScalarSizeInBits());
    return b_.CreateOr(xi, splat_like(xi->getType(), fc.quiet));
  }
  Value* to_bits(Value* f) { return b_.CreateBitCast(f, int_like(f->getType())); }

  // x86 NaN result rules for a two-operand arithmetic op with result r.
  Value* nan_fixup2(Value* a, Value* bv, Value* r);
  // One-operand ops: a NaN operand gives itself quieted, an invalid operation the default NaN.
  Value* nan_fixup1(Value* a, Value* r);

  Value* fp_call(llvm::Intrinsic::ID plain, llvm::Intrinsic::ID constrained, Value* a);

  Value* float_binary(Opcode opc, Rounding rm, Value* a, Value* bv);

  Value* float_compare(ir::FCmpPred p, Value* a, Value* bv);

  // Rounds to an integral value of the same float type by `rm`.
  Value* round_integral(Value* a, Rounding rm);

  // CVT*2SI: NaN or out of range gives the most negative integer.
  Value* float_to_int(Value* a, Rounding rm, uint32_t out_bits);

  Value* int_to_float(Value* a, Rounding rm, llvm::Type* ft) {
    ensure_rounding(rm);
    return b_.CreateSIToFP(a, ft);
  }

  Value* fcvt(Value* a, Rounding rm, Type out);

  // ------------------------------------------------------ vector ops ----
  Value* shuffle(const ir::Op& op, Value* a, Value* bv);

  Value* pshufb(Value* a, Value* ctl);

  Value* pack(const ir::Op& op, Value* a, Value* bv);

  Value* movmsk(const ir::Op& op, Value* a);

  Value* muladd(Value* a, Value* bv);

  Value* sad(Value* a, Value* bv);

  // -------------------------------------------------------- constants ----
  Value* constant(const ir::Op& op);

  // ------------------------------------------------------------ ops ----
  // Largest span of bytes one access group may cover (well inside a page).
  static constexpr int64_t kMaxGroupSpan = 256;

  void find_access_groups(const ir::IRBlock& blk);

  core::Result<void> lower_block_body(const ir::IRBlock& blk);

  core::Result<void> lower_op(const ir::Op& op, Value*& out);

  void lower_terminator(const ir::Terminator& t);
};

}  // namespace vm::translate::detail
