// Sync points of restartable direct access, decided per block on the vm-ir
// (docs/jit.md, "Restartable state"). Internal to the lowering.
#pragma once

#include <cstdint>
#include <vector>

#include "vm/ir/ir.hpp"

namespace vm::translate::detail {

// Per op index: true at the insn marker of an instruction that reads guest
// memory (a load, an atomic, a helper call). A due sync point waits for
// such an instruction, or for the next marker once the span (the
// instructions since the last sync point) has read: until then a re-run
// from the last point stores the same values again.
std::vector<bool> insns_reading_memory(const ir::IRBlock& blk);

// Per op index: true at the stores that make a sync point due, namely those
// that may overwrite guest memory an earlier load of the same span read
// (re-run from the last sync point, that load would see the store; a load
// after a store reads what the re-run stores again). Two accesses are
// disjoint when their addresses are one vm-ir value plus constant offsets
// below 1 MiB and their bytes do not overlap. `span_open`: the block may be
// entered in the middle of a span that read (a region's internal edge), so
// any store may overwrite what it read. Atomics and helper calls make a
// sync point due too and count as reading anything. The function follows
// the lowering's placement of sync points (at insn markers), so the region
// dataflow and the lowering agree on it.
std::vector<bool> stores_needing_sync(const ir::IRBlock& blk, bool span_open);

// Per op index, a mask of flag registers (bit n: X86Reg n): the flags that
// the rest of the block sets again before anything could observe their
// current value. Observers: a read of the flag, and any op that may trap or
// has another side effect than setting a register (a guest access, a helper
// call, a side exit), and the block's end. A sync point leaves such flags
// unsynced: a restart from it re-runs only register arithmetic before the
// flag is set again, so the stale value in the state is never seen.
std::vector<uint64_t> flags_set_before_observed(const ir::IRBlock& blk);

}  // namespace vm::translate::detail
