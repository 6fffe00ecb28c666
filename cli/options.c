/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Option parsing shared by the commands: the options every command takes
 * (--socket, --help, --version), bad options and the operand count. */
#include <getopt.h>

#include "cli/cli.h"

void cli_bad_option(const char *prog, int c, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	bool is_long = arg && str_has_prefix(arg, "--");
	int len = is_long ? (int)strcspn(arg, "=") : 0;

	if (c == ':' && is_long)
		cli_errorf(prog, "Option '%.*s' needs a value", len, arg);
	else if (c == ':')
		cli_errorf(prog, "Option '-%c' needs a value", optopt);
	else if (optopt == 0 && is_long)
		cli_errorf(prog, "Unknown option '%.*s'", len, arg);
	else if (optopt > 0x20 && optopt < 0x7f)
		cli_errorf(prog, "Unknown option '-%c'", optopt);
	else
		cli_errorf(prog, "Unknown option");
	fprintf(stderr, "See '%s --help'.\n", prog);
}

void cli_print_version(const char *prog)
{
	printf("%s (xos) %s\n", prog, XOS_VERSION);
}

int cli_parse_unit(const char *prog, const char *arg, int *ret)
{
	int unit;

	if (parse_int(arg, &unit) < 0 || unit < 1) {
		cli_errorf(prog, "Invalid --unit value '%s': use a unit number, 1 or more", arg);
		return -EINVAL;
	}
	*ret = unit;
	return 0;
}

static void print_help(const char *prog, const struct cli_command *cmd)
{
	int pad = cmd->help_pad;

	printf("Usage: %s [OPTIONS]%s%s\n%s", prog, *cmd->synopsis ? " " : "", cmd->synopsis,
	       cmd->help);
	printf("      --socket PATH %*sTalk to xosd at PATH (default: $XOS_SOCKET, else\n"
	       "                    %*s" XOS_DEFAULT_SOCKET ")\n"
	       "      --help        %*sShow this help and exit\n"
	       "      --version     %*sShow the version and exit\n"
	       "%s",
	       pad, "", pad, "", pad, "", pad, "", cmd->help_end);
}

/* 0 to go on, 1 --help/--version printed, -errno (printed). */
static int common_option(const char *prog, const struct cli_command *cmd, int opt, char **argv,
			 const char **socket_opt, void *opts)
{
	int r;

	switch (opt) {
	case CLI_OPT_SOCKET:
		*socket_opt = optarg;
		return 0;
	case CLI_OPT_HELP:
		print_help(prog, cmd);
		return 1;
	case CLI_OPT_VERSION:
		cli_print_version(prog);
		return 1;
	case '?':
	case ':':
		cli_bad_option(prog, opt, argv);
		return -EINVAL;
	default:
		if (!cmd->option) /* getopt_long returns only the options of the table */
			return -EINVAL;
		r = cmd->option(prog, opt, optarg, opts);
		if (r == -ENOMEM)
			cli_errorf(prog, "Out of memory");
		return r;
	}
}

static int check_operands(const char *prog, const struct cli_command *cmd, int n)
{
	if (!cmd->operand || (n > 0 && (!cmd->single || n == 1)))
		return 0;
	if (n == 0)
		cli_errorf(prog, "No %s given", cmd->operand);
	else
		cli_errorf(prog, "Give exactly one %s", cmd->operand);
	fprintf(stderr, "Usage: %s [OPTIONS]%s%s\n", prog, *cmd->synopsis ? " " : "",
		cmd->synopsis);
	return -EINVAL;
}

int cli_parse_options(const char *prog, const struct cli_command *cmd, int argc, char **argv,
		      const char **socket_opt, void *opts)
{
	int opt, r;

	optind = 0; /* full re-initialisation: parsers can run more than once */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, cmd->shortopts, cmd->options, NULL)) != -1) {
		r = common_option(prog, cmd, opt, argv, socket_opt, opts);
		if (r != 0)
			return r;
	}
	return check_operands(prog, cmd, argc - optind);
}
