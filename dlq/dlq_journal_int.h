/* dlq_journal_int.h — helpers shared by dlq_journal.c and
 * dlq_journal_recover.c (the .ack entry format: dlq_journal.h). */
#ifndef SW_DLQ_JOURNAL_INT_H
#define SW_DLQ_JOURNAL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "dlq/dlq_journal.h"

/* One acknowledgement entry of segment seq. */
void dlq_jnl_entry_encode(uint64_t seq, uint64_t index, uint8_t out[DLQ_JNL_ACK_LEN]);
/* 0 and *index, or -1 (torn, zeroed or foreign entry). */
int dlq_jnl_entry_decode(uint64_t seq, const uint8_t in[DLQ_JNL_ACK_LEN], uint64_t *index);
/* "<seq as 16 hex><suffix>" into out. */
void dlq_jnl_name(uint64_t seq, const char *suffix, char *out, size_t len);
/* Deletes <seq>.seg then <seq>.ack in dirfd (journal/) and takes bytes out
 * of d->used. 0 or SW_EIO. */
int dlq_jnl_delete(dlq *d, int dirfd, uint64_t seq, uint64_t bytes);

#endif
