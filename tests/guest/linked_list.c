#include <stdio.h>
#include <stdlib.h>
#include <string.h>
typedef struct Node { struct Node* next; long value; char* name; } Node;
// VM_GUEST_SCALE=N (default 1) repeats the work N times for the benchmarks.
static long guest_scale(void) {
  const char* s = getenv("VM_GUEST_SCALE");
  long v = s ? atol(s) : 1;
  return v > 0 ? v : 1;
}
int main(void) {
  for (long rep = guest_scale(); rep > 0; --rep) {
  Node* head = NULL;
  unsigned long s = 7;
  for (int i = 0; i < 6000; ++i) {
    Node* n = malloc(sizeof *n);
    s = s * 1103515245 + 12345;
    n->value = (long)(s % 100000);
    n->name = malloc(8 + (s % 64));
    snprintf(n->name, 8 + (s % 64), "n%d", i);
    n->next = head;
    head = n;
    if (i % 3 == 0 && head->next) {  // free every third node's successor
      Node* victim = head->next;
      head->next = victim->next;
      free(victim->name);
      free(victim);
    }
  }
  long sum = 0, count = 0;
  size_t names = 0;
  for (Node* n = head; n; n = n->next) { sum += n->value; ++count; names += strlen(n->name); }
  printf("count %ld sum %ld names %zu\n", count, sum, names);
  while (head) { Node* n = head->next; free(head->name); free(head); head = n; }
  }
  void* big = malloc(1 << 22);
  memset(big, 1, 1 << 22);
  big = realloc(big, 1 << 23);
  printf("big %d\n", ((unsigned char*)big)[(1 << 22) - 1]);
  free(big);
  return 0;
}
