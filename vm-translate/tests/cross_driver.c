/* Runs cross-translated vm-ir blocks on AArch64 / RISC-V (under qemu-user)
 * for vm_lowering_tests. Usage: driver IN OUT. IN holds a header and cases
 * (block index, X86State bytes, guest window bytes); for each case the
 * driver runs vm_block_table[index] with the Direct memory strategy and
 * writes the exit code, the final state and the final window to OUT.
 * The MemoryContext below mirrors vm/translate/lowering.hpp. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  uint64_t guest_base, region_mask;
  void *tlb, *helpers, *load_slow, *store_slow, *atomic_slow;
  uint64_t fault_addr;
  uint32_t fault_access, reserved;
  void *user;
} MemoryContext;

typedef uint64_t (*BlockFn)(void *state, MemoryContext *mem);
extern const BlockFn vm_block_table[];
extern const uint64_t vm_block_count;

struct Header {
  uint32_t magic, cases;
  uint64_t state_size, window_base, window_size, region_mask;
};

static void read_exact(FILE *f, void *p, size_t n) {
  if (fread(p, 1, n, f) != n) {
    fprintf(stderr, "short read\n");
    exit(2);
  }
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
  if (!in || !out) return 2;
  struct Header h;
  read_exact(in, &h, sizeof h);
  if (h.magic != 0x564d4352u) return 3;
  uint8_t *region = calloc(1, h.region_mask + 1 + 64);
  void *state = aligned_alloc(16, (h.state_size + 15) & ~(uint64_t)15);
  for (uint32_t c = 0; c < h.cases; ++c) {
    uint32_t index[2];
    read_exact(in, index, sizeof index);
    read_exact(in, state, h.state_size);
    for (uint64_t i = 0; i < h.window_size; ++i) {
      int ch = fgetc(in);
      if (ch < 0) return 2;
      region[(h.window_base + i) & h.region_mask] = (uint8_t)ch;
    }
    if (index[0] >= vm_block_count) return 4;
    MemoryContext mem;
    memset(&mem, 0, sizeof mem);
    mem.guest_base = (uint64_t)(uintptr_t)region;
    mem.region_mask = h.region_mask;
    uint64_t code = vm_block_table[index[0]](state, &mem);
    fwrite(&code, sizeof code, 1, out);
    fwrite(state, 1, h.state_size, out);
    for (uint64_t i = 0; i < h.window_size; ++i) fputc(region[(h.window_base + i) & h.region_mask], out);
  }
  fclose(out);
  return 0;
}
