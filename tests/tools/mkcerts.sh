#!/bin/sh
# Make the certificates the credstore tests use, with the openssl command only.
#   mkcerts.sh DIR
# DIR/trust/     what a node owner puts in trust.d: the VO CAs of biomed, physics
#                and chem (chem: trusted, but not a VO the tests' nodes serve),
#                and biomed's CRL (revoked.pem is on it)
# DIR/foreign/   a CA no node trusts (its subject also says O=biomed)
# DIR/NAME.pem, DIR/NAME.key  member certificates (subject O=<vo>, CN=<name>,
#                title=<role>) and their unencrypted keys:
#   alice bob (biomed members), dave (biomed admin), carol (physics member),
#   erin (chem member), expired, future (not yet valid), revoked, foreign,
#   nosig (keyUsage without digitalSignature), fake (issued by alice's own
#   certificate, which is no CA), wrongvo (issued by biomed's CA, says O=physics)
# DIR/alice-proxy.pem  an RFC 3820 proxy of alice (certificate, key, alice's
#                certificate: the file a proxy user hands over)
# DIR/alice-enc.key    alice's key encrypted with the passphrase "secret"
#
#   mkcerts.sh DIR short NAME SECONDS
# (after the first form) issues DIR/NAME.pem and .key, a biomed member valid
# from now for SECONDS only.
set -eu
d=${1:?usage: mkcerts.sh DIR [short NAME SECONDS]}
mkdir -p "$d/trust" "$d/foreign"
cd "$d"

cat > ca.cnf <<'CNF'
[ ca ]
default_ca = vo_ca
[ vo_ca ]
dir = .
database = $dir/index.txt
serial = $dir/serial
new_certs_dir = $dir/new
default_md = sha256
policy = anything
copy_extensions = none
default_days = 30
default_crl_days = 30
unique_subject = no
[ anything ]
organizationName = supplied
commonName = supplied
title = optional
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ v3_ca ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ v3_user ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ v3_nosig ]
basicConstraints = critical, CA:false
keyUsage = critical, keyEncipherment
[ v3_proxy ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
proxyCertInfo = critical, language:id-ppl-inheritAll
CNF

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# mkca NAME VO DIR: a self-signed VO CA with a database of its own
mkca() {
	mkdir -p "ca-$1/new"
	: > "ca-$1/index.txt"
	echo 1000 > "ca-$1/serial"
	cp ca.cnf "ca-$1/ca.cnf"
	key "ca-$1/key.pem"
	openssl req -config ca.cnf -new -x509 -key "ca-$1/key.pem" -days 60 \
		-subj "/O=$2/CN=$2 VO CA" -extensions v3_ca -out "ca-$1/cert.pem"
	cp "ca-$1/cert.pem" "$3/$1.pem"
}

# issue CA NAME SUBJECT EXT [openssl ca options]: NAME.pem, NAME.key
issue() {
	ca=$1 name=$2 subj=$3 ext=$4
	shift 4
	key "$name.key"
	openssl req -config ca.cnf -new -key "$name.key" -subj "$subj" -out "$name.csr"
	(cd "ca-$ca" && openssl ca -config ca.cnf -batch -notext -extensions "$ext" \
		-cert cert.pem -keyfile key.pem -in "../$name.csr" -out "../$name.pem" "$@") \
		2>/dev/null
	rm -f "$name.csr"
}

if [ "${2:-}" = short ]; then
	end=$(date -u -d "+${4:?seconds} sec" +%Y%m%d%H%M%SZ)
	issue biomed "${3:?name}" "/O=biomed/CN=$3/title=member" v3_user -enddate "$end"
	exit 0
fi

mkca biomed biomed trust
mkca physics physics trust
mkca chem chem trust
mkca foreign biomed foreign

issue biomed alice "/O=biomed/CN=alice/title=member" v3_user
issue biomed bob "/O=biomed/CN=bob/title=member" v3_user
issue biomed dave "/O=biomed/CN=dave/title=admin" v3_user
issue physics carol "/O=physics/CN=carol/title=member" v3_user
issue chem erin "/O=chem/CN=erin/title=member" v3_user
issue biomed expired "/O=biomed/CN=expired/title=member" v3_user \
	-startdate 20200101000000Z -enddate 20200201000000Z
issue biomed future "/O=biomed/CN=future/title=member" v3_user \
	-startdate 20991201000000Z -enddate 20991231000000Z
issue biomed revoked "/O=biomed/CN=revoked/title=member" v3_user
issue foreign foreign "/O=biomed/CN=foreign/title=member" v3_user
issue biomed nosig "/O=biomed/CN=nosig/title=member" v3_nosig
issue biomed wrongvo "/O=physics/CN=wrongvo/title=member" v3_user

(cd ca-biomed && openssl ca -config ca.cnf -revoke ../revoked.pem -cert cert.pem \
	-keyfile key.pem && openssl ca -config ca.cnf -gencrl -cert cert.pem -keyfile key.pem \
	-out ../trust/biomed.crl) 2>/dev/null

# fake: "issued" by alice, whose certificate is no CA
key fake.key
openssl req -config ca.cnf -new -key fake.key -subj "/O=biomed/CN=fake/title=admin" -out fake.csr
openssl x509 -req -in fake.csr -CA alice.pem -CAkey alice.key -set_serial 7 -days 5 \
	-extfile ca.cnf -extensions v3_user -out fake.pem 2>/dev/null
cat alice.pem >> fake.pem
rm -f fake.csr

# alice's RFC 3820 proxy: her subject and one more CN, signed with her key
key alice-proxy.key
openssl req -config ca.cnf -new -key alice-proxy.key \
	-subj "/O=biomed/CN=alice/title=member/CN=4242" -out proxy.csr
openssl x509 -req -in proxy.csr -CA alice.pem -CAkey alice.key -set_serial 4242 -days 1 \
	-extfile ca.cnf -extensions v3_proxy -out proxy.pem 2>/dev/null
cat proxy.pem alice-proxy.key alice.pem > alice-proxy.pem
rm -f proxy.csr proxy.pem

openssl pkey -in alice.key -aes256 -passout pass:secret -out alice-enc.key
