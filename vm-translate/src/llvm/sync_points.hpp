// Sync points of restartable direct access, decided per block on the vm-ir
// (docs/jit.md, "Restartable state"). Internal to the lowering.
#pragma once

#include <compare>
#include <cstdint>
#include <utility>
#include <vector>

#include "vm/ir/ir.hpp"

namespace vm::translate::detail {

// Per op index: true at the insn marker of an instruction that reads guest
// memory (a load, an atomic, a helper call). A due sync point waits for
// such an instruction, or for the next marker once the span (the
// instructions since the last sync point) has read: until then a re-run
// from the last point stores the same values again.
std::vector<bool> insns_reading_memory(const ir::IRBlock& blk);

// What the open span (the instructions since the last sync point) may have
// read where a region's internal edge continues it: guest locations
// relative to a 64-bit general register's value there, or anything.
struct SpanReads {
  struct Loc {
    uint32_t reg;  // an X86Reg of a general register; the location is its value + offset
    int64_t offset;
    uint32_t size;
    friend auto operator<=>(const Loc&, const Loc&) = default;
  };
  bool any = false;
  std::vector<Loc> locs;  // sorted, no duplicates; empty when `any`
  bool read() const { return any || !locs.empty(); }
  // Adds what `other` read (anything beyond kMaxLocs locations counts as
  // anything); true when this changed.
  bool merge(const SpanReads& other);
  static constexpr size_t kMaxLocs = 32;
};

struct StoreSyncs {
  // Per op index: true at the stores that make a sync point due, namely
  // those that may overwrite guest memory an earlier load of the same span
  // read (re-run from the last sync point, that load would see the store;
  // a load after a store reads what the re-run stores again).
  std::vector<bool> at;
  // At each exit_if (its op index) and at the terminator (index
  // ops.size()): what the span open there read, relative to the registers'
  // values there. The caller discards it where a due sync point closes the
  // span on the edge.
  std::vector<std::pair<size_t, SpanReads>> edges;
};

// Two accesses are disjoint when their addresses are one vm-ir value (or
// one general register's value at the block's entry) plus constant offsets
// below 1 MiB and their bytes do not overlap. `entry`: what the span an
// internal edge continues into the block read (a region member; empty for
// a lone block or a member entered with a fresh span). Atomics and helper
// calls make a sync point due too and count as reading anything. The
// function follows the lowering's placement of sync points (at insn
// markers), so the region dataflow and the lowering agree on it.
StoreSyncs stores_needing_sync(const ir::IRBlock& blk, const SpanReads& entry);

// Per op index, a mask of flag registers (bit n: X86Reg n): the flags that
// the rest of the block sets again before anything could observe their
// current value. Observers: a read of the flag, and any op that may trap or
// has another side effect than setting a register (a guest access, a helper
// call, a side exit), and the block's end. A sync point leaves such flags
// unsynced: a restart from it re-runs only register arithmetic before the
// flag is set again, so the stale value in the state is never seen.
std::vector<uint64_t> flags_set_before_observed(const ir::IRBlock& blk);

}  // namespace vm::translate::detail
