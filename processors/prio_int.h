/* prio_int.h — shared between the classifier's files (internal). */
#ifndef SW_PRIO_INT_H
#define SW_PRIO_INT_H

#include <stddef.h>
#include <stdint.h>

#include "processors/prio.h"

/* Class (>= 0) of one encoded Resource<sig> e[0..n), or SW_EDECODE. */
int prio_entry_class(const prio *p, sw_signal sig, const uint8_t *e, size_t n);
/* 1 when p has at least one rule. */
int prio_has_rules(const prio *p);

#endif
