#!/usr/bin/env bats
# The template catalogue: xtemplate import (tar, tar.gz, tar.xz, a directory,
# standard input), list, show, default, remove; safe import (a malicious
# archive suite); atomic, interrupted imports; root-only changes.

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
	# the archives of tests/tools/evil-tars.py, made once: they aim at VICTIM
	export EVIL="$BATS_FILE_TMPDIR/evil" VICTIM="$BATS_FILE_TMPDIR/victim"
	mkdir -p "$EVIL"
	python3 "$BATS_TEST_DIRNAME/../tools/evil-tars.py" "$EVIL" "$VICTIM"
}

setup() {
	echo original >"$VICTIM"
	xos_start_static
}
teardown() { xos_teardown; }

CATALOG() { echo "$XOS_TMP/state/templates"; }
# has_entry PREFIX: the catalogue holds an entry named PREFIX...
has_entry() { compgen -G "$(CATALOG)/$1*" >/dev/null; }
no_entry() { ! has_entry "$1"; }
catalog_empty() { [ -z "$(ls -A "$(CATALOG)")" ]; }

# make_busybox_root DIR: a root made of Debian's busybox-static.
make_busybox_root() {
	local d=$1 a
	mkdir -p "$d/bin" "$d/etc" "$d/tmp" "$d/proc" "$d/sys" "$d/dev"
	cp /bin/busybox "$d/bin/busybox"
	for a in sh echo cat ls sleep; do
		ln -s busybox "$d/bin/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$d/etc/passwd"
}

# no template but host, and nothing an import left in the catalogue
assert_catalog_empty() {
	run xtemplate list --json
	assert_success
	assert_equal "$(jq -r '[.[] | select(.builtin | not)] | length' <<<"$output")" 0
	run ls -A "$(CATALOG)"
	refute_output --regexp '^\.import-'
	refute_output --regexp '^\.removed-'
}

@test "import: tar, tar.gz, tar.xz, a directory and standard input; list --json shows the size" {
	make_busybox_root "$XOS_TMP/bb"
	tar -C "$XOS_TMP/bb" --owner=0 --group=0 -cf "$XOS_TMP/bb.tar" .
	gzip -c "$XOS_TMP/bb.tar" >"$XOS_TMP/bb.tar.gz"
	xz -c "$XOS_TMP/bb.tar" >"$XOS_TMP/bb.tar.xz"
	run xtemplate import plain "$XOS_TMP/bb.tar"
	assert_success
	assert_output --regexp '^Imported template plain: [0-9]+ files, 1\.[0-9] MiB$'
	run xtemplate import gz "$XOS_TMP/bb.tar.gz"
	assert_success
	run xtemplate import xz "$XOS_TMP/bb.tar.xz"
	assert_success
	run xtemplate import dir "$XOS_TMP/bb"
	assert_success
	run bash -c "xtemplate import stdin - <'$XOS_TMP/bb.tar.gz'"
	assert_success
	run xtemplate list --json
	assert_success
	size=$(find "$XOS_TMP/bb" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
	for t in plain gz xz dir stdin; do
		assert_equal "$(jq -r ".[] | select(.name == \"$t\") | .size" <<<"$output")" "$size"
		assert_equal "$(jq -r ".[] | select(.name == \"$t\") | .jobs" <<<"$output")" 0
	done
	# the checksum is that of the bytes read
	assert_equal "$(jq -r '.[] | select(.name == "plain") | .checksum' <<<"$output")" \
		"sha256:$(sha256sum <"$XOS_TMP/bb.tar" | cut -d' ' -f1)"
	assert_equal "$(jq -r '.[] | select(.name == "xz") | .checksum' <<<"$output")" \
		"sha256:$(sha256sum <"$XOS_TMP/bb.tar.xz" | cut -d' ' -f1)"
	assert_equal "$(jq -r '.[] | select(.name == "host") | .default' <<<"$output")" true
	# stored shifted into the containers' root range, modes kept, links stored
	base=$(awk -F: '$1 == "root" { print $2 }' /etc/subuid | head -1)
	root=$(CATALOG)/dir/rootfs
	assert_equal "$(stat -c '%u %a' "$root/bin/busybox")" "$(stat -c '%u' "$root") 755"
	[ "$(stat -c %u "$root")" -ge "$base" ]
	assert_equal "$(readlink "$root/bin/sh")" busybox
	# the catalogue is root's alone
	assert_equal "$(stat -c '%u %a' "$(CATALOG)")" "0 700"
	run xtemplate show gz
	assert_success
	assert_line --regexp '^size +1\.[0-9] MiB'
	run xtemplate import gz "$XOS_TMP/bb.tar"
	assert_failure
	assert_output --partial "Template gz already exists; remove it first"
}

@test "the default template: set, shown, used by jobs; xrun -- busybox echo hi runs in it" {
	make_busybox_root "$XOS_TMP/bb"
	tar -C "$XOS_TMP/bb" --owner=0 --group=0 -czf "$XOS_TMP/bb.tar.gz" .
	xtemplate import busy "$XOS_TMP/bb.tar.gz"
	run xtemplate default busy
	assert_success
	assert_output "Default template: busy"
	run xtemplate list --json
	assert_equal "$(jq -r '.[] | select(.default) | .name' <<<"$output")" busy
	assert_equal "$(cat "$(CATALOG)/default")" busy
	run xrun -- busybox echo hi
	assert_success
	assert_output hi
	run xtemplate default nosuch
	assert_failure
	assert_output --partial "No such template: nosuch"
	run xtemplate default host
	assert_success
	[ ! -e "$(CATALOG)/default" ]
}

@test "malicious archives are refused naming the entry; nothing outside the catalogue changes" {
	local before
	# (owner, mode and links: what a hardlink into the template and the shift of
	# its owners would change; not the time or size, which any useradd on the
	# machine changes meanwhile)
	before=$(stat -c '%u:%g %a %h' /etc/shadow)
	declare -A want=(
		[dotdot]="entry ../../../../../../../../../../../..${VICTIM}: its name contains '..'"
		[absolute]="entry /etc/x: its name is absolute"
		[symlink-root]="entry link/etc/x: its path goes through a symlink"
		[symlink-dir]="entry link/victim: its path goes through a symlink"
		[hardlink]="entry shadow: its hardlink target /etc/shadow: its name is absolute"
		[hardlink-rel]="entry shadow: its hardlink target ../../../../etc/shadow: its name contains '..'"
		[chain]="entry b/c: its symlink target points above the template's root"
		[chain-mid]="entry esc: its symlink target has '..' after a name"
		[device]="entry mem: device nodes are refused (import with --allow-devices"
		[fifo]="entry fifo: fifos are refused"
		[empty]="the archive is empty (0 bytes)"
		[truncated]="entry cut-here: Truncated tar archive"
		[garbage]="Unrecognized archive format (a tar archive is needed"
		[bigid]="entry big: its owner uid 70000 is outside the containers' ids"
	)
	for c in "${!want[@]}"; do
		run xtemplate import "evil-$c" "$EVIL/$c.tar"
		assert_failure
		assert_output --partial "Import of template evil-$c failed: ${want[$c]}"
	done
	# the places aimed at are untouched
	assert_equal "$(cat "$VICTIM")" original
	[ ! -e /etc/x ]
	assert_equal "$(stat -c '%u:%g %a %h' /etc/shadow)" "$before"
	# no partial template, no staging directory (removed by a helper: give it a moment)
	wait_for 30 no_entry .import-
	assert_catalog_empty
}

@test "an archive of 10,000 nested directories imports, and is removed" {
	run xtemplate import deep "$EVIL/deep.tar"
	assert_success
	assert_output "Imported template deep: 10001 files, 5 B"
	d=$(CATALOG)/deep/rootfs
	assert_equal "$(cd "$d" && find . -name bottom -printf '%d\n')" 10001
	run xtemplate remove deep
	assert_success
	wait_for 60 catalog_empty
	assert_equal "$(ls -A "$(CATALOG)")" ""
}

@test "later entries replace earlier ones; --allow-devices keeps device nodes, shifted" {
	run xtemplate import replace "$EVIL/replace.tar"
	assert_success
	r=$(CATALOG)/replace/rootfs
	[ -d "$r/a" ] && [ -f "$r/a/inside" ]
	[ -f "$r/b" ] && [ ! -L "$r/c" ]
	assert_equal "$(cat "$r/c")" "c replaced a symlink"
	run xtemplate import --allow-devices dev "$EVIL/device.tar"
	assert_success
	assert_equal "$(stat -c '%F %t:%T' "$(CATALOG)/dev/rootfs/mem")" "character special file 1:1"
	[ "$(stat -c %u "$(CATALOG)/dev/rootfs/mem")" -gt 0 ]
}

@test "remove: refused while a job uses the template; --force names the jobs, storage goes when they end" {
	make_busybox_root "$XOS_TMP/bb"
	tar -C "$XOS_TMP/bb" --owner=0 --group=0 -cf "$XOS_TMP/bb.tar" .
	xtemplate import busy "$XOS_TMP/bb.tar"
	id=$(xrun -d --template busy -- busybox sleep 100)
	wait_state "$id" RUNNING
	short=${id:0:12}
	run xtemplate list --json
	assert_equal "$(jq -r '.[] | select(.name == "busy") | .jobs' <<<"$output")" 1
	run xtemplate remove busy
	assert_failure
	assert_output --partial "Template busy is used by 1 job ($short)"
	assert_output --partial "--force"
	run xtemplate remove --force busy
	assert_success
	assert_line "Removed template busy"
	assert_line "Still used by 1 job: $short"
	# gone from the catalogue; the job still runs on its files
	run xtemplate show busy
	assert_failure
	run xrun --job "$id" -- busybox cat /etc/passwd
	assert_success
	assert_line --index 0 --partial root:x:0:0
	has_entry .removed-
	xkill -s KILL "$id"
	xwait "$id" || true
	wait_for 30 no_entry .removed-
	assert_catalog_empty
}

@test "only root imports, removes and sets the default; anyone lists" {
	xos_test_user
	make_busybox_root "$XOS_TMP/bb"
	tar -C "$XOS_TMP/bb" -cf "$XOS_TMP/bb.tar" .
	chmod 0644 "$XOS_TMP/bb.tar"
	xtemplate import busy "$XOS_TMP/bb.tar"
	as_user() {
		setpriv --reuid 4242 --regid 4242 --clear-groups env XOS_SOCKET="$XOS_SOCKET" \
			"$XOS_BUILD/xtemplate" "$@"
	}
	run as_user import mine "$XOS_TMP/bb.tar"
	assert_failure
	assert_output --partial "Only root (the node owner) may import templates"
	run as_user remove busy
	assert_failure
	assert_output --partial "Only root"
	run as_user default busy
	assert_failure
	run as_user list --json
	assert_success
	assert_equal "$(jq -r '.[].name' <<<"$output" | tr '\n' ' ')" "host busy "
	[ ! -e "$(CATALOG)/mine" ]
}

@test "names: host, default and invalid names are refused" {
	make_busybox_root "$XOS_TMP/bb"
	tar -C "$XOS_TMP/bb" -cf "$XOS_TMP/bb.tar" .
	for n in host default Big .hidden a/b ""; do
		run xtemplate import "$n" "$XOS_TMP/bb.tar"
		assert_failure
		assert_output --partial "Invalid template name"
	done
	run xtemplate remove host
	assert_failure
	assert_output --partial "built-in template host cannot be removed"
	assert_catalog_empty
}

@test "an import cut short (client gone, or xosd killed) leaves no template and no files" {
	make_busybox_root "$XOS_TMP/bb"
	tar -C "$XOS_TMP/bb" -cf "$XOS_TMP/bb.tar" .
	# the stream never ends: the import waits for more after the archive
	mkfifo "$XOS_TMP/fifo"
	(cat "$XOS_TMP/bb.tar"; exec sleep 60) >"$XOS_TMP/fifo" &
	feeder=$!
	xtemplate import slow "$XOS_TMP/fifo" >/dev/null 2>&1 &
	client=$!
	wait_for 30 has_entry .import-
	has_entry .import-
	# the client goes: the import is cancelled and its files removed
	kill "$client"
	wait "$client" || true
	wait_for 30 no_entry .import-
	assert_catalog_empty
	# xosd killed in the middle of an import: nothing is left after its restart
	xtemplate import slow2 "$XOS_TMP/fifo" >/dev/null 2>&1 &
	client=$!
	(cat "$XOS_TMP/bb.tar"; exec sleep 60) >"$XOS_TMP/fifo" &
	feeder2=$!
	wait_for 30 has_entry .import-
	kill -KILL "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	wait "$client" || true
	kill "$feeder" "$feeder2" 2>/dev/null || true
	wait "$feeder" "$feeder2" 2>/dev/null || true
	xosd_launch --loader "$XOS_STATIC_LOADER"
	assert_catalog_empty
}

@test "progress: shown on a terminal, nothing when not a tty" {
	make_busybox_root "$XOS_TMP/bb"
	tar -C "$XOS_TMP/bb" -cf "$XOS_TMP/bb.tar" .
	run --separate-stderr xtemplate import quiet "$XOS_TMP/bb.tar"
	assert_success
	assert_equal "$stderr" ""
	run script -qec "xtemplate import loud '$XOS_TMP/bb.tar'" /dev/null
	assert_success
	assert_output --partial "Importing loud: "
	assert_output --partial "Imported template loud"
}

@test "template.json is validated on load: a broken one is reported, not used" {
	make_busybox_root "$XOS_TMP/bb"
	tar -C "$XOS_TMP/bb" -cf "$XOS_TMP/bb.tar" .
	xtemplate import busy "$XOS_TMP/bb.tar"
	meta=$(CATALOG)/busy/template.json
	jq '. + {"colour": "red"}' "$meta" >"$meta.new" && mv "$meta.new" "$meta"
	run xtemplate show busy
	assert_success
	assert_line --partial "Invalid template.json of template busy: unknown field 'colour'"
	jq 'del(.colour) | .workdir = "relative"' "$meta" >"$meta.new" && mv "$meta.new" "$meta"
	run xtemplate list
	assert_output --partial "field 'workdir' must be an absolute path"
	run xtemplate default busy
	assert_failure
	assert_output --partial "field 'workdir' must be an absolute path"
}

@test "xosd restarts: templates and the default stay; a removed template in use stays until its job ends" {
	make_busybox_root "$XOS_TMP/bb"
	tar -C "$XOS_TMP/bb" --owner=0 --group=0 -cf "$XOS_TMP/bb.tar" .
	xtemplate import busy "$XOS_TMP/bb.tar"
	xtemplate import other "$XOS_TMP/bb.tar"
	xtemplate default other
	id=$(xrun -d --template busy -- busybox sleep 100)
	wait_state "$id" RUNNING
	xtemplate remove --force busy
	xosd_stop
	xosd_launch --loader "$XOS_STATIC_LOADER"
	run xtemplate list --json
	assert_equal "$(jq -r '.[] | select(.default) | .name' <<<"$output")" other
	assert_equal "$(jq -r '[.[].name] | join(" ")' <<<"$output")" "host other"
	has_entry .removed-
	run xrun --job "$id" -- busybox echo still-here
	assert_success
	assert_output still-here
	xkill -s KILL "$id"
	xwait "$id" || true
	wait_for 30 no_entry .removed-
	run has_entry .removed-
	assert_failure
}
