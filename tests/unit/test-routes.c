/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the routes' announcement table (runtime/routes.c,
 * DECISIONS (ap)): whole sets replace a peer's earlier set, the newest
 * announcement of an address wins, and a withdrawal falls back to the one
 * left (a failed move's target withdraws, the source's is the route again). */
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime-internal.h"
#include "tests/unit/tap.h"

#define A 0x0ad60705u /* 10.214.7.5 */
#define B 0x0ad60706u /* 10.214.7.6 */

static size_t count(const struct routes_table *t)
{
	size_t n = 0;

	for (const struct route_ann *r = t->anns; r; r = r->next)
		n++;
	return n;
}

static void test_sets(void)
{
	struct routes_table t = { 0 };
	const uint32_t ab[] = { A, B }, b[] = { B };

	ok(routes_table_winner(&t, A) == -1, "nothing announced: no route");
	ok(routes_table_update(&t, 0, ab, 2) == 1, "a first set changes the table");
	ok(routes_table_winner(&t, A) == 0 && routes_table_winner(&t, B) == 0,
	   "both addresses route to their announcer");
	ok(routes_table_update(&t, 0, ab, 2) == 0, "the same set again changes nothing");
	ok(routes_table_update(&t, 0, b, 1) == 1 && routes_table_winner(&t, A) == -1 &&
		   routes_table_winner(&t, B) == 0,
	   "an address left out of the next set is withdrawn");
	ok(routes_table_update(&t, 0, NULL, 0) == 1 && count(&t) == 0,
	   "an empty set withdraws everything of that peer");
	routes_table_clear(&t);
}

static void test_move(void)
{
	struct routes_table t = { 0 };
	const uint32_t a[] = { A };

	/* peer 0 is the source, 1 the target of a move of the job at A */
	routes_table_update(&t, 0, a, 1);
	routes_table_update(&t, 1, a, 1);
	ok(routes_table_winner(&t, A) == 1, "the target's newer announcement wins while the "
					    "source, in doubt, still lists the address");
	routes_table_update(&t, 0, a, 1);
	ok(routes_table_winner(&t, A) == 1,
	   "the source's set sent again (a new channel) does not take it back");
	routes_table_update(&t, 1, NULL, 0);
	ok(routes_table_winner(&t, A) == 0,
	   "a failed restore: the target withdraws, the source's announcement is left");
	routes_table_update(&t, 1, a, 1);
	routes_table_update(&t, 0, NULL, 0);
	ok(routes_table_winner(&t, A) == 1 && count(&t) == 1,
	   "the source lets go: only the target's announcement is left");
	routes_table_update(&t, 0, a, 1);
	ok(routes_table_winner(&t, A) == 0, "moved back: the source's new announcement wins");
	routes_table_clear(&t);
	ok(t.anns == NULL, "cleared");
}

int main(void)
{
	test_sets();
	test_move();
	return tap_done();
}
