/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Kill points (test seam, -Dtest_seams=true only): vc_crash_point("NAME")
 * marks a step of issuance, delivery, revocation, renewal, handover or
 * CRL/OCSP publication where a crash must lose nothing. Chosen by the
 * environment, read at the first point reached (vc_crash_point_reload()
 * reads it again):
 *
 *   VC_TEST_CRASH_AT=NAME[:N]      die at the Nth time NAME is reached (1)
 *   VC_TEST_CRASH_RANDOM=P         die at any point with probability P (0..1)
 *   VC_TEST_CRASH_SEED=S           the random mode's seed (default: the pid)
 *   VC_TEST_CRASH_TRACE=FILE       append each point's name to FILE the first
 *                                  time this process reaches it
 *
 * Dying is raise(SIGKILL) after one line on stderr ("crash point NAME (hit N):
 * SIGKILL"): nothing is flushed, no handler runs, as in a power cut of the
 * process. The points are listed in docs/testing.md. Without VC_TEST_SEAMS
 * the calls compile to nothing. */
#ifdef VC_TEST_SEAMS
void vc_crash_point(const char *name);
void vc_crash_point_reload(void);
#else
#define vc_crash_point(name) ((void)0)
#define vc_crash_point_reload() ((void)0)
#endif

G_END_DECLS
