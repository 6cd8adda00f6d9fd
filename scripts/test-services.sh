#!/usr/bin/env bash
# Throwaway PostgreSQL 15 and S3 (versitygw) for the storage tests.
#
#   scripts/test-services.sh CMD...   start both, export the URLs, run CMD,
#                                     remove everything, exit with CMD's status
#   . scripts/test-services.sh        start both in the current shell; they are
#                                     removed when that shell exits
#
# Exports:
#   LIGHTBOX_TEST_POSTGRES  postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
#   LIGHTBOX_TEST_S3        s3://ACCESS:SECRET@127.0.0.1:PORT/lightbox-test?secure=false&create=true
#
# Installs what is missing (postgresql from Debian, versitygw with go
# install) and says nothing when it is already there. Everything lives in one
# temporary directory: the PostgreSQL data dir, its unix socket, the S3 root
# and the logs. initdb refuses to run as root, so PostgreSQL runs as the
# unprivileged user lbtest (created on first use) when we are root.

_lbts_versitygw_version=v1.8.0
_lbts_pg_major=15

_lbts_die() {
	echo "test-services: $*" >&2
	return 1
}

# _lbts_free_port prints a TCP port on 127.0.0.1 that nobody listens on now.
_lbts_free_port() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
		return
	fi
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}

# _lbts_wait_port waits up to 30 s for something to accept on 127.0.0.1:$1.
_lbts_wait_port() {
	local i
	for i in $(seq 1 300); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

_lbts_pg_bindir() {
	local d
	for d in /usr/lib/postgresql/$_lbts_pg_major/bin /usr/lib/postgresql/*/bin; do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

_lbts_install_postgres() {
	_lbts_pg_bindir >/dev/null && return 0
	[ "$(id -u)" = 0 ] || { _lbts_die "postgresql is not installed and we are not root"; return 1; }
	echo "test-services: installing postgresql from Debian" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null ||
		{ apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } ||
		{ _lbts_die "apt-get install postgresql failed"; return 1; }
	_lbts_pg_bindir >/dev/null
}

_lbts_versitygw_bin() {
	if command -v versitygw >/dev/null 2>&1; then
		command -v versitygw
		return 0
	fi
	local gobin
	gobin=$(go env GOBIN 2>/dev/null)
	[ -n "$gobin" ] || gobin="$(go env GOPATH 2>/dev/null)/bin"
	if [ -x "$gobin/versitygw" ]; then
		echo "$gobin/versitygw"
		return 0
	fi
	return 1
}

_lbts_install_versitygw() {
	_lbts_versitygw_bin >/dev/null && return 0
	echo "test-services: go install versitygw@$_lbts_versitygw_version (about a minute)" >&2
	(cd / && GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$_lbts_versitygw_version") ||
		{ _lbts_die "go install versitygw failed"; return 1; }
	_lbts_versitygw_bin >/dev/null
}

# _lbts_as_pg runs its arguments as the unprivileged PostgreSQL user.
_lbts_as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u lbtest -- "$@"
	else
		"$@"
	fi
}

_lbts_cleanup() {
	local rc=$?
	if [ -n "${_lbts_s3_pid:-}" ]; then
		kill "$_lbts_s3_pid" 2>/dev/null
		wait "$_lbts_s3_pid" 2>/dev/null
		_lbts_s3_pid=
	fi
	if [ -n "${_lbts_tmp:-}" ] && [ -f "$_lbts_tmp/pg/postmaster.pid" ]; then
		_lbts_as_pg "$_lbts_bindir/pg_ctl" -D "$_lbts_tmp/pg" -m immediate -w stop >/dev/null 2>&1
	fi
	if [ -n "${_lbts_tmp:-}" ]; then
		rm -rf "$_lbts_tmp"
		_lbts_tmp=
	fi
	unset LIGHTBOX_TEST_POSTGRES LIGHTBOX_TEST_S3
	return $rc
}

_lbts_start() {
	_lbts_install_postgres || return 1
	_lbts_install_versitygw || return 1
	_lbts_bindir=$(_lbts_pg_bindir)
	local vgw
	vgw=$(_lbts_versitygw_bin)

	if [ "$(id -u)" = 0 ] && ! id lbtest >/dev/null 2>&1; then
		useradd --system --no-create-home --shell /usr/sbin/nologin lbtest ||
			{ _lbts_die "cannot create user lbtest"; return 1; }
	fi

	_lbts_tmp=$(mktemp -d "${TMPDIR:-/tmp}/lightbox-services.XXXXXX") || return 1
	chmod 755 "$_lbts_tmp"
	mkdir -p "$_lbts_tmp/pg" "$_lbts_tmp/sock" "$_lbts_tmp/s3"
	if [ "$(id -u)" = 0 ]; then
		chown lbtest "$_lbts_tmp/pg" "$_lbts_tmp/sock"
	fi

	local pgport s3port
	pgport=$(_lbts_free_port)
	_lbts_as_pg "$_lbts_bindir/initdb" -D "$_lbts_tmp/pg" -U postgres -A trust -E UTF8 --no-locale \
		>"$_lbts_tmp/initdb.log" 2>&1 ||
		{ cat "$_lbts_tmp/initdb.log" >&2; _lbts_die "initdb failed"; return 1; }
	_lbts_as_pg "$_lbts_bindir/pg_ctl" -D "$_lbts_tmp/pg" -w -t 30 -l "$_lbts_tmp/sock/postgres.log" \
		-o "-p $pgport -k $_lbts_tmp/sock -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null ||
		{ cat "$_lbts_tmp/sock/postgres.log" >&2; _lbts_die "postgres did not start"; return 1; }

	local access=lbtest secret
	secret=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
	s3port=$(_lbts_free_port)
	"$vgw" --access "$access" --secret "$secret" --port "127.0.0.1:$s3port" \
		posix "$_lbts_tmp/s3" >"$_lbts_tmp/versitygw.log" 2>&1 &
	_lbts_s3_pid=$!
	_lbts_wait_port "$s3port" ||
		{ cat "$_lbts_tmp/versitygw.log" >&2; _lbts_die "versitygw did not start"; return 1; }

	export LIGHTBOX_TEST_POSTGRES="postgres://postgres@127.0.0.1:$pgport/postgres?sslmode=disable"
	export LIGHTBOX_TEST_S3="s3://$access:$secret@127.0.0.1:$s3port/lightbox-test?secure=false&create=true"
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
	# Sourced: leave the services running until this shell exits.
	trap _lbts_cleanup EXIT
	_lbts_start || _lbts_cleanup
else
	set -u
	trap _lbts_cleanup EXIT
	trap 'exit 130' INT TERM
	_lbts_start || exit 1
	if [ $# -eq 0 ]; then
		echo "LIGHTBOX_TEST_POSTGRES=$LIGHTBOX_TEST_POSTGRES"
		echo "LIGHTBOX_TEST_S3=$LIGHTBOX_TEST_S3"
		echo "test-services: no command given; stopping" >&2
		exit 0
	fi
	"$@"
fi
