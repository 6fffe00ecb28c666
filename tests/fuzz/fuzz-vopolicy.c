/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: a vo.d policy file (credstore_vo_policy_parse), then
 * what xosd does with a good one: format it, parse the text back, and use
 * it as a VO administrator's tightening of itself (which must hold). */
#include "common/common.h"
#include "credstore/credstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct credstore_vo_policy p, q, t;
	_cleanup_free_ char *err = NULL, *text = NULL;

	if (credstore_vo_policy_parse((const char *)data, size, "fuzz.conf", &p, &err) < 0)
		return 0;
	text = credstore_vo_policy_format(&p);
	if (text) {
		if (credstore_vo_policy_parse(text, strlen(text), "again", &q, &err) < 0)
			abort(); /* what the formatter writes must parse */
		if (credstore_vo_policy_tighten(&p, &q, true, &t, &err) < 0)
			abort(); /* a policy never loosens itself */
		credstore_vo_policy_done(&t);
		credstore_vo_policy_done(&q);
	}
	credstore_vo_policy_done(&p);
	return 0;
}
