#!/usr/bin/env bash
# Red-team finding 1: a lost store is never taken for a fresh one. Once the
# state directory had a store (virtcert.db.created), virtcertd and virtcert
# refuse a store that is missing, 0 bytes or corrupt, say how to restore it,
# and write nothing to it; after a restore from an older backup the CRL
# number still goes up (the last number is kept beside the CA too).
source "$VC_SOURCE_ROOT/tests/lib/common.sh"
command -v sqlite3 >/dev/null || { echo "sqlite3 not installed"; exit 77; }

DB="$STATE/virtcert.db"
crl_number() { vc crl --pem | openssl crl -noout -crlnumber | sed 's/.*=//'; }
daemon_refuses() { # daemon_refuses DESCRIPTION NEEDLE
	local rc=0
	timeout 20 "$VIRTCERTD" --config "$CONF" >"$T/d.out" 2>&1 || rc=$?
	if ((rc != 0 && rc != 124)) && grep -q "$2" "$T/d.out" && grep -q "restore the store from a backup" "$T/d.out"; then
		ok "$1 (exit $rc)"
	else
		not_ok "$1: exit $rc"; sed 's/^/    /' "$T/d.out"
	fi
}

check "ca init" vc ca init --permit vms.example.com
s1=$(vc issue --vm web1 --dns web1.vms.example.com --json | jq -r .serial)
check "revoke" vc revoke "$s1" --reason keyCompromise
[[ -f $STATE/virtcert.db.created ]] && ok "the first store creation wrote the marker" || not_ok "no marker"
n1=$(crl_number)
check "a backup (sqlite3 .backup, online-safe)" sqlite3 "$DB" ".backup '$T/backup.db'"
for i in 2 3 4; do
	s=$(vc issue --vm "web$i" --dns "web$i.vms.example.com" --json | jq -r .serial)
	vc revoke "$s" >/dev/null
	n_last=$(crl_number)
done
((n_last > n1)) && ok "CRL numbers go up ($n1 .. $n_last)" || not_ok "CRL numbers $n1 .. $n_last"

# 0 bytes
: >"$DB"
rm -f "$DB-wal" "$DB-shm"
daemon_refuses "virtcertd refuses a 0-byte store" "is empty (0 bytes)"
[[ ! -s $DB ]] && ok "... and left it as it was" || not_ok "the empty store was written to"
check_fails "virtcert list refuses it too" vc list
check_fails "virtcert crl refuses it too" vc crl --pem

# missing
rm -f "$DB"
daemon_refuses "virtcertd refuses a missing store" "is missing"
[[ ! -e $DB ]] && ok "... and did not create one" || not_ok "a fresh store was created"

# corrupt: fails PRAGMA quick_check, nothing written
cp "$T/backup.db" "$DB"
size=$(stat -c %s "$DB")
for page in 2 3; do
	printf 'ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ' | dd of="$DB" bs=1 seek=$((page * 4096)) conv=notrunc status=none
done
sum=$(sha256sum <"$DB")
daemon_refuses "virtcertd refuses a store that fails quick_check" "quick_check"
[[ $(sha256sum <"$DB") == "$sum" && ! -e $DB-wal ]] && ok "... and wrote nothing to it" || not_ok "the corrupt store was written to"

# restored from the older backup: revocations of the backup are there, the
# CRL number does not go back
cp "$T/backup.db" "$DB"
chmod 0600 "$DB"
n_restored=$(crl_number)
((n_restored > n_last)) && ok "after restoring an older backup the CRL number still goes up ($n_last -> $n_restored)" ||
	not_ok "CRL number went back: $n_last -> $n_restored"
vc crl --pem | openssl crl -noout -text | contains -i "serial number: *$s1" && ok "... and the backup's revocation is listed" ||
	not_ok "revocation of $s1 missing after restore"
check "virtcertd starts on the restored store" start_daemon
finish
