/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The node channel (nodes/) in xosd: started with the daemon when xosd.conf
 * names a listen address or peers, its messages logged, the "nodes" request. */
#include <sys/epoll.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "runtime/runtime-internal.h"

static void nodes_log_hook(void *userdata, int level, const char *msg)
{
	(void)userdata;
	log_msg((enum log_level)level, "%s", msg);
}

static void nodes_capacity_hook(void *userdata, struct nodes_capacity *cap)
{
	struct daemon *d = userdata;
	uint64_t live = 0;

	for (struct job *j = d->jobs; j; j = j->next)
		live += job_is_live(j);
	cap->jobs = live;
	cap->job_slots = slice_free_count(d);
}

int daemon_nodes_start(struct daemon *d)
{
	struct nodes_hooks hooks = {
		.userdata = d,
		.log = nodes_log_hook,
		.capacity = nodes_capacity_hook,
	};
	_cleanup_free_ char *err = NULL;
	int r;

	if (!nodes_config_enabled(&d->cfg->nodes))
		return 0;
	migrate_hooks(&hooks);
	routes_hooks(&hooks);
	r = nodes_new(&d->cfg->nodes, XOS_VERSION, &hooks, &d->nodes, &err);
	if (r < 0) {
		if (err)
			log_error("Failed to start the node channel: %s", err);
		else
			log_error("Failed to start the node channel: %s", strerror(-r));
		return r;
	}
	r = daemon_epoll_add(d, nodes_fd(d->nodes), EPOLLIN, EP_NODES, NULL);
	if (r < 0)
		return log_error_errno(r, "Failed to watch the node channel: %m");
	log_info("Node channel of node %s: listening on %s", d->cfg->nodes.name,
		 d->cfg->nodes.listen ? d->cfg->nodes.listen : "(nothing: dialling only)");
	return 0;
}

/* Any local user may list the peers: their names, addresses and figures are
 * the node's, not another user's. */
int ops_nodes(struct daemon *d, struct conn *c, struct yajl_val_s *t, struct xerr *err)
{
	_cleanup_gen_ yajl_gen g = ops_reply_begin();

	(void)t;
	if (!g)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	json_gen_kv_bool(g, "enabled", d->nodes != NULL);
	if (d->nodes)
		nodes_list_json(d->nodes, g);
	conn_send_map(c, g);
	return 0;
}
