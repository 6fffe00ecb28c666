/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of templates/: names, entry names, symlink targets, template.json,
 * and extraction of small archives built here (with openat2 and with the
 * component walk that replaces it on kernels without). */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "templates/templates-internal.h"
#include "tests/unit/tap.h"

static void test_names(void)
{
	static const char *const good[] = { "busybox", "debian-12", "a", "0", "x.y_z-1", "a..." };
	static const char *const bad[] = { "",   "host", "default", "Busybox", ".hidden", "-x",
					   "_x", "a/b",  "a b",     "é",       NULL };
	char long_name[80];

	for (size_t i = 0; i < ELEMENTSOF(good); i++)
		ok(template_name_valid(good[i]), "name '%s' is valid", good[i]);
	for (size_t i = 0; bad[i]; i++)
		ok(!template_name_valid(bad[i]), "name '%s' is refused", bad[i]);
	ok(!template_name_valid(NULL), "NULL is refused");
	memset(long_name, 'a', sizeof(long_name));
	long_name[64] = 0;
	ok(template_name_valid(long_name), "64 characters are valid");
	long_name[64] = 'a';
	long_name[65] = 0;
	ok(!template_name_valid(long_name), "65 characters are refused");
}

static void norm_ok(const char *in, const char *want)
{
	_cleanup_free_ char *out = NULL;
	const char *why = NULL;
	int r = template_entry_normalize(in, &out, &why);

	ok(r == 0 && out && !strcmp(out, want), "entry '%s' -> '%s' (got '%s')", in, want,
	   out ? out : why);
}

static void norm_bad(const char *in, const char *want_why)
{
	_cleanup_free_ char *out = NULL;
	const char *why = NULL;
	int r = template_entry_normalize(in, &out, &why);

	ok(r == -EINVAL && why && strstr(why, want_why), "entry '%s' refused: %s", in,
	   why ? why : "(accepted)");
}

static void test_entry_names(void)
{
	char longc[300];

	norm_ok("./a/b", "a/b");
	norm_ok("a//b/", "a/b");
	norm_ok("a/./b", "a/b");
	norm_ok(".", "");
	norm_ok("./", "");
	norm_ok("././x", "x");
	norm_ok("...", "...");
	norm_ok("..a/b..", "..a/b..");
	norm_bad("/etc/x", "absolute");
	norm_bad("//etc", "absolute");
	norm_bad("../x", "'..'");
	norm_bad("a/../b", "'..'");
	norm_bad("a/..", "'..'");
	norm_bad("./..", "'..'");
	norm_bad("", "empty");
	memset(longc, 'x', sizeof(longc));
	longc[256] = 0;
	norm_bad(longc, "longer than 255");
	longc[255] = 0;
	norm_ok(longc, longc);
}

static void link_check(const char *entry, const char *target, bool want)
{
	const char *why = NULL;
	int r = template_symlink_check(entry, target, &why);

	ok((r == 0) == want, "symlink %s -> '%s' %s (%s)", entry, target,
	   want ? "accepted" : "refused", why ? why : "ok");
}

static void test_symlinks(void)
{
	link_check("link", "/", true);
	link_check("link", "/etc/shadow", true);
	link_check("bin/sh", "busybox", true);
	link_check("usr/lib/x", "../../lib/x", true);
	link_check("usr/lib/x", "../../../x", false);
	link_check("link", "../x", false);
	link_check("link", "..", false);
	link_check("a/up", "..", true);
	link_check("esc", "a/up/../..", false);
	link_check("a/b", "c/../d", false);
	link_check("a/b", "./c", true);
	link_check("a/b", "", false);
}

static const char *const meta_ok =
	"{\"name\":\"busy\",\"checksum\":\"sha256:"
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
	"\"size\":10,\"files\":2,\"created\":1700000000,\"env\":[\"A=1\"],"
	"\"workdir\":\"/w\",\"user\":\"app\",\"uid_base\":100000,\"gid_base\":100000}";

static void meta_bad(const char *desc, const char *from, const char *to, const char *want)
{
	_cleanup_free_ char *text = NULL, *err = NULL;
	_cleanup_template_info_ struct template_info *t = NULL;
	const char *at = strstr(meta_ok, from);
	int r;

	if (!at) {
		ok(0, "%s: '%s' not in the sample", desc, from);
		return;
	}
	text = xstrdup_printf("%.*s%s%s", (int)(at - meta_ok), meta_ok, to, at + strlen(from));
	r = template_info_parse(text, "busy", &t, &err);
	ok(r == -EINVAL && err && strstr(err, want), "template.json %s: %s", desc,
	   err ? err : "(accepted)");
}

static void test_meta(void)
{
	_cleanup_template_info_ struct template_info *t = NULL, *t2 = NULL;
	_cleanup_free_ char *err = NULL, *text = NULL;

	ok(template_info_parse(meta_ok, "busy", &t, &err) == 0, "a valid template.json parses");
	ok(t && t->size == 10 && t->files == 2 && t->created == 1700000000 && t->env[0] &&
		   !strcmp(t->env[0], "A=1") && !t->env[1] && !strcmp(t->workdir, "/w") &&
		   !strcmp(t->user, "app") && t->uid_base == 100000,
	   "its fields");
	text = t ? template_info_to_json(t) : NULL;
	ok(text && template_info_parse(text, "busy", &t2, NULL) == 0 && t2->size == 10 &&
		   !strcmp(t2->checksum, t->checksum),
	   "written and read back");
	meta_bad("with an unknown field", "\"size\"", "\"colour\":1,\"size\"", "unknown field");
	meta_bad("without size", "\"size\":10,", "", "field 'size' is missing");
	meta_bad("with a string size", "\"size\":10", "\"size\":\"10\"", "field 'size'");
	meta_bad("with a negative size", "\"size\":10", "\"size\":-1", "field 'size'");
	meta_bad("of another name", "\"busy\"", "\"other\"", "names template 'other'");
	meta_bad("with a relative workdir", "\"/w\"", "\"w\"", "absolute");
	meta_bad("with an env item without =", "\"A=1\"", "\"A\"", "not K=V");
	meta_bad("with env not a list", "[\"A=1\"]", "\"A=1\"", "field 'env'");
	meta_bad("with a short checksum", "0123456789abcdef\",", "0123\",", "checksum");
	meta_bad("with a reserved name", "\"busy\"", "\"host\"", "not a valid template name");
	meta_bad("that is not an object", "{", "[", "not");
	ok(template_info_parse("{", NULL, &t2, &err) == -EINVAL, "broken JSON is refused");
	template_info_free(NULL);
}

/* ---- extraction of archives built in memory ---- */

struct tar {
	struct archive *a;
	int fd;
};

static void tar_begin(struct tar *t)
{
	t->fd = memfd_create("tar", MFD_CLOEXEC);
	t->a = archive_write_new();
	archive_write_set_format_pax_restricted(t->a);
	archive_write_open_fd(t->a, t->fd);
}

static void tar_add(struct tar *t, const char *name, mode_t type, const char *data,
		    const char *link, unsigned uid)
{
	struct archive_entry *e = archive_entry_new();

	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
	archive_entry_set_uid(e, uid);
	archive_entry_set_gid(e, uid);
	if (type == AE_IFLNK)
		archive_entry_set_symlink(e, link);
	else if (link)
		archive_entry_set_hardlink(e, link);
	if (data)
		archive_entry_set_size(e, (la_int64_t)strlen(data));
	archive_write_header(t->a, e);
	if (data)
		archive_write_data(t->a, data, strlen(data));
	archive_entry_free(e);
}

/* Import the archive as name into catalog; returns the error or NULL. */
static char *tar_import(struct tar *t, int catalog, const char *name, int *ret)
{
	struct template_import_opts o = { .uid_base = 100000,
					  .gid_base = 100000,
					  .id_count = 65536 };
	_cleanup_free_ char *staging = NULL;
	char *err = NULL;

	archive_write_close(t->a);
	archive_write_free(t->a);
	lseek(t->fd, 0, SEEK_SET);
	*ret = template_staging_create(catalog, &staging);
	if (*ret >= 0)
		*ret = template_import(catalog, staging, name, t->fd, &o, &err);
	if (*ret < 0 && staging)
		template_rm_tree(catalog, staging);
	close(t->fd);
	return err;
}

static void test_extract(int catalog, bool fallback)
{
	const char *how = fallback ? "component walk" : "openat2";
	struct tar t;
	struct stat st;
	char *err;
	int r;

	template_extract_force_fallback(fallback);
	tar_begin(&t);
	tar_add(&t, "./", AE_IFDIR, NULL, NULL, 0);
	tar_add(&t, "./bin/busybox", AE_IFREG, "elf", NULL, 0);
	tar_add(&t, "./bin/sh", AE_IFLNK, NULL, "busybox", 0);
	tar_add(&t, "./home/u/f", AE_IFREG, "mine", NULL, 1000);
	tar_add(&t, "./bin/hard", AE_IFREG, NULL, "bin/busybox", 0);
	err = tar_import(&t, catalog, "good", &r);
	ok(r == 0, "%s: a plain archive imports (%s)", how, err ? err : "ok");
	free(err);
	ok(fstatat(catalog, "good/rootfs/home/u/f", &st, 0) == 0 && st.st_uid == 101000 &&
		   st.st_gid == 101000,
	   "%s: owners are shifted (uid 1000 -> 101000)", how);
	ok(fstatat(catalog, "good/rootfs/home", &st, 0) == 0 && st.st_uid == 100000,
	   "%s: missing parents are made, owned by the containers' root", how);
	ok(fstatat(catalog, "good/rootfs/bin/hard", &st, 0) == 0 && st.st_nlink == 2,
	   "%s: a hardlink links the extracted file", how);
	template_rm_tree(catalog, "good");

	tar_begin(&t);
	tar_add(&t, "link", AE_IFLNK, NULL, "/", 0);
	tar_add(&t, "link/etc/x", AE_IFREG, "pwned", NULL, 0);
	err = tar_import(&t, catalog, "evil", &r);
	ok(r < 0 && err && strstr(err, "entry link/etc/x: its path goes through a symlink"),
	   "%s: writing through a planted symlink is refused (%s)", how, err);
	free(err);

	tar_begin(&t);
	tar_add(&t, "l", AE_IFLNK, NULL, "/etc/passwd", 0);
	tar_add(&t, "h", AE_IFREG, NULL, "l", 0);
	err = tar_import(&t, catalog, "evil", &r);
	ok(r < 0 && err && strstr(err, "entry h: its hardlink target l is not a regular file"),
	   "%s: a hardlink to a symlink is refused (%s)", how, err);
	free(err);
	ok(faccessat(catalog, "evil", F_OK, AT_SYMLINK_NOFOLLOW) < 0, "%s: no partial template",
	   how);
}

static void test_deep(int catalog)
{
	_cleanup_free_ char *path = malloc(2 * 3000 + 16);
	struct tar t;
	char *err;
	int r;

	if (!path)
		return;
	path[0] = 0;
	tar_begin(&t);
	for (int i = 0; i < 3000; i++) {
		strcat(path, "d/");
		tar_add(&t, path, AE_IFDIR, NULL, NULL, 0);
	}
	strcat(path, "f");
	tar_add(&t, path, AE_IFREG, "deep", NULL, 0);
	template_extract_force_fallback(false);
	err = tar_import(&t, catalog, "deep", &r);
	ok(r == 0, "3000 nested directories (names longer than PATH_MAX) import (%s)",
	   err ? err : "ok");
	free(err);
	ok(template_rm_tree(catalog, "deep") == 0 &&
		   faccessat(catalog, "deep", F_OK, AT_SYMLINK_NOFOLLOW) < 0,
	   "and are removed without recursion");
}

static void test_catalog(int state)
{
	_cleanup_free_ char *def = NULL, *def2 = NULL;
	_cleanup_strv_free_ char **names = NULL;
	int catalog = -EBADF;

	mkdirat(state, "templates", 0700);
	mkdirat(state, "templates/.import-stale", 0700);
	mkdirat(state, "templates/.import-stale/rootfs", 0700);
	ok(template_catalog_open(state, &catalog) == 0, "the catalogue opens");
	ok(faccessat(catalog, ".import-stale", F_OK, AT_SYMLINK_NOFOLLOW) < 0,
	   "what an interrupted import left is removed");
	ok(template_get_default(catalog, &def) == 0 && !strcmp(def, "host"),
	   "the default is host when none was set");
	ok(template_set_default(catalog, "busy") == 0 &&
		   template_get_default(catalog, &def2) == 0 && !strcmp(def2, "busy"),
	   "the default can be set");
	ok(template_set_default(catalog, "host") == 0 && faccessat(catalog, "default", F_OK, 0) < 0,
	   "host forgets it");
	ok(template_set_default(catalog, "../x") == -EINVAL, "an invalid default is refused");
	if (getuid() != 0) {
		skip("needs root (chown)", "extraction, with owners kept and shifted");
	} else {
		test_extract(catalog, false);
		test_extract(catalog, true);
		test_deep(catalog);
	}
	ok(template_list(catalog, &names) == 0 && !names[0], "the catalogue is empty again");
	close(catalog);
}

int main(void)
{
	char dir[] = "/tmp/xos-unit-templates.XXXXXX";
	int state;

	test_names();
	test_entry_names();
	test_symlinks();
	test_meta();
	if (!mkdtemp(dir))
		return 1;
	state = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	test_catalog(state);
	template_rm_tree(state, "templates");
	close(state);
	rmdir(dir);
	return tap_done();
}
