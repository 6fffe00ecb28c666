/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xlogin and its agent (cli/xlogin.c, cli/agent.c): only the xlogin binary
 * links them, with libcrypto. */
#ifndef XOS_CLI_LOGIN_INTERNAL_H
#define XOS_CLI_LOGIN_INTERNAL_H
#include <sys/types.h>
#include <time.h>

struct evp_pkey_st;

struct agent {
	struct evp_pkey_st *key;
	char *chain; /* PEM certificates, keys left out */
	size_t chain_len;
	uid_t uid;
	pid_t sid; /* the login session served */
	time_t not_after;
	char path[108];
};
/* -> the listening socket's new fd, or -errno */
int cli_agent_detach(int lfd);
int cli_agent_run(struct agent *a, int lfd);
int cli_xlogin_main(const char *prog, int argc, char **argv);

#endif
