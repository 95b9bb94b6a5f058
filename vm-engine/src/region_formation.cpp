// Region formation: which blocks a hot block's Tier::Optimized region
// takes in (docs/engine.md, "Tiers and regions" and "Exit polls").
#include <algorithm>
#include <set>

#include "vm/engine/execution_engine.hpp"

namespace vm::engine {

// A block whose Fast code became hot is recompiled at Tier::Optimized
// together with the already-run blocks its direct jumps and branches reach,
// so that the loops among them stay inside one LLVM function; and, with
// region_callees, the functions it calls with their return sites, so that
// calls and returns stay inside it too.
//
// `grown`: formed again with max_grown_region_blocks (region growth). A
// first region that the limits cut short counts its entries so that it can
// grow later (docs/engine.md, "Region growth").
ExecutionEngine::RegionJob ExecutionEngine::region_job(Block& head, bool grown) {
  std::vector<Block*> members;
  size_t ops = 0;
  const size_t max_blocks = grown ? config_.max_grown_region_blocks : config_.max_region_blocks;
  bool cut = false;  // the limits left a block or a callee out
  bool follow = config_.region_calls && config_.region_callees;
  std::set<uint64_t> rejected;  // callees that did not fit
  auto is_member = [&](const std::vector<Block*>& set, const Block* b) {
    return std::find(set.begin(), set.end(), b) != set.end();
  };
  auto has_pc = [](const std::vector<Block*>& set, core::GuestAddr pc) {
    return std::any_of(set.begin(), set.end(), [&](const Block* m) { return m->ir.start_pc == pc; });
  };
  auto candidate = [&](uint64_t pc) -> Block* {
    auto it = blocks_.find(pc);
    if (pc == 0 || it == blocks_.end() || it->second->executions == 0 || it->second->compile_failed) return nullptr;
    return it->second.get();
  };
  // Grows `set` breadth first along the edges inside a function (`set` is
  // `members`, or a callee's blocks on top of them): a direct call adds its
  // return site, when the callee is (or will be) in the region, and puts
  // the callee on `calls`. False when the limits left a block out.
  auto grow = [&](std::vector<Block*>& set, size_t& n_ops, std::vector<uint64_t>& calls) {
    bool complete = true;
    bool own = &set == &members;
    for (size_t i = 0; i < set.size(); ++i) {
      const ir::Terminator& t = set[i]->ir.term;
      std::vector<uint64_t> next;
      if (t.kind == ir::TermKind::Jump) next = {t.target.value()};
      if (t.kind == ir::TermKind::Branch) next = {t.target.value(), t.fallthrough.value()};
      if (t.kind == ir::TermKind::Call && config_.region_calls) {
        // A call of a member (recursion): the callee's returns to the return
        // site stay inside the region (UnitOptions::indirect_members). An
        // indirect call (through a vtable, say) does the same with the
        // targets it took while it was interpreted, when they all are or
        // will be members.
        std::vector<uint64_t> targets;
        if (t.value == ir::kNoValue) targets = {t.target.value()};
        else if (config_.region_indirect_callees) targets = set[i]->indirect_targets;
        bool all = !targets.empty();
        std::vector<uint64_t> taken;
        for (uint64_t pc : targets) {
          bool member = has_pc(members, core::GuestAddr(pc)) || (!own && has_pc(set, core::GuestAddr(pc)));
          bool take = follow && !rejected.count(pc);
          all = all && (member || take);
          if (!member && take) taken.push_back(pc);
        }
        if (all) {
          next = {t.fallthrough.value()};
          calls.insert(calls.end(), taken.begin(), taken.end());
        }
      }
      // An indirect jump (a switch's jump table, a PLT slot): the targets it
      // took while it was interpreted, which the region's code reaches by a
      // compare against its members (UnitOptions::indirect_members).
      if (t.kind == ir::TermKind::IndirectJump && config_.region_calls) next = set[i]->indirect_targets;
      for (const ir::Op& op : set[i]->ir.ops)  // early leaves (rep with a zero count)
        if (op.opcode == ir::Opcode::ExitIf) next.push_back(op.imm);
      for (uint64_t pc : next) {
        Block* m = candidate(pc);
        if (!m || is_member(members, m) || (!own && is_member(set, m))) continue;
        if ((own ? 0 : members.size()) + set.size() >= max_blocks || n_ops + m->ir.ops.size() > config_.max_region_ops) {
          complete = false;
          cut = true;
          continue;
        }
        n_ops += m->ir.ops.size();
        set.push_back(m);
      }
    }
    return complete;
  };
  // The head's own blocks, then the callees, level by level, each with
  // its own blocks and the return sites of its calls. A callee that does
  // not fit (or has not run, or failed to compile) is left out together
  // with the return sites of the calls to it, and the region is formed
  // again: a region made bigger by return sites alone costs more at every
  // entry and exit than it saves (docs/benchmarks.md). After kMaxRetries
  // the region stops at calls.
  constexpr int kMaxRetries = 8;
  uint32_t callees = 0;
  for (int attempt = 1;; ++attempt) {
    members.assign(1, &head);
    ops = head.ir.ops.size();
    callees = 0;
    std::vector<uint64_t> calls;
    grow(members, ops, calls);
    bool fits = true;
    while (fits && !calls.empty()) {
      std::vector<uint64_t> level = std::move(calls);
      calls.clear();
      for (uint64_t pc : level) {
        Block* c = candidate(pc);
        if (c && is_member(members, c)) continue;
        std::vector<Block*> fn;
        size_t fn_ops = ops;
        std::vector<uint64_t> nested;
        if (c) {
          fn.push_back(c);
          fn_ops += c->ir.ops.size();
        }
        if (!c || members.size() + 1 > max_blocks || fn_ops > config_.max_region_ops || !grow(fn, fn_ops, nested)) {
          cut = cut || c != nullptr;
          rejected.insert(pc);
          fits = false;
          continue;
        }
        members.insert(members.end(), fn.begin(), fn.end());
        ops = fn_ops;
        calls.insert(calls.end(), nested.begin(), nested.end());
        ++callees;
      }
    }
    if (fits || !follow) break;
    if (attempt >= kMaxRetries) follow = false;
  }
  RegionJob job;
  job.head_pc = head.ir.start_pc.value();
  job.keep_irs = (config_.dump_stages & (kDumpLlvm | kDumpAsm)) != 0;
  job.unit.all_entries = config_.region_entries;
  job.unit.indirect_members = config_.region_calls;
  job.unit.sync_points = precise_now_;
  job.callees = callees;
  job.grown = grown;
  // Chained code reaches the region without the dispatcher: its entries are
  // counted by the code (as a Fast block's are), in the head's promo words,
  // which its Fast code stops using once the region is installed.
  job.growable = !grown && cut && config_.region_growth_threshold != 0 && config_.chain &&
                 config_.max_grown_region_blocks > config_.max_region_blocks;
  if (job.growable) job.unit.entry_counter = head.promo.data();
  // Exit polls: exit_request is only set while compiled code runs when a
  // store invalidates translations (a write to a watched page from the host
  // fault handler or a softmmu slow path), which needs a guest-writable
  // page; mprotect, munmap and mmap over a member's page drop the region
  // from the dispatcher, and a region compiled in the background is not
  // installed when a member was dropped meanwhile.
  bool writable = false;
  for (const Block* m : members)
    for (uint64_t page : m->pages) writable |= (space_->page_table().get(page).perms & core::kPermWrite) != 0;
  job.unit.exit_polls = writable || !config_.elide_exit_polls;
  if (config_.region_entries) {
    // The members code outside the region can reach (the region's entries,
    // UnitOptions::entry_pcs): the head; the blocks after calls (a callee
    // outside returns there) and the callees and indirect targets among the
    // members; and every member some other translated block jumps, branches,
    // calls or returns to. A member reached only along the region's own
    // jumps and branches is no entry: one edge fewer from the entry switch
    // to each of them (docs/engine.md, "Tiers and regions").
    std::set<uint64_t> pcs;
    for (const Block* m : members) pcs.insert(m->ir.start_pc.value());
    std::set<uint64_t> entries{job.head_pc};
    auto add = [&](uint64_t pc) {
      if (pcs.count(pc)) entries.insert(pc);
    };
    for (const auto& [pc, b] : blocks_) {
      if (!b) continue;
      const ir::Terminator& t = b->ir.term;
      for (uint64_t target : b->indirect_targets) add(target);
      if (t.kind == ir::TermKind::Call) {
        add(t.fallthrough.value());
        if (t.value == ir::kNoValue) add(t.target.value());
      }
      if (pcs.count(pc)) continue;  // the members' own jumps and branches stay inside
      if (t.kind == ir::TermKind::Jump || t.kind == ir::TermKind::Branch) add(t.target.value());
      if (t.kind == ir::TermKind::Branch) add(t.fallthrough.value());
      for (const ir::Op& op : b->ir.ops)
        if (op.opcode == ir::Opcode::ExitIf) add(op.imm);
    }
    job.unit.entry_pcs.assign(entries.begin(), entries.end());
  }
  // The targets each member's indirect jump or call took while it was
  // interpreted: its dispatch compares with those members only.
  for (const Block* m : members) job.unit.indirect_targets.push_back(m->indirect_targets);
  for (Block* m : members) {
    // Covered by this region: its own fast code turning hot is mostly this
    // region's warm-up, not a reason for another overlapping region.
    m->region_requested = true;
    job.members.emplace_back(m->ir.start_pc.value(), m->serial);
    job.irs.push_back(m->ir);
  }
  return job;
}

}  // namespace vm::engine
